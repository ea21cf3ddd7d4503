"""The worker process, which heals itself.

It never exits because Redis went away: rq's worker loop returns on a Redis error, and this loop
starts it again with back-off (1 s doubling to 30 s; the dialler, which rings people for callers on
hold, tries every second). Periodic work needs no lock that a dead
process could hold for long: every worker's ticker asks for a sweep every 15 s, and a Redis key
that expires in 45 s lets just one of them queue it (if the worker that set it died, another takes
over within a minute). The sweep rebuilds from PostgreSQL what Redis lost.

Beside rq's loop, a thread takes inbound calls from their stream (``take_calls``): every worker
process reads it in one consumer group, so each call goes to one of them, and a dialler that dies
holding calls loses them to another after RECLAIM_MS.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading
import time
from typing import Any, cast

from flask import Flask
from redis import Redis
from redis.exceptions import RedisError, ResponseError
from rq import Queue
from rq import SimpleWorker as RqSimpleWorker
from rq.job import Job
from rq.utils import import_attribute

from restrictions import rebuild, redis_keys
from restrictions.resilience import database_unavailable
from telephony import handover, logs
from telephony.inbound import record_from_hand_over
from telephony.redis_store import queue, queues

log = logging.getLogger("callguard.worker")

TICK_SECONDS = 15
TICK_KEY = redis_keys.SWEEP_TICK.key
TICK_TTL_SECONDS = TICK_SECONDS - 1  # one sweep per period, whichever worker ticks first
DAILY_KEY = redis_keys.DAILY.key
MAX_BACKOFF_SECONDS = 30.0
DIALLER_RETRY_SECONDS = 1.0  # a dialler is back within a second of Redis: callers are on hold
RECLAIM_MS = 10_000  # a call taken by a worker that died is another's after this long
CALLS_PER_READ = 1  # one at a time: a call waits for the next free worker, not behind others
CALLS_BLOCK_MS = 1000  # how long a read waits for a call before checking whether to stop
ATTEMPTS = 3  # a call's job that fails for a bug is tried again at once, then logged and left
DEQUEUE_SECONDS = 3  # rq waits for a job this long at a time: within the client's 5 s timeout


class SimpleWorker(RqSimpleWorker):
    """rq's worker that runs jobs in its own process, with two changes.

    It waits for a job DEQUEUE_SECONDS at a time, inside the Redis client's 5 s socket timeout.
    rq's own wait (405 s) outlasted that timeout, so every idle wait ended in a TimeoutError that
    rq logged as ``ERROR … could not connect to Redis instance`` every few seconds while Redis was
    healthy; and rq raised the shared client's timeout for connections made afterwards to 415 s,
    letting a hung Redis hold the worker's other uses of it that long.

    Each job runs in the log context of the call it is about (``call_sid``, when its arguments
    name one), with ``rq:<job id>`` as its ``request_id``, rq's own lines about it included.
    """

    @property
    def dequeue_timeout(self) -> int:
        return DEQUEUE_SECONDS

    @property
    def connection_timeout(self) -> int:
        return DEQUEUE_SECONDS + 1  # at most the client's: rq then leaves the client as it is

    def execute_job(self, job: Job, queue: Queue) -> None:
        try:
            call_sid = logs.call_sid_in(job.args)
        except Exception:  # arguments that cannot be read fail in the job, not here
            call_sid = None
        with logs.context(call_sid=call_sid, request_id=f"rq:{job.id}"):
            super().execute_job(job, queue)


class BurstWorker(SimpleWorker):
    """rq's worker for one pass over the queues (``--burst``, tests, benchmarks): without its
    command channel, whose thread takes a second to stop after every pass."""

    def subscribe(self) -> None:
        self.pubsub_thread = None

    def unsubscribe(self) -> None:
        return None


def tick(app: Flask) -> bool:
    """Queue a sweep unless another worker did in the last 45 s (and, once a day, the daily
    job); returns whether this one queued the sweep."""
    with app.app_context():
        q = queue(app)
        try:
            day = time.strftime("%Y-%m-%d")
            if q.connection.set(redis_keys.DAILY.of(day), "1", nx=True, ex=2 * 86400):
                handover.enqueue(handover.DAILY, job_id=f"daily-{day}", retry=False)
            if not q.connection.set(TICK_KEY, "1", nx=True, ex=TICK_TTL_SECONDS):
                return False
        except RedisError as exc:
            log.warning("redis unavailable for the sweep ticker: %s", exc)
            return False
        return handover.start_sweeping()


LOST_CHECK_SECONDS = 1.0  # how soon a Redis that came back empty (or failed over) is rebuilt
REBUILD_ASKED = redis_keys.REBUILD_ASKED.key  # one sweep per 10 s while a rebuild is pending


def rebuild_if_lost(app: Flask) -> bool:
    """Queue a sweep at once when Redis lost what was built in it (restarted empty, failed over):
    until the sweep rebuilds it, restricted callers depend on PostgreSQL answering, so it must
    not wait for the next tick. Returns whether a sweep was queued."""
    with app.app_context():
        redis = queue(app).connection
        try:
            if not rebuild.lost(redis) or not redis.set(REBUILD_ASKED, "1", nx=True, ex=10):
                return False  # built, or a sweep was asked for a moment ago
        except RedisError:
            return False
        return handover.start_sweeping()


def _ticker(app: Flask, stop: threading.Event) -> None:
    next_tick = 0.0
    while not stop.is_set():
        if time.monotonic() >= next_tick:
            tick(app)
            next_tick = time.monotonic() + TICK_SECONDS
        else:
            rebuild_if_lost(app)
        stop.wait(LOST_CHECK_SECONDS)


def _consumer() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def _start_call(app: Flask, entry_id: bytes, fields: dict[bytes, bytes]) -> bool:
    """Run the inbound call's job for one entry; returns whether the entry is done with.

    A bug or bad data is tried ATTEMPTS times, then logged and left (the caller's hold heartbeat
    moves them on; Twilio's logs still have the call). Work PostgreSQL refused (down, hung, out
    of connections) is never given up: the entry stays unacknowledged in the consumer group and
    is taken again after RECLAIM_MS, by this worker or another, until it succeeds, so every
    call's route is recorded however long the outage."""
    start_inbound_call = import_attribute(handover.START_INBOUND_CALL)
    try:
        call: dict[str, Any] = json.loads(fields.get(b"record") or fields[b"call"])
        sid = call["call_sid"]
    except (KeyError, ValueError, TypeError):
        log.error("entry %s is not a call; left: %r", entry_id.decode(), fields)
        return True
    with logs.context(call_sid=str(sid), request_id=f"calls:{entry_id.decode()}"):
        return _start(app, start_inbound_call, call, sid, entry_id, fields)


def _start(
    app: Flask,
    start_inbound_call: Any,
    call: dict[str, Any],
    sid: str,
    entry_id: bytes,
    fields: dict[bytes, bytes],
) -> bool:
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with app.app_context():
                if b"record" in fields:
                    record = call
                else:  # handed over with the caller's cache entry: decide as the webhook did
                    record = record_from_hand_over(dict(call), fields[b"entry"])
                start_inbound_call(record)
            return True
        except Exception as exc:
            if database_unavailable(exc):
                log.warning(
                    "call %s: PostgreSQL could not take it (%s); trying again in %.0f s",
                    sid,
                    exc,
                    RECLAIM_MS / 1000,
                )
                return False
            log.exception("call %s: try %d of %d failed", sid, attempt, ATTEMPTS)
    log.error("call %s: giving up on entry %s", sid, entry_id.decode())
    return True


def _read_new(
    redis: Redis, me: str, block_ms: int | None
) -> list[tuple[bytes, dict[bytes, bytes]]]:
    read = cast(
        list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]],
        redis.xreadgroup(
            handover.CALLS_GROUP, me, {handover.CALLS: ">"}, count=CALLS_PER_READ, block=block_ms
        ),
    )
    return read[0][1] if read else []


def take_calls(
    app: Flask, redis: Redis, *, burst: bool, stop: threading.Event | None = None
) -> int:
    """Take inbound calls from their stream and start them until ``stop`` (with ``burst``, until
    none is waiting); returns how many were taken. Raises RedisError for the caller's policy."""
    try:
        redis.xgroup_create(handover.CALLS, handover.CALLS_GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
    me, taken = _consumer(), 0
    while stop is None or not stop.is_set():
        # new calls first (a caller is waiting on each: a dial-out must not queue behind
        # calls PostgreSQL refused during an outage), then what a dead worker had taken or
        # PostgreSQL refused, then wait for the next new one
        entries = _read_new(redis, me, None)
        if not entries:
            entries = redis.xautoclaim(
                handover.CALLS, handover.CALLS_GROUP, me, RECLAIM_MS, "0-0", count=CALLS_PER_READ
            )[1]
        if not entries and not burst:
            entries = _read_new(redis, me, CALLS_BLOCK_MS)
        if not entries and burst:
            break
        for entry_id, fields in entries:
            # an entry deleted after it was claimed comes back empty
            if fields and not _start_call(app, entry_id, fields):
                if burst:
                    return taken  # left for a later pass, after RECLAIM_MS
                continue  # unacknowledged: reclaimed and tried again after RECLAIM_MS
            pipe = redis.pipeline(transaction=False)
            pipe.xack(handover.CALLS, handover.CALLS_GROUP, entry_id)
            pipe.xdel(handover.CALLS, entry_id)
            pipe.execute()
            taken += 1
    # a consumer with nothing left unacknowledged need not stay in the group (deleting one that
    # holds calls PostgreSQL refused would lose them: they stay, for another to reclaim)
    if not redis.xpending_range(handover.CALLS, handover.CALLS_GROUP, "-", "+", 1, consumername=me):
        redis.xgroup_delconsumer(handover.CALLS, handover.CALLS_GROUP, me)
    return taken


def _calls_thread(app: Flask, stop: threading.Event) -> None:
    """``take_calls`` for the life of the process, back within a second of Redis returning."""
    while not stop.is_set():
        try:
            with app.app_context():
                redis = queue(app).connection
            take_calls(app, redis, burst=False, stop=stop)
        except RedisError as exc:
            log.warning("redis unavailable for inbound calls (%s); trying again in 1 s", exc)
            stop.wait(DIALLER_RETRY_SECONDS)
        except Exception:
            log.exception("taking inbound calls failed; starting again in 1 s")
            stop.wait(DIALLER_RETRY_SECONDS)


def _pause(stop: threading.Event, seconds: float) -> bool:
    """Wait out a back-off; True when the process was asked to stop meanwhile."""
    return stop.wait(seconds)


def _stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM or SIGINT outside rq's loop (Redis unreachable, backing off) stops the process
    at once: rq's own handlers are installed only while its loop runs, and a deploy's SIGTERM
    must not wait for Redis to come back."""

    def asked(signum: int, frame: object) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    try:
        signal.signal(signal.SIGTERM, asked)
        signal.signal(signal.SIGINT, asked)
    except ValueError:  # not the main thread (tests): nobody sends this one signals
        pass


def run(app: Flask, *, periodic: bool, burst: bool, urgent_only: bool = False) -> int:
    """Work the queues until stopped (or, with ``burst``, until they are empty); the urgent
    queue (ringing people for waiting callers) always first, or alone with ``urgent_only``."""
    stop = threading.Event()
    if periodic:
        threading.Thread(target=_ticker, args=(app, stop), daemon=True, name="sweep-ticker").start()
    calls = threading.Thread(
        target=_calls_thread, args=(app, stop), daemon=True, name="inbound-calls"
    )
    if not burst:
        calls.start()
    first_delay = 1.0
    longest = DIALLER_RETRY_SECONDS if urgent_only else MAX_BACKOFF_SECONDS
    delay = first_delay
    try:
        while True:
            _stop_on_signals(stop)
            if stop.is_set():
                return 0
            with app.app_context():
                q = queue(app)
                try:
                    q.connection.ping()
                    handover.start_sweeping()  # what was stored while no worker ran comes first
                    if burst:
                        take_calls(app, q.connection, burst=True)
                    worker_class = BurstWorker if burst else SimpleWorker
                    rq_worker = worker_class(
                        queues(app, urgent_only=urgent_only), connection=q.connection
                    )
                    rq_worker.max_connection_wait_time = min(longest, MAX_BACKOFF_SECONDS / 6)
                    rq_worker.work(burst=burst)
                    if getattr(rq_worker, "_shutdown_requested_date", None) is not None:
                        return 0  # SIGTERM or SIGINT: a warm shutdown, as asked
                    delay = first_delay
                except RedisError as exc:
                    log.warning("redis unavailable (%s); the worker retries in %.0f s", exc, delay)
                    if burst:
                        return 1
                    _stop_on_signals(stop)  # rq's loop may have left its handlers behind
                    if _pause(stop, delay):
                        return 0
                    delay = min(delay * 2, longest)
                    continue
            if burst:
                return 0
            log.warning("the rq worker stopped; starting it again in %.0f s", delay)
            if _pause(stop, delay):
                return 0
            delay = min(delay * 2, longest)
    finally:
        stop.set()
        if calls.is_alive():
            calls.join(timeout=30)  # a call being started is finished first
