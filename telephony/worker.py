"""The worker process, which heals itself.

It never exits because Redis went away: rq's worker loop returns on a Redis error, and this loop
starts it again with back-off (1 s doubling to 30 s; the dialler, which rings people for callers on
hold, tries every second). Periodic work needs no lock that a dead
process could hold for long: every worker's ticker asks for a sweep every 15 s, and a Redis key
that expires in 45 s lets just one of them queue it (if the worker that set it died, another takes
over within a minute). The sweep rebuilds from PostgreSQL what Redis lost.
"""

from __future__ import annotations

import logging
import threading
import time

from flask import Flask
from redis.exceptions import RedisError
from rq import SimpleWorker

from telephony import jobs
from telephony.redis_store import queue, queues

log = logging.getLogger("callguard.worker")

TICK_SECONDS = 15
TICK_KEY = "cg:sweep-tick"
TICK_TTL_SECONDS = 45
DAILY_KEY = "cg:daily"
MAX_BACKOFF_SECONDS = 30.0
DIALLER_RETRY_SECONDS = 1.0  # a dialler is back within a second of Redis: callers are on hold


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
            if q.connection.set(f"{DAILY_KEY}:{day}", "1", nx=True, ex=2 * 86400):
                jobs.enqueue(jobs.DAILY, job_id=f"daily-{day}", retry=False)
            if not q.connection.set(TICK_KEY, "1", nx=True, ex=TICK_TTL_SECONDS):
                return False
        except RedisError as exc:
            log.warning("redis unavailable for the sweep ticker: %s", exc)
            return False
        return jobs.start_sweeping()


def _ticker(app: Flask, stop: threading.Event) -> None:
    while not stop.is_set():
        tick(app)
        stop.wait(TICK_SECONDS)


def run(app: Flask, *, periodic: bool, burst: bool, urgent_only: bool = False) -> int:
    """Work the queues until stopped (or, with ``burst``, until they are empty); the urgent
    queue (ringing people for waiting callers) always first, or alone with ``urgent_only``."""
    stop = threading.Event()
    if periodic:
        threading.Thread(target=_ticker, args=(app, stop), daemon=True, name="sweep-ticker").start()
    first_delay = 1.0
    longest = DIALLER_RETRY_SECONDS if urgent_only else MAX_BACKOFF_SECONDS
    delay = first_delay
    try:
        while True:
            with app.app_context():
                q = queue(app)
                try:
                    q.connection.ping()
                    jobs.start_sweeping()  # what was stored while no worker ran comes first
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
                    time.sleep(delay)
                    delay = min(delay * 2, longest)
                    continue
            if burst:
                return 0
            log.warning("the rq worker stopped; starting it again in %.0f s", delay)
            time.sleep(delay)
            delay = min(delay * 2, longest)
    finally:
        stop.set()
