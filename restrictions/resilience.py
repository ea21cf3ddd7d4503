"""What callguard does when something it depends on fails. Written once, here.

The rule: a caller is never dropped. Redis errors fail open (to PostgreSQL, or to the default
route); anything on the call path runs under a deadline so a hung dependency cannot hold a call.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, ParamSpec, TypeVar

from redis.exceptions import RedisError

log = logging.getLogger("callguard.resilience")

P = ParamSpec("P")
T = TypeVar("T")

# Threads for deadline-bounded work, one pool per kind of work (bulkheads): a hung PostgreSQL
# costs a pool its threads, never a caller, and storing callbacks cannot starve the call path.
_pools = {
    "call-path": ThreadPoolExecutor(max_workers=16, thread_name_prefix="callguard-call-path"),
    "callbacks": ThreadPoolExecutor(max_workers=16, thread_name_prefix="callguard-callbacks"),
    # readiness and metrics probes: a hung dependency costs these, never a caller's threads
    "health": ThreadPoolExecutor(max_workers=4, thread_name_prefix="callguard-health"),
}


_UNSET = object()
_carried: list[contextvars.ContextVar[Any]] = []


def carry_context(var: contextvars.ContextVar[Any]) -> None:
    """Work run under a deadline sees ``var`` as its caller had it (the web layer's log context:
    the call and request a line is about)."""
    if var not in _carried:
        _carried.append(var)


class DeadlineExceeded(TimeoutError):
    """Work on the call path did not finish in time."""


def within_pool(
    pool: str, seconds: float, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """``within``, on the named pool of threads (carrying the context variables named by
    ``carry_context``, so what it logs names the same call; nothing else of the caller's)."""
    carried = [(var, value) for var in _carried if (value := var.get(_UNSET)) is not _UNSET]

    def carrying() -> T:
        for var, value in carried:
            var.set(value)
        return fn(*args, **kwargs)

    future: Future[T] = _pools[pool].submit(contextvars.Context().run, carrying)
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


_breaker_listeners: list[Callable[[str, bool], None]] = []


def on_breaker_change(listener: Callable[[str, bool], None]) -> None:
    """Have ``listener(name, is_open)`` told when any breaker opens or closes, and when one is
    made (closed): how the web layer's metrics see breakers without the domain knowing them."""
    if listener not in _breaker_listeners:
        _breaker_listeners.append(listener)


def _tell(name: str, is_open: bool) -> None:
    for listener in list(_breaker_listeners):
        try:
            listener(name, is_open)
        except Exception:
            log.exception("a breaker listener failed for %s", name)


class Breaker:
    """A circuit breaker for one dependency of one process: after a failure, callers skip it for
    ``cooldown`` seconds (going straight to their fallback) instead of each waiting out its own
    deadline; then one call at a time probes it again."""

    def __init__(
        self,
        name: str,
        cooldown: float = 3.0,
        threshold: int = 1,
        outage: Callable[[BaseException], bool] | None = None,
    ) -> None:
        self.name = name
        self.cooldown = cooldown
        # which errors say the dependency is failing (None: all of them); any other (a bug, bad
        # data in one request) means it answered, so one caller's bad record never turns the
        # rest away
        self.outage = outage
        # failures in a row before it opens: one slow query under load is not an outage, and
        # opening on it sent every caller of the next few seconds down the fallback
        self.threshold = max(threshold, 1)
        self._failures = 0
        self._open_until = 0.0
        _tell(name, False)

    @property
    def is_open(self) -> bool:
        """Whether its last use failed (skipped, or being probed again)."""
        return bool(self._open_until)

    def allow(self) -> bool:
        now = time.monotonic()
        if now < self._open_until:
            return False
        if self._open_until:
            self._open_until = now + self.cooldown  # this caller probes; the rest wait
        return True

    def failed(self) -> None:
        self._failures += 1
        if not self._open_until and self._failures < self.threshold:
            return  # not yet: the next caller still tries
        opened = not self._open_until
        if opened:
            log.warning("%s failing: skipping it for %.0f s at a time", self.name, self.cooldown)
        self._open_until = time.monotonic() + self.cooldown
        if opened:
            _tell(self.name, True)

    def succeeded(self) -> None:
        self._failures = 0
        if self._open_until:
            log.info("%s is back", self.name)
            self._open_until = 0.0
            _tell(self.name, False)

    def call(
        self, seconds: float, pool: str, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``within_pool`` through the breaker: raises DependencyDown at once while it is open."""
        if not self.allow():
            raise DependencyDown(f"{self.name} is being skipped after a failure")
        try:
            result = within_pool(pool, seconds, fn, *args, **kwargs)
        except Exception as exc:
            if self.outage is None or self.outage(exc):
                self.failed()
            else:
                self.succeeded()
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
