"""A caller waiting in their conference is never left alone.

Twilio fetches the conference's waitUrl when the caller starts waiting and again each time its
TwiML finishes, and it plays only while nobody has started the conference: a heartbeat the web
process, the one thing Twilio keeps calling, sees for every caller waiting alone. What Twilio's
conference events say (restrictions.calls) decides the rest: if the person rung joined and left
(say, during the greeting), they are gone, and the caller is moved on at once; if nobody has
joined by the ring time plus a grace (``hold_grace_seconds``), whatever the reason (the worker
down, the dial-out failed, nobody answered or accepted, a voicemail greeting answered), the caller
is moved on by a call update: a SPOC's caller to voicemail; anyone else to the team-busy message
when a person was rung, or straight to the default route when nobody could be. ``move_on`` is the
one way a caller is moved on (the jobs use it too), claimed once per call.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import Flask
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import select, update

from restrictions import redis_keys
from restrictions.db import Database
from restrictions.models import Call
from restrictions.settings import Settings
from restrictions.speech import Listener, say
from telephony import messages, twilio_gateway, twiml
from telephony.database import database
from telephony.redis_store import redis_client
from telephony.twilio_gateway import GatewayError
from telephony.urls import dial_result_url, hold_url, key_url

log = logging.getLogger("callguard.waiting")

CLAIM_PREFIX = redis_keys.MOVED.key
HEARTBEAT_SECONDS = 10
AGENT = "agent"
SPOC = "spoc"


@dataclass(frozen=True)
class CallState:
    """What the call's row says about the person being rung (None where there is no row yet)."""

    agent_call_sid: str | None
    answered: bool
    ended: bool
    emergency: bool = False
    person_present_since: datetime | None = None
    person_gone: bool = False  # joined the conference and left it, nobody else there
    moved_on: bool = False


def _state(db: Database, call_sid: str) -> CallState | None:
    with db.sessions() as sess:
        row = sess.execute(
            select(
                Call.agent_call_sid,
                Call.answered_at,
                Call.ended_at,
                Call.emergency_selected_at,
                Call.person_present_since,
                Call.person_left_at,
                Call.moved_on_at,
            ).where(Call.call_sid == call_sid)
        ).first()
    if row is None:
        return None
    return CallState(
        row[0],
        row[1] is not None,
        row[2] is not None,
        row[3] is not None,
        row[4],
        row[5] is not None and row[4] is None,
        row[6] is not None,
    )


def read_state(app: Flask, call_sid: str) -> CallState | None:
    """The call's state under the call path's deadline; None when there is no row or the
    database cannot say (the deadline alone then decides)."""
    db = database(app)
    try:
        state: CallState | None = db.breaker.call(0.5, "call-path", _state, db, call_sid)
    except Exception as exc:
        log.warning("could not read call %s while it waits: %s", call_sid, exc)
        return None
    return state


def _mark_moved(db: Database, call_sid: str) -> None:
    with db.sessions() as sess:
        sess.execute(
            update(Call)
            .where(Call.call_sid == call_sid, Call.moved_on_at.is_(None))
            .values(moved_on_at=datetime.now(UTC))
        )
        sess.commit()


def move_on(
    app: Flask,
    settings: Settings,
    call_sid: str,
    kind: str,
    listener: Listener,
    *,
    alone: bool = False,
    state: CallState | None = None,
) -> bool:
    """Take a waiting caller out of their conference to somewhere sensible (once per call);
    returns whether this call did it. ``alone``: the hold heartbeat says the caller is waiting
    with nobody, whatever the row says about an earlier answer (a person who joined and left)."""
    redis = redis_client(app)
    key = CLAIM_PREFIX + call_sid
    try:
        if not redis.set(key, "1", nx=True, ex=3600):
            return False
    except RedisError:
        log.warning("redis unavailable to claim moving call %s on; moving it anyway", call_sid)
    # the database is the backstop only: without it the caller is moved on regardless
    state = state or read_state(app, call_sid)
    answered = state is not None and state.answered and not (alone or state.person_gone)
    # moved on already: the row says so when Redis could not (a heartbeat fetched again)
    if state is not None and (answered or state.ended or state.emergency or state.moved_on):
        _release(redis, key)
        return False
    if kind == SPOC:
        xml = messages.voicemail(listener, settings, call_sid)
    elif state is not None and state.agent_call_sid:
        xml = messages.team_busy(listener, settings, call_sid)
    else:
        xml = twiml.direct_twiml(
            settings.default_destination,
            say("unavailable", listener, settings),
            settings.agent_ring_seconds,
            offer=say("emergency_offer", listener, settings),
            key_action=key_url(call_sid, messages.TEAM_BUSY, listener, app),
            action=dial_result_url(call_sid, listener, app),
        )
    try:
        with app.app_context():
            twilio_gateway.replace_call_twiml(
                call_sid, xml, "move the waiting caller on", fast=True
            )
            if state is not None and state.agent_call_sid and not state.person_gone:
                cancel_leg(state.agent_call_sid, fast=True)  # ringing, or hearing the whisper
    except GatewayError as exc:
        log.warning("could not move waiting call %s on: %s", call_sid, exc)
        _release(redis, key)  # let the next heartbeat try again
        return False
    log.info("call %s: nobody with the caller; moved on (%s)", call_sid, kind)
    db = database(app)
    try:
        db.breaker.call(0.5, "call-path", _mark_moved, db, call_sid)
    except Exception as exc:
        log.warning("could not record that call %s was moved on: %s", call_sid, exc)
    return True


def _release(redis: Redis, key: str) -> None:
    try:
        redis.delete(key)
    except RedisError:
        pass


def hold_for_emergency(app: Flask, call_sid: str) -> None:
    """The caller chose emergency repairs: nothing may move them on from that line now (the
    claim ``move_on`` takes is taken first; the call's row records the choice too)."""
    try:
        redis_client(app).set(CLAIM_PREFIX + call_sid, "emergency", ex=3600)
    except RedisError as exc:
        log.warning("redis unavailable to hold call %s on the emergency line: %s", call_sid, exc)


STOPPED_PREFIX = redis_keys.STOPPED.key


def cancel_leg(agent_call_sid: str, *, fast: bool = False) -> None:
    """Stop ringing a person for a caller who is no longer there (once, however many of the
    caller's events say so; best effort, logged)."""
    try:
        if not redis_client().set(STOPPED_PREFIX + agent_call_sid, "1", nx=True, ex=3600):
            return
    except RedisError:
        pass  # asking Twilio twice does no harm
    try:
        twilio_gateway.end_leg(agent_call_sid, fast=fast)
    except GatewayError as exc:
        log.warning("could not cancel the leg %s: %s", agent_call_sid, exc)


def heartbeat(
    app: Flask,
    settings: Settings,
    call_sid: str,
    kind: str,
    since: int,
    ring: int,
    listener: Listener,
    n: int,
) -> str:
    """The waitUrl's answer: hold words now and then, a pause, and the next heartbeat. A caller
    here is waiting with nobody: once the person rung has come and gone, or past the deadline,
    they are moved on (with the words still playing if Twilio could not be reached)."""
    now = time.time()
    deadline = since + ring + settings.hold_grace_seconds
    following = hold_url(call_sid, kind, since, ring, listener, app, n=n + 1)
    state = read_state(app, call_sid)
    if state is not None and state.person_present_since is not None:
        # a join in flight as Twilio fetched this: give it a beat before believing we are alone
        joined_ago = now - state.person_present_since.timestamp()
        if joined_ago < HEARTBEAT_SECONDS:
            return twiml.hold(None, HEARTBEAT_SECONDS, following)
    gone = state is not None and (state.person_gone or state.person_present_since is not None)
    if now >= deadline or gone:
        if move_on(app, settings, call_sid, kind, listener, alone=True, state=state):
            return twiml.hold(None, HEARTBEAT_SECONDS, following)
    words = say("hold", listener, settings) if n % 3 == 0 or now >= deadline else None
    pause = int(min(HEARTBEAT_SECONDS, max(1.0, deadline - now)))
    if now >= deadline:
        pause = HEARTBEAT_SECONDS
    return twiml.hold(words, pause, following)
