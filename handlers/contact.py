"""Jobs that turn stored call events into call state, contact counters and alerts."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from handlers import job
from restrictions import alerts, counting
from restrictions.calls import apply_status
from restrictions.models import Call, CallEvent
from telephony import current_settings
from telephony.database import session
from telephony.jobs import SWEEP_CALL_EVENTS, SWEEP_JOB_ID
from telephony.redis_store import queue, redis_client

log = logging.getLogger("callguard.jobs.contact")

SWEEP_EVERY = timedelta(minutes=1)


def count_and_check(sess: Session, call: Call) -> None:
    """Count a finished call once, then check the excessive-contact rules."""
    if call.counted_at is not None:
        return
    subject = counting.subject_of(call.customer_id, call.from_e164)
    if subject is None:  # withheld: nothing to count against (policy 11.3-11.4)
        call.counted_at = datetime.now(UTC)
        return
    redis = redis_client()
    counting.count_call(redis, subject, call.call_sid, call.started_at, call.duration_seconds or 0)
    call.counted_at = datetime.now(UTC)
    alerts.evaluate(
        sess,
        redis,
        current_settings().contact_rules,
        subject,
        call.customer_id,
        call.from_e164,
        call.started_at,
    )


@job
def process_call_event(event_id: int) -> None:
    """Apply one stored status event. Safe to run twice: a processed event is skipped."""
    sess = session()
    event = sess.scalar(select(CallEvent).where(CallEvent.id == event_id).with_for_update())
    if event is None or event.processed_at is not None:
        return
    if event.source == "status":
        call = apply_status(sess, event)
        if call.ended_at is not None:
            count_and_check(sess, call)
    event.processed_at = datetime.now(UTC)
    sess.commit()


@job
def sweep_call_events(reschedule: bool = True) -> int:
    """Process what was stored while Redis or the worker was down; returns how many events."""
    sess = session()
    ids = list(
        sess.scalars(
            select(CallEvent.id)
            .where(CallEvent.processed_at.is_(None))
            .order_by(CallEvent.id)
            .limit(5000)
        )
    )
    sess.close()
    for event_id in ids:
        try:
            process_call_event(event_id)
        except Exception:
            log.exception("event %s could not be processed; it stays for the next sweep", event_id)
    if reschedule and queue().is_async:
        queue().enqueue_in(SWEEP_EVERY, SWEEP_CALL_EVENTS, job_id=SWEEP_JOB_ID)
    if ids:
        log.info("swept %d stored call events", len(ids))
    return len(ids)
