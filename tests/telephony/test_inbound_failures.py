"""Never drop a call: whatever fails inside, the caller gets valid TwiML for the default route,
and the failure is logged. (How fast is measured in bench/inbound.py, not here.)"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from xml.etree import ElementTree

import pytest
from flask import Flask
from sqlalchemy import select, text

from restrictions.models import Call
from telephony import handover
from telephony.database import database
from tests.calls import call_row, put_together

CUSTOMER_NUMBER = "+447400100001"
DEFAULT_LINE = "+441332000100"


def default_route_directly(response: Any) -> ElementTree.Element:
    assert response.status_code == 200
    root = ElementTree.fromstring(response.data)
    assert root.findtext("./Dial/Number") == DEFAULT_LINE
    return root


def test_postgresql_unavailable_on_a_cache_miss_answers_the_default_route(
    app_with: Callable[..., Flask],
    twilio: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = app_with(DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:1/nowhere")
    twilio.client = broken.test_client()
    with caplog.at_level(logging.ERROR):
        default_route_directly(twilio.incoming(CUSTOMER_NUMBER))
    assert any("default route" in r.getMessage() for r in caplog.records)


def test_redis_unavailable_reads_postgresql_so_restrictions_still_apply(
    app: Flask,
    app_with: Callable[..., Flask],
    twilio: Any,
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    customer = make_customer()
    restrict(customer, kind="written_only")
    broken = app_with(REDIS_URL="redis://127.0.0.1:1/0")
    twilio.client = broken.test_client()
    params = twilio.call_params(CUSTOMER_NUMBER)
    with caplog.at_level(logging.ERROR):
        response = twilio.post("/twilio/voice/incoming", params)
    assert response.status_code == 200
    assert b"in writing only" in response.data
    assert any("redis unavailable" in r.getMessage() for r in caplog.records)
    # without the queue, the call's row is written on the spot
    with database(app).sessions() as sess:
        call = sess.scalar(select(Call).where(Call.call_sid == params["CallSid"]))
        assert call is not None and call.route == "written_only"


def test_redis_unavailable_connects_an_agent_call_directly(
    app_with: Callable[..., Flask],
    twilio: Any,
    make_customer: Callable[..., Any],
) -> None:
    """No queue means no job to dial the agent into a conference, so dial them directly."""
    make_customer()
    broken = app_with(REDIS_URL="redis://127.0.0.1:1/0")
    twilio.client = broken.test_client()
    default_route_directly(twilio.incoming(CUSTOMER_NUMBER))


def test_bad_data_that_breaks_the_decision_answers_the_default_route(
    app: Flask,
    twilio: Any,
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
    redis_conn: Any,
    caplog: pytest.LogCaptureFixture,
    run_jobs: Callable[[], int],
) -> None:
    customer = make_customer()
    restriction = restrict(
        customer,
        kind="limited_contact",
        windows=[{"days": ["mon"], "start": "10:00", "end": "12:00"}],
    )
    with database(app).engine.begin() as conn:  # a bad row written behind callguard's back
        conn.execute(
            text("UPDATE restrictions SET details = :d WHERE id = :id"),
            {"d": '{"windows": [{"days": ["mon"], "start": "ten"}]}', "id": restriction.id},
        )
    redis_conn.flushdb()
    params = twilio.call_params(CUSTOMER_NUMBER)
    with caplog.at_level(logging.ERROR):
        default_route_directly(twilio.post("/twilio/voice/incoming", params))
    assert any("default route" in r.getMessage() for r in caplog.records)
    run_jobs()
    with database(app).sessions() as sess:
        call = sess.scalar(select(Call).where(Call.call_sid == params["CallSid"]))
        assert call is not None and call.fallback is True


def test_redis_unavailable_still_applies_the_weekly_allowance_from_postgresql(
    app: Flask,
    app_with: Callable[..., Flask],
    twilio: Any,
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
) -> None:
    from datetime import UTC, datetime

    import time_machine

    customer = make_customer()
    restrict(
        customer,
        kind="limited_contact",
        max_calls_per_week=1,
        windows=[{"days": ["tue"], "start": "10:00", "end": "12:00"}],
    )
    broken = app_with(REDIS_URL="redis://127.0.0.1:1/0")
    twilio.client = broken.test_client()
    with time_machine.travel(datetime(2026, 6, 2, 9, 30, tzinfo=UTC), tick=False):
        params = twilio.call_params(CUSTOMER_NUMBER)
        first = twilio.post("/twilio/voice/incoming", params)  # routed; row written on the spot
        # the agent answers: the conference event reaches PostgreSQL without Redis
        agent_leg = "CA" + "a" * 32
        put_together(twilio, params["CallSid"], agent_leg)
        second = twilio.incoming(CUSTOMER_NUMBER)
    assert ElementTree.fromstring(first.data).find("./Dial") is not None
    assert b"You have made all the calls allowed this week, which is 1." in second.data


def test_a_hand_over_redis_refuses_still_connects_the_caller_and_records_the_call(
    app: Flask,
    twilio: Any,
    make_customer: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The look-up and hand-over script fails (here: the stream's key holds the wrong type), so
    the caller is connected directly and the call's row is written on the request path."""
    from telephony.handover import CALLS
    from telephony.redis_store import redis_client

    make_customer()
    redis_client(app).set(CALLS, "not a stream")
    params = twilio.call_params(CUSTOMER_NUMBER)
    with caplog.at_level(logging.ERROR):
        default_route_directly(twilio.post("/twilio/voice/incoming", params))
    assert any("redis unavailable" in r.getMessage() for r in caplog.records)
    call = call_row(app, params["CallSid"])
    assert call.route == "default" and call.customer_id is not None


# --- a hand-over whose reply Redis lost: the script ran, the webhook heard a timeout ----------


def lose_the_reply(app: Flask, monkeypatch: pytest.MonkeyPatch, *, worker_first: bool) -> None:
    """The look-up script hands the call over, then its reply is lost (Redis's timeout); with
    ``worker_first`` a worker takes the call and rings the person before the webhook goes on."""
    from redis.exceptions import TimeoutError as RedisTimeoutError

    from telephony import worker
    from telephony.redis_store import queue

    real = handover.look_up_and_hand_over

    def lost(redis: Any, cache_key: str, call: dict[str, Any]) -> bytes | None:
        real(redis, cache_key, call)
        if worker_first:
            worker.take_calls(app, queue(app).connection, burst=True)
        raise RedisTimeoutError("Timeout reading from socket")

    monkeypatch.setattr(handover, "look_up_and_hand_over", lost)


@pytest.fixture
def known_caller(
    twilio: Any, make_customer: Callable[..., Any], run_jobs: Callable[[], int], fake_twilio: Any
) -> None:
    """A customer whose number is in the routing cache (one call made and finished with)."""
    make_customer()
    twilio.post("/twilio/voice/incoming", twilio.call_params(CUSTOMER_NUMBER))
    run_jobs()
    fake_twilio.requests.clear()


@pytest.mark.usefixtures("known_caller")
def test_a_hand_over_taken_before_its_lost_reply_puts_the_caller_in_the_conference_rung(
    app: Flask,
    twilio: Any,
    make_customer: Callable[..., Any],
    fake_twilio: Any,
    run_jobs: Callable[[], int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lose_the_reply(app, monkeypatch, worker_first=True)
    params = twilio.call_params(CUSTOMER_NUMBER)
    root = ElementTree.fromstring(twilio.post("/twilio/voice/incoming", params).data)
    assert root.findtext(".//Conference") == f"cg-{params['CallSid']}"  # not a second <Dial>
    assert root.find("./Dial/Number") is None
    assert len(fake_twilio.dial_outs(params["CallSid"])) == 1


@pytest.mark.usefixtures("known_caller")
def test_a_hand_over_after_the_caller_was_connected_directly_rings_nobody(
    app: Flask,
    twilio: Any,
    make_customer: Callable[..., Any],
    fake_twilio: Any,
    run_jobs: Callable[[], int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lose_the_reply(app, monkeypatch, worker_first=False)
    params = twilio.call_params(CUSTOMER_NUMBER)
    default_route_directly(twilio.post("/twilio/voice/incoming", params))
    monkeypatch.undo()
    assert run_jobs() == 1  # the handed-over call is taken late ...
    assert fake_twilio.dial_outs() == []  # ... and rings nobody
    call = call_row(app, params["CallSid"])
    assert call.conference_name is None and call.dial_claimed_at is not None  # put through


@pytest.mark.usefixtures("known_caller")
def test_a_decision_that_fails_after_the_hand_over_rings_nobody_later(
    app: Flask,
    twilio: Any,
    make_customer: Callable[..., Any],
    fake_twilio: Any,
    run_jobs: Callable[[], int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The call was handed over with its cache entry, then answering it failed (a bug in the
    rendering): the fallback's row, written on the spot, stops the late dial-out."""
    from telephony import inbound

    def broken(*args: Any, **kwargs: Any) -> str:
        raise RuntimeError("a bug in rendering")

    monkeypatch.setattr(inbound, "render", broken)
    params = twilio.call_params(CUSTOMER_NUMBER)
    default_route_directly(twilio.post("/twilio/voice/incoming", params))
    monkeypatch.undo()
    run_jobs()
    assert fake_twilio.dial_outs() == []
    call = call_row(app, params["CallSid"])
    assert call.fallback and call.conference_name is None


def test_a_call_sid_that_is_not_one_still_gets_valid_twiml(
    app: Flask, twilio: Any, make_customer: Callable[..., Any]
) -> None:
    """The CallSid goes into the answer as it is, so anything else is answered the default way
    (signed, so only Twilio or a bug could send it)."""
    make_customer()
    params = twilio.call_params(CUSTOMER_NUMBER, CallSid='CA"><Hangup/><Say>x</Say>')
    root = default_route_directly(twilio.post("/twilio/voice/incoming", params))
    assert root.find(".//Hangup") is None
