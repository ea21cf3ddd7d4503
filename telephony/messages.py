"""Whole answers for the caller, in their language and pace: a message that ends the call (with
emergency repairs, "hear it again" once, the danger line), the team-busy message, the SPOC's
voicemail, goodbye. Used by the inbound webhook, the key-press webhook, the hold heartbeat and
the jobs, so each is said the same way wherever it comes from."""

from __future__ import annotations

from typing import Any

from flask import Flask

from restrictions.settings import Settings
from restrictions.speech import Listener, danger, say
from telephony import twiml
from telephony.urls import key_url, recording_status_url, transcription_url, voicemail_url

TEAM_BUSY = "team_busy"
ROUTE = "route"
VOICEMAIL = "voicemail"
SPOC_WAIT = "spoc_wait"
DIRECT = "direct"  # a key other than 1 before a direct dial: go on to the same dial


def ending(
    message: str,
    listener: Listener,
    settings: Settings,
    call_sid: str,
    *,
    source: str,
    replay: int = 0,
    app: Flask | None = None,
    **params: Any,
) -> str:
    """``message`` then the end of the call; a key other than 1 plays it once more (``source``
    says how to find it again: the caller's route, or the team-busy message)."""
    return twiml.message_then_end(
        say(message, listener, settings, **params),
        say("emergency_offer", listener, settings),
        say("replay_offer", listener, settings) if replay == 0 else None,
        danger(listener, settings),
        say("goodbye", listener, settings),
        key_url(call_sid, source, listener, app, replay=replay),
    )


def team_busy(listener: Listener, settings: Settings, call_sid: str, *, replay: int = 0) -> str:
    return ending("team_busy", listener, settings, call_sid, source=TEAM_BUSY, replay=replay)


def voicemail(listener: Listener, settings: Settings, call_sid: str, *, replay: int = 0) -> str:
    """The SPOC's voicemail: the emergency option first (once), then the recording."""
    return twiml.spoc_voicemail(
        say("spoc_unavailable", listener, settings),
        danger(listener, settings),
        say("goodbye", listener, settings),
        voicemail_url(call_sid, listener),
        key_url(call_sid, VOICEMAIL, listener, replay=replay) if replay == 0 else None,
        recording_status=recording_status_url(call_sid),
        transcribe_callback=transcription_url(call_sid) if settings.voicemail_transcribe else None,
    )


def goodbye(listener: Listener, settings: Settings) -> str:
    return twiml.goodbye(danger(listener, settings), say("goodbye", listener, settings))
