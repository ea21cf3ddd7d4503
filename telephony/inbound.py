"""Answering an inbound call: look the caller up, decide, say it in their language, record it.

For the usual caller the look-up and the hand-over to the workers (the call's row and the
dial-out, one Redis stream entry) are one Redis round trip, a script (telephony.handover); on a miss
PostgreSQL is read under a deadline in its own session and the call handed over once decided. The
decision is restrictions.routing.decide (no SQL). ``fallback`` is what any failure on the way gets
instead: the default route, emergency repairs offered first, in the caller's language when the
routing cache knows it (one guarded Redis read; else English), with no other dependency.
"""

from __future__ import annotations

import logging
import time as clock
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import Flask
from redis.exceptions import RedisError
from sqlalchemy.orm import Session

from prompts import Speech
from restrictions import cache, counting, kinds, tasks
from restrictions.calls import connected_directly, get_or_create_call, record_call
from restrictions.db import Database
from restrictions.destination import Destination, Scheme
from restrictions.phone import caller_e164
from restrictions.routing import (
    CallerProfile,
    Route,
    RoutingSettings,
    decide,
    default_route,
    needs_weekly_count,
    week_start,
)
from restrictions.settings import Settings
from restrictions.speech import Listener, say
from telephony import handover, messages, metrics, twiml, waiting
from telephony.database import database
from telephony.inputs import is_sid
from telephony.redis_store import call_path_breaker, redis_client
from telephony.urls import (
    after_conference_url,
    conference_status_url,
    dial_result_url,
    hold_url,
    key_url,
    queue_url,
)

log = logging.getLogger("callguard.inbound")


@dataclass(frozen=True)
class Caller:
    call_sid: str
    raw_from: str
    e164: str | None
    to: str
    caller_name: str | None

    @classmethod
    def from_form(cls, form: Mapping[str, str]) -> Caller:
        raw = form.get("From", "") or ""
        return cls(
            call_sid=form.get("CallSid", "") or "",
            raw_from=raw,
            e164=caller_e164(raw),
            to=form.get("To", "") or "",
            caller_name=form.get("CallerName") or None,
        )

    def facts(self, now: datetime, settings: RoutingSettings) -> dict[str, Any]:
        """What the worker needs, beside the cache entry, to decide as the webhook did: the
        webhook's routing settings too, in case the worker's were loaded from another version."""
        return {
            "call_sid": self.call_sid,
            "raw_from": self.raw_from,
            "e164": self.e164,
            "to": self.to,
            "caller_name": self.caller_name,
            "now": now.isoformat(),
            "routing": [str(settings.default_route), settings.emergency_line, settings.timezone],
        }


def record_from_hand_over(call: dict[str, Any], entry: bytes) -> dict[str, Any]:
    """The worker's side of ``look_up_and_hand_over``: the call's record, decided from the same
    cache entry, start time and routing settings as the caller's answer was (no weekly count:
    the entry's mark says none applies)."""
    now = datetime.fromisoformat(call.pop("now"))
    default, emergency, timezone = call.pop("routing")
    settings = RoutingSettings(Destination.parse(default), emergency, timezone)
    caller = Caller(**call)
    profile = cache.decode(entry)
    route = decide(profile, now, settings)
    return call_record(caller, route, profile, fallback=False, now=now, dial=route.dials)


def routing_settings(settings: Settings) -> RoutingSettings:
    return RoutingSettings(settings.default_destination, settings.emergency_line, settings.timezone)


def _in_own_session(db: Database, fn: Any, *args: Any) -> Any:
    """Run ``fn(sess, *args)`` off-thread with a session of its own (the deadline's thread)."""
    with db.sessions() as sess:
        return fn(sess, *args)


def look_up(app: Flask, e164: str, deadline: float) -> CallerProfile | None:
    """The caller's profile, without handing any call over (what a decision is asked for)."""
    return _look_up(app, e164, deadline, None)[0]


def look_up_and_hand_over(
    app: Flask, e164: str, deadline: float, call: dict[str, Any]
) -> tuple[CallerProfile | None, bool]:
    """The caller's profile, and whether ``call`` was handed to the workers with it."""
    return _look_up(app, e164, deadline, call)


def _look_up(
    app: Flask, e164: str, deadline: float, call: dict[str, Any] | None
) -> tuple[CallerProfile | None, bool]:
    """The caller's profile, and whether the call was handed to the workers with it.

    One Redis round trip for the usual caller: given ``call`` (``Caller.facts``), a script reads
    the cache entry and, when the entry alone decides the route, hands the call over with it. On
    a miss (or with Redis unavailable) PostgreSQL is read, and the cache refilled.
    """
    redis = redis_client(app)
    breaker = call_path_breaker(app)
    redis_ok = breaker.allow()
    if redis_ok:
        try:
            script = call is not None and handover.hands_over_calls(app)
            raw: bytes | str | None
            if script:
                raw = handover.look_up_and_hand_over(redis, cache.key(e164), call or {})
            else:
                raw = redis.get(cache.key(e164))
            breaker.succeeded()
            if raw is not None:
                return cache.decode(raw), script and cache.decides_alone(raw)
        except RedisError:
            log.exception("redis unavailable for the look-up of a caller; reading PostgreSQL")
            breaker.failed()
            redis_ok = False
    remaining = max(deadline - clock.monotonic(), 0.05)
    db = database(app)
    profile = db.breaker.call(remaining, "call-path", _in_own_session, db, cache.load_profile, e164)
    if redis_ok:
        try:
            cache.write_profiles(redis, [(e164, profile)])
        except RedisError:
            log.exception("could not refill the routing cache")
    return profile, False


def calls_this_week(app: Flask, customer_id: int, now: datetime, tz: str, deadline: float) -> int:
    """Calls since Monday 00:00 local time that used the allowance (Redis, else PostgreSQL)."""
    since = week_start(now, tz)
    breaker = call_path_breaker(app)
    try:
        if not breaker.allow():
            raise RedisError("redis is being skipped after a failure")
        return counting.allowance_used(redis_client(app), customer_id, since)
    except RedisError:
        log.warning("redis unavailable for the weekly allowance; counting in PostgreSQL")
        breaker.failed()
        remaining = max(deadline - clock.monotonic(), 0.05)
        db = database(app)
        used: int = db.breaker.call(
            remaining,
            "call-path",
            _in_own_session,
            db,
            counting.allowance_used_from_calls,
            customer_id,
            since,
        )
        return used


def expect_allowance(app: Flask, call_sid: str, customer_id: int) -> None:
    """This call counts against the weekly allowance once a person answers it."""
    if not call_path_breaker(app).allow():
        return
    try:
        counting.expect_allowance(redis_client(app), call_sid, customer_id)
    except RedisError:
        log.exception("could not note call %s for the weekly allowance in redis", call_sid)


# What a rendered answer holds in place of this call's CallSid and the time it started waiting.
_SID_MARK = "CAcallguardCallSidPlaceholder0000"  # not hex: never a real CallSid
_SINCE_MARK = "since=4242424242424"
TEMPLATES = "callguard.twiml-templates"


def render(
    app: Flask,
    route: Route,
    profile: CallerProfile | None,
    settings: Settings,
    call_sid: str,
    now: datetime,
    *,
    queued: bool,
    caller: str | None = None,
) -> str:
    """The TwiML for a decided route. Without the queue (``queued=False``) connect directly.

    Each route, language and pace is rendered once per settings and reused with the call's own
    CallSid and start time put in: building the XML was a tenth of an inbound webhook's time.
    """
    listener = Listener.of(profile)
    if route.destination is not None and route.destination.scheme is Scheme.TASKROUTER:
        return _enqueue_task(app, route, profile, settings, call_sid, listener, caller)
    key = (
        app.config["PUBLIC_BASE_URL"],
        route.kind,
        str(route.destination),
        route.message,
        repr(sorted(route.message_params.items())),
        listener,
        queued,
    )
    owner, templates = app.extensions.get(TEMPLATES, (None, {}))
    if owner is not settings:  # first use, or the settings were replaced
        templates = {}
        app.extensions[TEMPLATES] = (settings, templates)
    xml: str | None = templates.get(key)
    if xml is None:
        xml = templates[key] = _render(app, route, listener, settings, queued=queued)
    since = f"since={int(now.timestamp())}"
    return xml.replace(_SID_MARK, call_sid).replace(_SINCE_MARK, since)


TASK_TIMEOUT_SECONDS = 600  # how long TaskRouter may hold the task before the action moves on


def _enqueue_task(
    app: Flask,
    route: Route,
    profile: CallerProfile | None,
    settings: Settings,
    call_sid: str,
    listener: Listener,
    caller: str | None,
) -> str:
    """A ``taskrouter:`` route: the caller is queued as a task carrying callguard's decision
    (restrictions.tasks), rendered per call since the attributes are the caller's own."""
    assert route.destination is not None
    spoc = kinds.routes_to_person(route.kind)
    kind = waiting.SPOC if spoc else waiting.AGENT
    task = tasks.attributes(profile, route, call_sid=call_sid, caller=caller)
    return twiml.enqueue_task(
        say("spoc_connecting" if spoc else "connecting", listener, settings),
        route.destination.target,
        tasks.encode(task),
        priority=int(task["priority"]),
        timeout=TASK_TIMEOUT_SECONDS,
        wait_url=queue_url("wait", call_sid, kind, listener, app),
        action=queue_url("result", call_sid, kind, listener, app),
    )


def _render(
    app: Flask, route: Route, listener: Listener, settings: Settings, *, queued: bool
) -> str:
    """``render``'s template: the marks stand for the CallSid and the start time."""
    call_sid, since = _SID_MARK, int(_SINCE_MARK.removeprefix("since="))
    if route.ends_call:
        assert route.message is not None
        return messages.ending(
            route.message,
            listener,
            settings,
            call_sid,
            source=messages.ROUTE,
            app=app,
            **route.message_params,
        )
    assert route.destination is not None
    spoc = kinds.routes_to_person(route.kind)
    greeting = say("spoc_connecting" if spoc else "connecting", listener, settings)
    offer = say("spoc_emergency_offer", listener, settings) if spoc else None
    ring = settings.spoc_ring_seconds if spoc else settings.agent_ring_seconds
    keys = key_url(call_sid, messages.SPOC_WAIT, listener, app, since=str(since), ring=str(ring))
    if not route.dials:
        return twiml.route_twiml(route.destination, greeting)
    if not queued:
        kind = waiting.SPOC if spoc else waiting.AGENT  # a SPOC nobody answers: voicemail
        onward = key_url(
            call_sid,
            messages.DIRECT,
            listener,
            app,
            to=str(route.destination),
            ring=str(ring),
            kind=kind,
        )
        result = dial_result_url(call_sid, listener, app, kind=kind)
        return twiml.direct_twiml(
            route.destination, greeting, ring, offer=offer, key_action=onward, action=result
        )
    kind = waiting.SPOC if spoc else waiting.AGENT
    wait = hold_url(call_sid, kind, since, ring, listener, app)
    return twiml.join_conference(
        call_sid,
        greeting,
        conference_status_url(app),
        wait,
        offer=offer,
        key_action=keys,
        after=after_conference_url(call_sid, kind, listener, app),
    )


def call_record(
    caller: Caller,
    route: Route,
    profile: CallerProfile | None,
    *,
    fallback: bool,
    now: datetime,
    dial: bool,
) -> dict[str, Any]:
    """Everything the call's row needs, as plain data for the job."""
    return {
        "call_sid": caller.call_sid,
        "from_number": caller.raw_from[:64],
        "from_e164": caller.e164,
        "to_number": caller.to[:64],
        "caller_name": caller.caller_name[:200] if caller.caller_name else None,
        "customer_id": profile.customer_id if profile else None,
        "identified": route.identified,
        "route": str(route.kind),
        "route_destination": str(route.destination) if route.destination else None,
        "restriction_id": route.restriction_id,
        "flags": {"flags": list(route.flags), "unidentified": not route.identified},
        "fallback": fallback,
        "started_at": now.isoformat(),
        "dial": dial,
        "conference_name": twiml.conference_name(caller.call_sid) if dial else None,
    }


def answer(app: Flask, settings: Settings, form: Mapping[str, str]) -> str:
    """The whole inbound decision. Any exception here is the caller of ``fallback``'s business."""
    started = clock.monotonic()
    deadline = started + float(app.config["INBOUND_DEADLINE_SECONDS"])
    now = datetime.now(UTC)
    caller = Caller.from_form(form)
    if not is_sid(caller.call_sid):  # it goes into the TwiML as it is
        raise ValueError(f"inbound call without a CallSid: {caller.call_sid[:40]!r}")
    routing = routing_settings(settings)
    profile, handed_over = None, False
    if caller.e164:
        profile, handed_over = look_up_and_hand_over(
            app, caller.e164, deadline, caller.facts(now, routing)
        )
    weekly = 0
    if profile is not None and needs_weekly_count(profile):
        weekly = calls_this_week(app, profile.customer_id, now, settings.timezone, deadline)
    route = decide(profile, now, routing, weekly)
    record = call_record(caller, route, profile, fallback=False, now=now, dial=route.dials)
    if profile is not None and not route.ends_call and needs_weekly_count(profile):
        expect_allowance(app, caller.call_sid, profile.customer_id)
    queued = handed_over or handover.hand_over_call(record)
    if not queued:
        direct = {**record, "dial": False, "direct": True, "conference_name": None}
        if _record_now(app, direct, max(deadline - clock.monotonic(), 0.05)) is False:
            # Redis lost its reply to a hand-over that a worker has taken and is ringing for:
            # the caller joins that conference rather than ringing someone a second time
            queued = True
    xml = render(
        app, route, profile, settings, caller.call_sid, now, queued=queued, caller=caller.e164
    )
    metrics.inbound_call(str(route.kind), fallback=False)
    return xml


def replay(app: Flask, settings: Settings, form: Mapping[str, str], call_sid: str) -> str:
    """The caller pressed a key other than 1 during their message: decide again (no SQL for the
    usual caller, nothing recorded) and say it once more, without the offer to hear it again."""
    now = datetime.now(UTC)
    deadline = clock.monotonic() + float(app.config["INBOUND_DEADLINE_SECONDS"])
    caller = Caller.from_form(form)
    profile = look_up(app, caller.e164, deadline) if caller.e164 else None
    weekly = 0
    if profile is not None and needs_weekly_count(profile):
        weekly = calls_this_week(app, profile.customer_id, now, settings.timezone, deadline)
    route = decide(profile, now, routing_settings(settings), weekly)
    listener = Listener.of(profile)
    if not route.ends_call or route.message is None:
        return messages.goodbye(listener, settings)
    return messages.ending(
        route.message,
        listener,
        settings,
        call_sid,
        source=messages.ROUTE,
        replay=1,
        app=app,
        **route.message_params,
    )


def fallback(app: Flask, settings: Settings, form: Mapping[str, str]) -> str:
    """The default route, connected directly, emergency repairs offered first, in the caller's
    language when the routing cache knows it: depends on nothing that might have failed (one
    guarded Redis GET at most), and never raises (a static answer if even rendering fails)."""
    caller = Caller.from_form(form)
    call_sid = caller.call_sid if is_sid(caller.call_sid) else ""  # else Twilio's form says
    metrics.inbound_call("default", fallback=True)
    try:
        xml = _fallback_twiml(app, settings, call_sid, _cached_listener(app, caller.e164))
    except Exception:
        log.exception("call %s: could not render the fallback; a static answer", call_sid or "?")
        xml = _static_fallback(app, settings, call_sid)
    if call_sid:  # a CallSid that is not one is neither recorded nor logged as it is
        try:
            route = default_route(
                routing_settings(settings), identified=caller.e164 is not None, flags=("fallback",)
            )
            record = call_record(
                caller, route, None, fallback=True, now=datetime.now(UTC), dial=False
            )
            record["direct"] = True
            # on the spot first: the row then stops any dial-out a hand-over made before the
            # failure would start; through a worker only when PostgreSQL cannot take it now
            if _record_now(app, record) is None and not handover.hand_over_call(record):
                log.error("call %s was connected directly and not recorded", call_sid)
        except Exception:
            log.exception("could not record fallback call %s", call_sid)
    return xml


def _cached_listener(app: Flask, e164: str | None) -> Listener:
    """The caller's language and pace from the routing cache: one GET on the call path's fast
    client, skipped while its breaker is open. Redis down or slow, or an entry that cannot be
    read, means British English at the usual pace."""
    breaker = call_path_breaker(app)
    if not e164 or not breaker.allow():
        return Listener()
    try:
        raw = redis_client(app).get(cache.key(e164))
    except RedisError:
        log.warning("redis unavailable for the fallback's language; answering in English")
        breaker.failed()
        return Listener()
    except Exception:
        log.exception("could not read the routing cache for the fallback's language")
        return Listener()
    breaker.succeeded()
    try:
        profile = cache.decode(raw)
    except Exception:
        log.exception("an unreadable routing cache entry; the fallback answers in English")
        return Listener()
    return Listener.of(profile) if isinstance(profile, CallerProfile) else Listener()


def _fallback_twiml(app: Flask, settings: Settings, call_sid: str, listener: Listener) -> str:
    """The default route directly: a key window first (1: emergency repairs; any other key goes
    on to the same dial), then the <Dial> with its timeout and the dial-result action."""
    destination, ring = settings.default_destination, settings.agent_ring_seconds
    return twiml.direct_twiml(
        destination,
        say("unavailable", listener, settings),
        ring,
        offer=say("emergency_offer", listener, settings),
        key_action=key_url(
            call_sid, messages.DIRECT, listener, app, to=str(destination), ring=str(ring)
        ),
        action=dial_result_url(call_sid, listener, app),
    )


# What the fallback says when even rendering failed: English written here, no prompt file.
_STATIC_WORDS = "Thank you for calling. Please hold while we put you through."
STATIC_TWIML = (
    '<?xml version="1.0" encoding="UTF-8"?><Response><Say language="en-GB">We are sorry, we'
    " cannot take your call just now. Please call again in a few minutes. If you or anyone else"
    " is in danger, please hang up and dial 999.</Say><Hangup/></Response>"
)


def _static_fallback(app: Flask, settings: Settings, call_sid: str) -> str:
    """The default line with words written here; if even that fails, a fixed answer."""
    try:
        words = Speech(_STATIC_WORDS, "en-GB", "Polly.Amy", False)
        action = dial_result_url(call_sid, Listener(), app)
        return twiml.direct_twiml(
            settings.default_destination, words, settings.agent_ring_seconds, action=action
        )
    except Exception:
        log.exception("call %s: the static fallback failed too; a fixed answer", call_sid or "?")
        return STATIC_TWIML


def _mark_emergency(sess: Session, call_sid: str, chosen_at: str) -> None:
    call = get_or_create_call(sess, call_sid)
    if call.emergency_selected_at is None:
        call.emergency_selected_at = datetime.fromisoformat(chosen_at)
    sess.commit()


def record_emergency_now(app: Flask, call_sid: str, chosen_at: str) -> None:
    """Without the queue, record the emergency choice on the request path, under a deadline."""
    db = database(app)
    try:
        db.breaker.call(0.3, "call-path", _in_own_session, db, _mark_emergency, call_sid, chosen_at)
    except Exception:
        log.exception("call %s chose emergency repairs; could not record it", call_sid)


def _write_call_row(sess: Session, record: dict[str, Any]) -> bool:
    call = record_call(sess, record)
    direct = connected_directly(call)
    sess.commit()
    return direct


def _record_now(app: Flask, record: dict[str, Any], seconds: float = 0.3) -> bool | None:
    """Without the queue, write the call's row on the request path, still under a deadline.
    True: recorded as connected directly; False: a worker had already claimed its dial-out (a
    hand-over whose reply was lost); None: it could not be written (logged)."""
    try:
        db = database(app)
        done: bool = db.breaker.call(
            seconds, "call-path", _in_own_session, db, _write_call_row, record
        )
        return done
    except Exception:
        log.exception(
            "could not record call %s; it is not lost to Twilio's logs", record["call_sid"]
        )
        return None
