"""Each kind of bad input gets a 4xx that says what is wrong: never a 500, never a stack trace,
never a partial write."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from restrictions.models import CallEvent, Customer
from telephony.database import database
from tests.calls import status_event


def rows(app: Flask, model: type) -> int:
    with database(app).sessions() as sess:
        return int(sess.scalar(select(func.count()).select_from(model)) or 0)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/alerts/2147483648",
        "/api/v1/alerts/99999999999999999999999",
        "/api/v1/restrictions/0/end",
        "/api/v1/alerts/-1",
    ],
)
def test_ids_outside_postgresqls_integers_are_not_found(
    client: Any, supervisor: Any, path: str
) -> None:
    method = client.post if path.endswith("/end") else client.get
    response = method(path, headers=supervisor.headers, json={"reason": "r"})
    assert response.status_code == 404 and "error" in response.get_json()


def test_nul_in_text_is_refused_and_nothing_is_written(
    app: Flask, client: Any, supervisor: Any
) -> None:
    body = {"reference": "HMS-1", "name": "Pat\x00", "phone_numbers": ["+447400100001"]}
    response = client.post("/api/v1/customers", json=body, headers=supervisor.headers)
    assert response.status_code == 400
    assert response.get_json() == {"error": "text must not contain NUL characters"}
    assert rows(app, Customer) == 0


def test_nul_in_a_query_or_a_path_is_refused(client: Any, supervisor: Any) -> None:
    query = client.get("/api/v1/alerts?status=open%00", headers=supervisor.headers)
    assert query.status_code == 400 and "NUL" in query.get_json()["error"]
    path = client.get("/api/v1/customers/HMS%00", headers=supervisor.headers)
    assert path.status_code == 400


def test_deeply_nested_json_is_refused(client: Any, supervisor: Any) -> None:
    deep = "[" * 5000 + "]" * 5000
    response = client.post(
        "/api/v1/customers",
        data=deep,
        content_type="application/json",
        headers=supervisor.headers,
    )
    assert response.status_code == 400 and "nested" in response.get_json()["error"]
    nested = json.dumps(
        {"adjustments": {"a": {"b": {"c": {}}}}}
        | {"x": [[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]}
    )
    response = client.post(
        "/api/v1/customers",
        data=nested,
        content_type="application/json",
        headers=supervisor.headers,
    )
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ("[1, 2]", 400, "must be a JSON object"),
        ("not json", 400, "not valid JSON"),
        ('{"name": 5, "reference": "R", "phone_numbers": ["+447400100001"]}', 422, "name"),
        ('{"reference": "R", "name": "N", "phone_numbers": "+447400100001"}', 422, "list"),
    ],
)
def test_wrong_json_types_are_4xx_with_the_reason(
    client: Any, supervisor: Any, body: str, status: int, message: str
) -> None:
    response = client.post(
        "/api/v1/customers", data=body, content_type="application/json", headers=supervisor.headers
    )
    assert response.status_code == status and message in response.get_json()["error"]


def test_a_console_press_whose_body_is_not_an_object_is_a_400(
    client: Any, agent: Any, twilio: Any, run_jobs: Callable[[], int]
) -> None:
    sid = "CA" + "c" * 32
    twilio.post("/twilio/voice/incoming", twilio.call_params("+447400100001", CallSid=sid))
    run_jobs()  # the call is known: the body, not the path, is what is wrong
    response = client.post(
        "/api/v1/calls/CA" + "c" * 32 + "/end",
        data="[]",
        content_type="application/json",
        headers=agent.headers,
    )
    assert response.status_code == 400 and "JSON object" in response.get_json()["error"]


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01", "2026-02-30"])
def test_dates_out_of_range_are_422(
    client: Any,
    supervisor: Any,
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
    day: str,
) -> None:
    restriction = restrict(make_customer(), kind="written_only")
    response = client.post(
        f"/api/v1/restrictions/{restriction.id}/appeals",
        json={"lodged_on": day, "grounds": "Unfair"},
        headers=supervisor.headers,
    )
    assert response.status_code == 422 and "lodged_on" in response.get_json()["error"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"CallSid": "not-a-sid"}, "is not a Twilio id"),
        ({"CallSid": "CA../../etc"}, "is not a Twilio id"),
        ({"SequenceNumber": "2147483648"}, "at most 2147483647"),
        ({"CallDuration": "99999999999999"}, "whole number"),
        ({"From": "+447400100001\x00"}, "NUL"),
    ],
)
def test_callbacks_twilio_could_never_send_are_a_400_and_not_stored(
    app: Flask, twilio: Any, overrides: dict[str, str], message: str
) -> None:
    sid = overrides.pop("CallSid", "CA" + "9" * 32)
    response = status_event(twilio, sid, "completed", 3, **overrides)
    assert response.status_code == 400 and message in response.get_json()["error"]
    assert rows(app, CallEvent) == 0


def test_odd_call_sids_in_our_own_paths_are_not_found(client: Any, agent: Any) -> None:
    response = client.post("/api/v1/calls/CA-bad/warn", headers=agent.headers)
    assert response.status_code == 404
