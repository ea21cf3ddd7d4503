"""Jobs that turn stored call events into call state, contact counters and alerts."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from handlers import enqueue, job
from restrictions import alerts, counting
from restrictions.calls import get_or_create_call
from restrictions.db import session
from restrictions.events import FINAL
from restrictions.models import Call, CallEvent, PhoneNumber
from restrictions.phone import caller_e164

log = logging.getLogger("callguard.jobs.contact")

SWEEP_EVERY = timedelta(minutes=1)
SWEEP_JOB_ID = "sweep-call-events"
PROGRESS = {"queued": 0, "initiated": 1, "ringing": 2, "in-progress": 3, "answered": 3}


def _customer_for(sess: Session, e164: str | None) -> int | None:
    if not e164:
        return None
    return sess.scalar(select(PhoneNumber.customer_id).where(PhoneNumber.e164 == e164))


def apply_status(sess: Session, event: CallEvent) -> Call:
    """Move the call's state forward; an old event arriving late never moves it back."""
    payload = event.payload
    e164 = caller_e164(payload.get("From"))
    call = get_or_create_call(
        sess,
        event.resource_sid,
        from_number=payload.get("From", ""),
        from_e164=e164,
        to_number=payload.get("To", ""),
        started_at=event.received_at,
    )
    if call.customer_id is None and call.from_e164:
        call.customer_id = _customer_for(sess, call.from_e164)
        call.identified = call.customer_id is not None
    status = event.event
    if status in FINAL:
        if call.ended_at is None:
            call.ended_at = event.received_at
        call.status = status
        duration = payload.get("CallDuration")
        call.duration_seconds = int(duration) if duration not in (None, "") else 0
    elif call.ended_at is None and PROGRESS.get(status, 0) >= PROGRESS.get(call.status, 0):
        call.status = status
        if status in ("in-progress", "answered") and call.answered_at is None:
            call.answered_at = event.received_at
    return call


def count_and_check(sess: Session, call: Call) -> None:
    """Count a finished call once, then check the excessive-contact rules."""
    from telephony import current_settings
    from telephony.redis_store import redis_client

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
    from telephony.redis_store import queue

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
        queue().enqueue_in(SWEEP_EVERY, sweep_call_events, job_id=SWEEP_JOB_ID)
    if ids:
        log.info("swept %d stored call events", len(ids))
    return len(ids)


def start_sweeping() -> bool:
    """Queue the sweep now; it reschedules itself every minute (run by the worker's scheduler)."""
    return enqueue(sweep_call_events, job_id=SWEEP_JOB_ID, retry=False)
