"""Twilio voice webhooks: the inbound call, the emergency key press, the dialled side's status,
and the SPOC voicemail. All signed (the blueprint's check) and all answering TwiML."""

from __future__ import annotations

import logging

from flask import Response, current_app, request

import prompts
from handlers import calls as call_jobs
from handlers import enqueue
from telephony import current_settings, inbound, twiml
from telephony.webhooks import bp

log = logging.getLogger("callguard.voice")


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
    conf = current_settings()
    if digits == "1":
        if call_sid and not enqueue(
            call_jobs.record_emergency_choice, call_sid, call_jobs.now_iso(), call_path=True
        ):
            log.error("call %s chose emergency repairs; could not record it", call_sid)
        connecting = prompts.speech("emergency_connecting", None, **conf.message_params())
        return twiml_response(twiml.emergency_dial(conf.emergency_line, connecting))
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    return twiml_response(twiml.redirect_to(inbound.public(app, "/twilio/voice/incoming")))


@bp.post("/voice/participant")
def participant() -> Response:
    """Status of the agent or SPOC callguard dialled; if they do not answer, move the caller on."""
    call_sid = request.args.get("call_sid", "")
    kind = request.args.get("kind", "agent")
    status = request.form.get("CallStatus", "")
    if call_sid and status in call_jobs.UNANSWERED:
        enqueue(
            call_jobs.participant_unanswered,
            call_sid,
            kind,
            status,
            job_id=f"unanswered-{call_sid}",
        )
    return Response(status=204)


@bp.post("/voice/voicemail")
def voicemail() -> Response:
    """A message left for the SPOC: keep the recording's address on the call."""
    call_sid = request.args.get("call_sid") or request.form.get("CallSid", "")
    url = request.form.get("RecordingUrl", "")
    if call_sid and url:
        enqueue(call_jobs.record_voicemail, call_sid, url)
    thanks = prompts.speech("voicemail_thanks", None)
    return twiml_response(twiml.spoken_then_hangup(thanks))
