"""Jobs for inbound calls: write the call's row, dial the agent or SPOC into its conference,
react when the dialled side does not answer, and record an emergency-repairs choice."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from handlers import job
from restrictions import cache
from restrictions.calls import get_or_create_call, record_call
from restrictions.destination import Destination
from restrictions.speech import Listener, say
from telephony import current_settings, twilio_gateway, twiml
from telephony.database import session
from telephony.twilio_gateway import GatewayError
from telephony.urls import callback_urls, public_url

log = logging.getLogger("callguard.jobs.calls")


@job
def start_inbound_call(record: dict[str, Any]) -> None:
    """Record the call; then, for a call routed to a person, dial them into its conference.

    Idempotent on CallSid: a retried job rewrites the same row and does not dial twice.
    """
    sess = session()
    call = record_call(sess, record)
    already_dialled = call.agent_call_sid is not None
    sess.commit()
    if not record.get("dial") or already_dialled:
        return
    settings = current_settings()
    destination = Destination.parse(record["route_destination"])
    kind = "spoc" if record["route"] == "spoc" else "agent"
    ring = settings.spoc_ring_seconds if kind == "spoc" else settings.agent_ring_seconds
    try:
        participant = twilio_gateway.add_participant(
            twiml.conference_name(call.call_sid),
            to=destination.address,
            from_=settings.caller_id,
            label="agent",
            timeout=ring,
            status_callback=public_url(
                "/twilio/voice/participant", call_sid=call.call_sid, kind=kind
            ),
        )
    except GatewayError as exc:
        log.warning(
            "could not dial %s for call %s (%s); connecting the caller directly",
            destination,
            call.call_sid,
            exc,
        )
        greeting = say("unavailable", Listener(), settings)
        try:
            twilio_gateway.replace_call_twiml(
                call.call_sid,
                twiml.direct_twiml(destination, greeting, ring),
                "connect the caller",
            )
        except GatewayError as again:
            log.warning("could not connect call %s directly either: %s", call.call_sid, again)
        return
    call.agent_call_sid = participant
    call.agent_label = str(destination)
    sess.commit()


@job
def participant_unanswered(call_sid: str, kind: str, status: str) -> None:
    """The dialled side did not answer: a SPOC's caller may leave a message (never the general
    line); anyone else's caller is told the team is busy, with emergency repairs offered."""
    settings = current_settings()
    sess = session()
    call = get_or_create_call(sess, call_sid)
    if call.ended_at is not None:
        return
    profile = cache.load_profile(sess, call.from_e164) if call.from_e164 else None
    listener = Listener.of(profile)
    urls = callback_urls(call_sid)
    if kind == "spoc":
        xml = twiml.spoc_voicemail(
            say("spoc_unavailable", listener, settings), say("goodbye", listener, settings), urls
        )
    else:
        xml = twiml.message_then_end(
            say("team_busy", listener, settings),
            say("emergency_offer", listener, settings),
            say("goodbye", listener, settings),
            urls,
        )
    log.info("call %s: %s %s; caller moved on", call_sid, kind, status)
    twilio_gateway.replace_call_twiml(call_sid, xml, "play the caller a message")


@job
def record_emergency_choice(call_sid: str, at: str) -> None:
    """Emergency repairs chosen: kept on the call's row (the choice is recorded)."""
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
