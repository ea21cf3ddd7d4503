"""Watching it: ``/healthz`` (alive), ``/readyz`` (ready: PostgreSQL, a writable Redis, usable
settings, backlogs within bounds) and Prometheus metrics at ``/metrics``, each against the real
thing (a PostgreSQL that refuses, a Redis that is down or a read-only replica)."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis

from restrictions.db import CALL_PATH_FAILURES
from telephony.handover import CALLS, READY_EVENTS
from tests.calls import conference_event, put_together, status_event
from tests.conftest import TEST_REDIS_URL

POSTGRESQL_DOWN = "postgresql+psycopg://postgres@127.0.0.1:1/x"
UNKNOWN_CALLER = "+447400100099"  # a number no customer has


def ready(app: Flask) -> tuple[int, dict[str, Any]]:
    response = app.test_client().get("/readyz")
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert set(body["checks"]) == {"database", "redis", "settings", "backlog"}
    return response.status_code, body


def failing(body: dict[str, Any]) -> dict[str, str]:
    return {name: c["reason"] for name, c in body["checks"].items() if not c["ok"]}


def samples(app: Flask, **environ: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = app.test_client().get("/metrics", **environ)
    assert response.status_code == 200, response.data
    assert response.headers["Cache-Control"] == "no-store"
    found = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


# --- /healthz and /readyz ------------------------------------------------------------------------


def test_ready_when_postgresql_redis_settings_and_backlogs_are(app: Flask) -> None:
    status, body = ready(app)
    assert status == 200, body
    assert body["status"] == "ready"
    assert all(check["ok"] for check in body["checks"].values())
    assert body["checks"]["backlog"]["calls_stream_length"] == 0
    assert body["checks"]["backlog"]["unprocessed_events"] == 0


def test_postgresql_down_is_not_ready_and_still_alive(app_with: Callable[..., Flask]) -> None:
    broken = app_with(DATABASE_URL=POSTGRESQL_DOWN)
    status, body = ready(broken)
    assert status == 503
    assert body["status"] == "not ready"
    reasons = failing(body)
    assert set(reasons) == {"database"}, reasons  # the backlog it could not count is noted
    assert "OperationalError" in reasons["database"]
    assert "database" in body["checks"]["backlog"]["unmeasured"]
    # asked again at once: the breaker answers, with why it opened, instead of waiting
    status, again = ready(broken)
    assert status == 503 and "skipped" in failing(again)["database"]
    assert "OperationalError" in failing(again)["database"]

    alive = broken.test_client().get("/healthz")
    assert (alive.status_code, alive.get_json()) == (200, {"status": "ok"})
    assert alive.headers["Cache-Control"] == "no-store"


def test_redis_down_is_not_ready(app_with: Callable[..., Flask]) -> None:
    status, body = ready(app_with(REDIS_URL="redis://127.0.0.1:1/0"))
    assert status == 503
    reasons = failing(body)
    assert set(reasons) == {"redis"}, reasons
    assert "ConnectionError" in reasons["redis"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def read_only_redis() -> Iterator[str]:
    """A real second redis-server, made a replica of the test Redis: it refuses every write."""
    port = _free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
        + ["no", "--daemonize", "no", "--dir", "/tmp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    replica = Redis(port=port, socket_timeout=2)
    try:
        for _ in range(100):
            try:
                replica.ping()
                break
            except Exception:  # not listening yet
                time.sleep(0.05)
        master = urlsplit(TEST_REDIS_URL)
        replica.replicaof(master.hostname or "127.0.0.1", master.port or 6379)
        for _ in range(200):  # in sync: answering (no LOADING), and refusing writes
            if replica.info("replication").get("master_link_status") == "up":
                break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        replica.close()
        server.terminate()
        server.wait(timeout=10)


def test_a_read_only_redis_is_not_ready(
    app_with: Callable[..., Flask], read_only_redis: str
) -> None:
    status, body = ready(app_with(REDIS_URL=read_only_redis))
    assert status == 503
    reasons = failing(body)
    assert set(reasons) == {"redis"}, reasons
    assert "read only" in reasons["redis"].lower()


def test_no_auth_token_is_not_ready(app_with: Callable[..., Flask]) -> None:
    status, body = ready(app_with(TWILIO_AUTH_TOKEN=None))
    assert status == 503
    reasons = failing(body)
    assert set(reasons) == {"settings"}, reasons
    assert "TWILIO_AUTH_TOKEN is not set" in reasons["settings"]


def test_a_backlog_over_its_bound_is_not_ready(
    app_with: Callable[..., Flask], redis_conn: Redis, twilio: Any
) -> None:
    bounded = app_with(
        READY_MAX_READY_EVENTS=2, READY_MAX_CALLS_WAITING=1, READY_MAX_UNPROCESSED_EVENTS=5
    )
    redis_conn.rpush(READY_EVENTS, 1, 2)
    redis_conn.xadd(CALLS, {"record": "{}"})
    assert ready(bounded)[0] == 200  # at the bounds: ready

    redis_conn.rpush(READY_EVENTS, 3)
    redis_conn.xadd(CALLS, {"record": "{}"})
    status, body = ready(bounded)
    assert status == 503
    reasons = failing(body)
    assert set(reasons) == {"backlog"}, reasons
    assert "ready_events_length is 3 (over 2)" in reasons["backlog"]
    assert "calls_stream_length is 2 (over 1)" in reasons["backlog"]
    assert body["checks"]["backlog"]["ready_events_length"] == 3


def test_stored_events_nobody_processed_are_a_backlog(
    app_with: Callable[..., Flask], twilio: Any
) -> None:
    sid = "CA" + "e" * 32
    for sequence, event in enumerate(("ringing", "in-progress", "completed"), 1):
        assert status_event(twilio, sid, event, sequence).status_code == 204
    status, body = ready(app_with(READY_MAX_UNPROCESSED_EVENTS=2))
    assert status == 503
    assert "unprocessed_events is 3 (over 2)" in failing(body)["backlog"]


# --- /metrics ------------------------------------------------------------------------------------


def test_metrics_count_calls_callbacks_and_warnings(
    app: Flask,
    twilio: Any,
    run_jobs: Callable[[], int],
    agent: Any,
    fake_twilio: Any,
) -> None:
    before = samples(app)

    caller = twilio.new_call_sid()
    answered = twilio.incoming(UNKNOWN_CALLER, CallSid=caller)
    assert answered.status_code == 200
    run_jobs()  # the call's row, and the contact centre rung for it
    (dial_out,) = fake_twilio.dial_outs(caller)
    put_together(twilio, caller, dial_out.answer["sid"])
    assert status_event(twilio, caller, "in-progress", 1, from_=UNKNOWN_CALLER).status_code == 204
    run_jobs()
    warned = app.test_client().post(f"/api/v1/calls/{caller}/warn", headers=agent.headers)
    assert warned.status_code == 200, warned.data
    assert conference_event(twilio, caller, "announcement-end").status_code == 204

    after = samples(app)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("callguard_inbound_calls_total", route="default", fallback="false") == 1
    assert grew("callguard_inbound_decision_seconds_count") == 1
    assert grew("callguard_dial_outs_total", outcome="rung") == 1
    assert grew("callguard_dial_out_delay_seconds_count") == 1
    assert grew("callguard_events_stored_total", source="status", store="postgresql") == 1
    assert grew("callguard_events_processed_total", source="status") == 1
    assert grew("callguard_events_stored_total", source="conference", store="postgresql") == 3
    assert grew("callguard_agent_actions_total", kind="warn", outcome="sent") == 1
    assert ("callguard_events_parked_total", ()) in after
    assert ("callguard_breaker_open", (("breaker", "postgresql"),)) in after
    # read when scraped
    assert value(after, "callguard_calls_stream_length") == 0
    assert value(after, "callguard_ready_events_length") == 0
    assert value(after, "callguard_unprocessed_events") == 0
    assert value(after, "callguard_parked_events") == 0


def test_a_fallback_and_an_open_breaker_show(app_with: Callable[..., Flask]) -> None:
    from tests.conftest import TwilioWebhooks

    broken = app_with(DATABASE_URL=POSTGRESQL_DOWN, REDIS_URL="redis://127.0.0.1:1/0")
    before = samples(broken)
    webhooks = TwilioWebhooks(broken.test_client())
    for _ in range(CALL_PATH_FAILURES):  # failures in a row open the call path's breaker
        answered = webhooks.incoming(UNKNOWN_CALLER)
        assert answered.status_code == 200
    after = samples(broken)
    fallback = ("callguard_inbound_calls_total", (("fallback", "true"), ("route", "default")))
    assert after[fallback] - before.get(fallback, 0) == CALL_PATH_FAILURES
    assert value(after, "callguard_breaker_open", breaker="postgresql") == 1
    assert value(after, "callguard_breaker_open", breaker="redis (call path)") == 1


def test_an_alert_opened_is_counted(
    app: Flask, twilio: Any, run_jobs: Callable[[], int], make_customer: Callable[..., Any]
) -> None:
    make_customer(numbers=("+447400100001",))
    before = samples(app)
    for _ in range(5):  # calls-per-hour: 5 calls
        sid = twilio.new_call_sid()
        twilio.incoming("+447400100001", CallSid=sid)
        status_event(twilio, sid, "completed", 1, CallDuration="30")
    run_jobs()
    after = samples(app)
    opened = ("callguard_alerts_opened_total", (("rule", "calls-per-hour"),))
    assert after[opened] - before.get(opened, 0) == 1


def test_metrics_are_refused_from_elsewhere_or_through_a_proxy(app: Flask) -> None:
    client = app.test_client()
    elsewhere = client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert elsewhere.status_code == 403
    assert b"callguard_" not in elsewhere.data
    proxied = client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert proxied.status_code == 403
    assert client.get("/metrics").status_code == 200  # loopback, directly


def test_metrics_with_a_token_need_it_from_elsewhere(app_with: Callable[..., Flask]) -> None:
    guarded = app_with(METRICS_TOKEN="scrape-token-0123456789", METRICS_ALLOWED_ADDRESSES="")
    client = guarded.test_client()
    assert client.get("/metrics").status_code == 401  # not even loopback without the token
    wrong = client.get("/metrics", headers={"Authorization": "Bearer wrong"})
    assert wrong.status_code == 401
    remote = {"REMOTE_ADDR": "203.0.113.9"}
    right = {"Authorization": "Bearer scrape-token-0123456789"}
    assert client.get("/metrics", environ_base=remote, headers=right).status_code == 200
    assert b"callguard_inbound_calls_total" in client.get("/metrics", headers=right).data
