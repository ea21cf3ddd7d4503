"""Contact is counted per customer (or per number) by a real rq worker, and excessive contact
(policy section 6) opens one alert per subject and rule, with its evidence."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from flask import Flask
from sqlalchemy import delete, select

from handlers.contact import sweep_call_events
from restrictions import counting
from restrictions.models import AuditEntry, Call, CallEvent, ContactAlert, Customer
from telephony import create_app
from telephony.database import database
from telephony.redis_store import redis_client

T0 = datetime(2026, 6, 2, 9, 0, tzinfo=UTC)
CUSTOMER = "+447400100001"


@pytest.fixture
def place_call(twilio: Any, run_jobs: Callable[[], int]) -> Callable[..., str]:
    """A whole call as Twilio reports it: the inbound webhook, then the completed callback."""

    def place(at: datetime, from_: str = CUSTOMER, seconds: int = 60) -> str:
        with time_machine.travel(at, tick=False):
            params = twilio.call_params(from_)
            twilio.post("/twilio/voice/incoming", params)
            run_jobs()
        with time_machine.travel(at + timedelta(seconds=seconds), tick=False):
            done = {
                **params,
                "CallStatus": "completed",
                "CallDuration": str(seconds),
                "SequenceNumber": "3",
            }
            assert twilio.post("/twilio/voice/status", done).status_code == 204
            run_jobs()
        return str(params["CallSid"])

    return place


def alerts(app: Flask) -> list[ContactAlert]:
    with database(app).sessions() as sess:
        return list(sess.scalars(select(ContactAlert).order_by(ContactAlert.id)))


def test_the_fifth_call_within_an_hour_opens_an_alert_with_its_evidence(
    app: Flask, place_call: Callable[..., str], make_customer: Callable[..., Any]
) -> None:
    customer = make_customer(numbers=(CUSTOMER, "+441332123456"))
    sids = [
        place_call(T0 + timedelta(minutes=m), from_=CUSTOMER if m % 20 else "+441332123456")
        for m in (0, 10, 20, 30)
    ]
    assert alerts(app) == []
    sids.append(place_call(T0 + timedelta(minutes=59, seconds=59)))
    (alert,) = alerts(app)
    assert alert.rule_name == "calls-per-hour" and alert.status == "open"
    assert alert.customer_id == customer.id and alert.subject == f"customer:{customer.id}"
    calls = alert.evidence["calls"]
    assert [c["call_sid"] for c in calls] == sids
    assert {c["number"] for c in calls} == {CUSTOMER, "+441332123456"}  # across all numbers
    assert all(c["duration_seconds"] == 60 and c["route"] == "default" for c in calls)
    assert calls[0]["started_at"].startswith("2026-06-02T09:00:00")
    with database(app).sessions() as sess:
        opened = sess.scalar(select(AuditEntry).where(AuditEntry.action == "alert.opened"))
        assert opened is not None and opened.customer_id == customer.id


def test_a_call_exactly_an_hour_after_the_first_does_not_count_the_first(
    app: Flask, place_call: Callable[..., str], make_customer: Callable[..., Any]
) -> None:
    make_customer()
    for m in (0, 10, 20, 30):
        place_call(T0 + timedelta(minutes=m))
    place_call(T0 + timedelta(minutes=60))
    assert alerts(app) == []
    place_call(T0 + timedelta(minutes=60, seconds=1))  # 10, 20, 30, 60, 60:01: five in the hour
    assert [a.rule_name for a in alerts(app)] == ["calls-per-hour"]


def test_one_alert_per_rule_while_it_is_open(
    app: Flask, place_call: Callable[..., str], make_customer: Callable[..., Any]
) -> None:
    make_customer()
    for m in range(0, 56, 8):  # seven calls in 48 minutes
        place_call(T0 + timedelta(minutes=m))
    assert [a.rule_name for a in alerts(app)] == ["calls-per-hour"]


def test_talk_time_over_a_week_opens_its_own_alert(
    app: Flask, place_call: Callable[..., str], make_customer: Callable[..., Any]
) -> None:
    make_customer()
    place_call(T0, seconds=90 * 60)
    place_call(T0 + timedelta(days=3), seconds=89 * 60)
    assert alerts(app) == []
    place_call(T0 + timedelta(days=6, hours=23), seconds=60)  # 180 minutes inside 7 days
    (alert,) = alerts(app)
    assert alert.rule_name == "talk-time-per-week"
    assert alert.evidence["talk_seconds"] == 180 * 60


def test_unknown_callers_are_counted_per_number(app: Flask, place_call: Callable[..., str]) -> None:
    for m in range(5):
        place_call(T0 + timedelta(minutes=m), from_="+447400100077")
    (alert,) = alerts(app)
    assert alert.subject == "number:+447400100077" and alert.customer_id is None
    assert alert.phone_e164 == "+447400100077"


def test_withheld_callers_are_not_counted(app: Flask, place_call: Callable[..., str]) -> None:
    sids = [place_call(T0 + timedelta(minutes=m), from_="anonymous") for m in range(6)]
    assert alerts(app) == []
    with database(app).sessions() as sess:
        stored = list(sess.scalars(select(Call).where(Call.call_sid.in_(sids))))
    assert len(stored) == 6 and all(
        c.counted_at is not None and c.from_e164 is None for c in stored
    )


def test_counting_a_call_twice_changes_nothing(
    app: Flask,
    twilio: Any,
    place_call: Callable[..., str],
    make_customer: Callable[..., Any],
    run_jobs: Callable[[], int],
) -> None:
    customer = make_customer()
    sid = place_call(T0)
    with database(app).sessions() as sess:
        call = sess.scalar(select(Call).where(Call.call_sid == sid))
        assert call is not None
        call.counted_at = None  # as if the job had died after counting, before committing
        sess.commit()
    with time_machine.travel(T0 + timedelta(minutes=5), tick=False):
        retry = {
            **twilio.call_params(CUSTOMER, CallSid=sid),
            "CallStatus": "completed",
            "CallDuration": "60",
            "SequenceNumber": "4",
        }
        twilio.post("/twilio/voice/status", retry)
        run_jobs()
    stats = counting.window(
        redis_client(app), f"customer:{customer.id}", T0 + timedelta(hours=1), 60 * 24
    )
    assert (stats.calls, stats.seconds) == (1, 60)


def test_events_stored_while_redis_was_down_are_counted_once_when_it_is_back(
    app: Flask,
    app_config: dict[str, Any],
    twilio: Any,
    make_customer: Callable[..., Any],
    run_jobs: Callable[[], int],
) -> None:
    customer = make_customer()
    down = create_app({**app_config, "REDIS_URL": "redis://127.0.0.1:1/0"})
    twilio.client = down.test_client()
    sids = []
    for m in range(5):
        with time_machine.travel(T0 + timedelta(minutes=m), tick=False):
            params = {
                **twilio.call_params(CUSTOMER),
                "CallStatus": "completed",
                "CallDuration": "30",
                "SequenceNumber": "3",
            }
            assert twilio.post("/twilio/voice/status", params).status_code == 204
            sids.append(params["CallSid"])
    database(down).dispose()
    with database(app).sessions() as sess:
        pending = sess.scalars(select(CallEvent).where(CallEvent.processed_at.is_(None)))
        assert len(list(pending)) == 5, "stored durably although Redis was down"

    # Redis is back: the worker's sweep picks the events up
    with time_machine.travel(T0 + timedelta(minutes=10), tick=False):
        assert sweep_call_events() == 5
        assert sweep_call_events() == 0
    stats = counting.window(
        redis_client(app), f"customer:{customer.id}", T0 + timedelta(hours=1), 120
    )
    assert stats.calls == 5
    (alert,) = alerts(app)
    assert [c["call_sid"] for c in alert.evidence["calls"]] == sids


def test_counters_rebuild_from_postgresql(
    app: Flask,
    runner: Any,
    place_call: Callable[..., str],
    make_customer: Callable[..., Any],
    redis_conn: Any,
) -> None:
    from telephony.cli import main

    customer = make_customer()
    with time_machine.travel(datetime.now(UTC) - timedelta(hours=2), tick=False):
        now = datetime.now(UTC)
    place_call(now)
    place_call(now + timedelta(minutes=5), seconds=120)
    redis_conn.flushdb()
    result = runner.invoke(main, ["counters", "rebuild"])
    assert "contact counters: 2 calls" in result.output
    stats = counting.window(
        redis_client(app), f"customer:{customer.id}", now + timedelta(hours=1), 120
    )
    assert (stats.calls, stats.seconds) == (2, 180)


def test_callbacks_in_reverse_order_still_open_the_alert(
    app: Flask, twilio: Any, run_jobs: Callable[[], int], make_customer: Callable[..., Any]
) -> None:
    """Five calls in an hour whose completed callbacks reach us last first."""
    make_customer()
    calls = []
    for m in (0, 10, 20, 30, 40):
        with time_machine.travel(T0 + timedelta(minutes=m), tick=False):
            params = twilio.call_params(CUSTOMER)
            twilio.post("/twilio/voice/incoming", params)
            run_jobs()
            calls.append(params)
    with time_machine.travel(T0 + timedelta(hours=2), tick=False):
        for params in reversed(calls):
            done = {
                **params,
                "CallStatus": "completed",
                "CallDuration": "60",
                "SequenceNumber": "3",
            }
            assert twilio.post("/twilio/voice/status", done).status_code == 204
            run_jobs()
    (alert,) = alerts(app)
    assert alert.rule_name == "calls-per-hour"
    assert [c["call_sid"] for c in alert.evidence["calls"]] == [p["CallSid"] for p in calls]


def test_counters_rebuild_opens_the_alerts_redis_lost(
    app: Flask,
    place_call: Callable[..., str],
    make_customer: Callable[..., Any],
    runner: Any,
    redis_conn: Any,
) -> None:
    from telephony.cli import main

    make_customer()
    for m in (0, 10, 20, 30, 40):
        place_call(T0 + timedelta(minutes=m))
    with database(app).sessions() as sess:
        sess.execute(delete(ContactAlert))  # as if the worker had lost them
        sess.commit()
    redis_conn.flushdb()
    with time_machine.travel(T0 + timedelta(hours=3), tick=False):
        first = runner.invoke(main, ["counters", "rebuild"])
        again = runner.invoke(main, ["counters", "rebuild"])
    assert "alerts opened: 1" in first.output, first.output
    assert "alerts opened: 0" in again.output
    assert [a.rule_name for a in alerts(app)] == ["calls-per-hour"]


def test_a_poison_event_is_parked_with_its_reason_not_retried_forever(
    app: Flask,
    twilio: Any,
    client: Any,
    make_staff: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    run_jobs: Callable[[], int],
) -> None:
    from handlers import contact

    admin = make_staff("admin", "ada")
    params = {**twilio.call_params(CUSTOMER), "CallStatus": "completed", "SequenceNumber": "3"}
    real = contact.apply_status  # type: ignore[attr-defined]

    def broken(sess: Any, event: Any) -> Any:
        raise RuntimeError("cannot apply this one")

    monkeypatch.setattr(contact, "apply_status", broken)
    assert twilio.post("/twilio/voice/status", params).status_code == 204
    for _ in range(contact.PARK_AFTER + 2):
        contact.sweep_call_events()
    parked = client.get("/api/v1/events/parked", headers=admin.headers).get_json()["events"]
    assert [(e["call_sid"], e["attempts"]) for e in parked] == [(params["CallSid"], 5)]
    assert parked[0]["reason"] == "RuntimeError: cannot apply this one"
    assert contact.sweep_call_events() == 0  # parked: not picked up again
    supervisor = make_staff("supervisor", "sam")
    denied = client.get("/api/v1/events/parked", headers=supervisor.headers)
    assert denied.status_code == 403
    monkeypatch.setattr(contact, "apply_status", real)  # the cause is fixed
    retried = client.post(f"/api/v1/events/{parked[0]['id']}/retry", headers=admin.headers)
    assert retried.status_code == 200
    run_jobs()
    assert client.get("/api/v1/events/parked", headers=admin.headers).get_json()["events"] == []
    with database(app).sessions() as sess:
        event = sess.scalar(select(CallEvent).where(CallEvent.call_sid == params["CallSid"]))
        assert event is not None and event.processed_at is not None


def test_oversized_caller_fields_are_cut_at_the_edge_and_never_poison_a_job(
    app: Flask, twilio: Any, run_jobs: Callable[[], int]
) -> None:
    sip = "sip:" + "a" * 300 + "@pbx.example.org"
    params = twilio.call_params(sip, CallerName="N" * 500)
    assert twilio.post("/twilio/voice/incoming", params).status_code == 200
    run_jobs()
    with database(app).sessions() as sess:
        call = sess.scalar(select(Call).where(Call.call_sid == params["CallSid"]))
    assert call is not None and call.route == "default"
    assert len(call.from_number) <= 64 and call.caller_name is not None
    assert len(call.caller_name) <= 200


def test_a_run_over_a_steady_flow_of_callbacks_ends_and_lets_the_sweep_in(
    app: Flask, twilio: Any
) -> None:
    """Callbacks keep coming: a run takes its share, then queues the next run behind the jobs
    already waiting (the sweep, which rebuilds what Redis lost), instead of draining for ever."""
    from handlers.contact import process_ready_events
    from telephony.handover import PROCESS_READY_EVENTS, READY_EVENTS
    from telephony.redis_store import queue
    from tests.calls import status_event

    for n in range(5):
        status_event(twilio, f"CA{n:032x}", "completed", 3, CallDuration="30")
    assert redis_client(app).llen(READY_EVENTS) == 5
    with app.app_context():
        done = process_ready_events(batch=2, seconds=0)  # its share is over at once
        queued = [j.func_name for j in queue(app).jobs]
    assert done == 0 and redis_client(app).llen(READY_EVENTS) == 5
    assert queued.count(PROCESS_READY_EVENTS) == 2  # the first arrival's run, and the next
    with app.app_context():
        assert process_ready_events() == 5  # a run with time processes them all
    assert redis_client(app).llen(READY_EVENTS) == 0


# --- what Redis lost, the sweep puts back -----------------------------------------------------


def test_a_call_whose_hand_over_redis_lost_has_its_route_recorded_by_the_sweep(
    app: Flask,
    twilio: Any,
    run_jobs: Callable[[], int],
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
) -> None:
    """Redis died with the call's hand-over in its stream, before a worker took it: only the
    completed callback made the call's row. The sweep decides the route again, as the webhook
    did, and says it was recovered; a call whose route was recorded is left as it is."""
    from telephony.handover import CALLS

    customer = make_customer(numbers=(CUSTOMER,))
    restrict(customer, kind="spoc", spoc="+441332000555")
    with time_machine.travel(T0, tick=False):
        lost = twilio.call_params(CUSTOMER)
        assert twilio.post("/twilio/voice/incoming", lost).status_code == 200
        redis_client(app).delete(CALLS)  # Redis restarted empty before a worker read it
        kept = twilio.call_params(CUSTOMER)
        assert twilio.post("/twilio/voice/incoming", kept).status_code == 200
        run_jobs()
    with time_machine.travel(T0 + timedelta(seconds=30), tick=False):
        for params in (lost, kept):
            done = {**params, "CallStatus": "completed", "CallDuration": "30"}
            assert twilio.post("/twilio/voice/status", done).status_code == 204
        run_jobs()
    with database(app).sessions() as sess:
        row = sess.scalar(select(Call).where(Call.call_sid == lost["CallSid"]))
        assert row is not None and (row.route, row.route_destination) == ("default", None)
    with time_machine.travel(T0 + timedelta(minutes=2), tick=False), app.app_context():
        sweep_call_events()
    with database(app).sessions() as sess:
        recovered = sess.scalar(select(Call).where(Call.call_sid == lost["CallSid"]))
        recorded = sess.scalar(select(Call).where(Call.call_sid == kept["CallSid"]))
    assert recovered is not None and recorded is not None
    assert (recovered.route, recovered.route_destination) == ("spoc", "dial:+441332000555")
    assert recovered.customer_id == customer.id and not recovered.fallback
    assert "recovered" in recovered.flags["flags"] and recovered.flags["unidentified"] is False
    assert recorded.route == "spoc" and "recovered" not in recorded.flags["flags"]


def test_a_restricted_callers_entry_is_kept_warm_so_a_postgresql_outage_still_routes_them(
    app: Flask,
    app_with: Callable[..., Flask],
    twilio: Any,
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
) -> None:
    """An unrestricted caller's cache entry only saves a read and expires within the hour; a
    restricted caller's is rewritten every hour by the sweep and outlives that, so the line is
    protected when PostgreSQL is away, whenever they last called."""
    from restrictions import cache

    restricted = make_customer(numbers=(CUSTOMER,))
    restrict(restricted, kind="written_only")
    make_customer(reference="PLAIN-1", numbers=("+447400100002",))
    redis = redis_client(app)
    redis.flushdb()  # nothing cached: neither has called for hours
    with app.app_context():
        sweep_call_events()
    assert cache.read(redis, CUSTOMER)[0]
    assert redis.ttl(cache.key(CUSTOMER)) > cache.TTL_SECONDS  # outlives the hour
    twilio.client = app_with(
        DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:1/nowhere"
    ).test_client()
    answered = twilio.post("/twilio/voice/incoming", twilio.call_params(CUSTOMER))
    assert answered.status_code == 200
    assert b"<Dial" not in answered.data  # their writing-only message, not the default line


def test_a_change_whose_cache_refresh_failed_is_in_the_cache_after_the_next_sweep(
    app: Flask, make_customer: Callable[..., Any]
) -> None:
    """A restriction recorded while Redis could not take the after-commit refresh: the sweep
    reads the audit trail since its last catch up and writes that customer's entry."""
    from restrictions import cache
    from restrictions.db import CACHE_REDIS
    from restrictions.lifecycle import SYSTEM, add_restriction

    customer = make_customer(numbers=(CUSTOMER,))
    redis = redis_client(app)
    with app.app_context():
        sweep_call_events()  # the watermark: everything so far is in the cache
    with database(app).sessions() as sess:
        sess.info.pop(CACHE_REDIS)  # Redis away at the commit: no after-commit refresh
        row = sess.get(Customer, customer.id)
        assert row is not None
        today = datetime.now(UTC).date().isoformat()
        body = {"kind": "written_only", "reason": "Abuse on 3 calls", "notice_sent_on": today}
        add_restriction(sess, SYSTEM, row, body)
        sess.commit()
    stale = cache.read(redis, CUSTOMER)[1]
    assert stale is not None and stale.restrictions == ()  # the cache does not know yet
    with app.app_context():
        sweep_call_events()
    hit, profile = cache.read(redis, CUSTOMER)
    assert hit and profile is not None
    assert [r.kind for r in profile.restrictions] == ["written_only"]


def test_a_sweep_takes_a_bounded_share_of_the_worker_and_leaves_the_rest_to_the_next(
    app: Flask, twilio: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After an outage thousands of events wait: a sweep stops after SWEEP_SECONDS (so a
    deploy's SIGTERM is not kept waiting on it), and the next sweep goes on from there."""
    import handlers.contact as contact

    for _ in range(3):
        params = twilio.call_params(CUSTOMER)
        done = {**params, "CallStatus": "completed", "CallDuration": "30", "SequenceNumber": "3"}
        assert twilio.post("/twilio/voice/status", done).status_code == 204
    monkeypatch.setattr(contact, "SWEEP_SECONDS", 0.0)
    with app.app_context():
        assert sweep_call_events() == 0
    monkeypatch.setattr(contact, "SWEEP_SECONDS", 5.0)
    with app.app_context():
        assert sweep_call_events() == 3
    with database(app).sessions() as sess:
        waiting = select(CallEvent).where(CallEvent.processed_at.is_(None))
        assert sess.scalars(waiting).first() is None
