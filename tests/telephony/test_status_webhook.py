"""Twilio's call status callback: stored durably first, idempotent, malformed events refused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from restrictions.models import Call, CallEvent
from telephony.database import database
from telephony.handover import READY_EVENTS
from telephony.redis_store import queue
from tests.calls import twilio_now

SID = "CA" + "a" * 32


def status(
    sid: str = SID, call_status: str = "completed", seq: int = 3, **extra: str
) -> dict[str, str]:
    params = {
        "AccountSid": "AC" + "0" * 31 + "1",
        "ApiVersion": "2010-04-01",
        "CallSid": sid,
        "CallStatus": call_status,
        "Direction": "inbound",
        "From": "+447400100001",
        "To": "+441332000000",
        "SequenceNumber": str(seq),
        "CallbackSource": "call-progress-events",
        "Timestamp": twilio_now(),
    }
    if call_status == "completed":
        params["CallDuration"] = "95"
    params.update(extra)
    return params


def events(app: Flask) -> list[CallEvent]:
    with database(app).sessions() as sess:
        return list(sess.scalars(select(CallEvent).order_by(CallEvent.id)))


def test_a_status_event_is_stored_and_answered_204(app: Flask, twilio: Any) -> None:
    response = twilio.post("/twilio/voice/status", status())
    assert response.status_code == 204
    (event,) = events(app)
    assert (event.resource_sid, event.event, event.sequence_number) == (SID, "completed", 3)
    assert event.payload["CallDuration"] == "95"
    assert event.processed_at is None  # processing is the job's


def test_unsigned_status_callbacks_are_refused(client: Any, app: Flask) -> None:
    assert client.post("/twilio/voice/status", data=status()).status_code == 403
    assert events(app) == []


def test_a_retried_or_duplicated_event_is_stored_once_and_queued_once(
    app: Flask, twilio: Any, run_jobs: Callable[[], int]
) -> None:
    for _ in range(3):
        assert twilio.post("/twilio/voice/status", status()).status_code == 204
    assert len(events(app)) == 1
    assert run_jobs() == 1


def test_a_burst_of_events_is_drained_by_one_job_and_a_later_one_queues_the_next(
    app: Flask, twilio: Any, run_jobs: Callable[[], int]
) -> None:
    for n in range(12):
        twilio.post("/twilio/voice/status", status(sid=f"CA{n:032x}"))
    assert run_jobs() == 1  # one job for the twelve
    assert all(e.processed_at is not None for e in events(app)) and len(events(app)) == 12
    twilio.post("/twilio/voice/status", status(sid="CA" + "b" * 32))
    assert run_jobs() == 1  # the list was drained: a new arrival queues a new job
    assert all(e.processed_at is not None for e in events(app)) and len(events(app)) == 13


def test_events_a_dead_worker_had_taken_are_processed_by_the_sweep(
    app: Flask, twilio: Any, run_jobs: Callable[[], int]
) -> None:
    from handlers.contact import sweep_call_events

    for n in range(3):
        twilio.post("/twilio/voice/status", status(sid=f"CA{n:032x}"))
    redis = queue(app).connection
    assert len(redis.lpop(READY_EVENTS, 10) or []) == 3  # taken, then the worker was killed
    run_jobs()  # the drain job finds nothing
    assert [e.processed_at for e in events(app)] == [None, None, None]
    with app.app_context():
        assert sweep_call_events() == 3
    assert all(e.processed_at is not None for e in events(app))


def test_events_of_one_call_are_each_kept(app: Flask, twilio: Any) -> None:
    for seq, st in enumerate(["initiated", "ringing", "in-progress", "completed"]):
        twilio.post("/twilio/voice/status", status(call_status=st, seq=seq))
    assert [e.event for e in events(app)] == ["initiated", "ringing", "in-progress", "completed"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"CallSid": ""}, "CallSid is missing"),
        ({"CallStatus": "exploded"}, "CallStatus 'exploded' is not a Twilio call status"),
        ({"CallDuration": "-4"}, "CallDuration must not be negative"),
        ({"CallDuration": "ninety"}, "CallDuration must be a whole number"),
        ({"SequenceNumber": "x"}, "SequenceNumber must be a whole number"),
    ],
)
def test_a_malformed_event_is_a_400_that_says_why_and_stores_nothing(
    app: Flask, twilio: Any, params: dict[str, str], message: str
) -> None:
    response = twilio.post("/twilio/voice/status", {**status(), **params})
    assert response.status_code == 400
    assert message in response.get_json()["error"]
    assert events(app) == []


def test_the_call_row_follows_the_events_even_out_of_order(
    app: Flask, twilio: Any, run_jobs: Callable[[], int], make_customer: Callable[..., Any]
) -> None:
    make_customer()
    twilio.post("/twilio/voice/status", status(call_status="completed", seq=4))
    twilio.post("/twilio/voice/status", status(call_status="ringing", seq=1))  # late
    run_jobs()
    with database(app).sessions() as sess:
        call = sess.scalar(select(Call).where(Call.call_sid == SID))
        assert call is not None
        assert call.status == "completed" and call.duration_seconds == 95
        assert call.customer_id is not None and call.counted_at is not None
        unprocessed = sess.scalar(
            select(func.count()).select_from(CallEvent).where(CallEvent.processed_at.is_(None))
        )
        assert unprocessed == 0
