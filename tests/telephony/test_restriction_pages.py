"""Supervisors run a restriction's whole life from the pages, in a real browser (Chromium driven
by Playwright): finding the customer, recording the restriction, its notice, an appeal decided by
someone else, reviews, and what is due."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
import time_machine
from flask import Flask
from sqlalchemy import select

from restrictions import appeals
from restrictions.lifecycle import Actor
from restrictions.models import Appeal, Customer, Restriction
from telephony.database import database
from tests.browser import follow
from tests.conftest import Staff

pytestmark = pytest.mark.browser

# Tuesday 2 June 2026, 12:00 in London (BST): 20 working days on is Tuesday 30 June.
NOON = datetime(2026, 6, 2, 11, 0, tzinfo=UTC)
TODAY = date(2026, 6, 2)
TEST = Actor(None, "test")
SPOC_LABEL = "Single point of contact (a staff user name, or their phone number)"


@pytest.fixture(autouse=True)
def midday() -> Iterator[None]:
    """A fixed day on the landlord's clock, so every date on the page is known."""
    with time_machine.travel(NOON, tick=True):
        yield


def names(page: Any) -> list[str]:
    rows = page.locator("#customers tbody tr td:first-child")
    return [text.strip() for text in rows.all_inner_texts()]


def search(page: Any, text: str) -> None:
    page.get_by_label("Name, reference or phone number").fill(text)
    follow(page.get_by_role("button", name="Search"))


def restriction(page: Any, restriction_id: int) -> Any:
    return page.locator(f"#restriction-{restriction_id}")


def only_restriction(app: Flask) -> Restriction:
    with database(app).sessions() as sess:
        found: Restriction | None = sess.scalar(select(Restriction))
        assert found is not None
        return found


def test_search_by_name_reference_or_a_number_typed_in_any_uk_format(
    page: Any,
    supervisor: Staff,
    sign_in: Callable[..., None],
    make_customer: Callable[..., Customer],
    server_errors: list[str],
) -> None:
    make_customer("HMS-0001", "Pat Example", ("+447400100001",))
    make_customer("HMS-0002", "Robin Other", ("+447400200002", "01332 000777"))
    sign_in(page, supervisor)
    follow(page.get_by_role("link", name="Customers", exact=True))
    assert names(page) == ["Pat Example", "Robin Other"]

    search(page, "pat")
    assert names(page) == ["Pat Example"]
    search(page, "07400 100001")
    assert names(page) == ["Pat Example"]
    assert page.get_by_label("Name, reference or phone number").input_value() == "07400 100001"
    search(page, "+44 (0)1332 000777")
    assert names(page) == ["Robin Other"]
    search(page, "hms-0002")
    assert names(page) == ["Robin Other"]
    search(page, "100_%")  # typed wildcards match only themselves
    assert names(page) == []
    assert page.get_by_text("No customers match.").is_visible()

    search(page, "07400 100001")
    follow(page.get_by_role("link", name="Pat Example"))
    assert page.get_by_role("heading", name="Pat Example HMS-0001").is_visible()
    assert server_errors == []


def test_thirty_customers_page_by_twenty_five_keeping_the_query(
    page: Any,
    supervisor: Staff,
    sign_in: Callable[..., None],
    make_customer: Callable[..., Customer],
) -> None:
    for i in range(1, 31):
        make_customer(f"HMS-{i:04d}", f"Customer {i:02d}", (f"+4474001{i:05d}",))
    make_customer("HMS-9999", "Someone Else", ("+447400999999",))
    sign_in(page, supervisor)
    page.goto("/supervisor/customers")
    search(page, "Customer")
    assert len(names(page)) == 25
    assert names(page)[0] == "Customer 01"
    assert page.get_by_role("link", name="Previous").count() == 0

    follow(page.get_by_role("link", name="Next"))
    assert "q=Customer" in page.url and "page=2" in page.url
    assert names(page) == [f"Customer {i}" for i in range(26, 31)]
    assert page.get_by_label("Name, reference or phone number").input_value() == "Customer"
    assert "30 customers" in page.locator("#result-count").inner_text()
    assert page.get_by_role("link", name="Next").count() == 0

    follow(page.get_by_role("link", name="Previous"))
    assert len(names(page)) == 25
    assert "q=Customer" in page.url

    page.goto("/supervisor/customers?page=99")  # past the end: the last page
    assert names(page)[-1] == "Someone Else"


def test_a_restriction_from_its_decision_through_notice_and_appeal_to_its_end(
    app: Flask,
    page: Any,
    supervisor: Staff,
    make_staff: Callable[..., Staff],
    sign_in: Callable[..., None],
    make_customer: Callable[..., Customer],
    server_errors: list[str],
) -> None:
    make_customer()
    sign_in(page, supervisor)
    page.goto("/supervisor/customers/HMS-0001")

    # the form shows only the chosen kind's fields
    page.get_by_text("Record a new restriction…").click()
    page.get_by_label("Restriction", exact=True).select_option("limited_contact")
    days = page.get_by_label("Permitted days and times: days (e.g. mon, wed)")
    assert days.is_visible()
    assert not page.get_by_label(SPOC_LABEL).is_visible()
    assert not page.get_by_label("Nominated representative").is_visible()
    assert not page.get_by_label("Issue not to be engaged on").is_visible()
    page.get_by_label("Reason (as it will appear in the letter)").fill("Very long daily calls")
    days.fill("thu, tue")
    page.get_by_label("Permitted days and times: from (HH:MM)").fill("10:00")
    page.get_by_label("Permitted days and times: until (HH:MM)").fill("12:00")
    page.get_by_label("Calls allowed per week, optional").fill("2")
    follow(page.get_by_role("button", name="Record the restriction"))
    assert page.get_by_text("Limited contact recorded for HMS-0001.").is_visible()

    rid = only_restriction(app).id
    section = restriction(page, rid)
    assert section.locator("dd.state").inner_text() == "Awaiting notice"
    facts = section.locator("dl.facts").inner_text()
    assert "on Tuesdays and Thursdays from 10:00 to 12:00" in facts
    assert "Calls allowed per week\n2" in facts
    assert "Decided on\n2 Jun 2026 by sam.supervisor" in facts
    assert "Takes effect\nWhen the notice is sent" in facts
    assert section.locator("dd.notice").inner_text().startswith("Awaiting notice")
    letter = section.get_by_role("link", name="View the decision letter")
    assert letter.get_attribute("href") == f"/supervisor/restrictions/{rid}/letter"
    pdf = section.get_by_role("link", name="Download it as a PDF")
    assert pdf.get_attribute("href") == f"/supervisor/restrictions/{rid}/letter?download=1"
    assert section.get_by_text("Lodge an appeal…").count() == 0  # nothing to appeal yet

    # the notice: a date before the decision is refused with the domain's words
    section.get_by_text("Record the notice…").click()
    section.get_by_label("Notice sent on").fill("2026-05-01")
    follow(section.get_by_role("button", name="Record notice"))
    assert page.get_by_text("Sent on 2026-05-01 is before the decision (2026-06-02)").is_visible()
    section = restriction(page, rid)
    assert section.locator("dd.state").inner_text() == "Awaiting notice"
    section.get_by_label("Notice sent on").fill("2026-06-02")
    section.get_by_label("Sent by").select_option("post")
    follow(section.get_by_role("button", name="Record notice"))
    assert page.get_by_text("Notice recorded: it applies from 2 Jun 2026.").is_visible()
    section = restriction(page, rid)
    assert section.locator("dd.state").inner_text() == "In force"
    assert section.locator("dd.notice").inner_text() == "Sent on 2 Jun 2026 by post"
    assert section.locator("dd.takes-effect").inner_text() == "2 Jun 2026"
    assert section.locator("dd.review-due").inner_text() == "2 Jun 2027"

    # an appeal, decided within 20 working days
    section.get_by_text("Lodge an appeal…").click()
    section.get_by_label("Grounds of appeal").fill("I need to call about <my> repairs")
    follow(section.get_by_role("button", name="Lodge appeal"))
    assert page.get_by_text("Appeal lodged: a decision is due by 30 Jun 2026.").is_visible()
    section = restriction(page, rid)
    assert section.get_by_text("Under appeal").is_visible()
    appeal = section.locator("li.appeal")
    assert "I need to call about <my> repairs" in appeal.inner_text()
    assert "Decision due by 30 Jun 2026" in appeal.inner_text()
    assert appeal.locator(".outcome").inner_text() == "Awaiting a decision"
    with database(app).sessions() as sess:
        appeal_id = sess.scalar(select(Appeal.id))

    # whoever decided the restriction may not decide its appeal (and, not an admin, is not
    # offered the admin's override)
    section.get_by_text("Decide appeal").click()
    assert section.get_by_label("Admins only", exact=False).count() == 0
    section.get_by_label("Decision", exact=True).select_option("overturned")
    section.get_by_label("Reasons for the decision").fill("I decided it myself")
    follow(section.get_by_role("button", name="Record the decision"))
    assert page.get_by_text(
        "an appeal must be decided by someone who did not decide the restriction"
    ).is_visible()
    assert restriction(page, rid).locator("dd.state").inner_text() == "In force"

    # a second supervisor decides it: overturned, so it ends
    follow(page.get_by_role("button", name="Sign out"))
    second = make_staff("supervisor", "jo.second")
    sign_in(page, second)
    page.goto("/supervisor/customers/HMS-0001")
    section = restriction(page, rid)
    section.get_by_text("Decide appeal").click()
    section.get_by_label("Decision", exact=True).select_option("overturned")
    section.get_by_label("Reasons for the decision").fill("The calls were about real repairs")
    follow(section.get_by_role("button", name="Record the decision"))
    assert page.get_by_text(
        f"Appeal {appeal_id} overturned: the restriction has ended."
    ).is_visible()
    section = restriction(page, rid)
    assert section.locator("dd.state").inner_text() == "Ended"
    assert "by jo.second" in section.locator("dd.ended").inner_text()
    assert "Overturned on 2 Jun 2026 by jo.second" in section.locator("li.appeal").inner_text()
    assert section.get_by_text("End this restriction…").count() == 0

    with database(app).sessions() as sess:
        ended = sess.get(Restriction, rid)
        decided = sess.scalar(select(Appeal))
        assert ended is not None and ended.ended_at is not None
        assert decided is not None and decided.outcome == "overturned"
        assert decided.decided_by_id == second.user.id
    assert server_errors == []


def test_applied_at_once_shows_notice_overdue_and_clashes_are_flashed(
    app: Flask,
    page: Any,
    supervisor: Staff,
    sign_in: Callable[..., None],
    make_customer: Callable[..., Customer],
    restrict: Callable[..., Restriction],
    server_errors: list[str],
) -> None:
    customer = make_customer()
    writing = restrict(customer, kind="written_only")
    sign_in(page, supervisor)
    page.goto("/supervisor/customers/HMS-0001")
    page.get_by_text("Record a new restriction…").click()
    page.get_by_label("Restriction", exact=True).select_option("spoc")
    assert page.get_by_label(SPOC_LABEL).is_visible()
    assert not page.get_by_label("Permitted days and times: days (e.g. mon, wed)").is_visible()
    page.get_by_label("Reason (as it will appear in the letter)").fill("Threats to staff")
    page.get_by_label(SPOC_LABEL).fill("sam.supervisor")
    page.get_by_label("Decided on (today if left blank)").fill("2026-05-27")
    page.get_by_label("Apply at once, before the notice is sent (danger, policy 4.6)").check()
    follow(page.get_by_role("button", name="Record the restriction"))
    # no urgent reason: refused with the domain's words, and what was typed is kept
    assert page.get_by_text("Why it must apply at once is required and must be text").is_visible()
    assert page.get_by_label(SPOC_LABEL).input_value() == "sam.supervisor"
    page.get_by_label("Why it must apply at once").fill("Threatened to come to the office")
    follow(page.get_by_role("button", name="Record the restriction"))

    assert page.get_by_text("Single point of contact recorded for HMS-0001.").is_visible()
    assert page.get_by_text(
        f"restriction {writing.id} (Writing only) overrides this one on calls"
    ).is_visible()
    spoc = [r for r in customer_restrictions(app) if r.kind == "spoc"][0]
    section = restriction(page, spoc.id)
    assert section.locator("dd.state").inner_text() == "In force"
    assert "sam.supervisor (staff user)" in section.locator("dl.facts").inner_text()
    # decided Wednesday 27 May, applied at once: the notice was due by Friday 29 May
    assert section.locator("dd.notice").inner_text() == (
        "Notice overdue: it was due by 29 May 2026"
    )
    assert section.locator("dd.takes-effect").inner_text() == "27 May 2026"

    follow(page.get_by_role("link", name="Due", exact=True))
    overdue = page.locator("tr.due-item.notice_overdue")
    assert overdue.count() == 1
    assert "Due by 29 May 2026" in overdue.inner_text()
    assert "4 days overdue" in overdue.inner_text()
    assert server_errors == []


def customer_restrictions(app: Flask) -> list[Restriction]:
    with database(app).sessions() as sess:
        return list(sess.scalars(select(Restriction).order_by(Restriction.id)))


def test_due_lists_letters_to_send_appeals_and_reviews_with_their_deadlines(
    app: Flask,
    page: Any,
    supervisor: Staff,
    sign_in: Callable[..., None],
    make_customer: Callable[..., Customer],
    restrict: Callable[..., Restriction],
) -> None:
    waiting = make_customer("HMS-0001", "Pat Waiting", ("+447400100001",))
    restrict(waiting, kind="written_only", notice_sent_on=None)
    appealing = make_customer("HMS-0002", "Robin Appealing", ("+447400100002",))
    appealed = restrict(appealing, kind="no_engagement", issue="the fence")
    with database(app).sessions() as sess:
        attached = sess.get(Restriction, appealed.id)
        assert attached is not None
        appeals.lodge_appeal(sess, TEST, attached, {"grounds": "Unfair"}, today=TODAY)
        sess.commit()
    late = make_customer("HMS-0003", "Sam Late", ("+447400100003",))
    restrict(late, kind="warning", decided_on="2025-05-19", notice_sent_on="2025-05-20")

    sign_in(page, supervisor)
    follow(page.get_by_role("link", name="Due", exact=True))
    letter = page.locator("tr.due-item.letter")
    assert letter.count() == 1
    assert "Pat Waiting" in letter.inner_text()
    assert "Decided on 2 Jun 2026" in letter.inner_text()
    appeal = page.locator("tr.due-item.appeal")
    assert appeal.count() == 1
    assert "Robin Appealing" in appeal.inner_text()
    assert "Due by 30 Jun 2026" in appeal.inner_text()
    review = page.locator("tr.due-item.review_overdue")
    assert "Sam Late" in review.inner_text()
    assert "Due by 20 May 2026" in review.inner_text()
    assert "13 days overdue" in review.inner_text()

    follow(letter.get_by_role("link", name="Pat Waiting"))
    assert page.get_by_role("heading", name="Pat Waiting HMS-0001").is_visible()
    assert page.locator("section.restriction dd.state").inner_text() == "Awaiting notice"


def test_an_overdue_review_is_shown_and_recorded(
    app: Flask,
    page: Any,
    supervisor: Staff,
    sign_in: Callable[..., None],
    make_customer: Callable[..., Customer],
    restrict: Callable[..., Restriction],
    server_errors: list[str],
) -> None:
    customer = make_customer()
    r = restrict(customer, kind="warning", decided_on="2025-05-19", notice_sent_on="2025-05-20")
    sign_in(page, supervisor)
    page.goto("/supervisor/customers/HMS-0001")
    section = restriction(page, r.id)
    assert section.locator("dd.review-due").inner_text() == (
        "Review overdue by 13 days (it was due 20 May 2026)"
    )
    section.get_by_text("Review…", exact=True).click()
    section.get_by_label("Outcome").select_option("continue")
    section.get_by_label("Review notes").fill("No further incidents; kept for now")
    follow(section.get_by_role("button", name="Record review"))
    assert page.get_by_text(
        "Review recorded: it continues, next review by 2 Jun 2027."
    ).is_visible()
    section = restriction(page, r.id)
    assert section.locator("dd.review-due").inner_text() == "2 Jun 2027"
    assert "Last reviewed on\n2 Jun 2026" in section.locator("dl.facts").inner_text()
    assert "No further incidents; kept for now" in section.locator("ul.reviews").inner_text()

    section.get_by_text("End this restriction…").click()
    section.get_by_label("Why it ends").fill("Moved out of the area")
    follow(section.get_by_role("button", name="End restriction"))
    assert page.get_by_text(f"Restriction {r.id} ended.").is_visible()
    assert restriction(page, r.id).locator("dd.state").inner_text() == "Ended"
    assert "Moved out of the area" in restriction(page, r.id).locator("dd.ended").inner_text()
    assert server_errors == []


def test_editing_the_customer_s_details(
    app: Flask,
    page: Any,
    supervisor: Staff,
    sign_in: Callable[..., None],
    make_customer: Callable[..., Customer],
    server_errors: list[str],
) -> None:
    make_customer()
    make_customer("HMS-0002", "Robin Other", ("+447400200002",))
    sign_in(page, supervisor)
    page.goto("/supervisor/customers/HMS-0001")
    page.get_by_text("Edit details").click()
    assert page.get_by_label("Phone numbers, separated by ;").input_value() == "+447400100001"
    page.get_by_label("Phone numbers, separated by ;").fill("07400 100001; 07400200002")
    follow(page.get_by_role("button", name="Save details"))
    assert page.get_by_text(
        "phone number +447400200002 already belongs to customer HMS-0002"
    ).is_visible()

    page.get_by_label("Name", exact=True).fill("Pat Changed")
    page.get_by_label("Phone numbers, separated by ;").fill("07400 100001; 07400 100009")
    page.get_by_label("Language").select_option("cy-GB")
    page.get_by_label("Slower speech (a reasonable adjustment)").check()
    follow(page.get_by_role("button", name="Save details"))
    assert page.get_by_text("Details saved.").is_visible()
    details = page.locator("#details dl.facts").inner_text()
    assert "+447400100001" in details and "+447400100009" in details
    assert "Welsh (Cymraeg)" in details and "Speak slowly and clearly" in details
    assert page.get_by_role("heading", name="Pat Changed HMS-0001").is_visible()
    assert "Customer's details changed" in page.locator("#audit").inner_text()
    assert server_errors == []


def test_the_letter_links_show_the_preview_and_the_pdf(
    page: Any,
    supervisor: Staff,
    sign_in: Callable[..., None],
    make_customer: Callable[..., Customer],
    restrict: Callable[..., Restriction],
) -> None:
    r = restrict(make_customer(), kind="written_only", reason="Abusive calls", notice_sent_on=None)
    sign_in(page, supervisor)
    page.goto("/supervisor/customers/HMS-0001")
    section = restriction(page, r.id)
    pdf_href = section.get_by_role("link", name="Download it as a PDF").get_attribute("href")
    assert pdf_href == f"/supervisor/restrictions/{r.id}/letter?download=1"

    follow(section.get_by_role("link", name="View the decision letter"))
    assert page.url.endswith(f"/supervisor/restrictions/{r.id}/letter")
    preview = page.locator("body").inner_text()
    assert "Pat Example" in preview and "Abusive calls" in preview

    pdf = page.request.get(pdf_href)  # the signed-in browser's cookies
    assert pdf.status == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.body().startswith(b"%PDF")


def test_agents_get_403_on_these_pages(
    page: Any,
    agent: Staff,
    sign_in: Callable[..., None],
    make_customer: Callable[..., Customer],
    restrict: Callable[..., Restriction],
) -> None:
    r = restrict(make_customer(), kind="written_only")
    sign_in(page, agent)
    assert page.get_by_role("link", name="Customers", exact=True).count() == 0
    assert page.get_by_role("link", name="Due", exact=True).count() == 0
    for path in (
        "/supervisor/customers",
        "/supervisor/customers?q=Pat",
        "/supervisor/customers/HMS-0001",
        "/supervisor/due",
        f"/supervisor/restrictions/{r.id}/letter",
    ):
        assert page.goto(path).status == 403, path


def test_what_customers_and_staff_typed_is_shown_as_text(
    page: Any,
    supervisor: Staff,
    sign_in: Callable[..., None],
    make_customer: Callable[..., Customer],
    restrict: Callable[..., Restriction],
) -> None:
    customer = make_customer(name="Pat <b>Example</b>")
    restrict(
        customer,
        kind="no_engagement",
        issue="<i>the fence</i>",
        reason="<u>Shouted</u>",
        notice_sent_on=None,
    )
    sign_in(page, supervisor)
    page.goto("/supervisor/customers?q=Pat")
    assert page.get_by_role("link", name="Pat <b>Example</b>").is_visible()
    assert page.locator("main b").count() == 0
    follow(page.get_by_role("link", name="Pat <b>Example</b>"))
    assert page.get_by_role("heading", name="Pat <b>Example</b> HMS-0001").is_visible()
    assert page.get_by_text("<i>the fence</i>").is_visible()
    assert page.get_by_text("<u>Shouted</u>").first.is_visible()
    assert page.locator("main b, main i, main u").count() == 0
    page.goto("/supervisor/due")  # its letter is still to be sent
    assert page.get_by_role("link", name="Pat <b>Example</b>").is_visible()
    assert page.locator("main b").count() == 0
