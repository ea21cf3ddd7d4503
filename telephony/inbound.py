"""Answering an inbound call: look the caller up, decide, say it in their language, record it.

The look-up is one Redis GET for the usual caller (restrictions.cache); on a miss PostgreSQL is
read under a deadline in its own session; the decision is restrictions.routing.decide (no SQL);
the call's row and the dial-out are an rq job queued after the answer is built. ``fallback``
is what any failure on the way gets instead: the default route, with no dependency but settings.
"""

from __future__ import annotations

import logging
import time as clock
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from flask import Flask
from redis.exceptions import RedisError
from sqlalchemy import func, select

import prompts
from handlers import calls as call_jobs
from handlers import enqueue
from restrictions import cache
from restrictions.db import Database, database
from restrictions.models import Call
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
from telephony import twiml
from telephony.redis_store import redis_client
from telephony.resilience import within
from telephony.settings import Settings

log = logging.getLogger("callguard.inbound")

STARTS_PREFIX = "cg:starts:customer:"
STARTS_TTL_SECONDS = 8 * 24 * 3600
ROUTED = ("default", "spoc")  # routes that put the caller through, and so use the allowance


def starts_key(customer_id: int) -> str:
    """Routed call starts per customer, scored by time: the weekly allowance counts these."""
    return f"{STARTS_PREFIX}{customer_id}"


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


def public(app: Flask, path: str, **query: str) -> str:
    base: str = app.config["PUBLIC_BASE_URL"].rstrip("/")
    return base + path + (f"?{urlencode(query)}" if query else "")


def callback_urls(app: Flask, call_sid: str) -> twiml.CallbackUrls:
    return twiml.CallbackUrls(
        emergency_gather=public(app, "/twilio/voice/emergency", call_sid=call_sid),
        conference_status=public(app, "/twilio/conference/events"),
        voicemail=public(app, "/twilio/voice/voicemail", call_sid=call_sid),
    )


def routing_settings(settings: Settings) -> RoutingSettings:
    return RoutingSettings(settings.default_route, settings.emergency_line, settings.timezone)


def _load_profile(db: Database, e164: str) -> CallerProfile | None:
    """The cache-miss path, run off-thread under the deadline with a session of its own."""
    with db.sessions() as sess:
        return cache.load_profile(sess, e164)


def look_up(app: Flask, e164: str, deadline: float) -> CallerProfile | None:
    """The caller's profile: one Redis GET, or PostgreSQL (and refill the cache) on a miss."""
    redis = redis_client(app)
    redis_ok = True
    try:
        hit, profile = cache.read(redis, e164)
        if hit:
            return profile
    except RedisError:
        log.exception("redis unavailable for the look-up of a caller; reading PostgreSQL")
        redis_ok = False
    remaining = max(deadline - clock.monotonic(), 0.05)
    profile = within(remaining, _load_profile, database(app), e164)
    if redis_ok:
        try:
            cache.write(redis, e164, profile)
        except RedisError:
            log.exception("could not refill the routing cache")
    return profile


def _routed_calls_since(db: Database, customer_id: int, since: datetime) -> int:
    """The weekly count from PostgreSQL, for when Redis is unavailable."""
    with db.sessions() as sess:
        return int(
            sess.scalar(
                select(func.count(Call.id)).where(
                    Call.customer_id == customer_id,
                    Call.started_at >= since,
                    Call.route.in_(ROUTED),
                )
            )
            or 0
        )


def calls_this_week(app: Flask, customer_id: int, now: datetime, tz: str, deadline: float) -> int:
    """Routed calls since Monday 00:00 local time (a second round trip, only for allowances)."""
    since = week_start(now, tz)
    try:
        return int(redis_client(app).zcount(starts_key(customer_id), since.timestamp(), "+inf"))
    except RedisError:
        log.exception("redis unavailable for the weekly allowance; counting in PostgreSQL")
        remaining = max(deadline - clock.monotonic(), 0.05)
        return within(remaining, _routed_calls_since, database(app), customer_id, since)


def note_routed_call(app: Flask, customer_id: int, call_sid: str, now: datetime) -> None:
    """Count this call against the weekly allowance (PostgreSQL's call rows are the backstop)."""
    redis = redis_client(app)
    try:
        redis.zadd(starts_key(customer_id), {call_sid: now.timestamp()})
        redis.expire(starts_key(customer_id), STARTS_TTL_SECONDS)
    except RedisError:
        log.exception("could not count call %s against the weekly allowance in redis", call_sid)


def speak(
    key: str, profile: CallerProfile | None, settings: Settings, **params: Any
) -> prompts.Speech:
    language = profile.language if profile else None
    slow = profile.slow_speech if profile else False
    return prompts.speech(key, language, slow=slow, **settings.message_params(), **params)


def render(
    route: Route,
    profile: CallerProfile | None,
    settings: Settings,
    call_sid: str,
    urls: twiml.CallbackUrls,
    *,
    queued: bool,
) -> str:
    """The TwiML for a decided route. Without the queue (``queued=False``) connect directly."""
    if route.ends_call:
        params = dict(route.message_params)
        if "windows" in params:
            params["windows"] = prompts.describe_windows(
                params["windows"], profile.language if profile else None
            )
        assert route.message is not None
        message = speak(route.message, profile, settings, **params)
        return twiml.message_then_end(
            message,
            speak("emergency_offer", profile, settings),
            speak("goodbye", profile, settings),
            urls,
        )
    assert route.destination is not None
    greeting = speak("spoc_connecting" if route.kind == "spoc" else "connecting", profile, settings)
    scheme = route.destination.partition(":")[0]
    if scheme in ("dial", "client") and not queued:
        return twiml.direct_twiml(route.destination, greeting, settings.agent_ring_seconds)
    return twiml.route_twiml(route.destination, greeting, call_sid, urls)


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
        "from_number": caller.raw_from,
        "from_e164": caller.e164,
        "to_number": caller.to,
        "caller_name": caller.caller_name,
        "customer_id": profile.customer_id if profile else None,
        "identified": route.identified,
        "route": route.kind.value,
        "route_destination": route.destination,
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
    if not caller.call_sid:
        raise ValueError("inbound call without CallSid")
    profile = look_up(app, caller.e164, deadline) if caller.e164 else None
    weekly = 0
    if profile is not None and needs_weekly_count(profile):
        weekly = calls_this_week(app, profile.customer_id, now, settings.timezone, deadline)
    route = decide(profile, now, routing_settings(settings), weekly)
    dial = (route.destination or "").partition(":")[0] in ("dial", "client")
    urls = callback_urls(app, caller.call_sid)
    record = call_record(caller, route, profile, fallback=False, now=now, dial=dial)
    if profile is not None and not route.ends_call and needs_weekly_count(profile):
        note_routed_call(app, profile.customer_id, caller.call_sid, now)
    queued = enqueue(
        call_jobs.start_inbound_call, record, job_id=f"inbound-{caller.call_sid}", call_path=True
    )
    if not queued:
        record["dial"] = False
        _record_now(app, record)
    return render(route, profile, settings, caller.call_sid, urls, queued=queued)


def fallback(app: Flask, settings: Settings, form: Mapping[str, str]) -> str:
    """The default route, connected directly: depends on nothing that might have failed."""
    caller = Caller.from_form(form)
    route = default_route(
        routing_settings(settings), identified=caller.e164 is not None, flags=("fallback",)
    )
    greeting = prompts.speech("unavailable", None, **settings.message_params())
    xml = twiml.direct_twiml(
        route.destination or settings.default_route, greeting, settings.agent_ring_seconds
    )
    if caller.call_sid:
        record = call_record(caller, route, None, fallback=True, now=datetime.now(UTC), dial=False)
        try:
            if not enqueue(
                call_jobs.start_inbound_call,
                record,
                job_id=f"inbound-{caller.call_sid}",
                call_path=True,
            ):
                _record_now(app, record)
        except Exception:
            log.exception("could not record fallback call %s", caller.call_sid)
    return xml


def _record_now(app: Flask, record: dict[str, Any]) -> None:
    """Without the queue, write the call's row on the request path, still under a deadline."""
    try:
        within(0.3, call_jobs.write_call_row, database(app), record)
    except Exception:
        log.exception(
            "could not record call %s; it is not lost to Twilio's logs", record["call_sid"]
        )
