"""Logs an operator can use: one JSON object a line, the call's CallSid and the request's id on
every line about a call (webhooks, rq jobs, stream entries), one access line per request, a
CallSid that is not one never logged as it came, and the Twilio library's dumps at DEBUG only."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from telephony import logs
from tests.conftest import TwilioWebhooks

CALLER = "+447400100099"
POSTGRESQL_DOWN = "postgresql+psycopg://postgres@127.0.0.1:1/x"


class Captured(logging.Handler):
    """Every record the process logs while a test runs, with the log context put on it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.addFilter(logs.ContextFilter())

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def lines(self) -> list[dict[str, Any]]:
        """The records as the JSON format writes them: one object a line."""
        written = [logs.JsonFormatter().format(r) for r in self.records]
        assert all("\n" not in line for line in written)
        return [json.loads(line) for line in written]

    def about(self, call_sid: str) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line.get("call_sid") == call_sid]


@pytest.fixture
def captured(app: Flask) -> Iterator[Captured]:
    handler = Captured()
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)


@pytest.fixture
def restore_logging(app: Flask) -> Iterator[None]:
    yield
    logs.configure(logs.log_format(app.config), "INFO")


def test_a_webhooks_lines_name_its_call_and_request(
    app: Flask, twilio: Any, captured: Captured
) -> None:
    sid = twilio.new_call_sid()
    params = twilio.call_params(CALLER, CallSid=sid)
    headers = {"X-Request-Id": "edge-0123456789abcdef"}
    answered = twilio.post("/twilio/voice/incoming", params, headers=headers)
    assert answered.status_code == 200
    assert answered.headers["X-Request-Id"] == "edge-0123456789abcdef"

    (access,) = [line for line in captured.lines() if line["logger"] == "callguard.access"]
    assert {"time", "level", "logger", "message"} <= set(access)
    assert access["call_sid"] == sid
    assert access["request_id"] == "edge-0123456789abcdef"
    assert (access["method"], access["path"], access["status"]) == (
        "POST",
        "/twilio/voice/incoming",
        200,
    )
    assert isinstance(access["duration_ms"], float)


def test_lines_about_a_callback_name_its_call(
    app_with: Callable[..., Flask], captured: Captured
) -> None:
    """PostgreSQL down: storing the callback is logged (it is kept in Redis) on the call's line,
    as is the breaker that opened, from the thread that waited on PostgreSQL."""
    sid = "CA" + "7" * 32
    broken = TwilioWebhooks(app_with(DATABASE_URL=POSTGRESQL_DOWN).test_client())
    params = {
        "AccountSid": "AC" + "0" * 31 + "1",
        "CallSid": sid,
        "CallStatus": "completed",
        "Direction": "inbound",
        "From": CALLER,
        "SequenceNumber": "3",
    }
    assert broken.post("/twilio/voice/status", params).status_code == 204

    lines = captured.lines()
    kept = [line for line in lines if "keeping it in Redis" in line["message"]]
    assert kept and all(line["call_sid"] == sid for line in kept)
    request_ids = {line.get("request_id") for line in lines}
    assert len(request_ids) == 1 and None not in request_ids  # every line, the same request
    assert all(line.get("call_sid") == sid for line in lines)


def test_a_jobs_lines_name_its_call(
    app: Flask,
    twilio: Any,
    run_jobs: Callable[[], int],
    fake_twilio: Any,
    captured: Captured,
) -> None:
    sid = twilio.new_call_sid()
    assert twilio.incoming(CALLER, CallSid=sid).status_code == 200
    key = f"/twilio/voice/emergency?call_sid={sid}&msg=route&replay=0"
    assert twilio.post(key, {"CallSid": sid, "Digits": "1"}).status_code == 200
    fake_twilio.fail("/Calls.json", 400, "Account suspended")  # the dial-out is refused
    captured.records.clear()
    run_jobs()

    # the call taken from the stream: the refused dial-out is logged on the call's line
    refused = [line for line in captured.about(sid) if "could not dial" in line["message"]]
    assert refused, [line["message"] for line in captured.lines()]
    assert all(line["request_id"].startswith("calls:") for line in refused)
    # the rq job recording the emergency choice: rq's own lines about it too
    done = [
        line
        for line in captured.about(sid)
        if line["logger"] == "rq.worker" and "record_emergency_choice" in line["message"]
    ]
    assert done, [line["message"] for line in captured.lines()]
    assert all(re.fullmatch(r"rq:.+", line["request_id"]) for line in done)


def test_a_call_sid_that_is_not_one_is_never_logged_as_it_came(
    app: Flask, twilio: Any, captured: Captured
) -> None:
    forged = 'CA"><Hangup/>\n2026-01-01 ERROR forged line'
    params = twilio.call_params(CALLER, CallSid=forged)
    assert twilio.post("/twilio/voice/incoming", params).status_code == 200  # answered anyway

    assert captured.records, "the refused decision and the access line are logged"
    text = logs.TextFormatter()
    for record in captured.records:
        assert getattr(record, "call_sid", None) is None
        assert forged not in text.format(record), record.getMessage()


def test_twilios_request_dumps_show_at_debug_only(
    app: Flask,
    twilio: Any,
    run_jobs: Callable[[], int],
    fake_twilio: Any,
    captured: Captured,
    restore_logging: None,
) -> None:
    def dial_out() -> list[logging.LogRecord]:
        captured.records.clear()
        twilio.incoming(CALLER)
        run_jobs()
        assert fake_twilio.dial_outs(), "the worker rang someone through Twilio's REST API"
        return [r for r in captured.records if r.name.startswith(logs.TWILIO_DUMPS)]

    logs.configure(logs.log_format(app.config), "INFO")
    assert dial_out() == []
    logs.configure(logs.log_format(app.config), "DEBUG")
    assert dial_out(), "at DEBUG the library's dumps are there"


def test_one_access_line_per_request_without_its_query(app: Flask, captured: Captured) -> None:
    client = app.test_client()
    answered = client.get("/healthz?token=secret", headers={"X-Request-Id": "bad id <x>"})
    (access,) = [line for line in captured.lines() if line["logger"] == "callguard.access"]
    assert access["path"] == "/healthz" and "secret" not in access["message"]
    assert re.fullmatch(r"[0-9a-f]{32}", access["request_id"])  # a bad one is replaced
    assert answered.headers["X-Request-Id"] == access["request_id"]
    assert "call_sid" not in access


def test_json_in_production_text_for_make_run_configured_once(
    app_with: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch, restore_logging: None
) -> None:
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert logs.log_format({}) == "text"
    monkeypatch.setenv("DATABASE_URL", POSTGRESQL_DOWN)
    assert logs.log_format({}) == "json"
    assert logs.log_format({"LOG_FORMAT": "text"}) == "text"
    monkeypatch.delenv("DATABASE_URL")

    app_with(LOG_FORMAT="json")
    app_with(LOG_FORMAT="json")
    ours = [h for h in logging.getLogger().handlers if h.get_name() == logs.HANDLER_NAME]
    assert len(ours) == 1  # configured once: a second app does not add a second handler
    assert isinstance(ours[0].formatter, logs.JsonFormatter)
    with logs.context(call_sid="CA" + "1" * 32, request_id="r-0123456789"):
        record = logging.LogRecord("callguard.test", logging.INFO, __file__, 1, "hello", (), None)
        assert ours[0].filter(record)
        line = json.loads(ours[0].format(record))
    assert line["call_sid"] == "CA" + "1" * 32 and line["request_id"] == "r-0123456789"
    assert (line["level"], line["logger"], line["message"]) == ("INFO", "callguard.test", "hello")
    assert logging.getLogger(logs.TWILIO_DUMPS).getEffectiveLevel() > logging.INFO


@pytest.mark.slow
def test_an_idle_worker_logs_no_error_while_redis_is_healthy(
    app: Flask, captured: Captured
) -> None:
    """rq's worker used to wait 405 s for a job on a client that gives up after 5 s: an ERROR
    ("could not connect to Redis instance") every few seconds while Redis was healthy."""
    from telephony import worker
    from telephony.redis_store import queue, queues

    connection = queue(app).connection
    rq_worker = worker.SimpleWorker(queues(app), connection=connection)
    assert connection.connection_pool.connection_kwargs["socket_timeout"] == 5  # left alone
    rq_worker.work(burst=False, max_idle_time=6)  # idle longer than the client's timeout
    rq_lines = [r for r in captured.records if r.name.startswith("rq.")]
    assert any("idle for" in r.getMessage() for r in rq_lines)  # it waited, then stopped
    assert [r.getMessage() for r in captured.records if r.levelno >= logging.ERROR] == []
