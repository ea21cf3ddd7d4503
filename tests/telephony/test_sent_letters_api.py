"""Letters kept as sent, through the JSON API and the supervisor's pages, and one calendar of the
policy's dates: a decision letter downloaded after a review is the one sent, byte for byte; a
notice dated before its decision or after today is refused and keeps nothing; ending a
restriction keeps an end letter, and recording the letter about a lapse keeps a lapse letter; an
appeal after a review is judged against the review letter's
deadline; and the letters, the API and the daily job agree on every date."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any

import pypdf
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from restrictions import policy_dates
from restrictions.models import AuditEntry, Customer, Restriction, SentLetter
from restrictions.settings import ReviewRules
from telephony.config import SETTINGS
from telephony.database import database
from tests.conftest import CSRF_FIELD, Staff

API = "/api/v1"
DECIDED = date(2026, 6, 2)  # a Tuesday
REASON = "Swore at the repairs operative on 28 May (policy 4.3)"


@contextmanager
def on(moment: datetime) -> Iterator[None]:
    with time_machine.travel(moment, tick=False):
        yield


def noon(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 11, tzinfo=UTC)


def pdf_text(data: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(data))
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())


def kept(app: Flask) -> list[SentLetter]:
    with database(app).sessions() as sess:
        found = list(sess.scalars(select(SentLetter).order_by(SentLetter.id)))
        for letter in found:
            assert letter.pdf  # loaded before the session closes
        return found


def audited(app: Flask, prefix: str) -> list[tuple[str, str | None]]:
    with database(app).sessions() as sess:
        rows = sess.execute(
            select(AuditEntry.action, AuditEntry.note)
            .where(AuditEntry.action.like(f"{prefix}%"))
            .order_by(AuditEntry.id)
        )
        return [(action, note) for action, note in rows]


def decide(client: FlaskClient, staff: Staff, customer: Customer, **body: Any) -> dict[str, Any]:
    """A restriction decided through the API (awaiting its notice unless the body says)."""
    answer = client.post(
        f"{API}/customers/{customer.reference}/restrictions",
        json={
            "kind": "written_only",
            "reason": REASON,
            "decided_on": DECIDED.isoformat(),
            **body,
        },
        headers=staff.headers,
    )
    assert answer.status_code == 201, answer.get_json()
    made: dict[str, Any] = answer.get_json()
    return made


def notice(
    client: FlaskClient, staff: Staff, restriction_id: int, sent_on: Any, method: str = "post"
) -> Any:
    return client.post(
        f"{API}/restrictions/{restriction_id}/notice",
        json={"sent_on": sent_on, "method": method},
        headers=staff.headers,
    )


def letter(client: FlaskClient, staff: Staff, restriction_id: int, query: str = "") -> Any:
    return client.get(f"{API}/restrictions/{restriction_id}/letter{query}", headers=staff.headers)


def shown(client: FlaskClient, staff: Staff, restriction_id: int) -> dict[str, Any]:
    answer = client.get(f"{API}/restrictions/{restriction_id}", headers=staff.headers)
    assert answer.status_code == 200
    found: dict[str, Any] = answer.get_json()
    return found


def signed_in(app: Flask, staff: Staff) -> FlaskClient:
    """A browser of its own, signed in through the sign-in form."""
    browser = app.test_client()
    token = CSRF_FIELD.search(browser.get("/sign-in").get_data(as_text=True))
    assert token is not None
    answer = browser.post(
        "/sign-in",
        data={"csrf_token": token[1], "name": staff.user.name, "password": staff.password},
    )
    assert answer.status_code == 302, answer.get_data(as_text=True)
    return browser


# --- kept as sent ---------------------------------------------------------------------------------


def test_a_decision_letter_downloaded_after_a_review_is_the_one_that_was_sent(
    app: Flask,
    client: FlaskClient,
    make_staff: Callable[..., Staff],
    make_customer: Callable[..., Customer],
) -> None:
    with on(noon(date(2026, 6, 3))):
        alice = make_staff("supervisor", "alice")
        made = decide(client, alice, make_customer())
        before = letter(client, alice, made["id"])
        assert before.headers["X-Letter"] == "preview"  # nothing sent yet: a marked preview
        assert "PREVIEW: not sent" in pdf_text(before.data)
        assert kept(app) == []

        sent = notice(client, alice, made["id"], DECIDED.isoformat())
        assert sent.status_code == 200, sent.get_json()
        first = letter(client, alice, made["id"])
    (stored,) = kept(app)
    assert (stored.kind, stored.method, stored.sent_on) == ("decision", "post", DECIDED)
    assert stored.recorded_by == "alice" and stored.template_version.startswith("letters@")
    assert first.headers["X-Letter"] == "sent"
    assert first.data == stored.pdf
    assert hashlib.sha256(first.data).hexdigest() == stored.sha256
    assert first.headers["X-Letter-SHA256"] == stored.sha256
    words = pdf_text(first.data)
    assert "We will review this decision by 2 June 2027 at the latest" in words
    assert "PREVIEW" not in words

    with on(noon(date(2026, 7, 1))):
        bob = make_staff("supervisor", "bob")
        reviewed = client.post(
            f"{API}/restrictions/{made['id']}/review",
            json={"outcome": "continue", "notes": "Still needed", "next_review_on": "2027-01-15"},
            headers=bob.headers,
        )
        assert reviewed.status_code == 200, reviewed.get_json()
        after = letter(client, bob, made["id"])
        preview = letter(client, bob, made["id"], "?format=html")
        record = client.get(f"{API}/customers/HMS-0001", headers=bob.headers).get_json()
        by_id = client.get(f"{API}/letters/{stored.id}", headers=bob.headers)

    assert after.data == first.data  # byte for byte: the letter as it was sent
    assert hashlib.sha256(after.data).hexdigest() == stored.sha256
    assert "2 June 2027" in pdf_text(after.data) and "15 January 2027" not in pdf_text(after.data)
    assert by_id.data == first.data and by_id.headers["X-Letter-Id"] == str(stored.id)
    # the HTML preview is drawn from today's record, and says so
    assert preview.headers["X-Letter"] == "preview"
    page = preview.get_data(as_text=True)
    assert "PREVIEW drawn from today&#39;s record, not the letter as sent" in page
    assert "15 January 2027" in page
    # the customer's record lists every letter sent, with its kind, date, method and download
    listed = [(x["kind"], x["sent_on"], x["method"], x["download"]) for x in record["letters"]]
    review_letter = kept(app)[1]
    assert listed == [
        ("review", "2026-07-01", "post", f"{API}/letters/{review_letter.id}"),
        ("decision", "2026-06-02", "post", f"{API}/letters/{stored.id}"),
    ]
    assert record["letters"][1]["sha256"] == stored.sha256


def test_the_supervisors_page_lists_the_letters_sent_and_gives_them_as_sent(
    app: Flask,
    make_staff: Callable[..., Staff],
    make_customer: Callable[..., Customer],
    restrict: Callable[..., Restriction],
) -> None:
    with on(noon(date(2026, 6, 3))):
        sam = make_staff("supervisor", "sam")
        made = restrict(
            make_customer(), kind="written_only", notice_sent_on=None, decided_on="2026-06-02"
        )
        browser = signed_in(app, sam)
        page = browser.get("/supervisor/customers/HMS-0001").get_data(as_text=True)
        token = CSRF_FIELD.search(page)
        assert token is not None
        recorded = browser.post(
            f"/supervisor/restrictions/{made.id}/notice",
            data={
                f"notice-{made.id}-csrf_token": token[1],
                f"notice-{made.id}-sent_on": "2026-06-02",
                f"notice-{made.id}-method": "email",
            },
        )
        assert recorded.status_code == 302, recorded.get_data(as_text=True)
        ended = browser.post(
            f"/supervisor/restrictions/{made.id}/end",
            data={f"end-{made.id}-csrf_token": token[1], f"end-{made.id}-reason": "Improved"},
        )
        assert ended.status_code == 302, ended.get_data(as_text=True)
        page = browser.get("/supervisor/customers/HMS-0001").get_data(as_text=True)
        decision, end = kept(app)
        rows = re.findall(r'<tr id="letter-(\d+)">(.*?)</tr>', page, re.S)
        assert [int(letter_id) for letter_id, _ in rows] == [end.id, decision.id]
        assert "End of the restriction" in rows[0][1] and "3 Jun 2026" in rows[0][1]
        assert "Decision letter" in rows[1][1] and "2 Jun 2026" in rows[1][1]
        assert "Email" in rows[1][1] and "Post" in rows[0][1]
        link = f"/supervisor/letters/{decision.id}"
        assert f'href="{link}"' in rows[1][1]
        download = browser.get(link)
    assert download.status_code == 200 and download.mimetype == "application/pdf"
    assert download.data == decision.pdf
    assert hashlib.sha256(download.data).hexdigest() == decision.sha256


# --- a notice must fall between the decision and today -------------------------------------------


def test_a_notice_dated_before_its_decision_or_after_today_is_refused_and_keeps_nothing(
    app: Flask,
    client: FlaskClient,
    make_staff: Callable[..., Staff],
    make_customer: Callable[..., Customer],
) -> None:
    # 23:30 UTC on 10 June is 00:30 on 11 June in London: today is the 11th on the landlord's clock
    with on(datetime(2026, 6, 10, 23, 30, tzinfo=UTC)):
        alice = make_staff("supervisor", "alice")
        made = decide(client, alice, make_customer())
        early = notice(client, alice, made["id"], "2026-06-01")
        late = notice(client, alice, made["id"], "2026-06-12")
        unknown = notice(client, alice, made["id"], "2026-06-05", method="pigeon")
        assert kept(app) == [] and audited(app, "letter.sent") == []
        assert shown(client, alice, made["id"])["state"] == "awaiting_notice"
        assert letter(client, alice, made["id"]).headers["X-Letter"] == "preview"
        today = notice(client, alice, made["id"], "2026-06-11")

    assert early.status_code == 422
    assert early.get_json() == {"error": "sent_on 2026-06-01 is before the decision (2026-06-02)"}
    assert late.status_code == 422
    assert late.get_json() == {"error": "sent_on 2026-06-12 is in the future"}
    assert unknown.status_code == 422
    assert "method must be one of post, email, hand, portal" in unknown.get_json()["error"]
    assert today.status_code == 200, today.get_json()
    (stored,) = kept(app)
    assert stored.sent_on == stored.letter_on == date(2026, 6, 11)
    assert audited(app, "letter.sent") == [("letter.sent.decision", None)]


# --- ending a restriction ---------------------------------------------------------------------


def test_ending_a_restriction_keeps_an_end_letter(
    app: Flask,
    client: FlaskClient,
    make_staff: Callable[..., Staff],
    make_customer: Callable[..., Customer],
) -> None:
    with on(noon(date(2026, 6, 10))):
        alice = make_staff("supervisor", "alice")
        made = decide(client, alice, make_customer(language="cy-GB"), notice_sent_on="2026-06-02")
        assert [k.kind for k in kept(app)] == ["decision"]  # recorded as sent when decided
        assert letter(client, alice, made["id"], "?about=end").status_code == 404
        refused = client.post(
            f"{API}/restrictions/{made['id']}/end",
            json={"reason": "Improved", "letter_method": "pigeon"},
            headers=alice.headers,
        )
        assert refused.status_code == 422
        assert shown(client, alice, made["id"])["state"] == "active"
        ended = client.post(
            f"{API}/restrictions/{made['id']}/end",
            json={"reason": "Mae pethau wedi gwella", "letter_method": "hand"},
            headers=alice.headers,
        )
        assert ended.status_code == 200, ended.get_json()
        download = letter(client, alice, made["id"], "?about=end")
    decision, end = kept(app)
    assert (end.kind, end.method, end.sent_on, end.language) == (
        "end",
        "hand",
        date(2026, 6, 10),
        "cy-GB",
    )
    assert end.restriction_id == made["id"] and end.recorded_by == "alice"
    assert download.headers["X-Letter"] == "sent" and download.data == end.pdf
    words = pdf_text(end.pdf)
    assert "Diwedd y trefniadau ynghylch sut rydych yn cysylltu â ni" in words
    assert "O 10 Mehefin 2026 ymlaen" in words
    assert "Mae pethau wedi gwella" in words


# --- a restriction that lapsed -------------------------------------------------------------------


def test_recording_the_letter_about_a_lapse_keeps_the_lapse_letter(
    app: Flask,
    client: FlaskClient,
    make_staff: Callable[..., Staff],
    make_customer: Callable[..., Customer],
) -> None:
    from handlers.schedule import daily

    app.extensions[SETTINGS] = dataclasses.replace(
        app.extensions[SETTINGS], reviews=ReviewRules(admins_after_days=30, lapse_after_days=60)
    )
    review_due = date(2027, 6, 2)  # 12 months after the notice of 2 June 2026
    lapsed_on = date(2027, 8, 1)  # 60 days overdue
    with on(noon(DECIDED)):
        alice = make_staff("supervisor", "alice")
        made = decide(client, alice, make_customer(), notice_sent_on=DECIDED.isoformat())
    assert made["review_due_on"] == review_due.isoformat()
    with on(noon(lapsed_on)):
        assert daily()["lapsed"] == 1
    with on(noon(date(2027, 8, 3))):
        bob = make_staff("supervisor", "bob")
        restriction = shown(client, bob, made["id"])
        assert restriction["lapsed_on"] == lapsed_on.isoformat()
        assert "lapse_after_days" in restriction["end_reason"]  # callguard's own, for staff
        preview = letter(client, bob, made["id"], "?about=lapse")
        assert preview.headers["X-Letter"] == "preview"
        assert letter(client, bob, made["id"], "?about=end").status_code == 404
        path = f"{API}/restrictions/{made['id']}/lapse-letter"
        early = client.post(path, json={"sent_on": "2027-07-31"}, headers=bob.headers)
        unknown = client.post(
            path, json={"sent_on": "2027-08-02", "method": "pigeon"}, headers=bob.headers
        )
        assert [k.kind for k in kept(app)] == ["decision"]
        assert shown(client, bob, made["id"])["lapse_letter_sent_on"] is None
        recorded = client.post(
            path, json={"sent_on": "2027-08-02", "method": "email"}, headers=bob.headers
        )
        again = client.post(path, json={"sent_on": "2027-08-03"}, headers=bob.headers)
        record = client.get(f"{API}/customers/HMS-0001", headers=bob.headers).get_json()
        by_id = client.get(
            f"{API}/letters/{recorded.get_json()['letter']['id']}", headers=bob.headers
        )
        about = letter(client, bob, made["id"], "?about=lapse")
    with on(noon(date(2027, 9, 1))):  # later on, it is the letter as it was sent
        carol = make_staff("supervisor", "carol")
        later = letter(client, carol, made["id"], "?about=lapse")

    assert early.status_code == 422
    assert "must be between the lapse (2027-08-01) and today" in early.get_json()["error"]
    assert unknown.status_code == 422
    assert "method must be one of post, email, hand, portal" in unknown.get_json()["error"]
    assert again.status_code == 409
    assert recorded.status_code == 200, recorded.get_json()
    answer = recorded.get_json()
    decision, lapse = kept(app)
    assert (lapse.kind, lapse.method, lapse.sent_on, lapse.letter_on, lapse.language) == (
        "lapse",
        "email",
        date(2027, 8, 2),
        date(2027, 8, 2),
        "en-GB",
    )
    assert lapse.restriction_id == made["id"] and lapse.recorded_by == "bob"
    assert lapse.sha256 == hashlib.sha256(lapse.pdf).hexdigest()
    # the restriction as before, with the letter kept
    assert (answer["id"], answer["lapse_letter_sent_on"]) == (made["id"], "2027-08-02")
    assert answer["letter"]["kind"] == "lapse" and answer["letter"]["sha256"] == lapse.sha256
    assert answer["letter"]["download"] == f"{API}/letters/{lapse.id}"
    assert answer["letter"]["title"] == "The arrangements about how you contact us have ended"
    # listed among the customer's letters, and given as it was sent, byte for byte
    listed = [(x["kind"], x["sent_on"], x["method"], x["sha256"]) for x in record["letters"]]
    assert listed == [
        ("lapse", "2027-08-02", "email", lapse.sha256),
        ("decision", "2026-06-02", "post", decision.sha256),
    ]
    for download in (by_id, about, later):
        assert download.headers["X-Letter"] == "sent"
        assert download.data == lapse.pdf
        assert download.headers["X-Letter-SHA256"] == lapse.sha256
    assert audited(app, "letter.sent") == [
        ("letter.sent.decision", None),
        ("letter.sent.lapse", None),
    ]
    words = pdf_text(lapse.pdf)
    assert "The arrangements about how you contact us have ended" in words
    assert "We said we would review those arrangements by 2 June 2027." in words
    assert "So the arrangements ended on 1 August 2027." in words
    assert "From that day, you can contact us in all the usual ways again." in words
    assert "lapse_after_days" not in words and "lapsed: its review" not in words
    assert not re.search(r"\d{4}-\d{2}-\d{2}", words), words
    assert "how to appeal" not in words and "In our own words" not in words


# --- the appeal's last day --------------------------------------------------------------------


def test_an_appeal_after_a_review_outcome_is_judged_against_the_review_letters_deadline(
    app: Flask,
    client: FlaskClient,
    make_staff: Callable[..., Staff],
    make_customer: Callable[..., Customer],
) -> None:
    with on(noon(date(2026, 6, 2))):
        alice = make_staff("supervisor", "alice")
        made = decide(client, alice, make_customer(), notice_sent_on="2026-06-02")
        assert shown(client, alice, made["id"])["appeal_last_day"] == "2026-06-30"
    with on(noon(date(2026, 7, 1))):  # the decision letter's last day to appeal has passed
        bob = make_staff("supervisor", "bob")
        reviewed = client.post(
            f"{API}/restrictions/{made['id']}/review",
            json={"outcome": "continue", "notes": "Still needed"},
            headers=bob.headers,
        )
        assert reviewed.status_code == 200, reviewed.get_json()
        review_letter = letter(client, bob, made["id"], "?about=review")
        restriction = shown(client, bob, made["id"])
    assert review_letter.headers["X-Letter"] == "sent"
    # the review letter gives a new 20 working days from its own date, and so does the API
    assert "Your appeal must reach us by 29 July 2026 at the latest" in pdf_text(review_letter.data)
    assert restriction["appeal_last_day"] == "2026-07-29"
    assert restriction["appeal_counted_from"] == {"letter": "review", "dated": "2026-07-01"}

    with on(noon(date(2026, 7, 30))):
        carol = make_staff("supervisor", "carol")
        lodge = f"{API}/restrictions/{made['id']}/appeals"
        late = client.post(lodge, json={"grounds": "Unfair"}, headers=carol.headers)
        in_time = client.post(
            lodge, json={"grounds": "Unfair", "lodged_on": "2026-07-29"}, headers=carol.headers
        )
    assert late.status_code == 422
    assert late.get_json()["error"] == (
        "lodged_on 2026-07-30 is after the last day to appeal (2026-07-29, 20 working days after "
        "the review outcome letter of 2026-07-01); give late_reason to accept it late"
    )
    assert in_time.status_code == 201, in_time.get_json()
    assert in_time.get_json()["late_reason"] is None


def test_the_letters_the_api_and_the_daily_job_agree_on_every_date(
    app: Flask,
    client: FlaskClient,
    make_staff: Callable[..., Staff],
    make_customer: Callable[..., Customer],
) -> None:
    from handlers.schedule import daily

    decided_on = date(2025, 12, 24)  # applied at once, on Christmas Eve
    notice_due = date(2025, 12, 30)  # 2 working days: not Christmas, Boxing Day or the weekend
    sent_on = date(2025, 12, 31)
    appeal_by = date(2026, 1, 29)  # 20 working days after the letter, New Year's Day excluded
    review_by = date(2026, 12, 24)  # 12 months after it took effect (at once)
    lodged_on = date(2026, 1, 5)
    decision_due = date(2026, 2, 2)
    assert policy_dates.notice_due(decided_on) == notice_due
    assert policy_dates.appeal_last_day(sent_on) == appeal_by
    assert policy_dates.review_due(decided_on) == review_by
    assert policy_dates.appeal_decision_due(lodged_on) == decision_due

    with on(noon(decided_on)):
        alice = make_staff("supervisor", "alice")
        made = decide(
            client,
            alice,
            make_customer(),
            decided_on=decided_on.isoformat(),
            apply_now=True,
            urgent_reason="Threatened a housing officer (4.6)",
        )
    assert made["notice_due_on"] == notice_due.isoformat()
    assert made["review_due_on"] == review_by.isoformat()
    with on(noon(date(2025, 12, 31))):
        daily()
        assert audited(app, "due.notice") == [("due.notice_overdue", notice_due.isoformat())]
        bob = make_staff("supervisor", "bob")
        assert notice(client, bob, made["id"], sent_on.isoformat(), "email").status_code == 200
        restriction = shown(client, bob, made["id"])
    (urgent,) = kept(app)
    assert (urgent.kind, urgent.method, urgent.letter_on) == ("urgent_notice", "email", sent_on)
    words = pdf_text(urgent.pdf)
    assert "Your appeal must reach us by 29 January 2026 at the latest" in words
    assert "We will review this decision by 24 December 2026 at the latest" in words
    assert "This applies from 24 December 2025." in words
    assert restriction["appeal_last_day"] == appeal_by.isoformat()
    assert restriction["review_due_on"] == review_by.isoformat()

    with on(noon(lodged_on)):
        carol = make_staff("supervisor", "carol")
        appeal = client.post(
            f"{API}/restrictions/{made['id']}/appeals",
            json={"grounds": "I was provoked"},
            headers=carol.headers,
        ).get_json()
    assert appeal["due_on"] == decision_due.isoformat() and appeal["late_reason"] is None
    with on(noon(decision_due)):
        daily()
    with on(noon(date(2026, 2, 3))):
        daily()
    assert audited(app, "due.appeal") == [("due.appeal_overdue", decision_due.isoformat())]
    with on(noon(date(2026, 11, 30))):  # within 30 days of the review
        daily()
    assert ("due.review_due", review_by.isoformat()) in audited(app, "due.review")


def test_the_letter_about_a_lapse_is_recorded_from_the_customers_page(
    app: Flask,
    client: FlaskClient,
    make_staff: Callable[..., Staff],
    make_customer: Callable[..., Customer],
) -> None:
    """The Due list sends a supervisor to the customer's page, where the lapsed restriction
    offers the letter: recording it there keeps the lapse letter and the offer goes."""
    from handlers.schedule import daily

    app.extensions[SETTINGS] = dataclasses.replace(
        app.extensions[SETTINGS], reviews=ReviewRules(admins_after_days=30, lapse_after_days=60)
    )
    with on(noon(DECIDED)):
        alice = make_staff("supervisor", "alice")
        made = decide(client, alice, make_customer(), notice_sent_on=DECIDED.isoformat())
    with on(noon(date(2027, 8, 1))):
        assert daily()["lapsed"] == 1
    key = f"lapse-{made['id']}"
    with on(noon(date(2027, 8, 3))):
        browser = signed_in(app, make_staff("supervisor", "bob"))
        page = browser.get("/supervisor/customers/HMS-0001").get_data(as_text=True)
        assert "Record the letter about the lapse" in page
        token = CSRF_FIELD.search(page)
        assert token is not None
        too_early = browser.post(
            f"/supervisor/restrictions/{made['id']}/lapse-letter",
            data={
                f"{key}-csrf_token": token[1],
                f"{key}-sent_on": "2027-07-01",
                f"{key}-method": "post",
            },  # fmt: skip
            follow_redirects=True,
        )
        assert "must be between the lapse" in too_early.get_data(as_text=True)
        recorded = browser.post(
            f"/supervisor/restrictions/{made['id']}/lapse-letter",
            data={
                f"{key}-csrf_token": token[1],
                f"{key}-sent_on": "2027-08-02",
                f"{key}-method": "post",
            },  # fmt: skip
        )
        assert recorded.status_code == 302, recorded.get_data(as_text=True)
        page = browser.get("/supervisor/customers/HMS-0001").get_data(as_text=True)
    assert "Record the letter about the lapse" not in page
    assert "Lapse of the restriction" in page  # listed among the letters sent
    assert [k.kind for k in kept(app)] == ["decision", "lapse"]
