"""The only code that calls Twilio's REST API.

The client is built once per app from TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN and pointed at
TWILIO_API_BASE_URL (tests run a fake Twilio there). Every failure, a timeout or a 4xx/5xx,
becomes a GatewayError with a message an agent can read.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

log = logging.getLogger("callguard.twilio")

EXTENSION = "callguard.twilio"
FAST = "callguard.twilio.fast"
FAST_TIMEOUT_SECONDS = 2.0


class GatewayError(RuntimeError):
    """Twilio could not do what we asked; the message says why, for a person. ``refused`` is
    True when Twilio answered with an error (nothing was done); False when it did not answer in
    time (it may have done it)."""

    def __init__(self, message: str, *, refused: bool = False, code: int | None = None) -> None:
        super().__init__(message)
        self.refused = refused
        self.code = code  # Twilio's error code, when it gave one (21220: the call is over)


CALL_NOT_IN_PROGRESS = 21220  # Twilio: the call was not in progress (it has ended)
NOT_FOUND = 20404


def init_app(app: Flask) -> None:
    sid = app.config.get("TWILIO_ACCOUNT_SID")
    token = app.config.get("TWILIO_AUTH_TOKEN")
    if not sid or not token:
        app.extensions[EXTENSION] = None
        return
    timeout = float(app.config["TWILIO_REST_TIMEOUT_SECONDS"])
    for key, seconds in ((EXTENSION, timeout), (FAST, min(timeout, FAST_TIMEOUT_SECONDS))):
        client = Client(sid, token, http_client=TwilioHttpClient(timeout=seconds))
        client.api.base_url = app.config["TWILIO_API_BASE_URL"].rstrip("/")
        client.taskrouter.base_url = client.api.base_url  # taskrouter.twilio.com; tests: the fake
        app.extensions[key] = client


def client(*, fast: bool = False) -> Client:
    """The REST client; ``fast`` for a request Twilio itself is waiting on (the hold heartbeat):
    a short timeout, so the caller never hears a long silence."""
    c: Client | None = current_app.extensions.get(FAST if fast else EXTENSION)
    if c is None:
        raise GatewayError(
            "Twilio is not configured (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN)", refused=True
        )
    return c


def call_twilio(what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run one REST call, turning Twilio's and the network's failures into GatewayError."""
    try:
        return fn(*args, **kwargs)
    except TwilioRestException as exc:
        log.debug("twilio refused %s: %s %s", what, exc.status, exc.msg)
        raise GatewayError(
            f"Twilio refused to {what} (HTTP {exc.status}: {exc.msg})",
            refused=True,
            code=exc.code if isinstance(exc.code, int) else None,
        ) from exc
    except (TwilioException, OSError) as exc:
        log.debug("twilio unreachable for %s: %s", what, exc)
        raise GatewayError(f"Twilio did not answer in time to {what}") from exc
    except Exception as exc:  # requests' own errors are not OSError subclasses in every version
        if type(exc).__module__.startswith(("requests", "urllib3")):
            log.debug("twilio unreachable for %s: %s", what, exc)
            raise GatewayError(f"Twilio did not answer in time to {what}") from exc
        raise


def ring_person(
    *,
    to: str,
    from_: str,
    timeout: int,
    whisper_url: str,
    status_callback: str,
) -> str:
    """Ring the agent or SPOC for a waiting caller; returns the new leg's CallSid.

    When they answer, Twilio fetches ``whisper_url``: they hear who is calling and join the
    caller's conference only by pressing 1, so a voicemail greeting or a person who does not
    accept never reaches the caller (nor uses their weekly allowance).
    """
    call = call_twilio(
        f"ring {to} for the caller",
        client().calls.create,
        to=to,
        from_=from_,
        url=whisper_url,
        method="POST",
        timeout=timeout,
        status_callback=status_callback,
        status_callback_method="POST",
        status_callback_event=["initiated", "ringing", "answered", "completed"],
    )
    return str(call.sid)


def end_leg(call_sid: str, *, fast: bool = False) -> None:
    """Stop a leg rung for a caller who no longer needs it, whatever state it is in: ``canceled``
    while it rings, ``completed`` once answered (the person is hearing the whisper). Twilio
    refuses whichever does not apply; only a failure of both is an error."""
    try:
        call_twilio("stop ringing", client(fast=fast).calls(call_sid).update, status="canceled")
    except GatewayError as first:
        try:
            hang_up(call_sid, fast=fast)
        except GatewayError as exc:
            if not (first.refused and exc.refused):
                raise
            log.debug("leg %s had ended already: %s", call_sid, exc)
        return
    try:
        hang_up(call_sid, fast=fast)  # canceling an answered leg does nothing: hang it up too
    except GatewayError as exc:
        if not exc.refused:
            raise


def hang_up(call_sid: str, *, fast: bool = False) -> None:
    call_twilio("hang up", client(fast=fast).calls(call_sid).update, status="completed")


def cancel_call(call_sid: str, *, fast: bool = False) -> None:
    """Stop a leg that is still ringing (``canceled``; a leg already answered is left alone)."""
    call_twilio("stop ringing", client(fast=fast).calls(call_sid).update, status="canceled")


def replace_call_twiml(call_sid: str, twiml: str, what: str, *, fast: bool = False) -> None:
    """Make a live call do something else now (this takes it out of its conference)."""
    call_twilio(what, client(fast=fast).calls(call_sid).update, twiml=twiml)


def announce_to_conference(conference_sid: str, announce_url: str) -> None:
    """Play TwiML fetched from ``announce_url`` to everyone in the conference (Warn)."""
    call_twilio(
        "play the warning into the call",
        client().conferences(conference_sid).update,
        announce_url=announce_url,
        announce_method="POST",
    )


def end_conference(conference_sid: str) -> None:
    """Close the conference, which frees the agent once the caller has been taken out (End)."""
    call_twilio("free the agent", client().conferences(conference_sid).update, status="completed")


@dataclass(frozen=True)
class RecordingAudio:
    """A recording's audio as Twilio streams it: its bytes in chunks, and how many there are
    (when Twilio says)."""

    chunks: Iterator[bytes]
    content_length: str | None


def recording_media_url(recording_sid: str) -> str:
    """The recording's mp3 on Twilio's REST API (TWILIO_API_BASE_URL, never the callback's
    RecordingUrl host)."""
    base = current_app.config["TWILIO_API_BASE_URL"].rstrip("/")
    account = current_app.config.get("TWILIO_ACCOUNT_SID") or ""
    return f"{base}/2010-04-01/Accounts/{account}/Recordings/{recording_sid}.mp3"


def recording_audio(recording_sid: str) -> RecordingAudio:
    """Fetch a voicemail's mp3 with the account's credentials, streamed chunk by chunk."""
    http = client().http_client
    session = getattr(http, "session", None)
    if session is None:
        raise GatewayError("Twilio's HTTP client keeps no session to fetch the recording")
    timeout = float(current_app.config["TWILIO_REST_TIMEOUT_SECONDS"])
    auth = (current_app.config["TWILIO_ACCOUNT_SID"], current_app.config["TWILIO_AUTH_TOKEN"])
    answer = call_twilio(
        "fetch the recording",
        session.get,
        recording_media_url(recording_sid),
        auth=auth,
        stream=True,
        timeout=timeout,
    )
    if answer.status_code >= 400:
        answer.close()
        raise GatewayError(
            f"Twilio refused to fetch the recording (HTTP {answer.status_code})", refused=True
        )

    def chunks() -> Iterator[bytes]:
        try:
            yield from answer.iter_content(chunk_size=64 * 1024)
        finally:
            answer.close()

    return RecordingAudio(chunks(), answer.headers.get("Content-Length"))


def delete_recording(recording_sid: str) -> bool:
    """Delete Twilio's copy of a recording. True when it was deleted now; False when Twilio had
    no such recording (404: gone already, which counts as deleted too)."""

    def delete() -> bool:
        try:
            client().recordings(recording_sid).delete()
        except TwilioRestException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    deleted: bool = call_twilio("delete the recording", delete)
    return deleted


# --- the number's and the TaskRouter workspace's callback URLs (`callguard twilio configure`) ---


def find_number(e164: str) -> Any | None:
    """The account's IncomingPhoneNumber whose number is exactly ``e164``, or None. Twilio's
    ``PhoneNumber`` filter also matches partial numbers, so only an exact match counts."""
    numbers = call_twilio(
        f"look up the number {e164}",
        client().incoming_phone_numbers.list,
        phone_number=e164,
        limit=50,
    )
    return next((n for n in numbers if n.phone_number == e164), None)


def update_number(sid: str, **fields: str) -> Any:
    """Set an IncomingPhoneNumber's fields (the library's names: ``voice_url``, ``voice_method``,
    ``voice_fallback_url``, ``voice_fallback_method``, ``status_callback``,
    ``status_callback_method``)."""
    return call_twilio(
        "update the phone number", client().incoming_phone_numbers(sid).update, **fields
    )


def workspace(sid: str) -> Any:
    """The TaskRouter workspace (its ``event_callback_url``, ``events_filter``)."""
    return call_twilio(
        "fetch the TaskRouter workspace", client().taskrouter.v1.workspaces(sid).fetch
    )


def update_workspace(sid: str, **fields: str) -> Any:
    """Set a TaskRouter workspace's fields (``event_callback_url``, ``events_filter``)."""
    return call_twilio(
        "update the TaskRouter workspace", client().taskrouter.v1.workspaces(sid).update, **fields
    )
