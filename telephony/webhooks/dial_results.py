"""Where a <Dial> callguard returned goes when it ends: no caller is left at a dead end.

Twilio requests a <Dial>'s ``action`` when the person dialled hangs up or never answers, with
``DialCallStatus`` (completed, answered, busy, no-answer, failed, canceled), ``DialCallSid`` and
``DialCallDuration``. A dial that reached someone just ends the call. One that did not goes on,
in the caller's language and pace: after the emergency repairs line, to its backup (once, when
there is one), else how else to report an emergency repair and the danger line; after a direct
dial, to the team-busy message (with emergency repairs), or a SPOC's caller to voicemail.
"""

from __future__ import annotations

import logging

from flask import Response, request

from restrictions.speech import danger, say
from telephony import messages, twiml, waiting
from telephony.config import current_settings
from telephony.inputs import is_sid
from telephony.urls import emergency_result_url, listener_from
from telephony.webhooks import bp
from telephony.webhooks.voice import twiml_response

log = logging.getLogger("callguard.dial_results")

REACHED = frozenset({"completed", "answered"})  # anything else: nobody was reached


def _call_sid() -> str:
    """The caller's CallSid from our URL, else Twilio's form; "" when neither is one."""
    for value in (request.args.get("call_sid", ""), request.form.get("CallSid", "")):
        if is_sid(value):
            return value
    return ""


def _hangup() -> Response:
    return twiml_response(twiml.spoken_then_hangup())


@bp.post("/voice/emergency-result")
def emergency_result() -> Response:
    """The emergency repairs line (``try=1``) or its backup (``try=2``) finished ringing."""
    status = request.form.get("DialCallStatus", "")
    if status in REACHED:
        return _hangup()
    call_sid = _call_sid()
    listener = listener_from(request.args)
    settings = current_settings()
    attempt = request.args.get("try", "1")
    if attempt == "1" and settings.emergency_backup:
        log.warning(
            "call %s: the emergency repairs line did not answer (%s); ringing the backup",
            call_sid or "?",
            status or "no status",
        )
        return twiml_response(
            twiml.emergency_dial(
                settings.emergency_backup,
                say("emergency_backup_connecting", listener, settings),
                settings.emergency_ring_seconds,
                action=emergency_result_url(call_sid, listener, 2),
            )
        )
    log.error(
        "call %s: could not reach emergency repairs (try %s: %s); the caller was told how "
        "else to report it",
        call_sid or "?",
        attempt[:2],
        status or "no status",
    )
    return twiml_response(
        twiml.spoken_then_hangup(
            say("emergency_unreachable", listener, settings),
            danger(listener, settings),
            say("goodbye", listener, settings),
        )
    )


@bp.post("/voice/dial-result")
def dial_result() -> Response:
    """A direct connection finished ringing: nobody answered means the team-busy message (with
    emergency repairs and the danger line), or for a SPOC's caller their voicemail."""
    status = request.form.get("DialCallStatus", "")
    if status in REACHED:
        return _hangup()
    call_sid = _call_sid()
    listener = listener_from(request.args)
    settings = current_settings()
    log.info("call %s: nobody answered the direct dial (%s)", call_sid or "?", status or "?")
    if request.args.get("kind") == waiting.SPOC:
        return twiml_response(messages.voicemail(listener, settings, call_sid))
    return twiml_response(messages.team_busy(listener, settings, call_sid))
