"""An alert is decided once: after a supervisor dismissed it, the calls it covered never open it
again (not the next call in the same window, not a rebuild of Redis from PostgreSQL); only calls
made after the dismissal count towards a new one. Driven with signed status callbacks, a real rq
worker and the alerts API."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import time_machine
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis

from handlers.contact import sweep_call_events
from restrictions import counting, rebuild
from telephony.redis_store import redis_client
from tests.calls import status_event
from tests.conftest import Staff

T0 = datetime(2026, 6, 2, 9, 0, tzinfo=UTC)  # a Tuesday morning
CUSTOMER = "+447400100001"
HOURLY = "calls-per-hour"  # 5 calls within 60 minutes (the tests' settings)


def call(twilio: Any, run_jobs: Callable[[], int], minutes: int) -> str:
    """A 30-second call from the customer that ended ``minutes`` after T0, counted by a worker."""
    sid: str = twilio.new_call_sid()
    with time_machine.travel(T0 + timedelta(minutes=minutes), tick=False):
        done = status_event(twilio, sid, "completed", 3, from_=CUSTOMER, CallDuration="30")
        assert done.status_code == 204
        run_jobs()
    return sid


def hourly_alerts(client: FlaskClient, staff: Staff) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/alerts?rule={HOURLY}", headers=staff.headers)
    assert response.status_code == 200
    found: list[dict[str, Any]] = sorted(response.get_json()["alerts"], key=lambda a: a["id"])
    return found


def dismiss(client: FlaskClient, staff: Staff, alert_id: int, minutes: int) -> None:
    with time_machine.travel(T0 + timedelta(minutes=minutes), tick=False):
        response = client.post(
            f"/api/v1/alerts/{alert_id}/dismiss",
            json={"reason": "A burst pipe: every call was about the one leak"},
            headers=staff.headers,
        )
    assert response.status_code == 200, response.get_json()


def redis_restarts_empty_and_is_rebuilt(app: Flask, redis_conn: Redis, minutes: int) -> None:
    redis_conn.flushdb()
    assert rebuild.lost(redis_client(app))
    with time_machine.travel(T0 + timedelta(minutes=minutes), tick=False):
        sweep_call_events()  # the worker's sweep rebuilds counters and alerts from PostgreSQL
    assert not rebuild.lost(redis_client(app))


def test_a_dismissed_alert_stays_dismissed_and_only_calls_after_it_open_a_new_one(
    app: Flask,
    client: FlaskClient,
    twilio: Any,
    run_jobs: Callable[[], int],
    supervisor: Staff,
    make_customer: Callable[..., Any],
    redis_conn: Redis,
) -> None:
    customer = make_customer()
    first_calls = [call(twilio, run_jobs, m) for m in (1, 2, 3, 4, 5)]
    (first,) = hourly_alerts(client, supervisor)
    assert first["status"] == "open"
    assert [c["call_sid"] for c in first["evidence"]["calls"]] == first_calls
    dismiss(client, supervisor, first["id"], minutes=10)

    # the next calls fall in the same hour as the first five: no re-opening for those
    sixth = call(twilio, run_jobs, 15)
    assert [a["status"] for a in hourly_alerts(client, supervisor)] == ["dismissed"]
    later = [sixth] + [call(twilio, run_jobs, m) for m in (20, 25, 30)]
    assert [a["status"] for a in hourly_alerts(client, supervisor)] == ["dismissed"]
    marks = counting.decided_marks(redis_client(app), f"customer:{customer.id}")
    assert marks[HOURLY] == (T0 + timedelta(minutes=10)).timestamp()

    # Redis lost everything: the rebuild from PostgreSQL remembers the dismissal too
    redis_restarts_empty_and_is_rebuilt(app, redis_conn, minutes=31)
    assert [a["status"] for a in hourly_alerts(client, supervisor)] == ["dismissed"]
    marks = counting.decided_marks(redis_client(app), f"customer:{customer.id}")
    assert marks[HOURLY] == (T0 + timedelta(minutes=10)).timestamp()

    # a fifth call after the dismissal is a new excess: a new alert, with those five alone
    later.append(call(twilio, run_jobs, 35))
    first_again, second = hourly_alerts(client, supervisor)
    assert (first_again["id"], first_again["status"]) == (first["id"], "dismissed")
    assert second["status"] == "open"
    assert [c["call_sid"] for c in second["evidence"]["calls"]] == later
    assert second["evidence"]["calls_in_window"] == 5

    # once that one is dismissed too, neither comes back after another rebuild
    dismiss(client, supervisor, second["id"], minutes=40)
    redis_restarts_empty_and_is_rebuilt(app, redis_conn, minutes=41)
    call(twilio, run_jobs, 45)
    assert [a["status"] for a in hourly_alerts(client, supervisor)] == ["dismissed", "dismissed"]


def test_calls_that_started_before_the_dismissal_do_not_count_whenever_they_are_counted(
    app: Flask,
    client: FlaskClient,
    twilio: Any,
    run_jobs: Callable[[], int],
    supervisor: Staff,
    make_customer: Callable[..., Any],
) -> None:
    """A call that began before the dismissal but whose ``completed`` callback is processed after
    it belongs to what was decided: it is not a new excess."""
    make_customer()
    for m in (1, 2, 3, 4, 5):
        call(twilio, run_jobs, m)
    (first,) = hourly_alerts(client, supervisor)
    dismiss(client, supervisor, first["id"], minutes=10)
    # four calls after the dismissal, and one long call that began at minute 8 and ended at 40
    for m in (15, 20, 25, 30):
        call(twilio, run_jobs, m)
    sid = twilio.new_call_sid()
    with time_machine.travel(T0 + timedelta(minutes=40), tick=False):
        status_event(twilio, sid, "completed", 3, from_=CUSTOMER, CallDuration=str(32 * 60))
        run_jobs()
    assert [a["status"] for a in hourly_alerts(client, supervisor)] == ["dismissed"]
    call(twilio, run_jobs, 45)  # the fifth after the dismissal
    assert [a["status"] for a in hourly_alerts(client, supervisor)] == ["dismissed", "open"]
