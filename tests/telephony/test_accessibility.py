"""Every page meets WCAG 2.2 AA as far as axe-core can tell, and reflows at 320 CSS pixels.

Each page state a member of staff can reach (signed out, as an agent, a supervisor and an admin,
with a customer, a restriction, an alert and a voicemail on file) is checked in Chromium by axe-core
(axe-playwright-python) against the WCAG 2.0, 2.1 and 2.2 A and AA rules, and again at 320 x 640
(WCAG 1.4.10 Reflow: nothing scrolls sideways but what is meant to, such as a wide table inside
its own container)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask

from restrictions.models import Call, ContactAlert, Customer, Voicemail
from telephony.database import database
from tests.a11y import Checks
from tests.browser import follow
from tests.conftest import Staff

pytestmark = pytest.mark.browser


@pytest.fixture
def on_file(
    app: Flask, make_customer: Callable[..., Customer], restrict: Callable[..., Any]
) -> dict[str, int]:
    """A customer with a restriction in force, an alert on their calls and a voicemail."""
    customer = make_customer(reference="HMS-0001", name="Pat Example")
    restriction = restrict(customer, kind="written_only")
    now = datetime.now(UTC).replace(microsecond=0)
    with database(app).sessions() as sess:
        calls = []
        for i in range(5):
            started = now - timedelta(minutes=50 - i * 10)
            calls.append(
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
        sess.add_all(calls)
        sess.flush()
        alert = ContactAlert(
            subject=f"customer:{customer.id}",
            customer_id=customer.id,
            rule_name="calls-per-hour",
            rule={"name": "calls-per-hour", "window_minutes": 60, "max_calls": 5},
            evidence={
                "calls": [
                    {
                        "call_sid": c.call_sid,
                        "started_at": c.started_at.isoformat(),
                        "number": "+447400100001",
                        "duration_seconds": c.duration_seconds,
                        "route": "default",
                    }
                    for c in calls
                ],
                "calls_in_window": 5,
                "window_end": now.isoformat(),
            },
        )
        sess.add(alert)
        recording = "RE" + "a" * 32
        sess.add(
            Voicemail(
                call_id=calls[0].id,
                customer_id=customer.id,
                spoc="client:sam.supervisor",
                recording_sid=recording,
                recording_url=f"https://api.twilio.com/Recordings/{recording}",
                duration_seconds=12,
            )
        )
        sess.commit()
        return {"alert": alert.id, "restriction": restriction.id}


def test_signed_out_pages(page: Any, check: Checks, supervisor: Staff) -> None:
    page.goto("/sign-in")
    check("sign-in")
    page.get_by_label("User name").fill(supervisor.user.name)
    page.get_by_label("Password").fill("not the password")
    follow(page.get_by_role("button", name="Sign in"))
    assert page.locator(".flash.error").count() == 1
    check("sign-in, refused")
    assert page.goto("/no-such-page").status == 404
    check("404, signed out")
    check.assert_none()


def test_supervisor_pages(
    page: Any,
    check: Checks,
    sign_in: Callable[[Any, Staff], None],
    supervisor: Staff,
    on_file: dict[str, int],
) -> None:
    sign_in(page, supervisor)
    for label, path in [
        ("customers", "/supervisor/customers"),
        ("due", "/supervisor/due"),
        ("alerts", "/supervisor/alerts"),
        ("an alert", f"/supervisor/alerts/{on_file['alert']}"),
        ("incidents", "/supervisor/incidents/"),
        ("voicemails", "/voicemails"),
        ("account", "/account"),
        ("change password", "/account/password"),
        ("agent console", "/agent/"),
        ("letter preview", f"/supervisor/restrictions/{on_file['restriction']}/letter"),
        ("API docs", "/api/v1/docs"),
        ("404, signed in", "/no-such-page"),
    ]:
        answer = page.goto(path)
        assert answer is not None and answer.status == (404 if "404" in label else 200), path
        check(label)
    page.goto("/supervisor/customers/HMS-0001")
    check("a customer")
    page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true })")
    check("a customer, every form open")
    check.assert_none()


def test_admin_pages_and_a_form_with_errors(
    page: Any,
    check: Checks,
    sign_in: Callable[[Any, Staff], None],
    make_staff: Callable[..., Staff],
) -> None:
    sign_in(page, make_staff("admin", "ada.admin"))
    page.goto("/admin/staff")
    check("staff")
    page.goto("/admin/staff/new")
    check("new staff")
    # every field left empty, and the browser's own checks of required fields turned off, so
    # that the server's answer is seen
    page.evaluate(
        "document.querySelectorAll('[required]').forEach(e => e.removeAttribute('required'))"
    )
    follow(page.get_by_role("button", name="Add them"))
    assert page.locator(".field-error").count() > 0
    check("new staff, with errors")
    summary = page.locator(".error-summary")
    assert summary.is_visible()
    assert summary.evaluate("e => e === document.activeElement")  # where focus is put
    first = summary.locator("a").first
    target = first.get_attribute("href")
    assert target is not None and target.startswith("#")
    field = page.locator(target)
    assert field.get_attribute("aria-invalid") == "true"
    described = field.get_attribute("aria-describedby") or ""
    assert described and all(page.locator(f"#{i}").count() == 1 for i in described.split())
    first.click()
    assert field.evaluate("e => e === document.activeElement")
    check.assert_none()


def test_agent_pages_and_the_403(
    page: Any, check: Checks, sign_in: Callable[[Any, Staff], None], agent: Staff
) -> None:
    sign_in(page, agent)
    page.goto("/agent/")
    page.get_by_text("Updated ").wait_for()  # agent.js has polled once
    check("agent console")
    # a live call's card, from the page's own template, with its dialogs shown
    page.evaluate(
        """() => {
            const card = document.getElementById('call-card').content.cloneNode(true);
            card.querySelector('.caller').textContent = 'Pat Example';
            card.querySelectorAll('[hidden]').forEach(e => e.removeAttribute('hidden'));
            document.getElementById('calls').appendChild(card);
        }"""
    )
    check("agent console, a call's card")
    assert page.goto("/supervisor/customers").status == 403
    check("403")
    assert page.locator("main#main h1").count() == 1  # a page of ours, not Flask's bare one
    check.assert_none()


def test_the_skip_link_is_the_first_thing_focused(
    page: Any, sign_in: Callable[[Any, Staff], None], supervisor: Staff
) -> None:
    sign_in(page, supervisor)
    page.goto("/supervisor/customers")
    page.keyboard.press("Tab")
    focused = page.evaluate("[document.activeElement.textContent, document.activeElement.hash]")
    assert focused == ["Skip to main content", "#main"]
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"
