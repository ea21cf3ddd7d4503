"""What callguard does when something it depends on fails. Written once, here.

The rule: a caller is never dropped. Redis errors fail open (to PostgreSQL, or to the default
route); anything on the call path runs under a deadline so a hung dependency cannot hold a call.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import ParamSpec, TypeVar

from redis.exceptions import RedisError

log = logging.getLogger("callguard.resilience")

P = ParamSpec("P")
T = TypeVar("T")

# Threads for deadline-bounded work, one pool per kind of work (bulkheads): a hung PostgreSQL
# costs a pool its threads, never a caller, and storing callbacks cannot starve the call path.
_pools = {
    "call-path": ThreadPoolExecutor(max_workers=16, thread_name_prefix="callguard-call-path"),
    "callbacks": ThreadPoolExecutor(max_workers=16, thread_name_prefix="callguard-callbacks"),
}


class DeadlineExceeded(TimeoutError):
    """Work on the call path did not finish in time."""


def within(seconds: float, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run ``fn`` and return its result, or raise DeadlineExceeded after ``seconds``.

    ``fn`` runs in another thread: give it what it needs as arguments (no Flask globals) and let it
    open and close its own database session.
    """
    return within_pool("call-path", seconds, fn, *args, **kwargs)


def within_pool(
    pool: str, seconds: float, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """``within``, on the named pool of threads."""
    future = _pools[pool].submit(fn, *args, **kwargs)
    try:
        return future.result(timeout=seconds)
    except FutureTimeout:
        future.cancel()
        raise DeadlineExceeded(
            f"{getattr(fn, '__name__', fn)} took longer than {seconds}s"
        ) from None


def fail_open(default: T) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """On a Redis error, log it and return ``default`` instead of failing the caller."""

    def decorate(fn: Callable[P, T]) -> Callable[P, T]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            try:
                return fn(*args, **kwargs)
            except RedisError:
                log.exception("redis unavailable in %s; carrying on without it", fn.__qualname__)
                return default

        return wrapper

    return decorate


class Breaker:
    """A circuit breaker for one dependency of one process: after a failure, callers skip it for
    ``cooldown`` seconds (going straight to their fallback) instead of each waiting out its own
    deadline; then one call at a time probes it again."""

    def __init__(self, name: str, cooldown: float = 3.0) -> None:
        self.name = name
        self.cooldown = cooldown
        self._open_until = 0.0

    def allow(self) -> bool:
        now = time.monotonic()
        if now < self._open_until:
            return False
        if self._open_until:
            self._open_until = now + self.cooldown  # this caller probes; the rest wait
        return True

    def failed(self) -> None:
        if not self._open_until:
            log.warning("%s failing: skipping it for %.0f s at a time", self.name, self.cooldown)
        self._open_until = time.monotonic() + self.cooldown

    def succeeded(self) -> None:
        if self._open_until:
            log.info("%s is back", self.name)
        self._open_until = 0.0

    def call(
        self, seconds: float, pool: str, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``within_pool`` through the breaker: raises DependencyDown at once while it is open."""
        if not self.allow():
            raise DependencyDown(f"{self.name} is being skipped after a failure")
        try:
            result = within_pool(pool, seconds, fn, *args, **kwargs)
        except Exception:
            self.failed()
            raise
        self.succeeded()
        return result


class DependencyDown(RuntimeError):
    """A dependency is being skipped by its breaker."""


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says PostgreSQL could not do the work now (down, refusing, hung, out of
    connections), as opposed to a bug or bad data: such work is tried again until it succeeds,
    never given up after a number of tries."""
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    if isinstance(exc, PoolTimeout | DeadlineExceeded | DependencyDown):
        return True
    if isinstance(exc, DBAPIError):
        from sqlalchemy.exc import InterfaceError, OperationalError

        return bool(exc.connection_invalidated) or isinstance(
            exc, OperationalError | InterfaceError
        )
    return False
