"""The worker heals itself: Redis going away never ends it, periodic sweeps need no lock a dead
process could hold for long, and what Redis lost is rebuilt from PostgreSQL by the sweep."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import select

from restrictions import cache, counting, rebuild
from restrictions.models import Call, ContactAlert
from telephony import worker
from telephony.database import database
from telephony.handover import CALLS, CALLS_GROUP
from telephony.redis_store import queue, redis_client
from tests.calls import call_row


class Stop(Exception):
    pass


def flaky_worker(attempts: list[str], *, failures: int) -> type:
    """rq's worker as Redis going away makes it: ``failures`` refusals, then Stop (the test's
    way out of a loop that never ends by itself)."""

    class FlakyWorker:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        def work(self, **kwargs: Any) -> bool:
            attempts.append("work")
            if len(attempts) <= failures:
                raise RedisConnectionError("Connection refused")
            raise Stop

    return FlakyWorker


@pytest.fixture(autouse=True)
def quick_calls_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """The calls thread of a worker that a test stops ends within 10 ms, not a second."""
    monkeypatch.setattr(worker, "CALLS_BLOCK_MS", 10)


def test_the_worker_outlives_redis_going_away_with_back_off(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[str] = []
    sleeps: list[float] = []
    monkeypatch.setattr(worker, "SimpleWorker", flaky_worker(attempts, failures=3))
    monkeypatch.setattr(worker, "_pause", lambda stop, seconds: sleeps.append(seconds))
    with pytest.raises(Stop):
        worker.run(app, periodic=False, burst=False)
    assert len(attempts) == 4
    assert sleeps == [1.0, 2.0, 4.0]


def test_the_dialler_tries_again_every_second_while_callers_wait(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[str] = []
    sleeps: list[float] = []
    monkeypatch.setattr(worker, "SimpleWorker", flaky_worker(attempts, failures=5))
    monkeypatch.setattr(worker, "_pause", lambda stop, seconds: sleeps.append(seconds))
    with pytest.raises(Stop):
        worker.run(app, periodic=False, burst=False, urgent_only=True)
    assert sleeps == [1.0] * 5


def test_a_worker_whose_rq_loop_returns_starts_it_again(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs: list[int] = []

    class ReturningWorker:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        def work(self, **kwargs: Any) -> bool:
            runs.append(1)
            if len(runs) == 3:
                raise Stop
            return False  # rq returns after "found an unhandled exception, quitting"

    monkeypatch.setattr(worker, "SimpleWorker", ReturningWorker)
    monkeypatch.setattr(worker, "_pause", lambda stop, seconds: False)
    with pytest.raises(Stop):
        worker.run(app, periodic=False, burst=False)
    assert len(runs) == 3


def test_one_sweep_is_queued_per_period_by_whichever_worker_ticks_first(
    app: Flask, redis_conn: Any
) -> None:
    assert worker.tick(app) is True
    assert worker.tick(app) is False  # another worker ticked a moment ago
    # the claim lasts less than the period: every worker ticks every 15 s, so a sweep is
    # queued every 15 s (as the README says), not every 45
    assert 0 < redis_conn.ttl(worker.TICK_KEY) < worker.TICK_SECONDS
    redis_conn.delete(worker.TICK_KEY)  # the period has passed
    assert worker.tick(app) is True


def test_a_sweep_rebuilds_what_redis_lost(
    app: Flask,
    twilio: Any,
    run_jobs: Callable[[], int],
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
    redis_conn: Any,
) -> None:
    from handlers.contact import sweep_call_events

    customer = make_customer()
    restrict(customer, kind="written_only")
    base = datetime.now(UTC) - timedelta(hours=2)
    with database(app).sessions() as sess:
        for m in range(5):
            sess.add(
                Call(
                    call_sid=f"CA{m:032x}",
                    from_e164="+447400100001",
                    customer_id=customer.id,
                    started_at=base + timedelta(minutes=m),
                    ended_at=base + timedelta(minutes=m, seconds=30),
                    duration_seconds=30,
                    counted_at=base + timedelta(minutes=m, seconds=31),
                    status="completed",
                )
            )
        sess.commit()
    redis_conn.flushdb()  # Redis restarted empty: no cache, no counters, no alert opened yet
    assert rebuild.lost(redis_client(app))
    with app.app_context():
        sweep_call_events()
    hit, profile = cache.read(redis_client(app), "+447400100001")
    assert hit and profile is not None and profile.restrictions[0].kind == "written_only"
    stats = counting.window(
        redis_client(app), f"customer:{customer.id}", base + timedelta(minutes=10), 60
    )
    assert stats.calls == 5
    with database(app).sessions() as sess:
        assert [a.rule_name for a in sess.scalars(select(ContactAlert))] == ["calls-per-hour"]
    assert not rebuild.lost(redis_client(app))


def test_a_sweep_rings_a_waiting_caller_whose_dial_out_was_lost_once(
    app: Flask, fake_twilio: Any
) -> None:
    from handlers.contact import sweep_call_events

    sid = "CA" + "7" * 32
    with database(app).sessions() as sess:
        sess.add(
            Call(
                call_sid=sid,
                from_e164="+447400100077",
                route="default",
                route_destination="dial:+441332000100",
                conference_name=f"cg-{sid}",
                started_at=datetime.now(UTC) - timedelta(seconds=5),
            )
        )
        sess.commit()
    with app.app_context():
        sweep_call_events()
        sweep_call_events()
    (dial,) = fake_twilio.dial_outs()
    assert f"call_sid={sid}&" in (dial.param("Url") or "")


def test_ringing_a_person_never_waits_behind_counting(
    app: Flask, twilio: Any, fake_twilio: Any
) -> None:
    from telephony.handover import CALLS, READY_EVENTS
    from telephony.redis_store import queue
    from tests.calls import status_event

    for n in range(20):  # a backlog of callbacks to count
        status_event(twilio, f"CA{n:032x}", "completed", 3, CallDuration="30")
    params = twilio.call_params("+447400100099")
    twilio.post("/twilio/voice/incoming", params)  # then a caller is put through
    counting = queue(app)
    # the 20 events wait on one list, drained by one job
    assert counting.connection.llen(READY_EVENTS) == 20 and counting.count == 1
    assert counting.connection.xlen(CALLS) == 1  # the call waits on a stream of its own
    assert worker.take_calls(app, counting.connection, burst=True) == 1
    (dial,) = fake_twilio.dial_outs()
    assert f"call_sid={params['CallSid']}&" in (dial.param("Url") or "")
    assert counting.count == 1 and counting.connection.llen(READY_EVENTS) == 20  # they wait


# --- inbound calls: their own stream, taken by every worker process -----------------------------


def test_a_worker_process_takes_calls_in_a_thread_beside_rq(
    app: Flask, twilio: Any, fake_twilio: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = twilio.call_params("+447400100099")
    twilio.post("/twilio/voice/incoming", params)

    class BusyWorker:  # rq's loop, busy with counting all along
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        def work(self, **kwargs: Any) -> bool:
            deadline = time.monotonic() + 10
            while not fake_twilio.dial_outs() and time.monotonic() < deadline:
                time.sleep(0.01)
            raise Stop

    monkeypatch.setattr(worker, "SimpleWorker", BusyWorker)
    with pytest.raises(Stop):
        worker.run(app, periodic=False, burst=False)
    (dial,) = fake_twilio.dial_outs()
    assert f"call_sid={params['CallSid']}&" in (dial.param("Url") or "")
    assert redis_client(app).xlen(CALLS) == 0  # taken, acknowledged and deleted


def test_a_call_taken_by_a_worker_that_died_is_started_by_another(
    app: Flask, twilio: Any, fake_twilio: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    redis = queue(app).connection
    twilio.post("/twilio/voice/incoming", twilio.call_params("+447400100099"))
    assert worker.take_calls(app, redis, burst=True) == 1
    twilio.post("/twilio/voice/incoming", twilio.call_params("+447400100098"))
    redis.xreadgroup(CALLS_GROUP, "died-holding-it", {CALLS: ">"}, count=1)  # then was killed
    assert worker.take_calls(app, redis, burst=True) == 0  # not yet: it may still be working
    monkeypatch.setattr(worker, "RECLAIM_MS", 0)  # ... until it has been quiet too long
    assert worker.take_calls(app, redis, burst=True) == 1
    assert len(fake_twilio.dial_outs()) == 2
    assert redis.xlen(CALLS) == 0 and redis.xpending(CALLS, CALLS_GROUP)["pending"] == 0
    # the live workers left the group as they stopped; only the dead one's name is left
    assert [c["name"] for c in redis.xinfo_consumers(CALLS, CALLS_GROUP)] == [b"died-holding-it"]


def test_a_call_whose_job_keeps_failing_is_tried_three_times_then_left(
    app: Flask, twilio: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    tries: list[str] = []

    def broken(record: dict[str, Any]) -> None:
        tries.append(record["call_sid"])
        raise RuntimeError("PostgreSQL said no")

    monkeypatch.setattr("handlers.calls.start_inbound_call", broken)
    params = twilio.call_params("+447400100099")
    twilio.post("/twilio/voice/incoming", params)
    redis = queue(app).connection
    assert worker.take_calls(app, redis, burst=True) == 1
    assert tries == [params["CallSid"]] * worker.ATTEMPTS
    assert f"call {params['CallSid']}: giving up" in caplog.text
    assert redis.xlen(CALLS) == 0  # left, not retried for ever


def test_a_call_postgresql_refused_is_kept_and_tried_again_until_its_route_is_recorded(
    app: Flask,
    twilio: Any,
    monkeypatch: pytest.MonkeyPatch,
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
) -> None:
    from sqlalchemy.exc import OperationalError

    from handlers import calls

    restrict(make_customer(), kind="warning")
    real, refusals = calls.start_inbound_call, [0]

    def stalled(record: dict[str, Any]) -> None:
        if refusals[0] < 2 * worker.ATTEMPTS:  # longer than any fixed number of tries
            refusals[0] += 1
            raise OperationalError("INSERT", {}, Exception("canceling statement: timeout"))
        real(record)

    monkeypatch.setattr("handlers.calls.start_inbound_call", stalled)
    params = twilio.call_params("+447400100001")
    twilio.post("/twilio/voice/incoming", params)
    redis = queue(app).connection
    monkeypatch.setattr(worker, "RECLAIM_MS", 0)  # the back-off, without waiting it out
    for _ in range(2 * worker.ATTEMPTS):
        assert worker.take_calls(app, redis, burst=True) == 0  # kept, unacknowledged
        assert redis.xpending(CALLS, CALLS_GROUP)["pending"] == 1
    assert worker.take_calls(app, redis, burst=True) == 1
    call = call_row(app, params["CallSid"])
    assert call.route == "default" and call.flags["flags"][0].startswith("warning")
    assert redis.xlen(CALLS) == 0 and redis.xpending(CALLS, CALLS_GROUP)["pending"] == 0


def test_calls_handed_over_after_redis_lost_everything_are_still_taken(
    app: Flask, twilio: Any, fake_twilio: Any
) -> None:
    redis = queue(app).connection
    twilio.post("/twilio/voice/incoming", twilio.call_params("+447400100099"))
    assert worker.take_calls(app, redis, burst=True) == 1
    redis.flushdb()  # Redis restarted empty: the stream and its consumer group are gone
    twilio.post("/twilio/voice/incoming", twilio.call_params("+447400100098"))
    assert worker.take_calls(app, redis, burst=True) == 1  # the group is made again, from 0
    assert len(fake_twilio.dial_outs()) == 2


def test_an_entry_that_is_not_a_call_is_logged_and_left(
    app: Flask, twilio: Any, fake_twilio: Any, caplog: pytest.LogCaptureFixture
) -> None:
    redis = queue(app).connection
    redis.xadd(CALLS, {"record": "{not json"})
    twilio.post("/twilio/voice/incoming", twilio.call_params("+447400100099"))
    assert worker.take_calls(app, redis, burst=True) == 2  # the bad one does not stop the next
    assert "is not a call" in caplog.text
    assert len(fake_twilio.dial_outs()) == 1
    assert redis.xlen(CALLS) == 0


def test_a_new_caller_is_started_before_calls_left_over_from_an_outage(
    app: Flask, twilio: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from handlers import calls

    started: list[str] = []
    real = calls.start_inbound_call

    def noting(record: dict[str, Any]) -> None:
        started.append(record["call_sid"])
        real(record)

    monkeypatch.setattr("handlers.calls.start_inbound_call", noting)
    redis = queue(app).connection
    old = twilio.call_params("+447400100098")
    twilio.post("/twilio/voice/incoming", old)
    redis.xgroup_create(CALLS, CALLS_GROUP, id="0", mkstream=True)
    redis.xreadgroup(CALLS_GROUP, "refused-by-postgresql", {CALLS: ">"}, count=1)
    new = twilio.call_params("+447400100099")
    twilio.post("/twilio/voice/incoming", new)
    monkeypatch.setattr(worker, "RECLAIM_MS", 0)
    assert worker.take_calls(app, redis, burst=True) == 2
    assert started == [new["CallSid"], old["CallSid"]]


def test_a_redis_that_came_back_empty_is_rebuilt_at_once_not_at_the_next_tick(
    app: Flask,
    redis_conn: Any,
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
) -> None:
    """Until the rebuild, a restricted caller depends on PostgreSQL answering: the ticker looks
    every second and asks for one sweep as soon as Redis has lost what was built in it."""
    from handlers.contact import sweep_call_events

    customer = make_customer()
    restrict(customer, kind="written_only")
    with app.app_context():
        sweep_call_events()
    assert not worker.rebuild_if_lost(app)  # built: nothing to do
    redis_conn.flushdb()  # Redis restarted empty
    assert worker.rebuild_if_lost(app)
    assert not worker.rebuild_if_lost(app)  # asked once, not every second
    assert worker.run(app, periodic=False, burst=True) == 0  # the sweep, as a worker runs it
    hit, profile = cache.read(redis_client(app), "+447400100001")
    assert hit and profile is not None and profile.restrictions[0].kind == "written_only"
    assert not rebuild.lost(redis_client(app))
