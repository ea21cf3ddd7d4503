"""The JSON API for customers and restrictions (CONTRACT.md): what staff and the housing
management system can do, and every guard on it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from restrictions import cache
from restrictions.models import AuditEntry, Customer, PhoneNumber, Restriction
from telephony.database import database
from telephony.redis_store import redis_client

NEW_CUSTOMER = {
    "reference": "HMS-1001",
    "name": "Jo Bloggs",
    "phone_numbers": ["07400 100001", "+44 1332 123456"],
    "language": "cy-GB",
    "adjustments": {"slow_speech": True},
}


def count(app: Flask, model: type) -> int:
    with database(app).sessions() as sess:
        return int(sess.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture
def customer(client: Any, supervisor: Any) -> dict[str, Any]:
    response = client.post("/api/v1/customers", json=NEW_CUSTOMER, headers=supervisor.headers)
    assert response.status_code == 201, response.get_json()
    data: dict[str, Any] = response.get_json()
    return data


# --- customers -------------------------------------------------------------------------------


def test_supervisor_creates_a_customer_with_numbers_in_e164(customer: dict[str, Any]) -> None:
    assert customer["reference"] == "HMS-1001"
    assert customer["phone_numbers"] == ["+447400100001", "+441332123456"]
    assert customer["language"] == "cy-GB"
    assert customer["adjustments"] == {"slow_speech": True}


def test_creating_a_customer_is_audited_and_fills_the_routing_cache(
    app: Flask, customer: dict[str, Any], supervisor: Any
) -> None:
    with database(app).sessions() as sess:
        entry = sess.scalar(select(AuditEntry).where(AuditEntry.action == "customer.created"))
        assert entry is not None
        assert entry.actor == "sam.supervisor" and entry.actor_id == supervisor.user.id
        assert entry.before is None and entry.after is not None
        assert entry.after["phone_numbers"] == customer["phone_numbers"]
    hit, profile = cache.read(redis_client(app), "+441332123456")
    assert hit and profile is not None and profile.reference == "HMS-1001" and profile.slow_speech


def test_duplicate_reference_is_409(client: Any, supervisor: Any, customer: dict[str, Any]) -> None:
    again = {**NEW_CUSTOMER, "phone_numbers": ["+447400100099"]}
    response = client.post("/api/v1/customers", json=again, headers=supervisor.headers)
    assert response.status_code == 409
    assert "HMS-1001" in response.get_json()["error"]


def test_a_number_belongs_to_one_customer_a_clash_is_409(
    app: Flask, client: Any, supervisor: Any, customer: dict[str, Any]
) -> None:
    other = {"reference": "HMS-2", "name": "Al", "phone_numbers": ["+447400100099", "07400100001"]}
    response = client.post("/api/v1/customers", json=other, headers=supervisor.headers)
    assert response.status_code == 409
    assert "+447400100001" in response.get_json()["error"]
    assert count(app, Customer) == 1 and count(app, PhoneNumber) == 2  # nothing half-written


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({**NEW_CUSTOMER, "phone_numbers": ["12345"]}, "not a valid phone number"),
        ({**NEW_CUSTOMER, "phone_numbers": ["call me"]}, "not a phone number"),
        ({**NEW_CUSTOMER, "phone_numbers": []}, "phone_numbers must be a non-empty list"),
        ({**NEW_CUSTOMER, "reference": ""}, "reference is required"),
        ({**NEW_CUSTOMER, "name": None}, "name is required"),
        ({**NEW_CUSTOMER, "language": "fr-FR"}, "language must be one of"),
        ({**NEW_CUSTOMER, "adjustments": {"slow_speech": "yes"}}, "slow_speech"),
    ],
)
def test_invalid_customer_is_422_with_the_reason_and_writes_nothing(
    app: Flask, client: Any, supervisor: Any, body: dict[str, Any], reason: str
) -> None:
    response = client.post("/api/v1/customers", json=body, headers=supervisor.headers)
    assert response.status_code == 422
    assert reason in response.get_json()["error"]
    assert count(app, Customer) == 0 and count(app, AuditEntry) == 0


def test_a_body_that_is_not_json_is_a_clear_4xx(client: Any, supervisor: Any) -> None:
    response = client.post("/api/v1/customers", data="reference=x", headers=supervisor.headers)
    assert response.status_code == 415 and "JSON" in response.get_json()["error"]
    response = client.post("/api/v1/customers", json=[1, 2], headers=supervisor.headers)
    assert response.status_code == 400 and "JSON object" in response.get_json()["error"]


def test_agent_reads_a_customer_with_restrictions_calls_and_audit(
    client: Any, agent: Any, supervisor: Any, customer: dict[str, Any]
) -> None:
    client.post(
        "/api/v1/customers/HMS-1001/restrictions",
        headers=supervisor.headers,
        json={"kind": "warning", "reason": "Shouted at staff on 3 May"},
    )
    response = client.get("/api/v1/customers/HMS-1001", headers=agent.headers)
    assert response.status_code == 200
    data = response.get_json()
    assert [r["kind"] for r in data["active_restrictions"]] == ["warning"]
    assert data["recent_calls"] == [] and data["agent_actions"] == []
    assert [a["action"] for a in data["audit"]] == ["restriction.created", "customer.created"]


def test_unknown_customer_is_404(client: Any, agent: Any) -> None:
    response = client.get("/api/v1/customers/NOPE", headers=agent.headers)
    assert response.status_code == 404 and "NOPE" in response.get_json()["error"]


def test_updating_a_customer_audits_before_and_after(
    app: Flask, client: Any, supervisor: Any, customer: dict[str, Any]
) -> None:
    response = client.patch(
        "/api/v1/customers/HMS-1001",
        headers=supervisor.headers,
        json={"phone_numbers": ["+447400100002"]},
    )
    assert response.status_code == 200
    assert response.get_json()["phone_numbers"] == ["+447400100002"]
    with database(app).sessions() as sess:
        entry = sess.scalar(select(AuditEntry).where(AuditEntry.action == "customer.updated"))
        assert entry is not None and entry.before is not None and entry.after is not None
        assert entry.before["phone_numbers"] == ["+447400100001", "+441332123456"]
        assert entry.after["phone_numbers"] == ["+447400100002"]
    assert cache.read(redis_client(app), "+447400100001") == (False, None)


# --- guards ----------------------------------------------------------------------------------


def test_no_token_is_401(client: Any) -> None:
    response = client.get("/api/v1/customers/HMS-1001")
    assert response.status_code == 401 and "Bearer" in response.get_json()["error"]


def test_a_wrong_token_is_401(client: Any) -> None:
    response = client.get("/api/v1/customers/HMS-1001", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401 and "not valid" in response.get_json()["error"]


def test_an_agent_may_not_create_customers_or_restrictions(
    client: Any, agent: Any, customer: dict[str, Any]
) -> None:
    response = client.post("/api/v1/customers", json=NEW_CUSTOMER, headers=agent.headers)
    assert response.status_code == 403 and "supervisor" in response.get_json()["error"]
    response = client.post(
        "/api/v1/customers/HMS-1001/restrictions",
        headers=agent.headers,
        json={"kind": "written_only", "reason": "x"},
    )
    assert response.status_code == 403


def test_an_admin_may_do_what_a_supervisor_may(client: Any, make_staff: Callable[..., Any]) -> None:
    admin = make_staff("admin", "ada.admin")
    response = client.post("/api/v1/customers", json=NEW_CUSTOMER, headers=admin.headers)
    assert response.status_code == 201


# --- restrictions ------------------------------------------------------------------------------

TODAY = datetime.now(UTC).date().isoformat()
VALID: dict[str, dict[str, Any]] = {
    "warning": {},
    "spoc": {"spoc": "01332 000555"},
    "written_only": {},
    "limited_contact": {
        "windows": [{"days": ["Tuesday", "thu"], "start": "10:00", "end": "12:00"}],
        "max_calls_per_week": 2,
    },
    "representative_only": {"representative": "Derby Advocacy Service"},
    "no_engagement": {"issue": "The boundary fence"},
}


def test_every_declared_kind_has_a_case_here() -> None:
    from restrictions import kinds

    assert set(VALID) == {k.name for k in kinds.all_kinds()}


@pytest.mark.parametrize("kind", sorted(VALID))
def test_each_kind_of_restriction_is_recorded_with_its_fields(
    client: Any, supervisor: Any, customer: dict[str, Any], kind: str
) -> None:
    body: dict[str, Any] = {
        "kind": kind,
        "reason": "Case review 12 May",
        "decided_on": "2026-05-12",
        "notice_sent_on": "2026-05-13",
        **VALID[kind],
    }
    response = client.post(
        "/api/v1/customers/HMS-1001/restrictions", json=body, headers=supervisor.headers
    )
    assert response.status_code == 201, response.get_json()
    data = response.get_json()
    assert data["kind"] == kind and data["active"] is True
    assert data["decided_by"] == "sam.supervisor"
    assert data["notice_sent_on"] == "2026-05-13"
    if kind == "spoc":
        assert data["spoc"] == "+441332000555"
    if kind == "limited_contact":
        assert data["windows"] == [{"days": ["tue", "thu"], "start": "10:00", "end": "12:00"}]


def test_review_falls_due_twelve_months_after_the_decision(
    client: Any, supervisor: Any, customer: dict[str, Any]
) -> None:
    from datetime import UTC, datetime

    import time_machine

    with time_machine.travel(datetime(2026, 2, 28, 15, tzinfo=UTC), tick=False):
        response = client.post(
            "/api/v1/customers/HMS-1001/restrictions",
            headers=supervisor.headers,
            json={"kind": "written_only", "reason": "r", "notice_sent_on": "2026-02-28"},
        )
    assert response.get_json()["review_due_on"] == "2027-02-28"


def test_spoc_may_be_a_staff_user(
    client: Any, supervisor: Any, agent: Any, customer: dict[str, Any]
) -> None:
    response = client.post(
        "/api/v1/customers/HMS-1001/restrictions",
        headers=supervisor.headers,
        json={"kind": "spoc", "reason": "r", "spoc": "alex.agent"},
    )
    assert response.status_code == 201 and response.get_json()["spoc"] == "client:alex.agent"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"kind": "ban", "reason": "r"}, "kind must be one of"),
        ({"kind": "warning"}, "reason is required"),
        ({"kind": "spoc", "reason": "r"}, "spoc is required"),
        ({"kind": "spoc", "reason": "r", "spoc": "user:nobody"}, "no staff user"),
        ({"kind": "spoc", "reason": "r", "spoc": "12"}, "not a valid phone number"),
        ({"kind": "limited_contact", "reason": "r"}, "windows is required"),
        (
            {
                "kind": "limited_contact",
                "reason": "r",
                "windows": [{"days": ["funday"], "start": "10:00", "end": "12:00"}],
            },
            "not a weekday",
        ),
        (
            {
                "kind": "limited_contact",
                "reason": "r",
                "windows": [{"days": ["mon"], "start": "12:00", "end": "10:00"}],
            },
            "must be before",
        ),
        (
            {
                "kind": "limited_contact",
                "reason": "r",
                "windows": [{"days": ["mon"], "start": "10", "end": "12:00"}],
            },
            "time like",
        ),
        (
            {
                "kind": "limited_contact",
                "reason": "r",
                "max_calls_per_week": 0,
                "windows": [{"days": ["mon"], "start": "10:00", "end": "12:00"}],
            },
            "max_calls_per_week",
        ),
        ({"kind": "representative_only", "reason": "r"}, "representative is required"),
        ({"kind": "no_engagement", "reason": "r", "issue": "  "}, "issue is required"),
        ({"kind": "warning", "reason": "r", "notice_sent_on": "last week"}, "notice_sent_on"),
    ],
)
def test_invalid_restriction_is_422_with_the_reason_and_writes_nothing(
    app: Flask,
    client: Any,
    supervisor: Any,
    customer: dict[str, Any],
    body: dict[str, Any],
    reason: str,
) -> None:
    audits = count(app, AuditEntry)
    response = client.post(
        "/api/v1/customers/HMS-1001/restrictions", json=body, headers=supervisor.headers
    )
    assert response.status_code == 422
    assert reason in response.get_json()["error"]
    assert count(app, Restriction) == 0 and count(app, AuditEntry) == audits


def test_restricting_an_unknown_customer_is_404(client: Any, supervisor: Any) -> None:
    response = client.post(
        "/api/v1/customers/NOPE/restrictions",
        headers=supervisor.headers,
        json={"kind": "warning", "reason": "r"},
    )
    assert response.status_code == 404


def test_ending_a_restriction_records_who_when_and_why_and_keeps_the_row(
    app: Flask, client: Any, supervisor: Any, customer: dict[str, Any]
) -> None:
    created = client.post(
        "/api/v1/customers/HMS-1001/restrictions",
        headers=supervisor.headers,
        json={"kind": "written_only", "reason": "r", "notice_sent_on": TODAY},
    ).get_json()
    hit, profile = cache.read(redis_client(app), "+447400100001")
    assert profile is not None and len(profile.restrictions) == 1
    response = client.post(
        f"/api/v1/restrictions/{created['id']}/end",
        headers=supervisor.headers,
        json={"reason": "Reviewed after 12 months; behaviour improved"},
    )
    assert response.status_code == 200
    data = response.get_json()
    assert data["active"] is False and data["ended_by"] == "sam.supervisor"
    assert data["end_reason"].startswith("Reviewed")
    assert count(app, Restriction) == 1
    hit, profile = cache.read(redis_client(app), "+447400100001")
    assert profile is not None and profile.restrictions == ()
    with database(app).sessions() as sess:
        entry = sess.scalar(select(AuditEntry).where(AuditEntry.action == "restriction.ended"))
        assert entry is not None and entry.before is not None and entry.after is not None
        assert entry.before["ended_at"] is None and entry.after["ended_at"]


def test_ending_needs_a_reason_and_cannot_happen_twice(
    client: Any, supervisor: Any, customer: dict[str, Any]
) -> None:
    created = client.post(
        "/api/v1/customers/HMS-1001/restrictions",
        headers=supervisor.headers,
        json={"kind": "warning", "reason": "r"},
    ).get_json()
    url = f"/api/v1/restrictions/{created['id']}/end"
    assert client.post(url, headers=supervisor.headers, json={}).status_code == 422
    assert client.post(url, headers=supervisor.headers, json={"reason": "done"}).status_code == 200
    again = client.post(url, headers=supervisor.headers, json={"reason": "done"})
    assert again.status_code == 409 and "already ended" in again.get_json()["error"]
    assert (
        client.post(
            "/api/v1/restrictions/999/end", headers=supervisor.headers, json={"reason": "x"}
        ).status_code
        == 404
    )
