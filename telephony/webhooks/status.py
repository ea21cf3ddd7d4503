"""Twilio's call status callback: store first, answer 204, process in a job."""

from __future__ import annotations

import logging

from flask import Response, current_app, request

from restrictions.errors import DomainError
from restrictions.events import EventRecord, validate_status
from telephony import callbacks
from telephony.errors import json_error
from telephony.webhooks import bp

log = logging.getLogger("callguard.status")


@bp.post("/voice/status")
def call_status() -> Response:
    """Store first (PostgreSQL, or Redis when PostgreSQL cannot take it), answer 204, process
    in a job."""
    try:
        fields = validate_status(request.form)
    except DomainError as exc:
        return json_error(exc.message, 400)
    record = EventRecord(
        source="status",
        resource_sid=fields["call_sid"],
        call_sid=fields["call_sid"],
        sequence=fields["sequence"],
        event=fields["status"],
        payload=request.form.to_dict(),
    )
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        event_id = callbacks.keep_event(app, record)
    except callbacks.NotKept:
        log.exception("status event for %s was not kept", fields["call_sid"])
        return json_error("the event could not be stored; try again", 503)
    if event_id is not None:
        callbacks.process_later(event_id)
    return Response(status=204)
