"""Twilio's call status callback: store first, answer 204, process in a job."""

from __future__ import annotations

import logging

from flask import Response, request
from sqlalchemy.exc import SQLAlchemyError

from restrictions.errors import DomainError
from restrictions.events import store, validate_status
from telephony import jobs
from telephony.database import session
from telephony.errors import json_error
from telephony.webhooks import bp

log = logging.getLogger("callguard.status")


@bp.post("/voice/status")
def call_status() -> Response:
    try:
        fields = validate_status(request.form)
    except DomainError as exc:
        return json_error(exc.message, 400)
    sess = session()
    try:
        event_id = store(
            sess,
            source="status",
            resource_sid=fields["call_sid"],
            call_sid=fields["call_sid"],
            sequence=fields["sequence"],
            event=fields["status"],
            payload=request.form.to_dict(),
        )
        if event_id is not None:
            jobs.enqueue_after_commit(
                sess, jobs.PROCESS_CALL_EVENT, event_id, job_id=f"call-event-{event_id}"
            )
        sess.commit()
    except SQLAlchemyError:
        sess.rollback()
        log.exception("could not store status event for %s; Twilio may retry", fields["call_sid"])
        return json_error("the event could not be stored; try again", 503)
    return Response(status=204)
