"""TaskRouter's workspace events (the Workspace's EventCallbackUrl): for a contact centre on
TaskRouter and Flex, which worker took a call and the conference Flex bridged it in, so the live
list names the agent and Warn and End work on a call callguard did not bridge itself."""

from __future__ import annotations

import logging

from flask import Response, current_app, request
from sqlalchemy.orm import Session

from restrictions import task_events
from restrictions.errors import DomainError
from restrictions.events import EventRecord, sid, store_record
from restrictions.models import CallEvent
from telephony import callbacks, logs, metrics
from telephony.errors import json_error
from telephony.webhooks import bp
from telephony.webhooks.conference import use_allowance

log = logging.getLogger("callguard.taskrouter")


@bp.post("/taskrouter/events")
def taskrouter_events() -> Response:
    """Stored first, keyed on the event's ``Sid`` (a retry is stored once), and applied in the
    same transaction; kept in Redis while PostgreSQL cannot take it, applied when it is moved
    across. Events about workers, queues and workflows say nothing about a call: 204, not
    stored."""
    form = request.form
    event = (form.get("EventType") or "").strip()
    if not event or len(event) > 40:
        return json_error("EventType (a TaskRouter event type) is required", 400)
    if not task_events.concerns_calls(event):
        return Response(status=204)
    try:
        event_sid = sid(form.get("Sid"), "Sid")
        sid(form.get("TaskSid"), "TaskSid", required=False)
    except DomainError as exc:
        return json_error(exc.message, 400)
    assert event_sid is not None
    payload = form.to_dict()
    call_sid = task_events.call_sid_of(payload)
    logs.set_call_sid(call_sid)  # this request's lines name the caller's call
    record = EventRecord(
        source=task_events.SOURCE,
        resource_sid=event_sid,
        call_sid=call_sid,
        sequence=0,
        event=event,
        payload=payload,
    )

    def store_and_apply(sess: Session) -> tuple[bool, str | None]:
        stored = store_record(sess, record)
        if stored is None:  # a retry of an event already stored changes nothing
            return False, None
        row = sess.get(CallEvent, stored)
        assert row is not None
        reached = task_events.apply_record(sess, row)
        return row.processed_at is not None, reached

    def then(applied: tuple[bool, str | None]) -> None:
        """What follows from an event stored and applied (whenever its commit came)."""
        processed, reached = applied
        if processed:
            metrics.event_processed(record.source)
        if reached:  # a worker accepted the caller: the call uses a weekly allowance
            use_allowance(reached)

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        callbacks.keep(app, record, store_and_apply, then)
    except callbacks.NotKept:
        log.exception("TaskRouter event %s (%s) was not kept", event, event_sid)
        return json_error("the event could not be stored; try again", 503)
    return Response(status=204)
