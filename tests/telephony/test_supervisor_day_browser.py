"""Varying a restriction at its review in a real browser (Chromium driven by Playwright): from
the customer's page to the vary form, where only the chosen kind's fields show and a second
permitted time is added with "Add another time"; the outcome letter is kept as sent and opens
from the restriction."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from flask import Flask
from sqlalchemy import select

from restrictions.models import Customer, Restriction, SentLetter
from telephony.database import database
from tests.browser import follow
from tests.conftest import Staff

pytestmark = pytest.mark.browser

NOON = datetime(2026, 6, 3, 11, 0, tzinfo=UTC)  # Wednesday 3 June 2026, 12:00 in London


@pytest.fixture(autouse=True)
def midday() -> Iterator[None]:
    with time_machine.travel(NOON, tick=True):
        yield


def test_a_supervisor_varies_a_restriction_at_its_review_with_two_permitted_times(
    app: Flask,
    page: Any,
    supervisor: Staff,
    sign_in: Callable[..., None],
    make_customer: Callable[..., Customer],
    restrict: Callable[..., Restriction],
) -> None:
    old = restrict(make_customer(), kind="written_only")
    sign_in(page, supervisor)
    page.goto("/supervisor/customers/HMS-0001")
    section = page.locator(f"#restriction-{old.id}")
    section.get_by_text("Review…").click()
    follow(section.get_by_role("link", name="Vary it at this review"))

    assert page.get_by_role("heading", name=f"Vary restriction {old.id} at its review").is_visible()
    page.get_by_label("Why it varies").fill("Calmer now: two mornings a week will do")
    page.get_by_label("How the letter goes").select_option("email")
    page.get_by_label("Restriction", exact=True).select_option("limited_contact")
    page.get_by_label("Reason (as it will appear in the letter)").fill("Very long daily calls")
    second = page.get_by_label("Permitted days and times, time 2: days (e.g. mon, wed)")
    assert not second.is_visible()  # an empty extra time waits behind "Add another time"
    page.get_by_label("Permitted days and times: days (e.g. mon, wed)").fill("tue")
    page.get_by_label("Permitted days and times: from (HH:MM)").fill("10:00")
    page.get_by_label("Permitted days and times: until (HH:MM)").fill("12:00")
    page.get_by_role("button", name="Add another time").click()
    assert second.is_visible()
    second.fill("thu")
    page.get_by_label("Permitted days and times, time 2: from (HH:MM)").fill("10:00")
    page.get_by_label("Permitted days and times, time 2: until (HH:MM)").fill("12:00")
    follow(page.get_by_role("button", name="Record the review: varied"))

    with database(app).sessions() as sess:
        successor = sess.scalar(select(Restriction).where(Restriction.replaces_id == old.id))
        assert successor is not None and successor.details is not None
        assert successor.details["windows"] == [
            {"days": ["tue"], "start": "10:00", "end": "12:00"},
            {"days": ["thu"], "start": "10:00", "end": "12:00"},
        ]
        letter = sess.scalar(select(SentLetter).where(SentLetter.kind == "review"))
        assert letter is not None and letter.method == "email"
        pdf = letter.pdf
    assert page.get_by_text(
        f"Restriction {old.id} varied: Limited contact (restriction {successor.id}) replaces it."
    ).is_visible()
    terms = page.locator(f"#restriction-{successor.id}").inner_text()
    assert "on Tuesdays from 10:00 to 12:00 or on Thursdays from 10:00 to 12:00" in terms
    link = page.locator(f"#restriction-{old.id}").get_by_role("link", name="Review outcome letter")
    opened = page.request.get(link.get_attribute("href"))
    assert opened.ok and opened.body() == pdf
