"""Public URLs: what Twilio calls us on, built from PUBLIC_BASE_URL (never from the request,
which behind a TLS-terminating proxy is the internal address). The one builder.

Callback URLs carry what their handler needs to answer without a database (the caller's language
and pace, the route's kind, when the caller started waiting): Twilio signs the whole URL, so what
comes back is what we sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode

from flask import Flask, current_app

from restrictions.speech import Listener


def public_url(path: str, app: Flask | None = None, **query: str) -> str:
    base: str = (app or current_app).config["PUBLIC_BASE_URL"].rstrip("/")
    return base + path + (f"?{urlencode(query)}" if query else "")


def _listener(listener: Listener) -> dict[str, str]:
    return {"lang": listener.language or "", "slow": "1" if listener.slow else "0"}


def listener_from(query: Mapping[str, str]) -> Listener:
    """The Listener a callback URL carried (``lang``, ``slow``)."""
    return Listener(query.get("lang") or None, query.get("slow") == "1")


def conference_status_url(app: Flask | None = None) -> str:
    return public_url("/twilio/conference/events", app)


def key_url(
    call_sid: str,
    message: str,
    listener: Listener,
    app: Flask | None = None,
    *,
    replay: int = 0,
    **extra: str,
) -> str:
    """Where a key press during ``message`` goes (1: emergency repairs; else hear it again)."""
    return public_url(
        "/twilio/voice/emergency",
        app,
        call_sid=call_sid,
        msg=message,
        replay=str(replay),
        **_listener(listener),
        **extra,
    )


def hold_url(
    call_sid: str,
    kind: str,
    since: int,
    ring: int,
    listener: Listener,
    app: Flask | None = None,
    *,
    n: int = 0,
) -> str:
    """The conference's waitUrl for this caller: who is being rung, since when, for how long."""
    return public_url(
        "/twilio/voice/hold",
        app,
        call_sid=call_sid,
        kind=kind,
        since=str(since),
        ring=str(ring),
        n=str(n),
        **_listener(listener),
    )


def voicemail_url(call_sid: str, listener: Listener, app: Flask | None = None) -> str:
    return public_url("/twilio/voice/voicemail", app, call_sid=call_sid, **_listener(listener))
