"""Inbound calls are isolated from everything else: staff requests may hold only the threads left
after a reserve, so when they wait on a sick database they get a fast 503 and the caller is still
answered; a database that is down is a 503 that says so, never a stack trace."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any
from xml.etree import ElementTree

import pytest
from flask import Flask

DOWN = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"


def test_staff_requests_cannot_take_the_threads_the_call_path_needs(
    app_with: Callable[..., Flask],
    agent: Any,
    twilio: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from telephony.api import calls

    isolated = app_with(WEB_THREADS=2, CALL_PATH_RESERVED_THREADS=1)  # one staff slot
    entered, release = threading.Event(), threading.Event()
    real = calls.cards

    def stuck_on_the_database(mine_only: bool) -> list[dict[str, Any]]:
        entered.set()
        release.wait(10)
        return real(mine_only)

    monkeypatch.setattr(calls, "cards", stuck_on_the_database)
    first: list[Any] = []
    console = threading.Thread(
        target=lambda: first.append(
            isolated.test_client().get("/api/v1/calls/active", headers=agent.headers)
        )
    )
    console.start()
    assert entered.wait(5)
    try:
        busy = isolated.test_client().get("/api/v1/calls/active", headers=agent.headers)
        assert busy.status_code == 503 and "busy" in busy.get_json()["error"]
        twilio.client = isolated.test_client()
        answered = twilio.incoming("+447400100001")
        assert answered.status_code == 200
        assert ElementTree.fromstring(answered.data).find("./Dial") is not None
    finally:
        release.set()
        console.join(10)
    assert first and first[0].status_code == 200


def test_a_database_that_is_down_is_a_503_that_says_so(
    app_with: Callable[..., Flask], agent: Any
) -> None:
    down = app_with(DATABASE_URL=DOWN).test_client()
    response = down.get("/api/v1/calls/active", headers=agent.headers)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.get_json() == {
        "error": "the database is unavailable just now; try again shortly"
    }
