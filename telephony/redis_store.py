"""Redis and the rq queue, built once per app from REDIS_URL.

With REDIS_URL unset (the zero-setup default) an in-process Redis stands in and jobs run inline.
Two clients: a fast one for the call path (short timeouts, so a sick Redis cannot hold a caller),
and a patient one for rq.
"""

from __future__ import annotations

import fakeredis
from flask import Flask, current_app
from redis import Redis
from rq import Queue

from restrictions.resilience import Breaker

REDIS = "callguard.redis"
QUEUE = "callguard.queue"
BREAKER = "callguard.redis.breaker"
QUEUE_NAME = "callguard"
URGENT_QUEUE_NAME = "callguard-calls"


def init_app(app: Flask) -> None:
    url: str | None = app.config.get("REDIS_URL")
    fast: Redis
    patient: Redis
    if url:
        timeout = float(app.config.get("REDIS_TIMEOUT_SECONDS", 0.25))
        fast = Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        patient = Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
        is_async = not app.config.get("JOBS_INLINE", False)
    else:
        server = fakeredis.FakeServer()
        fast = fakeredis.FakeRedis(server=server)
        patient = fakeredis.FakeRedis(server=server)
        is_async = False
    app.extensions[REDIS] = fast
    app.extensions[BREAKER] = Breaker("redis (call path)")
    # Two queues by urgency: ringing a person for a waiting caller never waits behind counting.
    # Each is also seen through the fast client: enqueueing on a call's path must fail fast.
    app.extensions[QUEUE] = {
        (name, call_path): Queue(name, connection=fast if call_path else patient, is_async=is_async)
        for name in (URGENT_QUEUE_NAME, QUEUE_NAME)
        for call_path in (False, True)
    }


def call_path_breaker(app: Flask | None = None) -> Breaker:
    """After a Redis failure on a call's path, skip Redis there for 3 s (each use would cost its
    0.25 s timeout otherwise, and a call has 1 s in all)."""
    breaker: Breaker = (app or current_app).extensions[BREAKER]
    return breaker


def redis_client(app: Flask | None = None) -> Redis:
    client: Redis = (app or current_app).extensions[REDIS]
    return client


def queue(app: Flask | None = None, *, call_path: bool = False, urgent: bool = False) -> Queue:
    name = URGENT_QUEUE_NAME if urgent else QUEUE_NAME
    q: Queue = (app or current_app).extensions[QUEUE][(name, call_path)]
    return q


def queues(app: Flask | None = None, *, urgent_only: bool = False) -> list[Queue]:
    """What a worker listens on, the urgent queue first (rq takes jobs in queue order)."""
    urgent = queue(app, urgent=True)
    return [urgent] if urgent_only else [urgent, queue(app)]
