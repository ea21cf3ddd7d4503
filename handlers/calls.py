"""Jobs for inbound calls: write the call's row, ring the agent or SPOC into its conference,
move the caller on when the person rung does not answer, and record an emergency-repairs choice."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from flask import current_app

from handlers import job
from restrictions import cache, kinds
from restrictions.calls import claim_dial, get_or_create_call, record_call
from restrictions.destination import Destination
from restrictions.models import Call
from restrictions.speech import Listener, say
from telephony import messages, metrics, twilio_gateway, twiml, waiting
from telephony.config import current_settings
from telephony.database import session
from telephony.twilio_gateway import GatewayError
from telephony.urls import dial_result_url, key_url, participant_url, whisper_url

log = logging.getLogger("callguard.jobs.calls")


@job
def start_inbound_call(record: dict[str, Any]) -> None:
    """Record the call; then, for a call routed to a person, ring them into its conference.

    The dial-out is claimed in PostgreSQL first (``claim_dial``), so a retried or duplicated job
    never rings twice, and a job that runs late (the caller gone, moved on, or waiting longer
    than the ring time) rings nobody.
    """
    sess = session()
    call = record_call(sess, record)
    sess.commit()
    if record.get("dial"):
        dial_out(call)


def dial_out(call: Call) -> None:
    """Ring the person the call's route names into its conference, if this is the first try and
    still in time (``claim_dial``)."""
    sess = session()
    settings = current_settings()
    spoc = kinds.routes_to_person(call.route)
    ring = settings.spoc_ring_seconds if spoc else settings.agent_ring_seconds
    if not call.route_destination or not claim_dial(sess, call.call_sid, datetime.now(UTC), ring):
        sess.commit()
        metrics.dial_out("skipped")
        log.info("call %s: already dialled, over, or too late to ring anyone", call.call_sid)
        return
    sess.commit()
    destination = Destination.parse(call.route_destination)
    kind = waiting.SPOC if spoc else waiting.AGENT
    try:
        leg = twilio_gateway.ring_person(
            to=destination.address,
            from_=settings.caller_id,
            timeout=ring,
            whisper_url=whisper_url(call.call_sid, kind),
            status_callback=participant_url(call.call_sid, kind),
        )
    except GatewayError as exc:
        metrics.dial_out("refused" if exc.refused else "unconfirmed")
        if not exc.refused:  # Twilio may have rung them after all: never ring twice
            log.warning(
                "call %s: no answer from Twilio ringing %s (%s); the hold heartbeat takes over",
                call.call_sid,
                destination,
                exc,
            )
            return
        _connect_directly(call.call_sid, destination, ring, spoc, exc)
        return
    metrics.dial_out("rung", since=call.started_at)  # its delay from the inbound webhook
    call.agent_call_sid = leg
    call.agent_label = str(destination)
    sess.commit()


def _connect_directly(
    call_sid: str, destination: Destination, ring: int, spoc: bool, why: GatewayError
) -> None:
    """The dial-out failed: connect the caller straight to the destination instead (one line
    in the log, whatever happens)."""
    settings = current_settings()
    listener = Listener()
    kind = waiting.SPOC if spoc else waiting.AGENT  # a SPOC nobody answers: voicemail
    xml = twiml.direct_twiml(
        destination,
        say("unavailable", listener, settings),
        ring,
        offer=say("emergency_offer", listener, settings) if spoc else None,
        key_action=key_url(
            call_sid,
            messages.DIRECT,
            listener,
            to=str(destination),
            ring=str(ring),
            kind=kind,
        ),
        action=dial_result_url(call_sid, listener, kind=kind),
    )
    try:
        twilio_gateway.replace_call_twiml(call_sid, xml, "connect the caller")
    except GatewayError as again:
        log.warning(
            "call %s: could not dial %s (%s) nor connect the caller directly (%s); "
            "the hold heartbeat will move them on",
            call_sid,
            destination,
            why,
            again,
        )
        return
    log.warning("call %s: could not dial %s (%s); connected directly", call_sid, destination, why)


@job
def participant_unanswered(call_sid: str, kind: str, status: str) -> None:
    """The leg rung for the caller ended without them being put together (no answer, busy, a
    voicemail greeting or a person who did not press 1, or one who joined during the greeting
    and left): a SPOC's caller may leave a message (never the general line); anyone else's
    caller is told the team is busy, with emergency repairs offered."""
    sess = session()
    call = get_or_create_call(sess, call_sid)
    if call.ended_at is not None or call.moved_on_at is not None:
        return
    if call.answered_at is not None:
        return  # they were put together: the conference's end takes the caller on
    if call.emergency_selected_at is not None:
        return  # on the emergency line: stay there
    profile = cache.load_profile(sess, call.from_e164) if call.from_e164 else None
    sess.commit()
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if waiting.move_on(app, current_settings(), call_sid, kind, Listener.of(profile)):
        log.info("call %s: %s %s; caller moved on", call_sid, kind, status)


@job
def record_emergency_choice(call_sid: str, at: str) -> None:
    """Emergency repairs chosen: kept on the call's row; anyone still being rung for this caller
    is stopped."""
    sess = session()
    call = get_or_create_call(sess, call_sid)
    if call.emergency_selected_at is None:
        call.emergency_selected_at = datetime.fromisoformat(at)
    agent_leg = call.agent_call_sid if call.answered_at is None else None
    sess.commit()
    if agent_leg:
        waiting.cancel_leg(agent_leg)


@job
def record_voicemail(call_sid: str, recording_url: str) -> None:
    sess = session()
    call = get_or_create_call(sess, call_sid)
    call.voicemail_url = recording_url
    sess.commit()
