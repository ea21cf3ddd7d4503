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


def dial_result_url(
    call_sid: str, listener: Listener, app: Flask | None = None, *, kind: str = ""
) -> str:
    """A direct <Dial>'s action: where Twilio goes when the person rung answered or did not
    (``kind=spoc``: a SPOC's caller, who is offered voicemail, never the general line)."""
    extra = {"kind": kind} if kind else {}
    return public_url(
        "/twilio/voice/dial-result", app, call_sid=call_sid, **_listener(listener), **extra
    )


def emergency_result_url(
    call_sid: str, listener: Listener, attempt: int, app: Flask | None = None
) -> str:
    """The emergency <Dial>'s action: ``try`` 1 is the emergency line, 2 its backup."""
    return public_url(
        "/twilio/voice/emergency-result",
        app,
        call_sid=call_sid,
        **_listener(listener),
        **{"try": str(attempt)},
    )


def recording_status_url(call_sid: str, app: Flask | None = None) -> str:
    """Where Twilio says a voicemail's recording is ready (the voicemail is stored from it)."""
    return public_url("/twilio/voice/recording", app, call_sid=call_sid)


def transcription_url(call_sid: str, app: Flask | None = None) -> str:
    """Where Twilio sends a voicemail's transcript (``[voicemail] transcribe = true``)."""
    return public_url("/twilio/voice/transcription", app, call_sid=call_sid)


def after_conference_url(
    call_sid: str, kind: str, listener: Listener, app: Flask | None = None
) -> str:
    """Where the caller's conference ``<Dial>`` goes when the conference ends for them."""
    return public_url(
        "/twilio/voice/after-conference", app, call_sid=call_sid, kind=kind, **_listener(listener)
    )


def whisper_url(call_sid: str, kind: str, app: Flask | None = None) -> str:
    """What the person rung for ``call_sid`` hears on answering (who is calling, press 1)."""
    return public_url("/twilio/voice/whisper", app, call_sid=call_sid, kind=kind)


def accept_url(call_sid: str, kind: str, app: Flask | None = None) -> str:
    return public_url("/twilio/voice/whisper/accept", app, call_sid=call_sid, kind=kind)


def participant_url(call_sid: str, kind: str, app: Flask | None = None) -> str:
    """The status callback of the leg rung for ``call_sid``."""
    return public_url("/twilio/voice/participant", app, call_sid=call_sid, kind=kind)


def announce_url(action_id: int, listener: Listener, app: Flask | None = None) -> str:
    """The Warn's words, answered from the URL alone (no database on the call path)."""
    return public_url(f"/twilio/conference/announce/{action_id}", app, **_listener(listener))


def queue_url(
    what: str, call_sid: str, kind: str, listener: Listener, app: Flask | None = None
) -> str:
    """A TaskRouter-queued caller's callbacks: ``wait`` (hold words and the emergency offer),
    ``key`` (a key pressed while waiting) and ``result`` (the Enqueue's action)."""
    return public_url(
        f"/twilio/voice/queue/{what}", app, call_sid=call_sid, kind=kind, **_listener(listener)
    )
