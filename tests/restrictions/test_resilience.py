"""Breakers: callers skip a failing dependency for a moment instead of each waiting on it, and
one slow answer under load is not taken for an outage."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.exc import OperationalError

from restrictions.resilience import Breaker, database_unavailable


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The breakers' monotonic clock, moved on by the test: ``clock[0] += 3.1``."""
    now = [1000.0]
    monkeypatch.setattr("restrictions.resilience.time.monotonic", lambda: now[0])
    return now


def test_a_breaker_opens_after_its_threshold_of_failures_in_a_row() -> None:
    breaker = Breaker("postgresql (test)", cooldown=60, threshold=3)
    breaker.failed()
    breaker.failed()
    assert breaker.allow() and not breaker.is_open  # two slow answers: callers still try
    breaker.failed()
    assert breaker.is_open and not breaker.allow()


def test_a_success_between_failures_starts_the_count_again() -> None:
    breaker = Breaker("postgresql (test)", cooldown=60, threshold=2)
    breaker.failed()
    breaker.succeeded()
    breaker.failed()
    assert breaker.allow() and not breaker.is_open


def test_by_default_one_failure_opens_it() -> None:
    breaker = Breaker("redis (test)", cooldown=60)
    breaker.failed()
    assert breaker.is_open and not breaker.allow()


def test_once_the_cooldown_is_over_one_caller_probes_and_the_rest_still_skip(
    clock: list[float],
) -> None:
    breaker = Breaker("postgresql (test)", cooldown=3)
    breaker.failed()
    assert not breaker.allow()
    clock[0] += 3.1
    assert breaker.allow()  # this caller probes
    assert not breaker.allow() and not breaker.allow()  # the rest wait for its answer
    breaker.succeeded()
    assert breaker.allow() and breaker.allow() and not breaker.is_open


def test_a_probe_that_fails_keeps_it_open_for_another_cooldown(clock: list[float]) -> None:
    breaker = Breaker("postgresql (test)", cooldown=3, threshold=3)
    for _ in range(3):
        breaker.failed()
    clock[0] += 3.1
    assert breaker.allow()
    breaker.failed()  # the probe failed: open again at once, not after three more
    assert not breaker.allow()
    clock[0] += 3.1
    assert breaker.allow()


def failing(exc: Exception) -> Callable[[], None]:
    def work() -> None:
        raise exc

    return work


def test_an_error_that_is_not_an_outage_leaves_it_closed_and_is_raised_all_the_same() -> None:
    """One caller's bad record (a bug, bad data) says PostgreSQL answered: the rest still use it."""
    breaker = Breaker("postgresql (test)", cooldown=60, outage=database_unavailable)
    for _ in range(5):
        with pytest.raises(ValueError):
            breaker.call(1.0, "callbacks", failing(ValueError("bad data in one record")))
    assert not breaker.is_open and breaker.allow()
    down = OperationalError("SELECT 1", {}, Exception("server closed the connection"))
    with pytest.raises(OperationalError):
        breaker.call(1.0, "callbacks", failing(down))
    assert breaker.is_open and not breaker.allow()


def test_a_probe_that_meets_a_bug_closes_it_since_postgresql_answered(clock: list[float]) -> None:
    breaker = Breaker("postgresql (test)", cooldown=3, outage=database_unavailable)
    breaker.failed()
    clock[0] += 3.1
    with pytest.raises(KeyError):
        breaker.call(1.0, "callbacks", failing(KeyError("payload")))
    assert not breaker.is_open and breaker.allow() and breaker.allow()


def test_without_a_rule_for_outages_every_error_counts() -> None:
    breaker = Breaker("redis (test)", cooldown=60)
    with pytest.raises(ValueError):
        breaker.call(1.0, "callbacks", failing(ValueError("x")))
    assert breaker.is_open
