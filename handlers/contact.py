"""Jobs that turn stored call events into call state, contact counters and alerts."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from handlers import job
from handlers.calls import dial_out
from restrictions import alerts, cache, counting, rebuild, task_events, voicemails
from restrictions.calls import apply_conference_record, apply_status, is_customer_call
from restrictions.events import FINAL, drain
from restrictions.models import Call, CallEvent
from restrictions.resilience import database_unavailable
from restrictions.routing import decide, needs_weekly_count, week_start
from telephony import handover, inbound, logs, metrics, twiml, waiting
from telephony.config import current_settings
from telephony.database import database, session
from telephony.handover import READY_EVENTS, READY_EVENTS_QUEUED
from telephony.inputs import is_sid
from telephony.redis_store import queue, redis_client

log = logging.getLogger("callguard.handover.contact")

PARK_AFTER = 5  # failed attempts before an event is parked for a person to look at


def count_and_check(sess: Session, call: Call) -> None:
    """Count a finished call (again, when a later ``completed`` corrects its length: counting is
    keyed on the CallSid, so the talk time ends up exact), then check the contact rules."""
    settings = current_settings()
    subject = counting.subject_of(call.customer_id, call.from_e164)
    emergency = call.emergency_selected_at is not None and not settings.count_emergency_calls
    if subject is None or emergency:  # withheld (policy 11.3-11.4), or an emergency repair
        call.counted_at = call.counted_at or datetime.now(UTC)
        return
    redis = redis_client()
    counting.count_call(redis, subject, call.call_sid, call.started_at, call.duration_seconds or 0)
    call.counted_at = call.counted_at or datetime.now(UTC)
    opened = alerts.evaluate(
        sess,
        redis,
        settings.contact_rules,
        subject,
        call.customer_id,
        call.from_e164,
        call.started_at,
    )
    metrics.alerts_opened(alert.rule_name for alert in opened)


@job
def process_call_event(event_id: int) -> None:
    """Apply one stored status event. Safe to run twice: a processed event is skipped."""
    sess = session()
    event = sess.scalar(select(CallEvent).where(CallEvent.id == event_id).with_for_update())
    if event is None or event.processed_at is not None:
        return
    # this job's lines name the caller's call (a conference's cg-<CallSid>), or the event's
    caller_sid = twiml.call_sid_of_conference(str(event.payload.get("FriendlyName") or ""))
    logs.set_call_sid(caller_sid if is_sid(caller_sid) else event.call_sid)
    ringing_leg = None
    if event.source == "conference":  # one kept in Redis while PostgreSQL was away
        reached = apply_conference_record(sess, event)
        sess.commit()
        metrics.event_processed(event.source)
        if reached:  # the caller's CallSid: a person has just joined them
            counting.use_allowance(redis_client(), reached, datetime.now(UTC))
        return
    if event.source == task_events.SOURCE:  # kept in Redis a while, or its call not yet known
        reached = task_events.apply_record(sess, event)
        processed = event.processed_at is not None
        sess.commit()
        if processed:
            metrics.event_processed(event.source)
        if reached:  # a worker accepted the caller: the call uses a weekly allowance
            counting.use_allowance(redis_client(), reached, datetime.now(UTC))
        return
    if event.source in voicemails.SOURCES:  # a voicemail's callback kept in Redis a while
        voicemails.apply_event(sess, event)
        sess.commit()
        metrics.event_processed(event.source)
        return
    if event.source == "status" and is_customer_call(event.payload):
        call = apply_status(sess, event)
        if event.event in FINAL:
            count_and_check(sess, call)
            rang = call.conference_name is not None  # callguard rang them (not Flex)
            if rang and call.agent_call_sid and not (call.answered_at or call.moved_on_at):
                ringing_leg = call.agent_call_sid  # the caller hung up while a person was rung
    event.processed_at = datetime.now(UTC)
    sess.commit()
    metrics.event_processed(event.source)
    if ringing_leg:
        waiting.cancel_leg(ringing_leg)


READY_EVENTS_SECONDS = 2.0  # a run's share of the worker before others' jobs (the sweep) go


@job
def process_ready_events(batch: int = 200, seconds: float = READY_EVENTS_SECONDS) -> int:
    """Process the events handed over since the last run (``telephony.handover.hand_over_event``);
    returns how many. A failed event is noted and left to the sweep, as in the sweep.

    A run ends after ``seconds`` and queues the next one behind the jobs already waiting: under
    a steady flow of callbacks the list never empties, and a run that drained it for ever would
    keep the sweep (which rebuilds what Redis lost) from ever running."""
    redis = queue().connection
    redis.delete(READY_EVENTS_QUEUED)  # from here on, a new arrival queues the next run
    done, until = 0, time.monotonic() + seconds
    while time.monotonic() < until and (taken := redis.lpop(READY_EVENTS, batch)):
        for raw in cast(list[bytes], taken):
            event_id = int(raw)
            try:
                process_call_event(event_id)
            except Exception as exc:
                note_failure(event_id, exc)
            done += 1
    if redis.llen(READY_EVENTS) and redis.set(READY_EVENTS_QUEUED, 1, nx=True, ex=60):
        handover.enqueue(
            handover.PROCESS_READY_EVENTS, job_id=f"ready-events-more-{time.time_ns()}", retry=False
        )
    return done


def note_failure(event_id: int, exc: BaseException) -> None:
    """An event that failed: tried again by later sweeps, then parked with its reason for an
    admin (``GET /api/v1/events/parked``) instead of being retried forever. An event PostgreSQL
    could not take is not counted against it: it waits for PostgreSQL, however long."""
    if database_unavailable(exc):  # not the event's fault: the next sweep tries it again
        log.warning("event %s waits for PostgreSQL: %s", event_id, exc)
        return
    sess = session()
    sess.rollback()
    event = sess.get(CallEvent, event_id)
    if event is None:
        return
    event.attempts = (event.attempts or 0) + 1
    if event.attempts >= PARK_AFTER:
        event.parked_reason = f"{type(exc).__name__}: {exc}"[:1000]
        metrics.event_parked()
        log.error("event %s parked after %d attempts: %s", event_id, event.attempts, exc)
    else:
        log.warning("event %s failed (attempt %d): %s", event_id, event.attempts, exc)
    sess.commit()


def restore_redis_if_lost() -> bool:
    """Redis restarted (empty or not) or failed over to a replica, which may lack the last writes
    made to the old master: rebuild from PostgreSQL what it held."""
    redis = redis_client()
    why = rebuild.why_lost(redis)
    if why is None:
        return False
    sess = session()
    done = rebuild.rebuild(sess, redis, current_settings().contact_rules)
    sess.commit()
    log.warning(
        "rebuilt redis from PostgreSQL because %s: %d numbers, %d counted calls, opened %d alerts",
        why,
        done.numbers,
        done.calls,
        done.alerts_opened,
    )
    return True


def keep_routing_cache() -> None:
    """Every restricted caller's entry stays in the routing cache (rewritten hourly), and what
    changed while a refresh could not reach Redis is written now."""
    redis, sess = redis_client(), session()
    try:
        warmed = cache.keep_restricted_warm(sess, redis)
        if warmed is not None:
            log.info("kept the routing cache warm: %d numbers of restricted customers", warmed)
        cache.catch_up(sess, redis, datetime.now(UTC))
    finally:
        sess.close()


SWEEP_SECONDS = 5.0  # a sweep's share of the worker: it runs again every 15 s
LOST_ROUTE_AFTER = timedelta(seconds=60)  # a worker retries a refused hand-over every 10 s
LOST_ROUTE_WITHIN = timedelta(hours=2)


def record_lost_routes() -> int:
    """Calls whose route was never recorded: their hand-over was in Redis when it lost
    everything, before a worker took it, so only Twilio's callbacks made their row (route
    ``default`` at the column's default, no destination: a recorded route always has one or is
    another route). Decide it again, as the webhook did, from the caller's record now, and say
    so in the call's flags (``recovered``). Returns how many."""
    settings = current_settings()
    routing = inbound.routing_settings(settings)
    sess = session()
    now = datetime.now(UTC)
    lost = list(
        sess.scalars(
            select(Call)
            .where(
                Call.route == "default",
                Call.route_destination.is_(None),
                Call.started_at < now - LOST_ROUTE_AFTER,
                Call.started_at > now - LOST_ROUTE_WITHIN,
            )
            .order_by(Call.id)
            .limit(500)
        )
    )
    for call in lost:
        profile = cache.load_profile(sess, call.from_e164) if call.from_e164 else None
        weekly = 0
        if profile is not None and needs_weekly_count(profile):
            since = week_start(call.started_at, settings.timezone)
            weekly = counting.allowance_used_from_calls(sess, profile.customer_id, since)
        route = decide(profile, call.started_at, routing, weekly)
        call.customer_id = call.customer_id or (profile.customer_id if profile else None)
        call.identified = route.identified
        call.route = str(route.kind)
        call.route_destination = str(route.destination) if route.destination else None
        call.restriction_id = route.restriction_id
        call.flags = {
            "flags": [*route.flags, "recovered"],
            "unidentified": not route.identified,
        }
    if lost:
        sess.commit()
        log.warning("recorded the route of %d calls whose hand-over Redis lost", len(lost))
    return len(lost)


def dial_waiting_callers() -> int:
    """Callers in their conference whose dial-out was lost with Redis or a worker, still within
    the ring time: ring now (``dial_out`` claims each, so nobody is rung twice)."""
    settings = current_settings()
    ring = max(settings.agent_ring_seconds, settings.spoc_ring_seconds)
    sess = session()
    waiting_calls = list(
        sess.scalars(
            select(Call).where(
                Call.conference_name.is_not(None),
                Call.dial_claimed_at.is_(None),
                Call.ended_at.is_(None),
                Call.moved_on_at.is_(None),
                Call.answered_at.is_(None),
                Call.started_at > datetime.now(UTC) - timedelta(seconds=ring),
            )
        )
    )
    for call in waiting_calls:
        dial_out(call)
    return len(waiting_calls)


@job
def sweep_call_events() -> int:
    """Rebuild from PostgreSQL what Redis or a worker lost, move events kept in Redis into
    PostgreSQL, and process what is stored and unprocessed; returns how many events."""
    restore_redis_if_lost()
    keep_routing_cache()
    record_lost_routes()
    moved = drain(database().sessions, redis_client())
    if moved:
        log.info("moved %d events kept in Redis into PostgreSQL", moved)
    dial_waiting_callers()
    sess = session()
    ids = list(
        sess.scalars(
            select(CallEvent.id)
            .where(CallEvent.processed_at.is_(None), CallEvent.parked_reason.is_(None))
            .order_by(CallEvent.id)
            .limit(5000)
        )
    )
    sess.close()
    done, until = 0, time.monotonic() + SWEEP_SECONDS
    for event_id in ids:
        if time.monotonic() >= until:
            # the rest waits for the next run (15 s on): a sweep that ran for as long as the
            # backlog after an outage kept a deploy's SIGTERM waiting on the worker
            log.info("the sweep stops after %.0f s; %d events wait", SWEEP_SECONDS, len(ids) - done)
            break
        try:
            process_call_event(event_id)
        except Exception as exc:
            note_failure(event_id, exc)
        done += 1
    if done:
        log.info("swept %d stored call events", done)
    return done
