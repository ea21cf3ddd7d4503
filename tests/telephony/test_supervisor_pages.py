"""Supervisors work through alerts in a real browser (Chromium driven by Playwright)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from flask import Flask
from sqlalchemy import select

from restrictions.models import Call, ContactAlert, Restriction
from telephony.database import database
from tests.browser import follow

pytestmark = pytest.mark.browser

NOON = datetime(2026, 6, 2, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def midday() -> Any:
    """A fixed day, so "the last 30 days" never straddles midnight mid-test (the clock ticks on)."""
    with time_machine.travel(NOON, tick=True):
        yield


@pytest.fixture
def alert_with_calls(app: Flask, make_customer: Callable[..., Any], midday: Any) -> int:
    """Five calls in an hour, as counted, with the alert they opened."""
    customer = make_customer(name="Pat <b>Example</b>")
    now = datetime.now(UTC).replace(microsecond=0)
    with database(app).sessions() as sess:
        evidence = []
        for i in range(5):
            started = now - timedelta(minutes=50 - i * 10)
            sess.add(
                Call(
                    call_sid=f"CA{i:032x}",
                    from_number="+447400100001",
                    from_e164="+447400100001",
                    customer_id=customer.id,
                    identified=True,
                    route="default",
                    started_at=started,
                    duration_seconds=61 + i,
                    counted_at=now,
                )
            )
            evidence.append(
                {
                    "call_sid": f"CA{i:032x}",
                    "started_at": started.isoformat(),
                    "number": "+447400100001",
                    "duration_seconds": 61 + i,
                    "route": "default",
                }
            )
        sess.add(
            Call(
                call_sid="CA" + "e" * 32,
                from_number="+447400100001",
                customer_id=customer.id,
                started_at=now - timedelta(days=3),
            )
        )
        alert = ContactAlert(
            subject=f"customer:{customer.id}",
            customer_id=customer.id,
            rule_name="calls-per-hour",
            rule={"name": "calls-per-hour", "window_minutes": 60, "max_calls": 5},
            evidence={"calls": evidence, "calls_in_window": 5, "window_end": now.isoformat()},
        )
        sess.add(alert)
        sess.commit()
        return alert.id


def test_a_supervisor_signs_in_opens_an_alert_sees_evidence_and_chart_and_dismisses_it(
    app: Flask, page: Any, supervisor: Any, alert_with_calls: int
) -> None:
    page.goto("/sign-in")  # through the form, as a person signs in
    page.get_by_label("User name").fill(supervisor.user.name)
    page.get_by_label("Password").fill(supervisor.password)
    follow(page.get_by_role("button", name="Sign in"))
    assert page.get_by_role("heading", name="Excessive-contact alerts").is_visible()
    follow(page.get_by_role("link", name=f"Open alert {alert_with_calls}"))

    assert page.locator(".evidence-call").count() == 5
    assert "1 min 01 s" in page.locator(".evidence-call").first.inner_text()
    bars = page.locator("svg.chart rect.bar")
    assert bars.count() == 30
    assert float(bars.nth(29).get_attribute("height") or 0) == 100  # today: the busiest day
    assert (page.locator("svg.chart title").nth(26).text_content() or "").endswith(": 1 calls")
    # what the caller controls is shown as text, never as markup
    assert page.get_by_text("Pat <b>Example</b>").count() == 1

    reason = page.get_by_label("Why no action is needed")
    page.get_by_role("button", name="Dismiss").click()  # no reason yet: the form will not go
    assert reason.evaluate("el => el.validity.valueMissing") is True
    assert page.locator("#alert-status").inner_text() == "open"
    reason.fill("Calls were about a burst pipe")
    follow(page.get_by_role("button", name="Dismiss"))
    assert page.get_by_text(f"Alert {alert_with_calls} dismissed.").is_visible()

    with database(app).sessions() as sess:
        alert = sess.get(ContactAlert, alert_with_calls)
        assert alert is not None and alert.status == "dismissed"
        assert alert.close_reason == "Calls were about a burst pipe"
        assert alert.closed_by_id == supervisor.user.id

    page.goto("/supervisor/customers/HMS-0001")
    assert "Alert dismissed: no action needed" in page.locator("#audit").inner_text()


def test_escalating_prefills_the_form_and_a_person_chooses_the_kind(
    app: Flask, page: Any, supervisor: Any, sign_in: Callable[..., None], alert_with_calls: int
) -> None:
    sign_in(page, supervisor)
    page.goto(f"/supervisor/alerts/{alert_with_calls}")
    follow(page.get_by_role("link", name="Escalate to a restriction…"))
    reason = page.get_by_label("Reason (as it will appear in the letter)")
    assert "5 calls within 60 minutes" in reason.input_value()
    page.get_by_role("button", name="Record the restriction").click()  # no kind chosen
    kind = page.get_by_label("Restriction", exact=True)
    assert kind.evaluate("el => el.validity.valueMissing") is True
    with database(app).sessions() as sess:
        assert sess.scalar(select(Restriction)) is None
    kind.select_option("spoc")
    page.get_by_label("Single point of contact (a staff user name, or their phone number)").fill(
        "01332 000555"
    )
    follow(page.get_by_role("button", name="Record the restriction"))
    assert page.get_by_text("Single point of contact recorded for HMS-0001.").is_visible()
    assert "Single point of contact" in page.locator("#restrictions").inner_text()
    with database(app).sessions() as sess:
        restriction = sess.scalar(select(Restriction))
        assert restriction is not None and restriction.source_alert_id == alert_with_calls


def test_agents_cannot_open_supervisor_pages(
    page: Any, agent: Any, sign_in: Callable[..., None], alert_with_calls: int
) -> None:
    sign_in(page, agent)
    response = page.goto(f"/supervisor/alerts/{alert_with_calls}")
    assert response.status == 403


def test_pages_need_sign_in(page: Any) -> None:
    page.goto("/supervisor/alerts")
    assert page.get_by_role("heading", name="Sign in").is_visible()
