"""A caller waiting in their conference is never left alone.

Twilio fetches the conference's waitUrl when the caller starts waiting and again each time its
TwiML finishes, so the web process, the one thing Twilio keeps calling, sees every waiting caller
every few seconds. If nobody has joined by the ring time plus a grace (``hold_grace_seconds``),
whatever the reason (the worker down, the dial-out failed, nobody answered), the caller is moved
on with a call update: a SPOC's caller to voicemail; anyone else to the team-busy message when a
person was rung, or straight to the default route when nobody could be. ``move_on`` is the one
way a caller is moved on (the jobs use it too), claimed once per call.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import Flask
from redis.exceptions import RedisError
from sqlalchemy import select, update

from restrictions.db import Database
from restrictions.models import Call
from restrictions.settings import Settings
from restrictions.speech import Listener, say
from telephony import messages, twilio_gateway, twiml
from telephony.database import database
from telephony.redis_store import redis_client
from telephony.twilio_gateway import GatewayError
from telephony.urls import hold_url, key_url

log = logging.getLogger("callguard.waiting")

CLAIM_PREFIX = "cg:moved:"
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


def _state(db: Database, call_sid: str) -> CallState | None:
    with db.sessions() as sess:
        row = sess.execute(
            select(
                Call.agent_call_sid, Call.answered_at, Call.ended_at, Call.emergency_selected_at
            ).where(Call.call_sid == call_sid)
        ).first()
    if row is None:
        return None
    return CallState(row[0], row[1] is not None, row[2] is not None, row[3] is not None)


def _mark_moved(db: Database, call_sid: str) -> None:
    with db.sessions() as sess:
        sess.execute(
            update(Call)
            .where(Call.call_sid == call_sid, Call.moved_on_at.is_(None))
            .values(moved_on_at=datetime.now(UTC))
        )
        sess.commit()


def move_on(app: Flask, settings: Settings, call_sid: str, kind: str, listener: Listener) -> bool:
    """Take a waiting caller out of their conference to somewhere sensible (once per call);
    returns whether this call did it."""
    redis = redis_client(app)
    key = CLAIM_PREFIX + call_sid
    try:
        if not redis.set(key, "1", nx=True, ex=3600):
            return False
    except RedisError:
        log.warning("redis unavailable to claim moving call %s on; moving it anyway", call_sid)
    db = database(app)
    try:
        state = db.breaker.call(0.5, "call-path", _state, db, call_sid)
    except Exception as exc:  # the database is the backstop only: move the caller on regardless
        log.warning("could not read call %s before moving it on: %s", call_sid, exc)
        state = None
    if state is not None and (state.answered or state.ended or state.emergency):
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
        )
    try:
        with app.app_context():
            twilio_gateway.replace_call_twiml(
                call_sid, xml, "move the waiting caller on", fast=True
            )
            if state is not None and state.agent_call_sid:
                cancel_leg(state.agent_call_sid, fast=True)
    except GatewayError as exc:
        log.warning("could not move waiting call %s on: %s", call_sid, exc)
        try:
            redis.delete(key)  # let the next heartbeat try again
        except RedisError:
            pass
        return False
    log.info("call %s: nobody joined in time; moved on (%s)", call_sid, kind)
    try:
        db.breaker.call(0.5, "call-path", _mark_moved, db, call_sid)
    except Exception as exc:
        log.warning("could not record that call %s was moved on: %s", call_sid, exc)
    return True


def hold_for_emergency(app: Flask, call_sid: str) -> None:
    """The caller chose emergency repairs: nothing may move them on from that line now (the
    claim ``move_on`` takes is taken first; the call's row records the choice too)."""
    try:
        redis_client(app).set(CLAIM_PREFIX + call_sid, "emergency", ex=3600)
    except RedisError as exc:
        log.warning("redis unavailable to hold call %s on the emergency line: %s", call_sid, exc)


def cancel_leg(agent_call_sid: str, *, fast: bool = False) -> None:
    """Stop ringing a person for a caller who is no longer there (best effort, logged)."""
    try:
        twilio_gateway.cancel_call(agent_call_sid, fast=fast)
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
    """The waitUrl's answer: hold words now and then, a pause, and the next heartbeat; past the
    deadline, the caller is moved on."""
    now = time.time()
    deadline = since + ring + settings.hold_grace_seconds
    following = hold_url(call_sid, kind, since, ring, listener, app, n=n + 1)
    if now >= deadline:
        move_on(app, settings, call_sid, kind, listener)
        return twiml.hold(None, HEARTBEAT_SECONDS, following)
    words = say("hold", listener, settings) if n % 3 == 0 else None
    pause = int(min(HEARTBEAT_SECONDS, max(1.0, deadline - now)))
    return twiml.hold(words, pause, following)
