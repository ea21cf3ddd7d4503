"""A day in the pages, as an acceptance check: an agent's day on the console (demonstration
calls: Warn, End, the wrap-up note, the caller's record) and a supervisor's day with one
customer (added, restricted, noticed, reviewed and varied, appealed and varied by a second
supervisor, ended), each walked in Chromium from the pages alone, then checked against what the
database recorded. Every page state either walk reaches is checked by axe and at 320 px.

Selectors go by role, label and the words on buttons and links, never by the codes the pages
may show (they are being reworded)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
import time_machine
from flask import Flask
from playwright.sync_api import expect
from sqlalchemy import select

from restrictions.models import (
    AgentAction,
    Appeal,
    AuditEntry,
    Call,
    Customer,
    Restriction,
    Review,
    SentLetter,
)
from telephony import live
from telephony.database import database
from tests.a11y import Checks
from tests.browser import follow
from tests.conftest import Staff

pytestmark = pytest.mark.browser

# Tuesday 2 June 2026, 12:00 in London (BST), for the supervisor's day.
NOON = datetime(2026, 6, 2, 11, 0, tzinfo=UTC)
TODAY = date(2026, 6, 2)


# --- an agent's day ------------------------------------------------------------------------------


@pytest.fixture
def demo(app: Flask) -> None:
    """The console in demonstration mode, as ``DEMO`` set in the config turns it on (read at
    each request; the ``app`` fixture puts the config back after the test)."""
    app.config["DEMO"] = True


def take_a_call(page: Any) -> Any:
    """Press "Simulate a call" and wait until the agent is put through: the card's controls
    show once the call is connected (about two seconds on the page's own timers)."""
    before = page.locator("section.call").count()
    page.get_by_role("button", name="Simulate a call").click()
    card = page.locator("section.call").nth(before)
    card.get_by_text("Simulated call").wait_for()
    card.get_by_role("button", name=re.compile("^Warn ")).wait_for()
    return card


def test_an_agent_s_day_on_the_console(
    app: Flask,
    page: Any,
    agent: Staff,
    demo: None,
    sign_in: Callable[..., None],
    make_customer: Callable[..., Customer],
    restrict: Callable[..., Restriction],
    check: Checks,
    server_errors: list[str],
) -> None:
    customer = make_customer("HMS-0001", "Pat Example", ("+447400100001",))
    restrict(customer, kind="no_engagement", issue="the boundary fence")
    sign_in(page, agent)
    assert page.get_by_role("heading", name="Live calls").is_visible()
    page.get_by_text("Updated ").wait_for()  # the console has polled once
    check("agent console, demonstration")

    # the first call: a caller arrives and the agent is put through
    card = take_a_call(page)
    assert "Pat Example" in card.get_by_role("heading").inner_text()
    assert "the boundary fence" in card.inner_text()  # the flag, in words
    check("agent console, a call connected")

    # the caller's record, from the card's link (it opens in a new tab)
    with page.context.expect_page() as opened:
        card.get_by_role("link", name=re.compile("^Customer record: Pat Example")).click()
    record = opened.value
    record.wait_for_load_state()
    assert record.get_by_role("heading", name="Pat Example HMS-0001").is_visible()
    assert "the boundary fence" in record.locator("#restrictions").inner_text()
    check("agent's customer page, a call in progress", page=record)

    # Warn, confirmed
    card.get_by_role("button", name=re.compile("^Warn ")).click()
    confirm = card.get_by_role("dialog", name=re.compile("^Warn "))
    assert confirm.is_visible()
    check("agent console, the Warn confirmation")
    card.get_by_role("button", name=re.compile("^Play the warning to ")).click()
    card.get_by_text("Warning played. The call continues.").wait_for()
    assert confirm.is_hidden()

    # the wrap-up note, on the card while the call goes on
    card.get_by_label("Wrap-up note").fill("Asked about the fence again; declined (5.1).")
    card.get_by_role("button", name="Save the wrap-up note").click()
    card.get_by_text("Wrap-up note saved.").wait_for()
    check("agent console, warned and noted")

    # End: warned already, so no reason is asked for (once the next poll says it played)
    end = card.get_by_role("button", name=re.compile("^End call: "))
    end.click()
    said = page.locator("#announcer")  # the card may go at the very next poll: this stays
    expect(said).to_have_text(re.compile(r"^Call with Pat Example .* ended\.$"))
    card.wait_for(state="detached")  # gone at the next poll
    page.get_by_text("No live calls.").wait_for()
    check("agent console, the call over")

    # the second call: ended without a warning, so with a reason
    card = take_a_call(page)
    card.get_by_role("button", name=re.compile(r"^End call \(reason needed\)")).click()
    reason = card.get_by_role("dialog", name=re.compile("^End the call with "))
    assert reason.is_visible()
    check("agent console, the End reason")
    card.get_by_role("button", name=re.compile("^Confirm end")).click()  # no reason yet
    assert card.get_by_text("Give a reason").is_visible()
    card.get_by_label("Reason for ending without a warning").fill("Threatened staff (4.6)")
    card.get_by_role("button", name=re.compile("^Confirm end")).click()
    expect(said).to_have_text(re.compile(r"^Call with Pat Example .* ended\.$"))
    card.wait_for(state="detached")

    # after the call: its wrap-up note from the customer's page, which lists both calls
    record.reload()
    listed = record.locator("#recent-calls")
    calls = listed.locator("tbody tr")
    assert calls.count() == 2
    assert "Asked about the fence again; declined (5.1)." in listed.inner_text()
    unwritten = calls.filter(has=record.get_by_text("Write the wrap-up note"))
    assert unwritten.count() == 1  # the second call's: the first has its note
    unwritten.get_by_text("Write the wrap-up note").click()
    check("agent's customer page, a wrap-up note to write", page=record)
    unwritten.get_by_label(re.compile("^Wrap-up note for the call at ")).fill(
        "Ended after a threat; passed to the supervisor."
    )
    follow(unwritten.get_by_role("button", name="Save the note"))
    assert record.get_by_text("Wrap-up note saved.").is_visible()
    assert "Ended after a threat; passed to the supervisor." in listed.inner_text()
    check("agent's customer page, both notes written", page=record)
    record.close()

    with database(app).sessions() as sess:
        pressed = [
            (a.kind, a.outcome, a.reason, a.detail, a.user_id, a.customer_id)
            for a in sess.scalars(select(AgentAction).order_by(AgentAction.id))
        ]
        taken = list(sess.scalars(select(Call).order_by(Call.id)))
        audited = [
            (e.action, e.actor_id)
            for e in sess.scalars(select(AuditEntry).order_by(AuditEntry.id))
            if e.action.startswith(("call.", "agent."))
        ]
    me, pat = agent.user.id, customer.id
    assert pressed == [
        ("warn", "ok", None, live.SIMULATED, me, pat),
        ("end", "ok", None, live.SIMULATED, me, pat),
        ("end", "ok", "Threatened staff (4.6)", live.SIMULATED, me, pat),
    ]
    assert [c.wrap_up_note for c in taken] == [
        "Asked about the fence again; declined (5.1).",
        "Ended after a threat; passed to the supervisor.",
    ]
    assert all(live.is_simulated(c) for c in taken)
    assert all(c.customer_id == pat and c.ended_at is not None for c in taken)
    assert all(c.agent_label == f"client:{agent.user.name}" for c in taken)
    assert audited == [
        ("call.simulated", me),
        ("agent.warn", me),
        ("agent.warn.simulated", me),
        ("call.wrap_up_note", me),
        ("agent.end", me),
        ("agent.end.simulated", me),
        ("call.simulated", me),
        ("agent.end", me),
        ("agent.end.simulated", me),
        ("call.wrap_up_note", me),
    ]
    assert server_errors == []
    check.assert_none()


# --- a supervisor's day --------------------------------------------------------------------------


@pytest.fixture
def midday() -> Iterator[None]:
    """A fixed day on the landlord's clock, so every date the walk types and reads is known."""
    with time_machine.travel(NOON, tick=True):
        yield


def restriction(page: Any, restriction_id: int) -> Any:
    return page.locator(f"#restriction-{restriction_id}")


def state_of(page: Any, restriction_id: int) -> str:
    text: str = restriction(page, restriction_id).locator("dd.state").inner_text()
    return text


def newest_restriction_id(app: Flask) -> int:
    with database(app).sessions() as sess:
        found = sess.scalar(select(Restriction.id).order_by(Restriction.id.desc()))
        assert found is not None
        return found


def test_a_supervisor_s_day_with_one_customer(
    app: Flask,
    page: Any,
    midday: None,
    supervisor: Staff,
    make_staff: Callable[..., Staff],
    sign_in: Callable[..., None],
    check: Checks,
    server_errors: list[str],
) -> None:
    sign_in(page, supervisor)

    # a new customer, with an address for their letters
    follow(page.get_by_role("link", name="Customers", exact=True))
    check("customers")
    follow(page.get_by_role("link", name="Add a customer"))
    check("add a customer")
    page.get_by_label("Reference (the housing system's)").fill("HMS-0042")
    page.get_by_label("Name", exact=True).fill("Robin Newcomer")
    page.get_by_label("Phone numbers, separated by ;").fill("07400 100042")
    page.get_by_label("Postal address, a line each (for letters)").fill(
        "Flat 2, 10 Example Road\nDerby\nDE1 2AB"
    )
    follow(page.get_by_role("button", name="Add the customer"))
    assert page.get_by_text("Robin Newcomer added as HMS-0042.").is_visible()
    assert page.get_by_role("heading", name="Robin Newcomer HMS-0042").is_visible()
    assert page.locator("dd.postal-address").inner_text() == (
        "Flat 2, 10 Example Road\nDerby\nDE1 2AB"
    )
    check("a new customer")

    # the decision: not to engage on one issue, awaiting its notice
    page.get_by_text("Record a new restriction…").click()
    page.get_by_label("Restriction", exact=True).select_option(label="Not engaging on an issue")
    page.get_by_label("Reason (as it will appear in the letter)").fill(
        "Decision explained three times (5.1)"
    )
    page.get_by_label("Issue not to be engaged on").fill("the boundary fence")
    check("a customer, the new restriction form")
    follow(page.get_by_role("button", name="Record the restriction"))
    assert page.get_by_text("Not engaging on an issue recorded for HMS-0042.").is_visible()
    first = newest_restriction_id(app)
    assert state_of(page, first) == "Awaiting notice"
    check("a restriction awaiting notice")

    # its notice
    section = restriction(page, first)
    section.get_by_text("Record the notice…").click()
    section.get_by_label("Notice sent on").fill(TODAY.isoformat())
    section.get_by_label("Sent by").select_option(label="Post")
    check("the notice form")
    follow(section.get_by_role("button", name="Record notice"))
    assert page.get_by_text("Notice recorded: it applies from 2 Jun 2026.").is_visible()
    assert state_of(page, first) == "In force"
    check("a restriction in force")

    # its review, varied: the review form links to the page for the new terms
    section = restriction(page, first)
    section.get_by_text("Review…", exact=True).click()
    check("the review form")
    follow(section.get_by_role("link", name=re.compile("^Vary it at this review")))
    assert page.get_by_role("heading", name=f"Vary restriction {first} at its review").is_visible()
    check("vary at a review")
    page.get_by_label("Why it varies").fill("Now also calling about the shed; both covered")
    page.get_by_label("Issue not to be engaged on").fill("the boundary fence and the shed")
    follow(page.get_by_role("button", name=re.compile("^Record the review: varied")))
    second = newest_restriction_id(app)
    assert page.get_by_text(f"Restriction {first} varied:").is_visible()
    assert state_of(page, first) == "Ended"
    assert state_of(page, second) == "Awaiting notice"
    assert "the boundary fence and the shed" in restriction(page, second).inner_text()
    check("varied at a review, its successor awaiting notice")

    # the successor's notice, then an appeal against it
    section = restriction(page, second)
    section.get_by_text("Record the notice…").click()
    section.get_by_label("Notice sent on").fill(TODAY.isoformat())
    follow(section.get_by_role("button", name="Record notice"))
    assert state_of(page, second) == "In force"
    section = restriction(page, second)
    section.get_by_text("Lodge an appeal…").click()
    section.get_by_label("Grounds of appeal").fill("The shed is a repair I need to report")
    check("the appeal form")
    follow(section.get_by_role("button", name="Lodge appeal"))
    assert page.get_by_text("Appeal lodged: a decision is due by 30 Jun 2026.").is_visible()
    assert restriction(page, second).get_by_text("Under appeal").is_visible()
    check("a restriction under appeal")

    # someone who did not decide it decides the appeal: varied, from the Due list
    follow(page.get_by_role("button", name="Sign out"))
    second_supervisor = make_staff("supervisor", "jo.second")
    sign_in(page, second_supervisor)
    follow(page.get_by_role("link", name="Due", exact=True))
    check("due, an appeal")
    follow(page.get_by_role("link", name="Robin Newcomer"))
    section = restriction(page, second)
    section.get_by_text("Decide appeal").click()
    check("the appeal decision form")
    follow(section.get_by_role("link", name=re.compile("^Vary it on appeal")))
    assert page.get_by_role("heading", name=f"Vary restriction {second} on appeal").is_visible()
    check("vary on appeal")
    page.get_by_label("Why it varies").fill("Repairs to the shed may be reported by phone")
    page.get_by_label("Issue not to be engaged on").fill("the boundary fence")
    page.get_by_label("Written notice sent on").fill(TODAY.isoformat())
    follow(page.get_by_role("button", name=re.compile("^Record the decision: varied")))
    third = newest_restriction_id(app)
    assert page.get_by_text(f"Restriction {second} varied:").is_visible()
    assert state_of(page, second) == "Ended"
    assert state_of(page, third) == "In force"
    check("varied on appeal")

    # and at the end of the day it ends
    section = restriction(page, third)
    section.get_by_text("End this restriction…").click()
    section.get_by_label("Why it ends").fill("Moved out of the area")
    check("the end form")
    follow(section.get_by_role("button", name="End restriction"))
    assert page.get_by_text(f"Restriction {third} ended.").is_visible()
    assert state_of(page, third) == "Ended"
    assert page.locator("#letters tbody tr").count() == 6
    check("every restriction ended, the letters sent")

    a, b = supervisor.user.id, second_supervisor.user.id
    with database(app).sessions() as sess:
        customer = sess.scalar(select(Customer))
        assert customer is not None
        assert customer.reference == "HMS-0042"
        assert customer.postal_address == ["Flat 2, 10 Example Road", "Derby", "DE1 2AB"]
        chain = [
            (
                r.id,
                r.kind,
                r.details.get("issue"),
                r.replaces_id,
                r.decided_by_id,
                r.notice_sent_on,
                r.ended_by_id,
                r.ended_at is not None,
            )
            for r in sess.scalars(select(Restriction).order_by(Restriction.id))
        ]
        reviews = [
            (v.restriction_id, v.outcome, v.successor_id, v.reviewer_id)
            for v in sess.scalars(select(Review))
        ]
        appeals = [
            (x.restriction_id, x.outcome, x.successor_id, x.decided_by_id, x.decided_on)
            for x in sess.scalars(select(Appeal))
        ]
        letters = sorted(
            (s.restriction_id, s.kind, s.method, s.sent_on)
            for s in sess.scalars(select(SentLetter))
        )
    fence, both = "the boundary fence", "the boundary fence and the shed"
    assert chain == [
        (first, "no_engagement", fence, None, a, TODAY, a, True),
        (second, "no_engagement", both, first, a, TODAY, b, True),
        (third, "no_engagement", fence, second, b, TODAY, b, True),
    ]
    assert reviews == [(first, "vary", second, a)]
    assert appeals == [(second, "varied", third, b, TODAY)]
    assert letters == [
        (first, "decision", "post", TODAY),
        (first, "review", "post", TODAY),
        (second, "appeal", "post", TODAY),
        (second, "decision", "post", TODAY),
        (third, "decision", "post", TODAY),
        (third, "end", "post", TODAY),
    ]
    assert server_errors == []
    check.assert_none()
