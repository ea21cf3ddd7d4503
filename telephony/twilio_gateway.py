"""The only code that calls Twilio's REST API.

The client is built once per app from TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN and pointed at
TWILIO_API_BASE_URL (tests run a fake Twilio there). Every failure, a timeout or a 4xx/5xx,
becomes a GatewayError with a message an agent can read.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, current_app
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

log = logging.getLogger("callguard.twilio")

EXTENSION = "callguard.twilio"
REST_TIMEOUT_SECONDS = 5
FAST = "callguard.twilio.fast"
FAST_TIMEOUT_SECONDS = 2.0


class GatewayError(RuntimeError):
    """Twilio could not do what we asked; the message says why, for a person. ``refused`` is
    True when Twilio answered with an error (nothing was done); False when it did not answer in
    time (it may have done it)."""

    def __init__(self, message: str, *, refused: bool = False) -> None:
        super().__init__(message)
        self.refused = refused


def init_app(app: Flask) -> None:
    sid = app.config.get("TWILIO_ACCOUNT_SID")
    token = app.config.get("TWILIO_AUTH_TOKEN")
    if not sid or not token:
        app.extensions[EXTENSION] = None
        return
    timeout = float(app.config.get("TWILIO_REST_TIMEOUT_SECONDS", REST_TIMEOUT_SECONDS))
    for key, seconds in ((EXTENSION, timeout), (FAST, min(timeout, FAST_TIMEOUT_SECONDS))):
        client = Client(sid, token, http_client=TwilioHttpClient(timeout=seconds))
        client.api.base_url = app.config["TWILIO_API_BASE_URL"].rstrip("/")
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
            f"Twilio refused to {what} (HTTP {exc.status}: {exc.msg})", refused=True
        ) from exc
    except (TwilioException, OSError) as exc:
        log.debug("twilio unreachable for %s: %s", what, exc)
        raise GatewayError(f"Twilio did not answer in time to {what}") from exc
    except Exception as exc:  # requests' own errors are not OSError subclasses in every version
        if type(exc).__module__.startswith(("requests", "urllib3")):
            log.debug("twilio unreachable for %s: %s", what, exc)
            raise GatewayError(f"Twilio did not answer in time to {what}") from exc
        raise


def add_participant(
    conference: str,
    *,
    to: str,
    from_: str,
    label: str,
    timeout: int,
    status_callback: str,
    conference_status_callback: str,
    conference_events: list[str],
    beep: bool = False,
) -> str:
    """Ring ``to`` into the named conference; returns the new leg's CallSid.

    The leg carries the conference's status callback too: Twilio takes it from whoever joins
    first, and the person rung may well answer before the caller has finished hearing the
    greeting. The dialled side starts the conference and ends it when they leave.
    """
    participant = call_twilio(
        f"dial {to} into the call",
        client().conferences(conference).participants.create,
        from_=from_,
        to=to,
        label=label,
        timeout=timeout,
        early_media=True,
        beep="true" if beep else "false",
        start_conference_on_enter=True,
        end_conference_on_exit=True,
        status_callback=status_callback,
        status_callback_method="POST",
        status_callback_event=["initiated", "ringing", "answered", "completed"],
        conference_status_callback=conference_status_callback,
        conference_status_callback_method="POST",
        conference_status_callback_event=conference_events,
    )
    return str(participant.call_sid)


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
