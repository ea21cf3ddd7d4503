"""Callbacks survive a database outage: when PostgreSQL refuses or hangs, Twilio still gets a 204
for every event, which waits in Redis and is moved into PostgreSQL exactly once when it is back;
only when Redis cannot take it either does Twilio get a 503 (and retry)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select, text

from restrictions import counting, events
from restrictions.models import Call, CallEvent
from telephony.database import database
from telephony.redis_store import redis_client
from tests.calls import call_row, put_together, status_event

DOWN = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"


def stored_events(app: Flask) -> int:
    with database(app).sessions() as sess:
        return int(sess.scalar(select(func.count()).select_from(CallEvent)) or 0)


def sweep(app: Flask) -> int:
    from handlers.contact import sweep_call_events

    with app.app_context():
        return sweep_call_events()


def test_a_status_callback_during_an_outage_is_kept_then_counted_once(
    app: Flask,
    app_with: Callable[..., Flask],
    twilio: Any,
    make_customer: Callable[..., Any],
) -> None:
    customer = make_customer()
    twilio.client = app_with(DATABASE_URL=DOWN).test_client()
    sid = "CA" + "1" * 32
    for _ in range(2):  # Twilio's retry of the same event, during the outage
        response = status_event(twilio, sid, "completed", 3, CallDuration="120")
        assert response.status_code == 204
    assert redis_client(app).xlen(events.BUFFER) == 2
    assert stored_events(app) == 0
    sweep(app)  # PostgreSQL is back: the worker's sweep moves them across
    sweep(app)
    assert redis_client(app).xlen(events.BUFFER) == 0
    assert stored_events(app) == 1
    stats = counting.window(redis_client(app), f"customer:{customer.id}", datetime.now(UTC), 60)
    assert (stats.calls, stats.seconds) == (1, 120)
    assert call_row(app, sid).duration_seconds == 120


def test_a_hung_database_costs_a_callback_its_deadline_not_the_event(
    app: Flask, app_with: Callable[..., Flask], twilio: Any, hung_port: int
) -> None:
    hung = app_with(
        DATABASE_URL=f"postgresql+psycopg://postgres@127.0.0.1:{hung_port}/x",
        CALLBACK_DEADLINE_SECONDS=0.2,
    )
    twilio.client = hung.test_client()
    response = status_event(twilio, "CA" + "2" * 32, "completed", 3, CallDuration="30")
    assert response.status_code == 204
    assert redis_client(app).xlen(events.BUFFER) == 1


def test_a_conference_event_kept_in_redis_is_applied_when_moved_across(
    app: Flask, app_with: Callable[..., Flask], twilio: Any
) -> None:
    caller = "CA" + "3" * 32
    twilio.client = app_with(DATABASE_URL=DOWN).test_client()
    put_together(twilio, caller, "CA" + "a" * 32)
    sweep(app)
    with database(app).sessions() as sess:
        call = sess.scalar(select(Call).where(Call.call_sid == caller))
    assert call is not None and call.answered_at is not None


def test_with_neither_postgresql_nor_redis_twilio_is_asked_to_retry(
    app_with: Callable[..., Flask], twilio: Any
) -> None:
    twilio.client = app_with(DATABASE_URL=DOWN, REDIS_URL="redis://127.0.0.1:1/0").test_client()
    response = status_event(twilio, "CA" + "4" * 32, "completed", 3, CallDuration="30")
    assert response.status_code == 503
    assert "try again" in response.get_json()["error"]


def test_after_postgresql_restarts_the_next_callback_is_stored_not_buffered(
    app: Flask, twilio: Any, engine: Any
) -> None:
    first = status_event(twilio, "CA" + "2" * 32, "completed", 3, CallDuration="60")
    assert first.status_code == 204
    # a restart: every connection callguard holds is cut by the server
    with engine.connect() as admin:
        cut = admin.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = 'callguard' AND datname = current_database()"
            )
        ).scalar()
    assert cut and cut >= 1
    second = status_event(twilio, "CA" + "3" * 32, "completed", 3, CallDuration="60")
    assert second.status_code == 204
    assert stored_events(app) == 2  # the dead connection was replaced, not given up on
    assert redis_client(app).xlen(events.BUFFER) == 0
    assert database(app).breakers["callbacks"].allow()


def test_callbacks_failing_to_store_do_not_turn_callers_away_from_postgresql(
    app: Flask,
    twilio: Any,
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
    run_jobs: Callable[[], int],
    request: pytest.FixtureRequest,
) -> None:
    """A slow callback insert opens the callbacks' breaker only: a restricted caller arriving
    just then (not in the routing cache) is still read from PostgreSQL and routed by their
    restriction, and the next callback is kept in Redis rather than waiting on PostgreSQL."""
    customer = make_customer(numbers=("+447400100009",))
    restrict(customer, kind="written_only")
    redis_client(app).flushdb()  # the routing cache is empty: the look-up reads PostgreSQL
    db = database(app)
    db.breakers["callbacks"].failed()
    request.addfinalizer(db.breakers["callbacks"].succeeded)  # the engine outlives this test
    response = status_event(twilio, "CA" + "5" * 32, "completed", 3, CallDuration="30")
    assert response.status_code == 204
    assert redis_client(app).xlen(events.BUFFER) == 1  # kept, PostgreSQL not waited on
    params = twilio.call_params("+447400100009")
    answered = twilio.post("/twilio/voice/incoming", params)
    assert answered.status_code == 200
    assert b"<Dial" not in answered.data  # the message for writing only, not the default line
    assert db.breaker.allow() and not db.breaker.is_open
    run_jobs()
    assert call_row(app, params["CallSid"]).route == "written_only"
