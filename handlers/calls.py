"""Jobs for inbound calls: write the call's row, dial the agent or SPOC into its conference,
react when the dialled side does not answer, and record an emergency-repairs choice."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from flask import current_app
from sqlalchemy.orm import Session

import prompts
from handlers import job
from restrictions.calls import get_or_create_call
from restrictions.db import Database, session
from restrictions.models import Call
from telephony import twilio_gateway, twiml
from telephony.twilio_gateway import GatewayError

log = logging.getLogger("callguard.jobs.calls")

ROW_FIELDS = (
    "from_number",
    "from_e164",
    "to_number",
    "caller_name",
    "customer_id",
    "identified",
    "route",
    "route_destination",
    "restriction_id",
    "flags",
    "fallback",
    "conference_name",
)
UNANSWERED = frozenset({"no-answer", "busy", "failed", "canceled"})


def _apply(sess: Session, record: dict[str, Any]) -> Call:
    call = get_or_create_call(
        sess, record["call_sid"], started_at=datetime.fromisoformat(record["started_at"])
    )
    for name in ROW_FIELDS:
        setattr(call, name, record.get(name))
    call.started_at = min(call.started_at, datetime.fromisoformat(record["started_at"]))
    return call


def write_call_row(db: Database, record: dict[str, Any]) -> None:
    """Write the call's row in a session of its own (used when the queue is unavailable)."""
    with db.sessions() as sess:
        _apply(sess, record)
        sess.commit()


def _public(path: str, **query: str) -> str:
    base: str = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    return base + path + (f"?{urlencode(query)}" if query else "")


@job
def start_inbound_call(record: dict[str, Any]) -> None:
    """Record the call; then, for a call routed to a person, dial them into its conference.

    Idempotent on CallSid: a retried job rewrites the same row and does not dial twice.
    """
    from telephony import current_settings

    sess = session()
    call = _apply(sess, record)
    already_dialled = call.agent_call_sid is not None
    sess.commit()
    if not record.get("dial") or already_dialled:
        return
    settings = current_settings()
    destination: str = record["route_destination"]
    scheme, _, target = destination.partition(":")
    to = target if scheme == "dial" else destination  # client:<name> is dialled as is
    kind = "spoc" if record["route"] == "spoc" else "agent"
    ring = settings.spoc_ring_seconds if kind == "spoc" else settings.agent_ring_seconds
    try:
        participant = twilio_gateway.add_participant(
            twiml.conference_name(call.call_sid),
            to=to,
            from_=settings.caller_id,
            label="agent",
            timeout=ring,
            status_callback=_public("/twilio/voice/participant", call_sid=call.call_sid, kind=kind),
        )
    except GatewayError:
        log.exception(
            "could not dial %s for call %s; connecting the caller directly",
            destination,
            call.call_sid,
        )
        greeting = prompts.speech("unavailable", None, **settings.message_params())
        twilio_gateway.replace_call_twiml(
            call.call_sid, twiml.direct_twiml(destination, greeting, ring), "connect the caller"
        )
        return
    call.agent_call_sid = participant
    call.agent_label = destination
    sess.commit()


@job
def participant_unanswered(call_sid: str, kind: str, status: str) -> None:
    """The dialled side did not answer: a SPOC's caller may leave a message (never the general
    line); anyone else's caller is told the team is busy, with emergency repairs offered."""
    from restrictions import cache
    from telephony import current_settings

    settings = current_settings()
    sess = session()
    call = get_or_create_call(sess, call_sid)
    if call.ended_at is not None:
        return
    profile = None
    if call.from_e164:
        profile = cache.load_profile(sess, call.from_e164)
    language = profile.language if profile else None
    slow = profile.slow_speech if profile else False
    params = settings.message_params()

    def say(key: str) -> prompts.Speech:
        return prompts.speech(key, language, slow=slow, **params)

    urls = twiml.CallbackUrls(
        emergency_gather=_public("/twilio/voice/emergency", call_sid=call_sid),
        conference_status=_public("/twilio/conference/events"),
        voicemail=_public("/twilio/voice/voicemail", call_sid=call_sid),
    )
    if kind == "spoc":
        xml = twiml.spoc_voicemail(say("spoc_unavailable"), say("goodbye"), urls)
    else:
        xml = twiml.message_then_end(say("team_busy"), say("emergency_offer"), say("goodbye"), urls)
    log.info("call %s: %s %s; caller moved on", call_sid, kind, status)
    twilio_gateway.replace_call_twiml(call_sid, xml, "play the caller a message")


@job
def record_emergency_choice(call_sid: str, at: str) -> None:
    """Emergency repairs chosen: kept on the call's row (DESIGN: the choice is recorded)."""
    sess = session()
    call = get_or_create_call(sess, call_sid)
    if call.emergency_selected_at is None:
        call.emergency_selected_at = datetime.fromisoformat(at)
    sess.commit()


@job
def record_voicemail(call_sid: str, recording_url: str) -> None:
    sess = session()
    call = get_or_create_call(sess, call_sid)
    call.voicemail_url = recording_url
    sess.commit()


def now_iso() -> str:
    return datetime.now(UTC).isoformat()
