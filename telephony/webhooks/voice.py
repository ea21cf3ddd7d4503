"""Twilio voice webhooks: the inbound call, key presses during messages, the hold heartbeat of a
waiting caller, the dialled side's status, and the SPOC voicemail. All signed (the blueprint's
check) and all answering TwiML in the caller's language and pace."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from flask import Response, current_app, request

from restrictions.destination import Destination
from restrictions.errors import DomainError
from restrictions.speech import danger, say
from telephony import current_settings, inbound, jobs, messages, twiml, waiting
from telephony.errors import json_error
from telephony.inputs import clean_form, is_sid
from telephony.urls import conference_status_url, hold_url, listener_from
from telephony.webhooks import bp

log = logging.getLogger("callguard.voice")
UNANSWERED = frozenset({"no-answer", "busy", "failed", "canceled"})


def twiml_response(xml: str) -> Response:
    return Response(xml, status=200, mimetype="text/xml")


def _whole(name: str, default: int = 0) -> int:
    value = request.args.get(name, "")
    return int(value) if value.isdigit() and len(value) < 12 else default


@bp.post("/voice/incoming")
def incoming() -> Response:
    """Route an inbound call. Never drop it: any failure answers the default route (logged)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        xml = inbound.answer(app, current_settings(), clean_form(request.form))
    except Exception:
        log.exception(
            "inbound call %s: answering the default route instead", request.form.get("CallSid", "?")
        )
        xml = inbound.fallback(app, current_settings(), clean_form(request.form))
    return twiml_response(xml)


@bp.post("/voice/emergency")
def key_pressed() -> Response:
    """A key during a message: 1 is emergency repairs, from anywhere; during the SPOC's greeting
    anything else goes on to the SPOC; during a message anything else plays it once more, then
    goodbye."""
    call_sid = request.args.get("call_sid") or request.form.get("CallSid", "")
    if not is_sid(call_sid):
        return json_error("call_sid must be a Twilio CallSid", 400)
    digits = request.form.get("Digits", "")
    source = request.args.get("msg", messages.ROUTE)
    replay = _whole("replay")
    listener = listener_from(request.args)
    settings = current_settings()
    if digits == "1":
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        waiting.hold_for_emergency(app, call_sid)
        chosen_at = datetime.now(UTC).isoformat()
        if not jobs.enqueue(jobs.RECORD_EMERGENCY_CHOICE, call_sid, chosen_at, call_path=True):
            inbound.record_emergency_now(app, call_sid, chosen_at)
        connecting = say("emergency_connecting", listener, settings)
        return twiml_response(twiml.emergency_dial(settings.emergency_line, connecting))
    if source == messages.SPOC_WAIT:
        since, ring = _whole("since"), _whole("ring", settings.spoc_ring_seconds)
        wait = hold_url(call_sid, waiting.SPOC, since, ring, listener)
        return twiml_response(twiml.conference_only(call_sid, conference_status_url(), wait))
    if source == messages.DIRECT:
        try:
            onward = Destination.parse(request.args.get("to", ""))
        except DomainError:
            return twiml_response(messages.goodbye(listener, settings))
        ring = _whole("ring", settings.agent_ring_seconds)
        return twiml_response(
            twiml.direct_twiml(onward, say("unavailable", listener, settings), ring)
        )
    if source == messages.VOICEMAIL:
        return twiml_response(messages.voicemail(listener, settings, call_sid, replay=1))
    if replay >= 1:
        return twiml_response(messages.goodbye(listener, settings))
    if source == messages.TEAM_BUSY:
        return twiml_response(messages.team_busy(listener, settings, call_sid, replay=1))
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        xml = inbound.replay(app, settings, request.form, call_sid)
    except Exception:
        log.exception("could not replay the message for call %s", call_sid)
        xml = messages.goodbye(listener, settings)
    return twiml_response(xml)


@bp.post("/voice/hold")
def hold() -> Response:
    """The waitUrl of a caller's conference: hold words and a heartbeat; moves them on in time."""
    call_sid = request.args.get("call_sid") or request.form.get("CallSid", "")
    kind = request.args.get("kind", waiting.AGENT)
    if not is_sid(call_sid) or kind not in (waiting.AGENT, waiting.SPOC) or not _whole("since"):
        return json_error("call_sid, kind (agent or spoc) and since are required", 400)
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    settings = current_settings()
    xml = waiting.heartbeat(
        app,
        settings,
        call_sid,
        kind,
        _whole("since"),
        _whole("ring", settings.agent_ring_seconds),
        listener_from(request.args),
        _whole("n"),
    )
    return twiml_response(xml)


@bp.post("/voice/participant")
def participant() -> Response:
    """Status of the agent or SPOC callguard dialled; if they do not answer, move the caller on."""
    call_sid = request.args.get("call_sid", "")
    kind = request.args.get("kind", waiting.AGENT)
    status = request.form.get("CallStatus", "")
    if not is_sid(call_sid):
        return json_error("call_sid must be a Twilio CallSid", 400)
    if status in UNANSWERED:
        jobs.enqueue(
            jobs.PARTICIPANT_UNANSWERED, call_sid, kind, status, job_id=f"unanswered-{call_sid}"
        )
    return Response(status=204)


@bp.post("/voice/voicemail")
def voicemail() -> Response:
    """A message left for the SPOC: keep the recording's address on the call."""
    call_sid = request.args.get("call_sid") or request.form.get("CallSid", "")
    url = request.form.get("RecordingUrl", "")
    if is_sid(call_sid) and url.startswith("https://"):
        jobs.enqueue(jobs.RECORD_VOICEMAIL, call_sid, url[:500])
    listener = listener_from(request.args)
    settings = current_settings()
    return twiml_response(
        twiml.spoken_then_hangup(
            say("voicemail_thanks", listener, settings),
            danger(listener, settings),
            say("goodbye", listener, settings),
        )
    )
