"""JSON API: callbacks that could not be processed (admins). A parked event failed several
times; it waits here with its reason instead of being retried forever."""

from __future__ import annotations

from typing import Any

from flask import jsonify
from sqlalchemy import select

from restrictions.errors import NotFound
from restrictions.lifecycle import audit
from restrictions.models import CallEvent, Role
from telephony import handover
from telephony.api import bp
from telephony.auth import api_role, current_actor
from telephony.database import session


def event_json(e: CallEvent) -> dict[str, Any]:
    return {
        "id": e.id,
        "source": e.source,
        "call_sid": e.call_sid,
        "event": e.event,
        "sequence_number": e.sequence_number,
        "received_at": e.received_at.isoformat(),
        "attempts": e.attempts,
        "reason": e.parked_reason,
    }


@bp.get("/events/parked")
@api_role(Role.ADMIN)
def parked_events() -> Any:
    found = session().scalars(
        select(CallEvent).where(CallEvent.parked_reason.is_not(None)).order_by(CallEvent.id)
    )
    return jsonify(events=[event_json(e) for e in found])


@bp.post("/events/<id:event_id>/retry")
@api_role(Role.ADMIN)
def retry_event(event_id: int) -> Any:
    """Put a parked event back for processing (after the cause was fixed)."""
    sess = session()
    event = sess.get(CallEvent, event_id, with_for_update=True)
    if event is None or event.parked_reason is None:
        raise NotFound(f"no parked event {event_id}")
    reason = event.parked_reason
    event.parked_reason = None
    event.attempts = 0
    audit(
        sess,
        current_actor(),
        "event.retried",
        "call_event",
        event.id,
        customer_id=None,
        note=reason,
    )
    handover.enqueue_after_commit(sess, handover.PROCESS_CALL_EVENT, event.id)
    sess.commit()
    return jsonify(event_json(event))
