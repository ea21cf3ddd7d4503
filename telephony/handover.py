"""Handing work to the worker. The web never imports ``handlers``: it names a job by its dotted
path (the constants below, every one resolved by a test) and rq imports it in the worker.

``enqueue`` queues an rq job and applies the Redis-failure policy: if Redis is down the work is
logged as not queued and False is returned; what is durable in PostgreSQL is picked up by the
worker's sweep. Two hand-overs are cheaper than a job and keep that policy: an inbound call is one
stream entry (``hand_over_call``, or for the usual caller ``look_up_and_hand_over``, in the same
round trip as the look-up), a stored status event an id on a list (``hand_over_event``).
"""

from __future__ import annotations

import functools
import json
import logging
from typing import Any

from flask import Flask
from redis import Redis
from redis.commands.core import Script
from redis.exceptions import RedisError
from rq import Retry
from sqlalchemy.orm import Session

from restrictions import cache, redis_keys
from restrictions.db import after_commit
from telephony.redis_store import call_path_breaker, queue

log = logging.getLogger("callguard.jobs")

START_INBOUND_CALL = "handlers.calls.start_inbound_call"
PARTICIPANT_UNANSWERED = "handlers.calls.participant_unanswered"
RECORD_EMERGENCY_CHOICE = "handlers.calls.record_emergency_choice"
RECORD_VOICEMAIL = "handlers.calls.record_voicemail"
PROCESS_CALL_EVENT = "handlers.contact.process_call_event"
PROCESS_READY_EVENTS = "handlers.contact.process_ready_events"
SWEEP_CALL_EVENTS = "handlers.contact.sweep_call_events"
DAILY = "handlers.schedule.daily"
ALL = (
    START_INBOUND_CALL,
    PARTICIPANT_UNANSWERED,
    RECORD_EMERGENCY_CHOICE,
    RECORD_VOICEMAIL,
    PROCESS_CALL_EVENT,
    PROCESS_READY_EVENTS,
    SWEEP_CALL_EVENTS,
    DAILY,
)
SWEEP_JOB_ID = "sweep-call-events"
# Jobs a caller is waiting on: they go on the urgent queue, ahead of counting and sweeps.
URGENT = frozenset(
    {START_INBOUND_CALL, PARTICIPANT_UNANSWERED, RECORD_EMERGENCY_CHOICE, RECORD_VOICEMAIL}
)


def enqueue(
    name: str,
    *args: Any,
    job_id: str | None = None,
    retry: bool = True,
    call_path: bool = False,
    **kwargs: Any,
) -> bool:
    """Queue the job ``name`` with ``args``; returns False (and logs) when Redis is unavailable.

    ``call_path=True`` uses the fast Redis client, for enqueueing while a caller waits.
    """
    breaker = call_path_breaker() if call_path else None
    if breaker is not None and not breaker.allow():
        log.warning("not queueing %s: redis is being skipped after a failure", name)
        return False
    target = queue(call_path=call_path, urgent=name in URGENT)
    options: dict[str, Any] = {
        "args": args,
        "kwargs": kwargs,
        "job_id": job_id,
        # retried at once (no rq scheduler needed); the sweep retries stored work later
        "retry": Retry(max=3) if retry else None,
        "result_ttl": 3600,
        "failure_ttl": 7 * 24 * 3600,
    }
    try:
        if not target.is_async:  # zero-setup mode: the job runs here and now
            target.enqueue(name, **options)
        else:
            # the job and its place in the queue in one MULTI/EXEC round trip (rq on its own
            # makes two): a third less of an inbound webhook's time spent enqueueing
            with target.connection.pipeline() as pipe:
                target.enqueue(name, **options, pipeline=pipe)
                pipe.execute()
    except RedisError:
        log.exception("could not queue %s%r: redis unavailable", name, args)
        if breaker is not None:
            breaker.failed()
        return False
    if breaker is not None:
        breaker.succeeded()
    return True


# Inbound calls wait here for a worker (telephony.worker.take_calls), one entry each: an XADD is
# a third of an rq enqueue's Redis work, and the caller is waiting while it is written.
CALLS = redis_keys.CALLS.key
CALLS_GROUP = "callguard-workers"


# The usual caller's one round trip is the script restrictions.redis_keys.HAND_OVER (with its
# keys and arguments labelled there).


def hands_over_calls(app: Flask | None = None) -> bool:
    """Whether workers take calls from the stream (not zero-setup mode, where jobs run inline)."""
    return bool(queue(app, call_path=True, urgent=True).is_async)


@functools.lru_cache(maxsize=8)
def _script(redis: Redis) -> Script:
    return redis.register_script(redis_keys.HAND_OVER)


def look_up_and_hand_over(redis: Redis, cache_key: str, call: dict[str, Any]) -> bytes | None:
    """The caller's cache entry, the call handed over with it when it decides the route alone.
    Raises RedisError for the caller's policy (inbound.look_up_and_hand_over)."""
    entry: bytes | None = _script(redis)(
        keys=[cache_key, CALLS], args=[json.dumps(call), cache.DECIDES_ALONE]
    )
    return entry


def hand_over_call(record: dict[str, Any]) -> bool:
    """Give an answered call to the workers (its row written, then the person rung): one stream
    entry. False (logged) when Redis is unavailable or being skipped: the caller is then
    connected directly and the row written on the request path."""
    target = queue(call_path=True, urgent=True)
    if not target.is_async:  # zero-setup mode: no worker, the job runs here and now
        return enqueue(START_INBOUND_CALL, record, call_path=True)
    breaker = call_path_breaker()
    if not breaker.allow():
        log.warning("not handing call %s over: redis is being skipped", record["call_sid"])
        return False
    try:
        target.connection.xadd(CALLS, {"record": json.dumps(record)})
    except RedisError:
        log.exception("could not hand call %s over: redis unavailable", record["call_sid"])
        breaker.failed()
        return False
    breaker.succeeded()
    return True


# Stored status events wait here for the worker, which drains the list in one job per burst.
READY_EVENTS = redis_keys.EVENTS_READY.key
READY_EVENTS_QUEUED = redis_keys.EVENTS_READY_QUEUED.key  # set while a run is queued


def hand_over_event(event_id: int) -> bool:
    """Give a stored event to the worker: its id on a list, and a job to drain the list only
    when none is waiting (an rq job per event was most of a status callback's Redis time).
    False (logged) when Redis is unavailable: the worker's sweep finds the event in PostgreSQL,
    as it does an id a dead worker had taken."""
    try:
        pipe = queue().connection.pipeline(transaction=False)
        pipe.rpush(READY_EVENTS, event_id)
        pipe.set(READY_EVENTS_QUEUED, 1, nx=True, ex=60)
        _, first = pipe.execute()
    except RedisError:
        log.exception("could not hand event %s over: redis unavailable", event_id)
        return False
    if not first:
        return True
    return enqueue(PROCESS_READY_EVENTS, job_id=f"ready-events-{event_id}", retry=False)


def enqueue_after_commit(sess: Session, name: str, *args: Any, **kwargs: Any) -> None:
    """Queue ``name`` once the session commits, so the job always finds the rows it is given."""
    after_commit(sess, enqueue, name, *args, **kwargs)


def start_sweeping() -> bool:
    """Queue the sweep now (the worker's ticker does, every 15 s)."""
    return enqueue(SWEEP_CALL_EVENTS, job_id=SWEEP_JOB_ID, retry=False)
