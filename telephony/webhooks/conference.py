"""Conference events (who is on each call) and the announcement TwiML for Warn."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from flask import Response, current_app, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from restrictions import counting
from restrictions.calls import apply_conference_record
from restrictions.errors import DomainError
from restrictions.events import EventRecord, sid, store_record, whole
from restrictions.models import Call, CallEvent
from restrictions.resilience import fail_open
from restrictions.speech import say
from telephony import callbacks, metrics, twiml, waiting
from telephony.config import current_settings
from telephony.errors import json_error
from telephony.inputs import is_sid
from telephony.redis_store import redis_client
from telephony.urls import listener_from
from telephony.webhooks import bp

log = logging.getLogger("callguard.conference")


@bp.post("/conference/events")
def conference_events() -> Response:
    """Stored and applied in one transaction, so the agent console is fresh within a second (or
    kept in Redis while PostgreSQL cannot take it, and applied when it is moved across).

    A conference callguard did not create (Flex's, named after its task) is stored too, and used
    only when it is a known call's (restrictions.calls.conference_call)."""
    form = request.form
    name = form.get("FriendlyName", "")
    caller_sid = twiml.call_sid_of_conference(name)
    conference_sid = form.get("ConferenceSid", "")
    event = form.get("StatusCallbackEvent", "")
    ours = name.startswith(twiml.CONFERENCE_PREFIX)
    if (ours and not is_sid(caller_sid)) or not conference_sid or not event:
        return json_error(
            "FriendlyName (cg-<CallSid>, or another's), ConferenceSid and StatusCallbackEvent"
            " are required",
            400,
        )
    try:
        sequence = whole(form.get("SequenceNumber"), "SequenceNumber") or 0
        participant = sid(form.get("CallSid"), "CallSid", required=False)
        sid(conference_sid, "ConferenceSid")
    except DomainError as exc:
        return json_error(exc.message, 400)
    if len(event) > 40:
        return json_error("StatusCallbackEvent is not a Twilio conference event", 400)
    record = EventRecord(
        source="conference",
        resource_sid=conference_sid,
        call_sid=participant,
        sequence=sequence,
        event=event,
        payload=form.to_dict(),
    )

    def store_and_apply(sess: Session) -> tuple[str | None, str | None]:
        stored = store_record(sess, record)
        if stored is None:  # a retry of an event already applied changes nothing
            return None, None
        row = sess.get(CallEvent, stored)
        assert row is not None
        reached = apply_conference_record(sess, row)
        if not ours:  # nobody callguard rang is in another's conference
            return reached, None
        call = sess.scalar(select(Call).where(Call.call_sid == caller_sid))
        return reached, leg_left_ringing(call, event, participant)

    def then(applied: tuple[str | None, str | None]) -> None:
        """What follows from an event stored and applied (whenever its commit came)."""
        metrics.event_processed(record.source)
        reached, ringing = applied
        if reached:  # the caller's CallSid: a person has just joined them
            use_allowance(reached)
        if ringing:
            waiting.cancel_leg(ringing, fast=True)

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        callbacks.keep(app, record, store_and_apply, then)
    except callbacks.NotKept:
        log.exception("conference event %s for %s was not kept", event, name)
        return json_error("the event could not be stored; try again", 503)
    return Response(status=204)


def leg_left_ringing(call: Call | None, event: str, participant: str | None) -> str | None:
    """The leg still being rung (or hearing the whisper) for a caller who has just left their
    conference: it must stop, or it rings a person for nobody."""
    if call is None or participant != call.call_sid or event != "participant-leave":
        return None
    if call.answered_at is not None or call.person_present_since is not None:
        return None  # they were together: the caller leaving ends the conference for both
    return call.agent_call_sid


@fail_open(default=None)
def use_allowance(call_sid: str) -> None:
    """A person answered: only now does the call use a weekly allowance (PostgreSQL's answered
    calls are the backstop when Redis is down)."""
    counting.use_allowance(redis_client(), call_sid, datetime.now(UTC))


@bp.post("/conference/announce/<id:action_id>")
def announce(action_id: int) -> Response:
    """What Twilio plays into the conference for an agent's Warn, in the caller's language and
    pace: all of it from the URL we gave Twilio (signed), so it plays while PostgreSQL stalls."""
    speech = say("warning", listener_from(request.args), current_settings())
    return Response(twiml.announcement(speech), mimetype="text/xml")
