"""What an agent may read about a customer (never the sensitive note), the wrap-up note an agent
writes on a call (saved, audited, CSRF-protected), and the demonstration's simulated call, all
through the Flask test client."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from restrictions.models import AgentAction, AuditEntry, Call, Customer, User
from telephony import live
from telephony.database import database
from tests.pages import signed_in

CALL = "CA" + "a" * 32
SECRET = "Recent bereavement; do not mention the flat upstairs"


def _json(answer: Any) -> dict[str, Any]:
    data = answer.get_json()
    assert isinstance(data, dict), answer.text
    return data


def _page_csrf(browser: FlaskClient) -> str:
    found = re.search(r'name="csrf-token" content="([^"]+)"', browser.get("/agent/").text)
    assert found is not None
    return found[1]


@pytest.fixture
def welsh_customer(
    app: Flask,
    make_customer: Callable[..., Customer],
    make_staff: Callable[..., Any],
    restrict: Callable[..., Any],
) -> Customer:
    spoc = make_staff("agent", "dana.spoc")
    with database(app).sessions() as sess:
        user = sess.get(User, spoc.user.id)
        assert user is not None
        user.display_name = "Dana Price"
        sess.commit()
    customer = make_customer(
        reference="HMS-0042",
        name="Rhys Evans",
        numbers=("+447400100042",),
        language="cy-GB",
        adjustments={"slow_speech": True, "sensitive_note": SECRET},
    )
    restrict(customer, kind="spoc", spoc="dana.spoc")
    restrict(customer, kind="no_engagement", issue="the boundary fence")
    return customer


def _call(app: Flask, customer: Customer | None, **columns: Any) -> None:
    with database(app).sessions() as sess:
        values: dict[str, Any] = {
            "call_sid": CALL,
            "from_number": "+447400100042",
            "from_e164": "+447400100042",
            "customer_id": customer.id if customer else None,
            "identified": customer is not None,
            "started_at": datetime(2026, 7, 1, 13, 5, tzinfo=UTC),  # 14:05 in London (BST)
            "ended_at": datetime(2026, 7, 1, 13, 9, tzinfo=UTC),
            "duration_seconds": 245,
            "status": "completed",
            **columns,
        }
        sess.add(Call(**values))
        sess.commit()


def test_an_agent_reads_the_customer_in_words_without_the_sensitive_note(
    app: Flask, agent: Any, welsh_customer: Customer
) -> None:
    _call(app, welsh_customer)
    page = signed_in(app, agent).get("/agent/customers/HMS-0042")
    assert page.status_code == 200
    html = page.text
    assert "Rhys Evans" in html and "HMS-0042" in html and "+447400100042" in html
    assert "Welsh (Cymraeg)" in html and "cy-GB" not in html
    assert "Speak slowly and clearly" in html
    assert "Single point of contact: Dana Price" in html
    assert "Not engaging on an issue" in html
    assert "Issue not to be engaged on: the boundary fence" in html
    assert "1 Jul 2026, 14:05" in html  # on the Europe/London clock
    assert "4 min 05 s" in html
    assert SECRET not in html and "bereavement" not in html
    assert "Sensitive note" not in html


def test_the_customer_page_is_for_signed_in_staff(client: FlaskClient, welsh_customer: Any) -> None:
    answer = client.get("/agent/customers/HMS-0042")
    assert answer.status_code == 302
    assert "/sign-in" in answer.headers["Location"]


def test_an_unknown_customer_is_not_found(app: Flask, agent: Any) -> None:
    assert signed_in(app, agent).get("/agent/customers/NOPE-1").status_code == 404


def test_the_wrap_up_note_is_saved_and_audited(
    app: Flask, agent: Any, welsh_customer: Customer
) -> None:
    _call(app, welsh_customer)
    browser = signed_in(app, agent)
    token = _page_csrf(browser)
    answer = browser.post(
        f"/agent/calls/{CALL}/wrap-up",
        json={"note": "Asked about the fence; declined as agreed."},
        headers={"X-CSRFToken": token},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json == {
        "call_sid": CALL,
        "wrap_up_note": "Asked about the fence; declined as agreed.",
    }
    with database(app).sessions() as sess:
        call = sess.scalar(select(Call).where(Call.call_sid == CALL))
        assert (
            call is not None and call.wrap_up_note == "Asked about the fence; declined as agreed."
        )
        (entry,) = sess.scalars(select(AuditEntry).where(AuditEntry.action == "call.wrap_up_note"))
        assert entry.actor == "alex.agent" and entry.entity_id == call.id
        assert entry.customer_id == welsh_customer.id
        assert entry.before == {"call_sid": CALL, "wrap_up_note": None}
        assert entry.after == {
            "call_sid": CALL,
            "wrap_up_note": "Asked about the fence; declined as agreed.",
        }
    # the customer's page shows it, with a form to change it
    assert (
        "Asked about the fence; declined as agreed."
        in browser.get("/agent/customers/HMS-0042").text
    )


def test_the_wrap_up_note_needs_the_csrf_token_and_words(
    app: Flask, agent: Any, welsh_customer: Customer
) -> None:
    _call(app, welsh_customer)
    browser = signed_in(app, agent)
    refused = browser.post(f"/agent/calls/{CALL}/wrap-up", json={"note": "No token"})
    assert refused.status_code == 400
    refused = browser.post(f"/agent/calls/{CALL}/wrap-up", data={"note": "No token"})
    assert refused.status_code == 400
    token = _page_csrf(browser)
    empty = browser.post(
        f"/agent/calls/{CALL}/wrap-up", json={"note": "  "}, headers={"X-CSRFToken": token}
    )
    assert empty.status_code == 422 and "note" in _json(empty)["error"]
    with database(app).sessions() as sess:
        call = sess.scalar(select(Call).where(Call.call_sid == CALL))
        assert call is not None and call.wrap_up_note is None
        assert (
            sess.scalar(select(AuditEntry).where(AuditEntry.action == "call.wrap_up_note")) is None
        )


def test_the_wrap_up_note_from_the_customer_page_form(
    app: Flask, agent: Any, welsh_customer: Customer
) -> None:
    _call(app, welsh_customer)
    browser = signed_in(app, agent)
    page = browser.get("/agent/customers/HMS-0042").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    answer = browser.post(
        f"/agent/calls/{CALL}/wrap-up",
        data={"csrf_token": token[1], "note": "Called back about repairs.", "back": "HMS-0042"},
    )
    assert answer.status_code == 302
    assert answer.headers["Location"].endswith("/agent/customers/HMS-0042")
    assert "Called back about repairs." in browser.get("/agent/customers/HMS-0042").text


def test_an_agent_writes_no_note_on_another_agents_spoc_call(
    app: Flask, agent: Any, welsh_customer: Customer
) -> None:
    _call(app, welsh_customer, route="spoc", route_destination="client:dana.spoc")
    browser = signed_in(app, agent)
    answer = browser.post(
        f"/agent/calls/{CALL}/wrap-up",
        json={"note": "Not mine"},
        headers={"X-CSRFToken": _page_csrf(browser)},
    )
    assert answer.status_code == 403


# --- the demonstration ---------------------------------------------------------------------------


def test_simulated_calls_are_for_the_demonstration_only(app: Flask, agent: Any) -> None:
    browser = signed_in(app, agent)
    assert "Simulate a call" not in browser.get("/agent/").text
    answer = browser.post(
        "/agent/demo/calls", json={}, headers={"X-CSRFToken": _page_csrf(browser)}
    )
    assert answer.status_code == 404


def test_a_simulated_call_is_warned_and_ended_without_twilio(
    app_with: Callable[..., Flask],
    agent: Any,
    welsh_customer: Customer,
    make_customer: Callable[..., Customer],
    restrict: Callable[..., Any],
    fake_twilio: Any,
) -> None:
    flagged = make_customer(reference="HMS-0007", name="Morgan Hughes", numbers=("+447400100007",))
    restrict(flagged, kind="no_engagement", issue="the 2019 boundary fence dispute")
    demo = app_with(DEMO=True)
    browser = signed_in(demo, agent)
    console = browser.get("/agent/").text
    assert "Simulate a call" in console
    headers = {"X-CSRFToken": _page_csrf(browser)}
    made = browser.post("/agent/demo/calls", json={}, headers=headers)
    assert made.status_code == 201, made.text
    sid = _json(made)["call_sid"]
    (card,) = _json(browser.get("/agent/live.json"))["calls"]
    # the SPOC's customer would go to their named contact: the demo caller is the flagged one
    assert card["state"] == "waiting" and card["simulated"] is True
    assert card["customer"]["name"] == "Morgan Hughes"
    assert card["flag_texts"] == ["Do not engage on: the 2019 boundary fence dispute"]
    joined = browser.post(f"/agent/demo/calls/{sid}/join", json={}, headers=headers)
    assert joined.status_code == 200
    (card,) = _json(browser.get("/agent/live.json"))["calls"]
    assert card["state"] == "connected" and card["agent"] == "client:alex.agent"
    warned = browser.post(f"/agent/calls/{sid}/warn", json={}, headers=headers)
    assert warned.json == {"outcome": "ok", "kind": "warn", "detail": live.SIMULATED}
    ended = browser.post(f"/agent/calls/{sid}/end", json={}, headers=headers)  # warned: no reason
    assert _json(ended)["outcome"] == "ok"
    assert _json(browser.get("/agent/live.json"))["calls"] == []
    assert fake_twilio.requests == []
    with database(demo).sessions() as sess:
        actions = list(sess.scalars(select(AgentAction).order_by(AgentAction.id)))
        assert [(a.kind, a.outcome, a.detail) for a in actions] == [
            ("warn", "ok", live.SIMULATED),
            ("end", "ok", live.SIMULATED),
        ]
        simulated = list(
            sess.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.action.like("%simulated%"))
                .order_by(AuditEntry.id)
            )
        )
        assert simulated == ["call.simulated", "agent.warn.simulated", "agent.end.simulated"]
