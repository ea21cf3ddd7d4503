"""rq jobs: plain module-level functions that take ids, enqueued after the commit they depend on.

``@job`` makes a function run inside a Flask app context, whether it is called inline (zero-setup
default, tests) or by ``callguard worker``. ``enqueue`` is the only way work is queued, and it
applies the Redis-failure policy: if Redis is down the work is logged as not queued, and the
scheduled sweeps pick up what is durable in PostgreSQL.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from flask import Flask, current_app, has_app_context
from redis.exceptions import RedisError
from rq import Retry
from sqlalchemy.orm import Session

from restrictions.db import after_commit

log = logging.getLogger("callguard.jobs")

P = ParamSpec("P")
T = TypeVar("T")

_worker_app: Flask | None = None


def _app() -> Flask:
    global _worker_app
    if _worker_app is None:
        from telephony import create_app

        _worker_app = create_app()
    return _worker_app


def job(fn: Callable[P, T]) -> Callable[P, T]:
    """Run ``fn`` in a fresh app context of its own, so each job has its own session and ``g``
    (the current app's when one is active, inline or in tests; else the worker's app)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        app = current_app._get_current_object() if has_app_context() else _app()  # type: ignore[attr-defined]
        with app.app_context():
            return fn(*args, **kwargs)

    return wrapper


def enqueue(
    fn: Callable[..., Any],
    *args: Any,
    job_id: str | None = None,
    retry: bool = True,
    call_path: bool = False,
    **kwargs: Any,
) -> bool:
    """Queue ``fn(*args)``; returns False (and logs) when Redis is unavailable.

    ``call_path=True`` uses the fast Redis client, for enqueueing while a caller waits.
    """
    from telephony.redis_store import queue

    try:
        queue(call_path=call_path).enqueue(
            fn,
            args=args,
            kwargs=kwargs,
            job_id=job_id,
            retry=Retry(max=3, interval=[5, 30, 120]) if retry else None,
            result_ttl=3600,
            failure_ttl=7 * 24 * 3600,
        )
    except RedisError:
        log.exception("could not queue %s%r: redis unavailable", fn.__qualname__, args)
        return False
    return True


def enqueue_after_commit(sess: Session, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Queue ``fn`` once the session commits, so the job always finds the rows it is given."""
    after_commit(sess, enqueue, fn, *args, **kwargs)
