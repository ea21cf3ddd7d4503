"""Breakers: callers skip a failing dependency for a moment instead of each waiting on it, and
one slow answer under load is not taken for an outage."""

from __future__ import annotations

import pytest

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


def test_once_the_cooldown_is_over_one_caller_probes_and_the_rest_still_skip(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [1000.0]
    monkeypatch.setattr("restrictions.resilience.time.monotonic", lambda: clock[0])
    breaker = Breaker("postgresql (test)", cooldown=3)
    breaker.failed()
    assert not breaker.allow()
    clock[0] += 3.1
    assert breaker.allow()  # this caller probes
    assert not breaker.allow() and not breaker.allow()  # the rest wait for its answer
    breaker.succeeded()
    assert breaker.allow() and breaker.allow() and not breaker.is_open


def test_a_probe_that_fails_keeps_it_open_for_another_cooldown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [1000.0]
    monkeypatch.setattr("restrictions.resilience.time.monotonic", lambda: clock[0])
    breaker = Breaker("postgresql (test)", cooldown=3, threshold=3)
    for _ in range(3):
        breaker.failed()
    clock[0] += 3.1
    assert breaker.allow()
    breaker.failed()  # the probe failed: open again at once, not after three more
    assert not breaker.allow()
    clock[0] += 3.1
    assert breaker.allow()
