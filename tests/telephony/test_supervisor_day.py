"""A supervisor's day on the pages, without the JSON API: adding a customer; varying a restriction
at a review and on appeal, choosing how each letter goes and opening the outcome letters as sent;
the Due list's actions opening the right form; the alert page's restrictions in force; reviewing
an agent's incident with a note; emergency key presses on the record and the evidence; and
limited contact with several permitted times. Each through the signed-in pages, CSRF and all,
checked in the database (and in the letters kept as sent)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from restrictions.models import (
    AgentAction,
    Appeal,
    AuditEntry,
    Call,
    ContactAlert,
    Customer,
    Restriction,
    Review,
    SentLetter,
)
from telephony.database import database
from tests.conftest import Staff
from tests.pages import signed_in

TODAY = date(2026, 6, 3)  # a Wednesday
NOW = datetime(2026, 6, 3, 11, 0, tzinfo=UTC)
TOKEN = re.compile(r'name="[^"]*csrf_token" type="hidden" value="([^"]+)"')


@pytest.fixture(autouse=True)
def wednesday() -> Iterator[None]:
    with time_machine.travel(NOW, tick=False):
        yield


def token(page: str) -> str:
    found = TOKEN.search(page)
    assert found is not None, "the page has no form with a CSRF token"
    return found[1]


def page_of(browser: FlaskClient, url: str) -> str:
    answer = browser.get(url)
    assert answer.status_code == 200, answer.get_data(as_text=True)[:2000]
    return answer.get_data(as_text=True)


def post(browser: FlaskClient, url: str, prefix: str, csrf: str, **fields: str) -> Any:
    """Post a form whose fields carry ``prefix`` (``""`` for none)."""
    lead = f"{prefix}-" if prefix else ""
    data = {f"{lead}csrf_token": csrf, **{f"{lead}{k}": v for k, v in fields.items()}}
    return browser.post(url, data=data)


def kept(app: Flask) -> list[SentLetter]:
    with database(app).sessions() as sess:
        found = list(sess.scalars(select(SentLetter).order_by(SentLetter.id)))
        for letter in found:
            assert letter.pdf
        return found


@pytest.fixture
def sam(make_staff: Callable[..., Staff]) -> Staff:
    return make_staff("supervisor", "sam.supervisor")


@pytest.fixture
def browser(app: Flask, sam: Staff) -> FlaskClient:
    return signed_in(app, sam)


# --- 1. adding a customer ------------------------------------------------------------------------


def test_a_customer_is_added_from_the_pages_with_adjustments_and_address(
    app: Flask, browser: FlaskClient
) -> None:
    listing = page_of(browser, "/supervisor/customers")
    assert 'href="/supervisor/customers/new">Add a customer</a>' in listing
    form = page_of(browser, "/supervisor/customers/new")
    assert "Reference (the housing system&#39;s)" in form
    csrf = token(form)
    fields = {
        "reference": "HMS-0042",
        "name": "Rhian Jones",
        "numbers": "07400 100042; 01332 000421",
        "language": "cy-GB",
        "slow_speech": "y",
        "preferred_contact": "email",
        "representative_name": "Derby Advocacy",
        "representative_contact": "01332 000777",
        "representative_role": "support_worker",
        "interpreter": "BSL",
        "sensitive_note": "Hearing loss",
        "postal_address": "1 High Street\r\nDerby\r\nDE1 1AA",
    }
    added = post(browser, "/supervisor/customers/new", "customer", csrf, **fields)
    assert added.status_code == 302, added.get_data(as_text=True)[:2000]
    assert added.headers["Location"].endswith("/supervisor/customers/HMS-0042")
    with database(app).sessions() as sess:
        made = sess.scalar(select(Customer).where(Customer.reference == "HMS-0042"))
        assert made is not None
        assert made.name == "Rhian Jones" and made.language == "cy-GB"
        assert [n.e164 for n in made.numbers] == ["+447400100042", "+441332000421"]
        assert made.postal_address == ["1 High Street", "Derby", "DE1 1AA"]
        assert made.adjustments is not None and made.adjustments.get("slow_speech") is True
        assert made.adjustments.get("preferred_contact") == "email"
        assert made.adjustments.get("interpreter") == "BSL"
        assert made.sensitive_note == "Hearing loss"
        audited = sess.scalars(
            select(AuditEntry.action).where(AuditEntry.customer_id == made.id)
        ).all()
        assert "customer.created" in audited
    shown = page_of(browser, "/supervisor/customers/HMS-0042")
    assert "Rhian Jones added as HMS-0042." in shown
    assert "Support worker: Derby Advocacy (01332 000777)" in shown

    # the same reference again is refused in the domain's words, with what was typed kept
    again = post(browser, "/supervisor/customers/new", "customer", csrf, **fields)
    assert again.status_code == 409
    assert "already exists" in again.get_data(as_text=True)
    assert 'value="Rhian Jones"' in again.get_data(as_text=True)
    with database(app).sessions() as sess:
        assert len(sess.scalars(select(Customer)).all()) == 1


# --- 2. vary at a review and on appeal; how each letter goes; the outcome letters --------------


def test_a_review_varies_a_restriction_with_new_terms_and_keeps_the_letter_as_sent(
    app: Flask,
    browser: FlaskClient,
    make_customer: Callable[..., Customer],
    restrict: Callable[..., Restriction],
) -> None:
    old = restrict(make_customer(), kind="written_only")
    shown = page_of(browser, "/supervisor/customers/HMS-0001")
    assert f'href="/supervisor/restrictions/{old.id}/vary"' in shown
    form = page_of(browser, f"/supervisor/restrictions/{old.id}/vary")
    assert "As it is now: Writing only" in form
    csrf = token(form)
    varied = post(
        browser,
        f"/supervisor/restrictions/{old.id}/vary",
        "",
        csrf,
        notes="Calls are calmer; limited times will do",
        letter_method="email",
        kind="limited_contact",
        reason="Very long daily calls (6.2)",
        notice_sent_on=TODAY.isoformat(),
        **{
            "limited_contact-windows-days": "tue, thu",
            "limited_contact-windows-start": "10:00",
            "limited_contact-windows-end": "12:00",
            "limited_contact-max_calls_per_week": "2",
        },
    )
    assert varied.status_code == 302, varied.get_data(as_text=True)[:3000]
    with database(app).sessions() as sess:
        before = sess.get(Restriction, old.id)
        assert before is not None and before.ended_at is not None
        successor = sess.scalar(select(Restriction).where(Restriction.replaces_id == old.id))
        assert successor is not None and successor.kind == "limited_contact"
        assert successor.state == "active" and successor.notice_sent_on == TODAY
        assert successor.details == {
            "windows": [{"days": ["tue", "thu"], "start": "10:00", "end": "12:00"}],
            "max_calls_per_week": 2,
        }
        review = sess.scalar(select(Review).where(Review.restriction_id == old.id))
        assert review is not None and review.outcome == "vary"
        assert review.successor_id == successor.id and review.reviewer == "sam.supervisor"
    letters = kept(app)
    review_letter = next(x for x in letters if x.kind == "review")
    assert (review_letter.restriction_id, review_letter.method) == (old.id, "email")
    assert review_letter.sent_on == TODAY
    assert [x.kind for x in letters if x.restriction_id == successor.id] == ["decision"]

    # the review outcome letter opens from the restriction, as it was sent
    shown = page_of(browser, "/supervisor/customers/HMS-0001")
    link = f"/supervisor/restrictions/{old.id}/letter?about=review&amp;download=1"
    assert f'href="{link}"' in shown
    opened = browser.get(link.replace("&amp;", "&"))
    assert opened.status_code == 200 and opened.headers["X-Letter"] == "sent"
    assert opened.data == review_letter.pdf


def test_the_review_and_end_forms_choose_how_the_letter_goes(
    app: Flask,
    browser: FlaskClient,
    make_customer: Callable[..., Customer],
    restrict: Callable[..., Restriction],
) -> None:
    made = restrict(make_customer(), kind="written_only")
    csrf = token(page_of(browser, "/supervisor/customers/HMS-0001"))
    reviewed = post(
        browser,
        f"/supervisor/restrictions/{made.id}/review",
        f"review-{made.id}",
        csrf,
        outcome="continue",
        notes="Still needed",
        next_review_on="2026-12-01",
        letter_method="hand",
    )
    assert reviewed.status_code == 302, reviewed.get_data(as_text=True)[:3000]
    ended = post(
        browser,
        f"/supervisor/restrictions/{made.id}/end",
        f"end-{made.id}",
        csrf,
        reason="Behaviour improved",
        letter_method="portal",
    )
    assert ended.status_code == 302, ended.get_data(as_text=True)[:3000]
    assert [(x.kind, x.method) for x in kept(app)] == [("review", "hand"), ("end", "portal")]


def test_an_appeal_decided_varied_replaces_the_restriction_and_keeps_the_letter_as_sent(
    app: Flask,
    make_staff: Callable[..., Staff],
    browser: FlaskClient,
    make_customer: Callable[..., Customer],
    restrict: Callable[..., Restriction],
) -> None:
    made = restrict(
        make_customer(),
        kind="limited_contact",
        windows=[{"days": ["mon"], "start": "09:00", "end": "10:00"}],
    )
    csrf = token(page_of(browser, "/supervisor/customers/HMS-0001"))
    lodged = post(
        browser,
        f"/supervisor/restrictions/{made.id}/appeals",
        f"appeal-{made.id}",
        csrf,
        lodged_on=TODAY.isoformat(),
        grounds="One hour a week is not enough for my repairs",
    )
    assert lodged.status_code == 302, lodged.get_data(as_text=True)[:3000]
    with database(app).sessions() as sess:
        appeal = sess.scalar(select(Appeal))
        assert appeal is not None
    shown = page_of(browser, "/supervisor/customers/HMS-0001")
    assert f'href="/supervisor/appeals/{appeal.id}/vary"' in shown

    judge = signed_in(app, make_staff("supervisor", "jo.judge"))
    form = page_of(judge, f"/supervisor/appeals/{appeal.id}/vary")
    decided = post(
        judge,
        f"/supervisor/appeals/{appeal.id}/vary",
        "",
        token(form),
        notes="Two mornings a week instead",
        letter_method="hand",
        kind="limited_contact",
        reason="Very long daily calls (6.2)",
        **{
            "limited_contact-windows-days": "mon",
            "limited_contact-windows-start": "09:00",
            "limited_contact-windows-end": "11:00",
            "limited_contact-windows-days-2": "thu",
            "limited_contact-windows-start-2": "09:00",
            "limited_contact-windows-end-2": "11:00",
        },
    )
    assert decided.status_code == 302, decided.get_data(as_text=True)[:3000]
    with database(app).sessions() as sess:
        decided_appeal = sess.get(Appeal, appeal.id)
        assert decided_appeal is not None and decided_appeal.outcome == "varied"
        successor = sess.get(Restriction, decided_appeal.successor_id)
        assert successor is not None and successor.replaces_id == made.id
        assert successor.state == "awaiting_notice"  # its own notice is still to be sent
        assert successor.details is not None and len(successor.details["windows"]) == 2
        before = sess.get(Restriction, made.id)
        assert before is not None and before.ended_at is not None
    (appeal_letter,) = [x for x in kept(app) if x.kind == "appeal"]
    assert (appeal_letter.appeal_id, appeal_letter.method) == (appeal.id, "hand")
    shown = page_of(judge, "/supervisor/customers/HMS-0001")
    link = f"/supervisor/restrictions/{made.id}/letter?about=appeal&amp;download=1"
    assert f'href="{link}"' in shown
    opened = judge.get(link.replace("&amp;", "&"))
    assert opened.status_code == 200 and opened.data == appeal_letter.pdf


def test_a_vary_the_domain_refuses_shows_its_words_and_changes_nothing(
    app: Flask,
    browser: FlaskClient,
    make_customer: Callable[..., Customer],
    restrict: Callable[..., Restriction],
) -> None:
    made = restrict(make_customer(), kind="written_only")
    csrf = token(page_of(browser, f"/supervisor/restrictions/{made.id}/vary"))
    refused = post(
        browser,
        f"/supervisor/restrictions/{made.id}/vary",
        "",
        csrf,
        notes="New times",
        letter_method="post",
        kind="limited_contact",
        reason="Long calls",
        **{
            "limited_contact-windows-days": "tue",
            "limited_contact-windows-start": "12:00",
            "limited_contact-windows-end": "10:00",
        },
    )
    assert refused.status_code == 422
    assert "start 12:00 must be before end 10:00" in refused.get_data(as_text=True)
    with database(app).sessions() as sess:
        still = sess.get(Restriction, made.id)
        assert still is not None and still.ended_at is None
        assert sess.scalar(select(Review)) is None
    assert [x.kind for x in kept(app)] == []


# --- 3. the Due list's actions -------------------------------------------------------------------


def test_each_due_item_links_to_its_form_opened_on_the_customers_page(
    app: Flask,
    browser: FlaskClient,
    make_customer: Callable[..., Customer],
    restrict: Callable[..., Restriction],
) -> None:
    waiting = restrict(
        make_customer(), kind="written_only", notice_sent_on=None, decided_on="2026-06-01"
    )
    due = page_of(browser, "/supervisor/due")
    link = f"/supervisor/customers/HMS-0001?open=notice-{waiting.id}#restriction-{waiting.id}"
    row = re.search(r'<tr class="due-item letter">(.*?)</tr>', due, re.S)
    assert row is not None
    assert f'href="{link}">Record the notice</a>' in row[1]

    opened = page_of(browser, link.split("#")[0])
    assert re.search(r"<details open>\s*<summary>Record the notice…", opened)
    assert opened.count("<details open>") == 1  # only the form asked for
    csrf = token(opened)
    recorded = post(
        browser,
        f"/supervisor/restrictions/{waiting.id}/notice",
        f"notice-{waiting.id}",
        csrf,
        sent_on=TODAY.isoformat(),
        method="post",
    )
    assert recorded.status_code == 302, recorded.get_data(as_text=True)[:3000]
    with database(app).sessions() as sess:
        done = sess.get(Restriction, waiting.id)
        assert done is not None and done.notice_sent_on == TODAY
    assert [x.kind for x in kept(app)] == ["decision"]

    # an appeal awaiting a decision links to its decision form
    csrf = token(page_of(browser, "/supervisor/customers/HMS-0001"))
    lodged = post(
        browser,
        f"/supervisor/restrictions/{waiting.id}/appeals",
        f"appeal-{waiting.id}",
        csrf,
        lodged_on=TODAY.isoformat(),
        grounds="Unfair",
    )
    assert lodged.status_code == 302
    with database(app).sessions() as sess:
        appeal = sess.scalar(select(Appeal))
        assert appeal is not None
    due = page_of(browser, "/supervisor/due")
    link = f"/supervisor/customers/HMS-0001?open=decide-{appeal.id}#restriction-{waiting.id}"
    assert f'href="{link}">Decide the appeal</a>' in due
    opened = page_of(browser, link.split("#")[0])
    assert re.search(rf"<details open>\s*<summary>Decide appeal {appeal.id}…", opened)


# --- 4. the alert page's restrictions in force ---------------------------------------------------


def _alert(
    app: Flask, customer: Customer, *, emergency: bool = False, rule: str = "calls-per-hour"
) -> int:
    with database(app).sessions() as sess:
        alert = ContactAlert(
            subject=f"customer:{customer.id}",
            customer_id=customer.id,
            rule_name=rule,
            rule={"name": rule, "window_minutes": 60, "max_calls": 5},
            evidence={
                "calls": [
                    {
                        "call_sid": "CA" + "1" * 32,
                        "started_at": (NOW - timedelta(minutes=5)).isoformat(),
                        "number": "+447400100001",
                        "duration_seconds": 61,
                        "route": "default",
                        "emergency": emergency,
                    }
                ],
                "calls_in_window": 1,
                "window_end": NOW.isoformat(),
            },
        )
        sess.add(alert)
        sess.commit()
        return alert.id


def test_the_alert_page_shows_the_customers_restrictions_in_force_with_their_terms(
    app: Flask,
    browser: FlaskClient,
    make_customer: Callable[..., Customer],
    restrict: Callable[..., Restriction],
) -> None:
    customer = make_customer()
    limited = restrict(
        customer,
        kind="limited_contact",
        windows=[{"days": ["tue", "thu"], "start": "10:00", "end": "12:00"}],
        max_calls_per_week=2,
    )
    waiting = restrict(customer, kind="written_only", notice_sent_on=None)
    alert_id = _alert(app, customer)
    shown = page_of(browser, f"/supervisor/alerts/{alert_id}")
    section = re.search(r'<div class="card" id="in-force"[^>]*>(.*?)</div>', shown, re.S)
    assert section is not None
    assert f'id="in-force-{limited.id}"' in section[1]
    assert "Limited contact" in section[1]
    assert "on Tuesdays and Thursdays from 10:00 to 12:00" in section[1]
    assert "<dt>Calls allowed per week</dt><dd>2</dd>" in section[1]
    assert f'id="in-force-{waiting.id}"' not in section[1]  # awaiting its notice: not in force


# --- 5. reviewing an agent's incident with a note -----------------------------------------------


def _incident(app: Flask, customer: Customer, agent: Staff, *, emergency: bool = False) -> int:
    with database(app).sessions() as sess:
        call = Call(
            call_sid="CA" + "2" * 32,
            from_number="+447400100001",
            from_e164="+447400100001",
            customer_id=customer.id,
            started_at=NOW - timedelta(minutes=20),
            emergency_selected_at=(NOW - timedelta(minutes=19)) if emergency else None,
        )
        sess.add(call)
        sess.flush()
        action = AgentAction(
            call_id=call.id,
            customer_id=customer.id,
            user_id=agent.user.id,
            kind="end",
            reason="Threatened to come to the office (4.6)",
            outcome="ok",
        )
        sess.add(action)
        sess.commit()
        return action.id


def test_an_incident_is_reviewed_with_a_note_shown_in_the_list(
    app: Flask,
    browser: FlaskClient,
    sam: Staff,
    agent: Staff,
    make_customer: Callable[..., Customer],
) -> None:
    action_id = _incident(app, make_customer(), agent)
    listing = page_of(browser, "/supervisor/incidents/")
    assert f'name="review-{action_id}-note"' in listing
    reviewed = post(
        browser,
        f"/supervisor/incidents/{action_id}/reviewed",
        f"review-{action_id}",
        token(listing),
        note="Listened to the recording: the end was right",
    )
    assert reviewed.status_code == 302, reviewed.get_data(as_text=True)[:3000]
    with database(app).sessions() as sess:
        action = sess.get(AgentAction, action_id)
        assert action is not None and action.reviewed_at is not None
        assert action.reviewed_by_id == sam.user.id
        assert action.review_note == "Listened to the recording: the end was right"
        entry = sess.scalar(select(AuditEntry).where(AuditEntry.action == "incident.reviewed"))
        assert entry is not None and entry.note == action.review_note
    listing = page_of(browser, "/supervisor/incidents/")
    row = re.search(rf'<tr class="incident" id="incident-{action_id}">(.*?)</tr>', listing, re.S)
    assert row is not None
    assert "reviewed by sam.supervisor" in row[1]
    assert "Listened to the recording: the end was right" in row[1]
    assert "Mark reviewed" not in row[1]


def test_an_incident_note_longer_than_allowed_is_refused(
    app: Flask, browser: FlaskClient, agent: Staff, make_customer: Callable[..., Customer]
) -> None:
    action_id = _incident(app, make_customer(), agent)
    listing = page_of(browser, "/supervisor/incidents/")
    refused = post(
        browser,
        f"/supervisor/incidents/{action_id}/reviewed",
        f"review-{action_id}",
        token(listing),
        note="x" * 5001,
    )
    assert refused.status_code == 302
    assert "note is longer than 5000 characters" in page_of(browser, "/supervisor/incidents/")
    with database(app).sessions() as sess:
        action = sess.get(AgentAction, action_id)
        assert action is not None and action.reviewed_at is None


# --- 6. emergency key presses ------------------------------------------------------------------


def test_emergency_key_presses_show_on_the_record_the_alert_and_the_incidents(
    app: Flask, browser: FlaskClient, agent: Staff, make_customer: Callable[..., Customer]
) -> None:
    customer = make_customer()
    _incident(app, customer, agent, emergency=True)
    with database(app).sessions() as sess:
        sess.add(
            Call(
                call_sid="CA" + "3" * 32,
                from_number="+447400100001",
                customer_id=customer.id,
                started_at=NOW - timedelta(hours=2),
            )
        )
        sess.commit()
    record = page_of(browser, "/supervisor/customers/HMS-0001")
    calls = re.search(r'<table id="calls">(.*?)</table>', record, re.S)
    assert calls is not None
    rows = re.findall(r'<tr class="call( emergency)?">(.*?)</tr>', calls[1], re.S)
    assert [bool(flag) for flag, _ in rows] == [True, False]  # newest first
    assert "Pressed for emergency repairs at 3 Jun 2026, 11:41" in rows[0][1]  # BST

    alert_id = _alert(app, customer, emergency=True)
    evidence = page_of(browser, f"/supervisor/alerts/{alert_id}")
    assert "pressed the key for emergency repairs" in evidence
    other = _alert(app, customer, rule="calls-per-day")
    plain = page_of(browser, f"/supervisor/alerts/{other}")
    assert "pressed the key for emergency repairs" not in plain

    incidents = page_of(browser, "/supervisor/incidents/")
    assert "Pressed for emergency repairs at 3 Jun 2026, 11:41" in incidents


# --- 7. limited contact with several permitted times --------------------------------------------


def test_limited_contact_is_recorded_with_several_permitted_times(
    app: Flask, browser: FlaskClient, make_customer: Callable[..., Customer]
) -> None:
    make_customer()
    shown = page_of(browser, "/supervisor/customers/HMS-0001")
    for row in (2, 3, 4):
        assert f'name="limited_contact-windows-days-{row}"' in shown
    assert "Permitted days and times, time 2: days (e.g. mon, wed)" in shown
    csrf = token(shown)
    windows = {
        "limited_contact-windows-days": "tue",
        "limited_contact-windows-start": "10:00",
        "limited_contact-windows-end": "12:00",
        "limited_contact-windows-days-3": "fri, mon",  # a row left empty between is skipped
        "limited_contact-windows-start-3": "14:00",
        "limited_contact-windows-end-3": "15:30",
    }
    recorded = post(
        browser,
        "/supervisor/customers/HMS-0001/restrictions",
        "",
        csrf,
        kind="limited_contact",
        reason="Very long daily calls (6.2)",
        **windows,
    )
    assert recorded.status_code == 302, recorded.get_data(as_text=True)[:3000]
    with database(app).sessions() as sess:
        made = sess.scalar(select(Restriction))
        assert made is not None and made.details is not None
        assert made.details["windows"] == [
            {"days": ["tue"], "start": "10:00", "end": "12:00"},
            {"days": ["mon", "fri"], "start": "14:00", "end": "15:30"},
        ]
    shown = page_of(browser, "/supervisor/customers/HMS-0001")
    assert "on Tuesdays from 10:00 to 12:00" in shown and "14:00 to 15:30" in shown

    # a second time half filled in is refused in the domain's words, and what was typed is kept
    refused = post(
        browser,
        "/supervisor/customers/HMS-0001/restrictions",
        "",
        csrf,
        kind="limited_contact",
        reason="Very long daily calls (6.2)",
        **{**windows, "limited_contact-windows-days-2": "wed"},
    )
    assert refused.status_code == 422
    page = refused.get_data(as_text=True)
    assert "Permitted days and times, row 2, start must be a time like" in page
    assert 'name="limited_contact-windows-days-2" value="wed"' in page
    with database(app).sessions() as sess:
        assert len(sess.scalars(select(Restriction)).all()) == 1
