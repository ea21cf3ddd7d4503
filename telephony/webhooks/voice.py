"""Twilio voice webhooks: the inbound call, the emergency key press, the dialled side's status,
and the SPOC voicemail. All signed (the blueprint's check) and all answering TwiML."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from flask import Response, current_app, request

from restrictions.speech import Listener, say
from telephony import current_settings, inbound, jobs, twiml
from telephony.urls import public_url
from telephony.webhooks import bp

log = logging.getLogger("callguard.voice")
UNANSWERED = frozenset({"no-answer", "busy", "failed", "canceled"})


def twiml_response(xml: str) -> Response:
    return Response(xml, status=200, mimetype="text/xml")


@bp.post("/voice/incoming")
def incoming() -> Response:
    """Route an inbound call. Never drop it: any failure answers the default route (logged)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        xml = inbound.answer(app, current_settings(), request.form)
    except Exception:
        log.exception(
            "inbound call %s: answering the default route instead", request.form.get("CallSid", "?")
        )
        xml = inbound.fallback(app, current_settings(), request.form)
    return twiml_response(xml)


@bp.post("/voice/emergency")
def emergency() -> Response:
    """The caller's key press during a message: 1 is emergency repairs, anything else replays."""
    call_sid = request.args.get("call_sid") or request.form.get("CallSid", "")
    digits = request.form.get("Digits", "")
    settings = current_settings()
    if digits == "1":
        chosen_at = datetime.now(UTC).isoformat()
        if call_sid and not jobs.enqueue(
            jobs.RECORD_EMERGENCY_CHOICE, call_sid, chosen_at, call_path=True
        ):
            log.error("call %s chose emergency repairs; could not record it", call_sid)
        connecting = say("emergency_connecting", Listener(), settings)
        return twiml_response(twiml.emergency_dial(settings.emergency_line, connecting))
    return twiml_response(twiml.redirect_to(public_url("/twilio/voice/incoming")))


@bp.post("/voice/participant")
def participant() -> Response:
    """Status of the agent or SPOC callguard dialled; if they do not answer, move the caller on."""
    call_sid = request.args.get("call_sid", "")
    kind = request.args.get("kind", "agent")
    status = request.form.get("CallStatus", "")
    if call_sid and status in UNANSWERED:
        jobs.enqueue(
            jobs.PARTICIPANT_UNANSWERED, call_sid, kind, status, job_id=f"unanswered-{call_sid}"
        )
    return Response(status=204)


@bp.post("/voice/voicemail")
def voicemail() -> Response:
    """A message left for the SPOC: keep the recording's address on the call."""
    call_sid = request.args.get("call_sid") or request.form.get("CallSid", "")
    url = request.form.get("RecordingUrl", "")
    if call_sid and url:
        jobs.enqueue(jobs.RECORD_VOICEMAIL, call_sid, url)
    thanks = say("voicemail_thanks", Listener(), current_settings())
    return twiml_response(twiml.spoken_then_hangup(thanks))
