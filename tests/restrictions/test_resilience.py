"""Breakers: callers skip a failing dependency for a moment instead of each waiting on it, and
one slow answer under load is not taken for an outage."""

from __future__ import annotations

from restrictions.resilience import Breaker


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
