"""telephony.callbacks: every Twilio callback is stored in PostgreSQL before anything acts on it,
within its deadline, or else kept in Redis and moved across exactly once; Twilio gets a 204 for
every event held (retries and duplicates stored once) and a 503 only when neither could take it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any, cast

import pytest
import time_machine
from flask import Flask
from prometheus_client import REGISTRY
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from restrictions import counting, events
from restrictions.events import EventRecord, store_record
from restrictions.models import CallEvent, Voicemail
from telephony import callbacks
from telephony.database import database
from telephony.handover import READY_EVENTS
from telephony.redis_store import redis_client
from tests.calls import call_row, status_event
from tests.fake_twilio import ACCOUNT_SID

DOWN = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"
NO_REDIS = "redis://127.0.0.1:1/0"
CALLER = "CA" + "c" * 32
PERSON = "CA" + "e" * 32
T0 = datetime(2026, 6, 2, 9, 30, tzinfo=UTC)
DEADLINE = 0.2  # seconds; PostgreSQL's lock_timeout (2 s) would end a wait without it


# --- helpers -------------------------------------------------------------------------------------


def stored(app: Flask, source: str | None = None) -> list[CallEvent]:
    with database(app).sessions() as sess:
        query = select(CallEvent).order_by(CallEvent.id)
        if source is not None:
            query = query.where(CallEvent.source == source)
        return list(sess.scalars(query))


def in_redis(app: Flask) -> int:
    return int(redis_client(app).xlen(events.BUFFER))


def sweep(app: Flask) -> int:
    from handlers.contact import sweep_call_events

    with app.app_context():
        return sweep_call_events()


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def status_record(call_sid: str = CALLER, **payload: str) -> EventRecord:
    return EventRecord(
        source="status",
        resource_sid=call_sid,
        call_sid=call_sid,
        sequence=3,
        event="completed",
        payload={"CallSid": call_sid, "CallStatus": "completed", **payload},
    )


def conference_params(participant: str, sequence: int, at: datetime) -> dict[str, str]:
    """A conference callback for the caller's conference (cg-<CallSid>), stamped ``at``."""
    return {
        "AccountSid": ACCOUNT_SID,
        "ConferenceSid": "CF" + CALLER[2:],
        "FriendlyName": f"cg-{CALLER}",
        "StatusCallbackEvent": "participant-join",
        "SequenceNumber": str(sequence),
        "CallSid": participant,
        "Timestamp": format_datetime(at, usegmt=False),
    }


def status_params(at: datetime, duration: int) -> dict[str, str]:
    """The caller's leg ended, as Twilio reports it (the same form on every retry)."""
    return {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "CallSid": CALLER,
        "CallStatus": "completed",
        "CallDuration": str(duration),
        "Direction": "inbound",
        "From": "+447400100001",
        "To": "+441332000000",
        "SequenceNumber": "3",
        "CallbackSource": "call-progress-events",
        "Timestamp": format_datetime(at, usegmt=False),
    }


@contextmanager
def call_events_locked(engine: Engine) -> Iterator[None]:
    """PostgreSQL up but unable to take a callback in time: ``call_events`` is locked against
    inserts until the block ends. On leaving, waits (on the lock, not a clock) until the insert
    that was queued behind it has committed."""
    with engine.connect() as admin:
        admin.begin()
        admin.execute(text("LOCK TABLE call_events IN EXCLUSIVE MODE"))
        yield
        admin.commit()  # the queued insert goes first...
        admin.begin()
        admin.execute(text("LOCK TABLE call_events IN EXCLUSIVE MODE"))  # ...this waits for it
        admin.commit()


def waiting_on_a_lock(engine: Engine) -> int:
    """callguard's connections waiting on a lock right now."""
    with engine.connect() as conn:
        return int(
            conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'callguard'"
                    " AND datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
            or 0
        )


def timed(post: Callable[[], Any]) -> tuple[Any, float]:
    began = time.perf_counter()
    response = post()
    return response, time.perf_counter() - began


# --- stored first, handed over once --------------------------------------------------------------


def test_a_callback_is_stored_before_it_is_processed_and_handed_over_once(
    app: Flask, twilio: Any, run_jobs: Callable[[], int]
) -> None:
    params = status_params(T0, 30)
    for _ in range(3):  # the callback, Twilio's retry, and a duplicate
        assert twilio.post("/twilio/voice/status", params).status_code == 204
    (event,) = stored(app)
    assert event.processed_at is None  # stored, not yet processed: that is the worker's
    assert event.payload == params  # as Twilio sent it
    assert redis_client(app).lrange(READY_EVENTS, 0, -1) == [str(event.id).encode()]
    assert in_redis(app) == 0
    # what keep_event tells its caller: the id of an event it has just stored, None for a retry
    assert callbacks.keep_event(app, status_record()) is None
    run_jobs()
    (event,) = stored(app)
    assert event.processed_at is not None


def test_keep_commits_the_work_in_a_session_of_its_own_and_returns_its_result(
    app: Flask,
) -> None:
    record = status_record()
    taken = counter("callguard_events_stored_total", source="status", store="postgresql")

    def work(sess: Session) -> tuple[str, int | None]:
        return "applied", store_record(sess, record)

    result = callbacks.keep(app, record, work)
    (event,) = stored(app)  # read from another session: committed
    assert result == ("applied", event.id)
    assert counter("callguard_events_stored_total", source="status", store="postgresql") == (
        taken + 1
    )
    assert in_redis(app) == 0


def test_when_postgresql_fails_mid_work_nothing_of_it_stays_and_the_record_waits_in_redis(
    app: Flask,
) -> None:
    record = status_record(CallerName="Zoë Ó Briain")
    kept = counter("callguard_events_stored_total", source="status", store="redis")

    def work(sess: Session) -> str:
        store_record(sess, record)
        raise OperationalError("COMMIT", {}, Exception("server closed the connection"))

    assert callbacks.keep(app, record, work) is None
    assert stored(app) == []  # the half-done transaction was rolled back
    entries = cast(list[tuple[bytes, dict[bytes, bytes]]], redis_client(app).xrange(events.BUFFER))
    ((_, fields),) = entries
    assert EventRecord(**json.loads(fields[b"event"])) == record  # every field, as received
    assert counter("callguard_events_stored_total", source="status", store="redis") == kept + 1
    assert database(app).breakers["callbacks"].is_open  # the next ones go straight to Redis
    assert not database(app).breaker.is_open  # and callers still read PostgreSQL


def test_a_bug_in_one_callbacks_work_keeps_it_in_redis_but_does_not_turn_the_next_away(
    app: Flask,
) -> None:
    """PostgreSQL answered: the breaker stays closed, so the next callback is stored at once."""
    broken = status_record()

    def work(sess: Session) -> str:
        store_record(sess, broken)
        raise ValueError("a bug, or data nobody expected")

    assert callbacks.keep(app, broken, work) is None
    assert in_redis(app) == 1  # still kept, for the sweep
    assert not database(app).breakers["callbacks"].is_open
    after = status_record(PERSON)
    assert callbacks.keep_event(app, after) is not None  # straight into PostgreSQL
    assert in_redis(app) == 1


# --- within the deadline -------------------------------------------------------------------------


def test_a_callback_postgresql_is_too_slow_for_is_answered_in_time_and_stored_once(
    app: Flask, twilio: Any, engine: Engine, make_customer: Callable[..., Any]
) -> None:
    customer = make_customer()
    app.config["CALLBACK_DEADLINE_SECONDS"] = DEADLINE
    with call_events_locked(engine):
        response, seconds = timed(
            lambda: status_event(twilio, CALLER, "completed", 3, CallDuration="120")
        )
        assert response.status_code == 204
        assert seconds < 1.0  # its deadline, not PostgreSQL's lock_timeout of 2 s
        assert in_redis(app) == 1
        assert waiting_on_a_lock(engine) == 1  # its insert is still queued behind the lock
        assert database(app).breakers["callbacks"].is_open
        assert not database(app).breaker.is_open  # callers are not turned away from PostgreSQL
    # the late insert has landed, and the copy in Redis is moved across: one event, counted once
    sweep(app)
    assert in_redis(app) == 0
    (event,) = stored(app)
    assert event.processed_at is not None
    assert call_row(app, CALLER).duration_seconds == 120
    stats = counting.window(redis_client(app), f"customer:{customer.id}", datetime.now(UTC), 60)
    assert (stats.calls, stats.seconds) == (1, 120)


def test_a_conference_join_applied_after_its_deadline_still_uses_the_weekly_allowance(
    app: Flask,
    twilio: Any,
    engine: Engine,
    make_customer: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The webhook gave up at the deadline and kept the event in Redis; the transaction it was
    waiting for committed later and applied the join. What follows from the join (the weekly
    allowance) is done by the thread that committed it, since the Redis copy is a no-op."""
    from telephony.webhooks import conference

    counted = threading.Event()
    real = conference.use_allowance

    def use_allowance(call_sid: str) -> None:
        real(call_sid)
        counted.set()

    monkeypatch.setattr(conference, "use_allowance", use_allowance)
    customer = make_customer()
    sweep(app)  # Redis was rebuilt from PostgreSQL once already, as in production
    redis = redis_client(app)
    counting.expect_allowance(redis, CALLER, customer.id)  # a call under a weekly allowance
    now = datetime.now(UTC).replace(microsecond=0)
    joined = twilio.post("/twilio/conference/events", conference_params(CALLER, 1, now))
    assert joined.status_code == 204
    app.config["CALLBACK_DEADLINE_SECONDS"] = DEADLINE
    with call_events_locked(engine):
        answered = conference_params(PERSON, 2, now + timedelta(seconds=5))
        assert twilio.post("/twilio/conference/events", answered).status_code == 204
        assert in_redis(app) == 1
        assert waiting_on_a_lock(engine) == 1
    assert counted.wait(10), "nothing used the allowance after the late commit"
    sweep(app)
    assert in_redis(app) == 0
    assert call_row(app, CALLER).answered_at == now + timedelta(seconds=5)
    assert counting.allowance_used(redis, customer.id, now - timedelta(days=1)) == 1


# --- neither store: Twilio is asked to retry -----------------------------------------------------


def conference_callback() -> tuple[str, str, dict[str, str]]:
    return "conference", "/twilio/conference/events", conference_params(CALLER, 1, T0)


def recording_callback() -> tuple[str, str, dict[str, str]]:
    params = {
        "AccountSid": ACCOUNT_SID,
        "CallSid": CALLER,
        "RecordingSid": "RE" + "1" * 32,
        "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/RE1",
        "RecordingStatus": "completed",
        "RecordingDuration": "14",
    }
    return "recording", f"/twilio/voice/recording?call_sid={CALLER}", params


def taskrouter_callback() -> tuple[str, str, dict[str, str]]:
    params = {
        "AccountSid": ACCOUNT_SID,
        "EventType": "reservation.accepted",
        "Sid": "EV" + "2" * 32,
        "TaskSid": "WT" + "3" * 32,
        "TaskAttributes": json.dumps({"call_sid": CALLER}),
        "WorkerName": "alex.agent",
        "WorkerAttributes": json.dumps({"contact_uri": "client:alex.agent"}),
        "Timestamp": str(int(T0.timestamp())),
    }
    return "taskrouter", "/twilio/taskrouter/events", params


@pytest.mark.parametrize(
    "callback",
    [conference_callback, recording_callback, taskrouter_callback],
    ids=["conference", "recording", "taskrouter"],
)
def test_with_neither_store_twilio_gets_a_503_and_its_retry_is_stored_once(
    app: Flask,
    app_with: Callable[..., Flask],
    twilio: Any,
    callback: Callable[[], tuple[str, str, dict[str, str]]],
) -> None:
    source, path, params = callback()
    not_kept = counter("callguard_events_not_kept_total", source=source)
    healthy = twilio.client
    twilio.client = app_with(DATABASE_URL=DOWN, REDIS_URL=NO_REDIS).test_client()
    refused = twilio.post(path, params)
    assert refused.status_code == 503
    assert "try again" in refused.get_json()["error"]
    assert counter("callguard_events_not_kept_total", source=source) == not_kept + 1
    assert stored(app) == [] and in_redis(app) == 0
    twilio.client = healthy  # both are back: Twilio retries, and then once more
    assert twilio.post(path, params).status_code == 204
    assert twilio.post(path, params).status_code == 204
    assert len(stored(app, source)) == 1
    assert in_redis(app) == 0


# --- retries and order across an outage ----------------------------------------------------------


def test_a_retry_on_either_side_of_an_outage_is_stored_and_counted_once(
    app: Flask,
    app_with: Callable[..., Flask],
    twilio: Any,
    run_jobs: Callable[[], int],
    make_customer: Callable[..., Any],
) -> None:
    customer = make_customer()
    params = status_params(T0, 120)
    healthy = twilio.client
    with time_machine.travel(T0, tick=False):
        twilio.client = app_with(DATABASE_URL=DOWN).test_client()
        assert twilio.post("/twilio/voice/status", params).status_code == 204
    assert in_redis(app) == 1
    with time_machine.travel(T0 + timedelta(minutes=1), tick=False):
        twilio.client = healthy  # PostgreSQL is back before the worker's sweep: Twilio retries
        assert twilio.post("/twilio/voice/status", params).status_code == 204
        run_jobs()
    with time_machine.travel(T0 + timedelta(minutes=10), tick=False):
        sweep(app)  # the copy kept in Redis finds the event already stored
    assert in_redis(app) == 0
    (event,) = stored(app)
    assert event.processed_at is not None
    call = call_row(app, CALLER)
    assert (call.ended_at, call.duration_seconds) == (T0, 120)
    stats = counting.window(redis_client(app), f"customer:{customer.id}", T0, 60)
    assert (stats.calls, stats.seconds) == (1, 120)


def test_conference_joins_split_by_an_outage_answer_the_call_once_at_twilios_time(
    app: Flask,
    app_with: Callable[..., Flask],
    twilio: Any,
    make_customer: Callable[..., Any],
) -> None:
    customer = make_customer()
    redis = redis_client(app)
    counting.expect_allowance(redis, CALLER, customer.id)
    caller_joins = conference_params(CALLER, 1, T0 + timedelta(seconds=5))
    person_joins = conference_params(PERSON, 2, T0 + timedelta(seconds=20))
    healthy = twilio.client
    with time_machine.travel(T0 + timedelta(seconds=5), tick=False):
        twilio.client = app_with(DATABASE_URL=DOWN).test_client()
        assert twilio.post("/twilio/conference/events", caller_joins).status_code == 204
    with time_machine.travel(T0 + timedelta(seconds=20), tick=False):
        twilio.client = healthy  # PostgreSQL is back: the person's join is stored and applied
        assert twilio.post("/twilio/conference/events", person_joins).status_code == 204
    assert call_row(app, CALLER).answered_at is None  # the caller's join is still in Redis
    assert in_redis(app) == 1

    def answered() -> tuple[datetime | None, int, int]:
        call = call_row(app, CALLER)
        used = counting.allowance_used(redis, customer.id, T0 - timedelta(days=1))
        return call.answered_at, len(call.conference_log or []), used

    with time_machine.travel(T0 + timedelta(minutes=5), tick=False):
        sweep(app)  # moved across and applied: answered at Twilio's time, not the sweep's
        assert answered() == (T0 + timedelta(seconds=20), 2, 1)
        # Twilio's retry of the caller's join, after it was moved across, changes nothing
        assert twilio.post("/twilio/conference/events", caller_joins).status_code == 204
    assert in_redis(app) == 0
    assert answered() == (T0 + timedelta(seconds=20), 2, 1)
    assert [e.processed_at is not None for e in stored(app, "conference")] == [True, True]


def test_a_voicemail_kept_in_redis_is_one_voicemail_whichever_copy_lands_first(
    app: Flask, app_with: Callable[..., Flask], twilio: Any
) -> None:
    source, path, params = recording_callback()
    healthy = twilio.client
    twilio.client = app_with(DATABASE_URL=DOWN).test_client()
    assert twilio.post(path, params).status_code == 204
    assert in_redis(app) == 1

    def voicemails() -> int:
        with database(app).sessions() as sess:
            return int(sess.scalar(select(func.count()).select_from(Voicemail)) or 0)

    twilio.client = healthy
    assert twilio.post(path, params).status_code == 204  # the retry, stored and applied at once
    assert voicemails() == 1
    sweep(app)  # the copy kept in Redis finds it stored already
    assert in_redis(app) == 0
    assert len(stored(app, source)) == 1
    assert voicemails() == 1
