"""The alerts API (CONTRACT.md): supervisors list, read, dismiss and escalate alerts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from restrictions.lifecycle import Actor, audit
from restrictions.models import AuditEntry, ContactAlert, Customer
from telephony.database import database


@pytest.fixture
def open_alert(app: Flask, make_customer: Callable[..., Any]) -> Callable[..., int]:
    """An alert as the counting job opens it (the counting itself is tested in handlers/)."""

    def make(
        rule: str = "calls-per-hour",
        customer: Customer | None = None,
        opened: datetime | None = None,
    ) -> int:
        c = customer or make_customer()
        with database(app).sessions() as sess:
            alert = ContactAlert(
                subject=f"customer:{c.id}",
                customer_id=c.id,
                rule_name=rule,
                rule={"name": rule, "window_minutes": 60, "max_calls": 5},
                evidence={
                    "calls": [
                        {
                            "call_sid": "CA1",
                            "number": "+447400100001",
                            "started_at": "2026-06-02T09:00:00+00:00",
                            "duration_seconds": 60,
                            "route": "default",
                        }
                    ]
                },
                opened_at=opened or datetime.now(UTC),
            )
            sess.add(alert)
            sess.flush()
            audit(
                sess, Actor(None, "callguard"), "alert.opened", "alert", alert.id, customer_id=c.id
            )
            sess.commit()
            return alert.id

    return make


def test_open_alerts_with_their_evidence(
    client: Any, supervisor: Any, open_alert: Callable[..., int]
) -> None:
    alert_id = open_alert()
    response = client.get("/api/v1/alerts?status=open", headers=supervisor.headers)
    assert response.status_code == 200
    (alert,) = response.get_json()["alerts"]
    assert alert["id"] == alert_id and alert["rule"] == "calls-per-hour"
    assert alert["customer"] == "HMS-0001"
    assert alert["evidence"]["calls"][0]["duration_seconds"] == 60


def test_open_first_then_newest_first_and_filters(
    client: Any,
    supervisor: Any,
    open_alert: Callable[..., int],
    make_customer: Callable[..., Any],
) -> None:
    older = open_alert(opened=datetime(2026, 6, 1, tzinfo=UTC))
    other = make_customer(reference="HMS-2", numbers=("+447400100002",))
    newer = open_alert(
        rule="calls-per-day", customer=other, opened=datetime(2026, 6, 2, tzinfo=UTC)
    )
    client.post(
        f"/api/v1/alerts/{newer}/dismiss",
        json={"reason": "Known outage that day"},
        headers=supervisor.headers,
    )
    third = make_customer(reference="HMS-3", numbers=("+447400100003",))
    newest_open = open_alert(customer=third, opened=datetime(2026, 6, 3, tzinfo=UTC))
    ids = [
        a["id"]
        for a in client.get("/api/v1/alerts", headers=supervisor.headers).get_json()["alerts"]
    ]
    assert ids == [newest_open, older, newer]
    by_rule = client.get("/api/v1/alerts?rule=calls-per-day", headers=supervisor.headers)
    assert [a["id"] for a in by_rule.get_json()["alerts"]] == [newer]
    bad = client.get("/api/v1/alerts?status=closed", headers=supervisor.headers)
    assert bad.status_code == 422 and "status must be" in bad.get_json()["error"]


def test_dismiss_needs_a_reason_is_audited_and_happens_once(
    app: Flask, client: Any, supervisor: Any, open_alert: Callable[..., int]
) -> None:
    alert_id = open_alert()
    url = f"/api/v1/alerts/{alert_id}/dismiss"
    assert client.post(url, json={}, headers=supervisor.headers).status_code == 422
    response = client.post(
        url, json={"reason": "Calls were about a burst pipe"}, headers=supervisor.headers
    )
    assert response.status_code == 200
    data = response.get_json()
    assert data["status"] == "dismissed" and data["closed_by"] == "sam.supervisor"
    again = client.post(url, json={"reason": "x"}, headers=supervisor.headers)
    assert again.status_code == 409
    with database(app).sessions() as sess:
        entry = sess.scalar(select(AuditEntry).where(AuditEntry.action == "alert.dismissed"))
        assert entry is not None and entry.after is not None
        assert entry.after["reason"] == "Calls were about a burst pipe"


def test_escalating_records_the_restriction_a_person_chose(
    client: Any, supervisor: Any, open_alert: Callable[..., int]
) -> None:
    alert_id = open_alert()
    response = client.post(
        f"/api/v1/alerts/{alert_id}/escalate",
        headers=supervisor.headers,
        json={
            "kind": "limited_contact",
            "reason": "Five calls an hour (6.1)",
            "windows": [{"days": ["mon"], "start": "10:00", "end": "11:00"}],
        },
    )
    assert response.status_code == 201
    assert response.get_json()["kind"] == "limited_contact"
    alert = client.get(f"/api/v1/alerts/{alert_id}", headers=supervisor.headers).get_json()
    assert alert["status"] == "escalated" and alert["restriction_id"] == response.get_json()["id"]


def test_alerts_are_for_supervisors(
    client: Any, agent: Any, open_alert: Callable[..., int]
) -> None:
    open_alert()
    assert client.get("/api/v1/alerts").status_code == 401
    assert client.get("/api/v1/alerts", headers=agent.headers).status_code == 403
    assert client.get("/api/v1/alerts/999", headers=agent.headers).status_code == 403


def test_unknown_alert_is_404(client: Any, supervisor: Any) -> None:
    assert client.get("/api/v1/alerts/999", headers=supervisor.headers).status_code == 404
