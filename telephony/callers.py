"""callguard as a decision service: what it would do with a call from a number, for a Studio
flow, a Function or another system. Answered the way the inbound webhook decides (the routing
cache first, PostgreSQL on a miss, under the same deadline), and with the same fail-safe: if
anything fails, the default route, marked ``fallback``."""

from __future__ import annotations

import logging
import time as clock
from datetime import UTC, datetime
from typing import Any

from flask import Flask

from restrictions import kinds, tasks
from restrictions.destination import Scheme
from restrictions.phone import caller_e164
from restrictions.routing import CallerProfile, Route, decide, default_route, needs_weekly_count
from restrictions.settings import Settings
from restrictions.speech import Listener, say
from telephony import inbound
from telephony.urls import public_url

log = logging.getLogger("callguard.callers")


def decision(
    app: Flask, settings: Settings, number: str, call_sid: str | None = None
) -> dict[str, Any]:
    """The decision for a call from ``number`` (anything Twilio may send as ``From``)."""
    e164 = caller_e164(number)
    routing = inbound.routing_settings(settings)
    now = datetime.now(UTC)
    profile: CallerProfile | None = None
    fallback = False
    try:
        deadline = clock.monotonic() + float(app.config["INBOUND_DEADLINE_SECONDS"])
        if e164:
            profile = inbound.look_up(app, e164, deadline)
        weekly = 0
        if profile is not None and needs_weekly_count(profile):
            weekly = inbound.calls_this_week(
                app, profile.customer_id, now, settings.timezone, deadline
            )
        route = decide(profile, now, routing, weekly)
    except Exception:
        log.exception("could not decide for a caller; answering the default route")
        profile, fallback = None, True
        route = default_route(routing, identified=e164 is not None, flags=("fallback",))
    return describe(route, profile, settings, e164, call_sid, fallback=fallback)


def describe(
    route: Route,
    profile: CallerProfile | None,
    settings: Settings,
    e164: str | None,
    call_sid: str | None,
    *,
    fallback: bool = False,
) -> dict[str, Any]:
    listener = Listener.of(profile)
    words = None
    if route.ends_call and route.message:
        words = say(route.message, listener, settings, **route.message_params).text
    restrictions = []
    for r in profile.restrictions if profile else ():
        kind = kinds.find(r.kind)
        restrictions.append({"kind": r.kind, "label": kind.label if kind else r.kind})
    found: dict[str, Any] = {
        "number": e164,
        "identified": route.identified,
        "customer": {"reference": profile.reference, "name": profile.name} if profile else None,
        "route": str(route.kind),
        "destination": str(route.destination) if route.destination else None,
        "ends_call": route.ends_call,
        "message": route.message,
        "words": words,
        "language": listener.language or "en-GB",
        "slow_speech": listener.slow,
        "restrictions": restrictions,
        "flags": list(route.flags),
        "flag_texts": [kinds.describe_flag(f) for f in route.flags],
        # a call that must end (or go to callguard's own people) is best handed to callguard
        # whole: a Studio "TwiML Redirect" to this URL
        "twiml_url": public_url("/twilio/voice/incoming"),
        "fallback": fallback,
        "task_attributes": None,
    }
    if route.destination is not None and route.destination.scheme is Scheme.TASKROUTER:
        found["task_attributes"] = tasks.attributes(
            profile, route, call_sid=call_sid or "", caller=e164
        )
    return found
