"""One decision per thing: two people pressing at once (two threads released together) get one
result and one 409 saying what happened; never a duplicate, never a 500."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from restrictions.models import AgentAction, AuditEntry, ContactAlert, Restriction
from telephony.database import database
from tests.calls import conference_event

CALLER = "CA" + "c" * 32


def together(app: Flask, *requests: Callable[[Any], Any]) -> list[Any]:
    """Run each request in its own thread, all released at the same moment."""
    barrier = threading.Barrier(len(requests))
    results: list[Any] = [None] * len(requests)

    def run(i: int, request: Callable[[Any], Any]) -> None:
        client = app.test_client()
        barrier.wait()
        results[i] = request(client)

    threads = [threading.Thread(target=run, args=(i, r)) for i, r in enumerate(requests)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return results


def count(app: Flask, model: type, *where: Any) -> int:
    with database(app).sessions() as sess:
        return int(sess.scalar(select(func.count()).select_from(model).where(*where)) or 0)


@pytest.fixture
def alert_id(app: Flask, make_customer: Callable[..., Any]) -> int:
    customer = make_customer()
    with database(app).sessions() as sess:
        alert = ContactAlert(
            subject=f"customer:{customer.id}", customer_id=customer.id, rule_name="calls-per-hour"
        )
        sess.add(alert)
        sess.commit()
        return alert.id


def statuses(responses: list[Any]) -> list[int]:
    return sorted(r.status_code for r in responses)


def test_two_dismissals_at_once_make_one_decision(
    app: Flask, supervisor: Any, alert_id: int
) -> None:
    def dismiss(client: Any) -> Any:
        return client.post(
            f"/api/v1/alerts/{alert_id}/dismiss",
            json={"reason": "A burst pipe"},
            headers=supervisor.headers,
        )

    first, second = together(app, dismiss, dismiss)
    assert statuses([first, second]) == [200, 409]
    loser = first if first.status_code == 409 else second
    assert "already dismissed" in loser.get_json()["error"]
    assert count(app, AuditEntry, AuditEntry.action == "alert.dismissed") == 1


def test_two_escalations_at_once_make_one_restriction(
    app: Flask, supervisor: Any, alert_id: int
) -> None:
    def escalate(client: Any) -> Any:
        return client.post(
            f"/api/v1/alerts/{alert_id}/escalate",
            json={"kind": "written_only", "reason": "Contact (6.1)"},
            headers=supervisor.headers,
        )

    assert statuses(together(app, escalate, escalate)) == [201, 409]
    assert count(app, Restriction) == 1


def test_dismiss_and_escalate_at_once_one_wins(app: Flask, supervisor: Any, alert_id: int) -> None:
    results = together(
        app,
        lambda c: c.post(
            f"/api/v1/alerts/{alert_id}/dismiss", json={"reason": "r"}, headers=supervisor.headers
        ),
        lambda c: c.post(
            f"/api/v1/alerts/{alert_id}/escalate",
            json={"kind": "warning", "reason": "r"},
            headers=supervisor.headers,
        ),
    )
    assert sorted(r.status_code for r in results) in ([200, 409], [201, 409])
    assert count(app, Restriction) == (1 if any(r.status_code == 201 for r in results) else 0)


def test_two_ends_of_a_restriction_at_once_end_it_once(
    app: Flask,
    supervisor: Any,
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
) -> None:
    restriction = restrict(make_customer(), kind="written_only")

    def end(client: Any) -> Any:
        return client.post(
            f"/api/v1/restrictions/{restriction.id}/end",
            json={"reason": "Reviewed"},
            headers=supervisor.headers,
        )

    assert statuses(together(app, end, end)) == [200, 409]
    assert count(app, AuditEntry, AuditEntry.action == "restriction.ended") == 1


def test_an_end_and_an_appeal_at_once_never_appeal_an_ended_restriction(
    app: Flask,
    supervisor: Any,
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
) -> None:
    restriction = restrict(make_customer(), kind="written_only")
    end, appeal = together(
        app,
        lambda c: c.post(
            f"/api/v1/restrictions/{restriction.id}/end",
            json={"reason": "Reviewed"},
            headers=supervisor.headers,
        ),
        lambda c: c.post(
            f"/api/v1/restrictions/{restriction.id}/appeals",
            json={"grounds": "Unfair"},
            headers=supervisor.headers,
        ),
    )
    assert end.status_code == 200
    assert appeal.status_code in (201, 409)
    with database(app).sessions() as sess:
        actions = list(
            sess.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.entity == "restriction")
                .order_by(AuditEntry.id)
            )
        )
    assert actions[-1] == "restriction.ended"  # an appeal, if any, came before the end


def test_the_same_customer_created_twice_at_once_is_201_and_409(
    app: Flask, supervisor: Any
) -> None:
    def create(client: Any) -> Any:
        return client.post(
            "/api/v1/customers",
            json={"reference": "HMS-9", "name": "Pat", "phone_numbers": ["+447400100009"]},
            headers=supervisor.headers,
        )

    results = together(app, create, create, create)
    assert statuses(results) == [201, 409, 409]


def test_two_ends_of_a_live_call_at_once_end_it_once(
    app: Flask,
    twilio: Any,
    agent: Any,
    run_jobs: Callable[[], int],
    fake_twilio: Any,
) -> None:
    twilio.post("/twilio/voice/incoming", twilio.call_params("+447400100001", CallSid=CALLER))
    run_jobs()
    conference_event(twilio, CALLER, "participant-join", CALLER)
    conference_event(twilio, CALLER, "participant-join", "CA" + "a" * 32, sequence=2)
    fake_twilio.reset()

    def end(client: Any) -> Any:
        return client.post(
            f"/api/v1/calls/{CALLER}/end", json={"reason": "Threats (4.6)"}, headers=agent.headers
        )

    assert statuses(together(app, end, end)) == [200, 409]
    assert len(fake_twilio.posts(f"/Calls/{CALLER}.json")) == 1
    assert count(app, AgentAction) == 1
