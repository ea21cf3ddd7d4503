"""Conference events (who is on each call) and the announcement TwiML for Warn."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from flask import Response, abort, jsonify, request
from sqlalchemy.exc import SQLAlchemyError

from restrictions.calls import get_or_create_call
from restrictions.db import session
from restrictions.events import store
from restrictions.models import AgentAction, Call, CallEvent
from telephony import twiml
from telephony.live import speech_for
from telephony.webhooks import bp

log = logging.getLogger("callguard.conference")
PREFIX = "cg-"


def apply_event(
    call: Call,
    event: str,
    conference_sid: str,
    participant: str | None,
    at: datetime,
) -> None:
    """Move the call's live state: the conference exists, an agent joined, the caller left."""
    call.conference_sid = call.conference_sid or conference_sid
    is_caller = participant == call.call_sid
    if event == "participant-join" and participant and not is_caller:
        call.agent_call_sid = participant
        if call.answered_at is None:
            call.answered_at = at
        if call.ended_at is None:
            call.status = "in-progress"
    elif (event == "participant-leave" and is_caller) or event == "conference-end":
        if call.ended_at is None:
            call.ended_at = at


@bp.post("/conference/events")
def conference_events() -> Response:
    form = request.form
    name = form.get("FriendlyName", "")
    conference_sid = form.get("ConferenceSid", "")
    event = form.get("StatusCallbackEvent", "")
    if not name.startswith(PREFIX) or not conference_sid or not event:
        response = jsonify(
            error="FriendlyName (cg-<CallSid>), ConferenceSid and StatusCallbackEvent are required"
        )
        response.status_code = 400
        return response
    try:
        sequence = int(form.get("SequenceNumber") or 0)
    except ValueError:
        response = jsonify(error="SequenceNumber must be a whole number")
        response.status_code = 400
        return response
    participant = form.get("CallSid") or None
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
            call = get_or_create_call(sess, name.removeprefix(PREFIX), conference_name=name)
            apply_event(
                call,
                event,
                conference_sid,
                participant,
                datetime.now(UTC),
            )
            row = sess.get(CallEvent, stored)
            if row is not None:
                row.processed_at = datetime.now(UTC)
        sess.commit()
    except SQLAlchemyError:
        sess.rollback()
        log.exception("could not store conference event %s for %s", event, name)
        response = jsonify(error="the event could not be stored; try again")
        response.status_code = 503
        return response
    return Response(status=204)


@bp.post("/conference/announce/<int:action_id>")
def announce(action_id: int) -> Response:
    """What Twilio plays into the conference for an agent's Warn, in the caller's language."""
    action = session().get(AgentAction, action_id)
    if action is None:
        abort(404)
    return Response(twiml.announcement(speech_for(action.call, "warning")), mimetype="text/xml")
