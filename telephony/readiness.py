"""``GET /healthz`` (alive: the process answers; nothing else is checked) and ``GET /readyz``
(ready to take calls): PostgreSQL answers ``SELECT 1``, Redis takes a write (a ``SET`` with a
short TTL, which a read-only replica refuses), the settings pass the start-up checks
(``telephony.startup``: Twilio's credentials set, among others), and no backlog is over its
bound. 200 ``{"status": "ready", "checks": {…}}``, or 503 with each failing check's ``reason``.
Both unauthenticated and never cached.

Cheap whatever happens: each dependency is asked under a short deadline
(``READY_DEADLINE_SECONDS``, 0.5 s) on a pool of threads of its own, through a breaker (PostgreSQL's
is the one the webhooks use), so a dependency that just failed is reported at once, not waited on.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import Flask, Response, current_app, jsonify
from redis import Redis
from sqlalchemy import Connection, text

from restrictions import redis_keys
from restrictions.events import BUFFER
from restrictions.resilience import Breaker, DependencyDown, within_pool
from telephony import handover, startup
from telephony.config import current_settings
from telephony.database import database
from telephony.redis_store import QUEUE_NAME, URGENT_QUEUE_NAME, redis_client

T = TypeVar("T")
BREAKER = "callguard.readiness.redis"
LAST_FAILURE = "callguard.readiness.last-failure"
PROBE_TTL_MS = 10_000

# bound on each backlog: its setting (telephony.config)
BOUNDS = {
    "calls_stream_length": "READY_MAX_CALLS_WAITING",
    "ready_events_length": "READY_MAX_READY_EVENTS",
    "buffered_events_length": "READY_MAX_BUFFERED_EVENTS",
    "unprocessed_events": "READY_MAX_UNPROCESSED_EVENTS",
}
BACKLOG_HELP = {
    "calls_stream_length": f"Inbound calls waiting for a worker ({handover.CALLS}, taken included)",
    "calls_stream_pending": f"Inbound calls a worker has taken and not finished ({handover.CALLS})",
    "ready_events_length": f"Stored callbacks waiting for the worker ({handover.READY_EVENTS})",
    "buffered_events_length": f"Callbacks kept in Redis until PostgreSQL takes them ({BUFFER})",
    "unprocessed_events": "Stored callbacks not yet processed nor parked (counted up to a cap)",
    "parked_events": "Stored callbacks parked for an admin (GET /api/v1/events/parked)",
    "rq_queue_length": "Jobs waiting on the urgent rq queue",
    "rq_counting_queue_length": "Jobs waiting on the counting rq queue",
}


@dataclass
class Backlog:
    values: dict[str, int | None] = field(default_factory=dict)
    unmeasured: dict[str, str] = field(default_factory=dict)


def _deadline(app: Flask) -> float:
    return float(app.config["READY_DEADLINE_SECONDS"])


def _reason(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first}"[:300]


def _through(app: Flask, name: str, breaker: Breaker, fn: Callable[..., T], *args: Any) -> T:
    """``fn`` under the deadline through ``breaker``; a breaker still open says why it opened."""
    failures: dict[str, str] = app.extensions.setdefault(LAST_FAILURE, {})
    try:
        result = breaker.call(_deadline(app), "health", fn, *args)
    except DependencyDown as exc:
        last = failures.get(name)
        raise DependencyDown(f"{exc}" + (f" ({last})" if last else "")) from None
    except Exception as exc:
        failures[name] = _reason(exc)
        raise
    return result


def _select_one(conn: Connection) -> int:
    return int(conn.execute(text("SELECT 1")).scalar_one())


def check_database(app: Flask) -> dict[str, Any]:
    db = database(app)

    def ask() -> int:
        with db.engine.connect() as conn:
            return _select_one(conn)

    _through(app, "database", db.breakers["health"], ask)
    return {}


def check_redis(app: Flask) -> dict[str, Any]:
    client = redis_client(app)
    key = redis_keys.READYZ.of(f"{socket.gethostname()}:{os.getpid()}")

    def write() -> object:
        return client.set(key, "1", px=PROBE_TTL_MS)  # a replica answers READONLY

    _through(app, "redis", app.extensions[BREAKER], write)
    return {}


def check_settings(app: Flask) -> dict[str, Any]:
    """The start-up checks again (``telephony.startup``): what is served on but must be fixed
    (no Twilio credentials), and what would have refused a start (a test's app, a config
    changed since)."""
    problems = startup.problems(app, current_settings())
    if problems:
        raise ValueError("; ".join(problems))
    return {}


def _redis_lengths(client: Redis) -> dict[str, int]:
    pipe = client.pipeline(transaction=False)
    pipe.xlen(handover.CALLS)
    pipe.xpending(handover.CALLS, handover.CALLS_GROUP)
    pipe.llen(handover.READY_EVENTS)
    pipe.xlen(BUFFER)
    pipe.llen(f"rq:queue:{URGENT_QUEUE_NAME}")
    pipe.llen(f"rq:queue:{QUEUE_NAME}")
    calls, pending, ready, buffered, urgent, counting = pipe.execute(raise_on_error=False)
    for value in (calls, ready, buffered, urgent, counting):
        if isinstance(value, Exception):
            raise value
    # no consumer group yet (no worker has run): nothing is pending
    taken = pending.get("pending", 0) if isinstance(pending, dict) else 0
    return {
        "calls_stream_length": int(calls),
        "calls_stream_pending": int(taken or 0),
        "ready_events_length": int(ready),
        "buffered_events_length": int(buffered),
        "rq_queue_length": int(urgent),
        "rq_counting_queue_length": int(counting),
    }


def _unprocessed(conn: Connection, cap: int, parked: bool) -> dict[str, int]:
    """Stored events waiting, counted up to ``cap`` (the count stops there: no index serves it,
    so a table of millions costs the same as one of thousands)."""
    found = {
        "unprocessed_events": int(
            conn.execute(
                text(
                    "SELECT count(*) FROM (SELECT 1 FROM call_events WHERE processed_at IS NULL"
                    " AND parked_reason IS NULL LIMIT :cap) AS waiting"
                ),
                {"cap": cap},
            ).scalar_one()
        )
    }
    if parked:
        found["parked_events"] = int(
            conn.execute(
                text("SELECT count(*) FROM call_events WHERE parked_reason IS NOT NULL")
            ).scalar_one()
        )
    return found


def bound(app: Flask, name: str) -> int:
    return int(app.config[BOUNDS[name]])


def backlog(app: Flask, *, parked: bool = False) -> Backlog:
    """The backlogs as they are now; what could not be read within the deadline is named in
    ``unmeasured`` with why."""
    found = Backlog()
    try:
        found.values.update(
            _through(app, "redis", app.extensions[BREAKER], _redis_lengths, redis_client(app))
        )
    except Exception as exc:
        found.unmeasured["redis"] = _reason(exc)
    db = database(app)
    cap = bound(app, "unprocessed_events") + 1

    def count() -> dict[str, int]:
        with db.engine.connect() as conn:
            return _unprocessed(conn, cap, parked)

    # counted only while PostgreSQL is up, and outside its breaker: a count that fails (or a
    # schema not migrated yet) is not PostgreSQL failing the webhooks
    try:
        health = db.breakers["health"]
        if health.is_open:
            raise DependencyDown(f"{health.name} is being skipped after a failure")
        found.values.update(within_pool("health", _deadline(app), count))
    except Exception as exc:
        found.unmeasured["database"] = _reason(exc)
    return found


def check_backlog(app: Flask) -> dict[str, Any]:
    measured = backlog(app)
    over = [
        f"{name} is {measured.values[name]} (over {bound(app, name)})"
        for name in BOUNDS
        if (measured.values.get(name) or 0) > bound(app, name)
    ]
    detail: dict[str, Any] = dict(measured.values)
    if measured.unmeasured:
        detail["unmeasured"] = measured.unmeasured
    if over:
        raise BacklogOver("; ".join(over), detail)
    return detail


class BacklogOver(RuntimeError):
    def __init__(self, message: str, detail: dict[str, Any]) -> None:
        super().__init__(message)
        self.detail = detail


CHECKS: dict[str, Callable[[Flask], dict[str, Any]]] = {
    "database": check_database,
    "redis": check_redis,
    "settings": check_settings,
    "backlog": check_backlog,
}


def readiness(app: Flask) -> tuple[bool, dict[str, Any]]:
    """Every check, each with ``ok``, how long it took, and ``reason`` when it failed."""
    checks: dict[str, Any] = {}
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            outcome: dict[str, Any] = {"ok": True, **check(app)}
        except BacklogOver as exc:
            outcome = {"ok": False, "reason": str(exc), **exc.detail}
        except Exception as exc:
            outcome = {"ok": False, "reason": _reason(exc)}
        outcome["ms"] = round((time.perf_counter() - started) * 1000, 1)
        checks[name] = outcome
    return all(c["ok"] for c in checks.values()), checks


def _uncached(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def _healthz() -> Response:
    return _uncached(jsonify(status="ok"))


def _readyz() -> Response:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    ready, checks = readiness(app)
    response = jsonify(status="ready" if ready else "not ready", checks=checks)
    response.status_code = 200 if ready else 503
    return _uncached(response)


def init_app(app: Flask) -> None:
    app.extensions[BREAKER] = Breaker("redis (readiness)")
    app.add_url_rule("/healthz", "healthz", _healthz, methods=["GET"])
    app.add_url_rule("/readyz", "readyz", _readyz, methods=["GET"])
