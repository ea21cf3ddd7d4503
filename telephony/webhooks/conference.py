"""Conference events (who is on each call) and the announcement TwiML for Warn."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from flask import Response, abort, request
from sqlalchemy.exc import SQLAlchemyError

from restrictions import counting
from restrictions.calls import apply_conference_event, get_or_create_call
from restrictions.errors import DomainError
from restrictions.events import sid, store, whole
from restrictions.models import AgentAction, CallEvent
from restrictions.resilience import fail_open
from telephony import twiml
from telephony.database import session
from telephony.errors import json_error
from telephony.inputs import is_sid
from telephony.live import speech_for
from telephony.redis_store import redis_client
from telephony.webhooks import bp

log = logging.getLogger("callguard.conference")


@bp.post("/conference/events")
def conference_events() -> Response:
    """Stored and applied in one transaction, so the agent console is fresh within a second."""
    form = request.form
    name = form.get("FriendlyName", "")
    caller_sid = twiml.call_sid_of_conference(name)
    conference_sid = form.get("ConferenceSid", "")
    event = form.get("StatusCallbackEvent", "")
    if caller_sid is None or not is_sid(caller_sid) or not conference_sid or not event:
        return json_error(
            "FriendlyName (cg-<CallSid>), ConferenceSid and StatusCallbackEvent are required", 400
        )
    try:
        sequence = whole(form.get("SequenceNumber"), "SequenceNumber") or 0
        participant = sid(form.get("CallSid"), "CallSid", required=False)
        sid(conference_sid, "ConferenceSid")
    except DomainError as exc:
        return json_error(exc.message, 400)
    if len(event) > 40:
        return json_error("StatusCallbackEvent is not a Twilio conference event", 400)
    reached_person: tuple[str, datetime] | None = None
    sess = session()
    try:
        stored = store(
            sess,
            source="conference",
            resource_sid=conference_sid,
            call_sid=participant,
            sequence=sequence,
            event=event,
            payload=form.to_dict(),
        )
        if stored is not None:  # a retry of an event already applied changes nothing
            call = get_or_create_call(sess, caller_sid, conference_name=name)
            now = datetime.now(UTC)
            answered_before = call.answered_at is not None
            apply_conference_event(call, event, conference_sid, participant, now)
            if not answered_before and call.answered_at is not None:
                reached_person = (call.call_sid, call.started_at)
            row = sess.get(CallEvent, stored)
            if row is not None:
                row.processed_at = now
        sess.commit()
    except SQLAlchemyError:
        sess.rollback()
        log.exception("could not store conference event %s for %s", event, name)
        return json_error("the event could not be stored; try again", 503)
    if reached_person is not None:
        _use_allowance(*reached_person)
    return Response(status=204)


@fail_open(default=None)
def _use_allowance(call_sid: str, started_at: datetime) -> None:
    """A person answered: only now does the call use a weekly allowance (PostgreSQL's answered
    calls are the backstop when Redis is down)."""
    counting.use_allowance(redis_client(), call_sid, started_at)


@bp.post("/conference/announce/<id:action_id>")
def announce(action_id: int) -> Response:
    """What Twilio plays into the conference for an agent's Warn, in the caller's language."""
    action = session().get(AgentAction, action_id)
    if action is None:
        abort(404)
    return Response(twiml.announcement(speech_for(action.call, "warning")), mimetype="text/xml")
