"""Twilio's call status callback: store first, answer 204, process in a job."""

from __future__ import annotations

import logging

from flask import Response, jsonify, request
from sqlalchemy.exc import SQLAlchemyError

from handlers import contact, enqueue_after_commit
from restrictions.db import session
from restrictions.errors import DomainError
from restrictions.events import store, validate_status
from telephony.webhooks import bp

log = logging.getLogger("callguard.status")


@bp.post("/voice/status")
def call_status() -> Response:
    try:
        fields = validate_status(request.form)
    except DomainError as exc:
        response = jsonify(error=exc.message)
        response.status_code = 400
        return response
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
            enqueue_after_commit(
                sess, contact.process_call_event, event_id, job_id=f"call-event-{event_id}"
            )
        sess.commit()
    except SQLAlchemyError:
        sess.rollback()
        log.exception("could not store status event for %s; Twilio may retry", fields["call_sid"])
        response = jsonify(error="the event could not be stored; try again")
        response.status_code = 503
        return response
    return Response(status=204)
