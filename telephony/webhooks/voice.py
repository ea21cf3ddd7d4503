"""Twilio voice webhooks: the inbound call, key presses during messages, the hold heartbeat of a
waiting caller, the dialled side's status, and the SPOC voicemail. All signed (the blueprint's
check) and all answering TwiML in the caller's language and pace."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from flask import Flask, Response, current_app, request
from sqlalchemy import update
from sqlalchemy.orm import Session

from restrictions import voicemails
from restrictions.db import Database
from restrictions.destination import Destination
from restrictions.errors import DomainError
from restrictions.events import EventRecord, store_record
from restrictions.models import Call, CallEvent
from restrictions.speech import danger, say
from telephony import callbacks, handover, inbound, messages, metrics, twiml, waiting
from telephony.config import current_settings
from telephony.database import database
from telephony.errors import json_error
from telephony.inputs import clean_form, is_sid, sid_for_log
from telephony.urls import (
    after_conference_url,
    conference_status_url,
    dial_result_url,
    emergency_result_url,
    hold_url,
    listener_from,
)
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
    started = time.perf_counter()
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        xml = inbound.answer(app, current_settings(), clean_form(request.form))
    except Exception:
        log.exception(
            "inbound call %s: answering the default route instead",
            sid_for_log(request.form.get("CallSid")),
        )
        xml = inbound.fallback(app, current_settings(), clean_form(request.form))
    metrics.inbound_latency(time.perf_counter() - started)
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
        if not handover.enqueue(
            handover.RECORD_EMERGENCY_CHOICE, call_sid, chosen_at, call_path=True
        ):
            inbound.record_emergency_now(app, call_sid, chosen_at)
        connecting = say("emergency_connecting", listener, settings)
        return twiml_response(
            twiml.emergency_dial(
                settings.emergency_line,
                connecting,
                settings.emergency_ring_seconds,
                action=emergency_result_url(call_sid, listener, 1),
            )
        )
    if source == messages.SPOC_WAIT:
        since, ring = _whole("since"), _whole("ring", settings.spoc_ring_seconds)
        wait = hold_url(call_sid, waiting.SPOC, since, ring, listener)
        after = after_conference_url(call_sid, waiting.SPOC, listener)
        return twiml_response(twiml.conference_only(call_sid, conference_status_url(), wait, after))
    if source == messages.DIRECT:
        try:
            onward = Destination.parse(request.args.get("to", ""))
        except DomainError:
            return twiml_response(messages.goodbye(listener, settings))
        ring = _whole("ring", settings.agent_ring_seconds)
        kind = waiting.SPOC if request.args.get("kind") == waiting.SPOC else waiting.AGENT
        result = dial_result_url(call_sid, listener, kind=kind)
        return twiml_response(
            twiml.direct_twiml(onward, say("unavailable", listener, settings), ring, action=result)
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
    leg = request.form.get("CallSid", "")
    if is_sid(leg) and status in LEG_STARTED:
        remember_leg(current_app._get_current_object(), call_sid, leg)  # type: ignore[attr-defined]
    if status in UNANSWERED or status == "completed":  # the job knows whether they talked
        handover.enqueue(
            handover.PARTICIPANT_UNANSWERED, call_sid, kind, status, job_id=f"unanswered-{call_sid}"
        )
    return Response(status=204)


LEG_STARTED = frozenset({"initiated", "ringing", "in-progress"})


def remember_leg(app: Flask, call_sid: str, leg: str) -> None:
    """Twilio's own word on the leg rung for this caller: kept on the call, so the leg can be
    stopped even if the worker that asked for it died before storing the answer."""

    def write(sess: Session) -> None:
        sess.execute(
            update(Call)
            .where(Call.call_sid == call_sid, Call.agent_call_sid.is_(None))
            .values(agent_call_sid=leg)
        )
        sess.commit()

    db = database(app)
    try:
        db.breakers["callbacks"].call(0.3, "callbacks", _in_session, db, write)
    except Exception as exc:
        log.warning("could not note the leg rung for call %s: %s", call_sid, exc)


def _in_session(db: Database, work: Callable[[Session], None]) -> None:
    with db.sessions() as sess:
        work(sess)


@bp.post("/voice/voicemail")
def voicemail() -> Response:
    """The ``<Record>`` ended: the caller is told only what is true. With a recording (a
    RecordingUrl and a RecordingDuration above 0) their message is recorded for the SPOC (the
    voicemail itself is stored from the recording status callback, ``/voice/recording``);
    without one, that no message was recorded. Then the danger line and goodbye."""
    call_sid = request.args.get("call_sid") or request.form.get("CallSid", "")
    url = request.form.get("RecordingUrl", "")
    duration = request.form.get("RecordingDuration", "")
    recorded = url.startswith("https://") and duration.isdigit() and int(duration[:9]) > 0
    if recorded and is_sid(call_sid):
        handover.enqueue(handover.RECORD_VOICEMAIL, call_sid, url[:500])
    listener = listener_from(request.args)
    settings = current_settings()
    words = "voicemail_thanks" if recorded else "voicemail_not_recorded"
    return twiml_response(
        twiml.spoken_then_hangup(
            say(words, listener, settings),
            danger(listener, settings),
            say("goodbye", listener, settings),
        )
    )


def _keep_voicemail_event(record: EventRecord) -> Response:
    """Store a recording or transcription callback and apply it to the voicemail in one
    transaction, under the callbacks' deadline (kept in Redis when PostgreSQL cannot take it,
    and applied when the sweep moves it across); 204, or 503 when neither could keep it."""

    def store_and_apply(sess: Session) -> None:
        stored = store_record(sess, record)
        if stored is None:  # a retry or a duplicate: stored once already
            return
        event = sess.get(CallEvent, stored)
        assert event is not None
        voicemails.apply_event(sess, event)

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        callbacks.keep(app, record, store_and_apply)
    except callbacks.NotKept:
        log.exception("%s callback for %s was not kept", record.source, record.resource_sid)
        return json_error("the callback could not be stored; try again", 503)
    return Response(status=204)


@bp.post("/voice/recording")
def recording() -> Response:
    """Twilio's recording status callback for a SPOC's voicemail: stored once per RecordingSid
    (only a ``completed`` recording becomes a voicemail); 400 for a RecordingSid or CallSid
    that is not one."""
    try:
        found = voicemails.recording_from(request.form, request.args.get("call_sid"))
    except DomainError as exc:
        return json_error(exc.message, 400)
    record = EventRecord(
        source=voicemails.RECORDING,
        resource_sid=found.recording_sid,
        call_sid=found.call_sid,
        sequence=0,
        event=found.status or "unknown",
        payload=request.form.to_dict(),
    )
    return _keep_voicemail_event(record)


@bp.post("/voice/transcription")
def transcription() -> Response:
    """Twilio's transcript of a voicemail (``[voicemail] transcribe = true``)."""
    recording_sid = request.form.get("RecordingSid", "")
    call_sid = request.form.get("CallSid") or request.args.get("call_sid", "")
    status = request.form.get("TranscriptionStatus", "")
    if not is_sid(recording_sid) or not recording_sid.startswith("RE"):
        return json_error("RecordingSid must be a Twilio RecordingSid", 400)
    if not is_sid(call_sid) or len(status) > 40:
        return json_error("CallSid must be a Twilio CallSid", 400)
    record = EventRecord(
        source=voicemails.TRANSCRIPTION,
        resource_sid=recording_sid,
        call_sid=call_sid,
        sequence=0,
        event=status or "unknown",
        payload=request.form.to_dict(),
    )
    return _keep_voicemail_event(record)
