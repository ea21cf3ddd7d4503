"""Plain words everywhere on the staff pages: routes, contact limits, audit actions, durations,
moments on the landlord's clock, languages and the domain's field paths are shown in words, never
as the codes callguard stores (the JSON API keeps its codes)."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from restrictions import kinds
from restrictions.models import Call, ContactAlert, Customer, Restriction
from restrictions.routing import RouteKind
from restrictions.settings import ContactRule
from telephony.database import database
from telephony.pages import words
from tests.conftest import Staff
from tests.pages import csrf, signed_in

T0 = datetime(2026, 12, 2, 16, 5, tzinfo=UTC)  # a Wednesday; GMT, so 16:05 on the clock too
CUSTOMER = "+447400100001"


def text_of(page: str) -> str:
    """What a person reads on the page: its text, without markup, attributes or scripts."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def shown(browser: FlaskClient, url: str) -> str:
    answer = browser.get(url)
    assert answer.status_code == 200, answer.get_data(as_text=True)[:2000]
    return text_of(answer.get_data(as_text=True))


CODES = ("calls-per-hour", "outside_window", "allowance_used", "written_only", "UTC")
ACTIONS = ("customer.created", "restriction.created", "alert.opened", "letter.sent")


def no_codes(text: str) -> None:
    for code in (*CODES, *ACTIONS):
        assert code not in text, f"{code!r} is shown"
    assert not re.search(r"\b20\d\d-\d\d-\d\dT\d\d:\d\d", text), "an ISO timestamp is shown"
    assert not re.search(r"\[\d+\]", text), "a field path is shown"


@pytest.fixture
def place_call(twilio: Any, run_jobs: Callable[[], int]) -> Callable[..., str]:
    """A whole call as Twilio reports it: the inbound webhook, then the completed callback."""

    def place(at: datetime, from_: str = CUSTOMER, seconds: int = 120) -> str:
        with time_machine.travel(at, tick=False):
            params = twilio.call_params(from_)
            twilio.post("/twilio/voice/incoming", params)
            run_jobs()
        with time_machine.travel(at + timedelta(seconds=seconds), tick=False):
            done = {
                **params,
                "CallStatus": "completed",
                "CallDuration": str(seconds),
                "SequenceNumber": "3",
            }
            assert twilio.post("/twilio/voice/status", done).status_code == 204
            run_jobs()
        return str(params["CallSid"])

    return place


def _alert(app: Flask) -> ContactAlert:
    with database(app).sessions() as sess:
        found: ContactAlert | None = sess.scalar(select(ContactAlert))
        assert found is not None
        return found


# --- the pages ----------------------------------------------------------------------------------


def test_an_alert_and_its_customer_are_shown_in_words(
    app: Flask,
    place_call: Callable[..., str],
    make_customer: Callable[..., Customer],
    supervisor: Staff,
) -> None:
    make_customer()
    for m in (0, 10, 20, 30, 40):  # five calls within the hour, two minutes each
        place_call(T0 + timedelta(minutes=m))
    alert = _alert(app)
    assert alert.rule_name == "calls-per-hour"  # stored as its code
    with time_machine.travel(T0 + timedelta(hours=1), tick=False):
        browser = signed_in(app, supervisor)

        listing = shown(browser, "/supervisor/alerts")
        # the limit reached, and the calls within its window (not every call that day)
        assert "Limit reached Calls within its window" in listing
        assert "5 calls within an hour 5 open" in listing
        assert "2 Dec 2026, 16:47" in listing  # opened as the fifth call ended, on the clock
        no_codes(listing)

        page = shown(browser, f"/supervisor/alerts/{alert.id}")
        assert f"Alert {alert.id}: 5 calls within an hour" in page
        assert "2 Dec 2026, 16:05" in page and "2 min 00 s" in page
        assert "Contact centre" in page  # where each call went
        # the evidence and the chart say what each counts, so they cannot be read as at odds
        assert "Evidence: the calls within an hour that reached the limit (5)" in page
        assert "Every call per day, last 30 days" in page
        assert "busiest day: 5 calls (every call that day)" in page
        assert "2 Dec 2026 (today)" in page
        no_codes(page)
        assert "route default" not in page and "peak" not in page

        record = shown(browser, "/supervisor/customers/HMS-0001")
        assert "Customer added" in record and "Excessive-contact alert opened" in record
        assert "2 Dec 2026: 5 calls within an hour" in record  # the alert, in the list
        assert "2 Dec 2026, 16:45 +447400100001 Contact centre 2 min 00 s" in record
        assert "English" in record and "en-GB" not in record
        no_codes(record)
        assert "120 s" not in record


def test_a_call_refused_outside_its_times_and_the_restriction_are_shown_in_words(
    app: Flask,
    place_call: Callable[..., str],
    make_customer: Callable[..., Customer],
    restrict: Callable[..., Restriction],
    supervisor: Staff,
) -> None:
    customer = make_customer(language="cy-GB")
    with time_machine.travel(T0 - timedelta(days=7), tick=False):  # in force for a week
        restrict(
            customer,
            kind="limited_contact",
            windows=[{"days": ["mon"], "start": "10:00", "end": "11:00"}],
        )
    place_call(T0, seconds=45)  # a Wednesday afternoon: outside its times
    with database(app).sessions() as sess:
        call = sess.scalar(select(Call))
        assert call is not None and call.route == "outside_window"  # stored as its code
    with time_machine.travel(T0 + timedelta(hours=1), tick=False):
        record = shown(signed_in(app, supervisor), "/supervisor/customers/HMS-0001")
    assert "Outside their permitted times: told, and the call ended" in record
    assert "45 s" in record
    assert "Restriction recorded" in record
    assert "Welsh (Cymraeg)" in record and "cy-GB" not in record
    no_codes(record)


def test_the_agent_sees_durations_and_moments_in_words(
    app: Flask, make_customer: Callable[..., Customer], agent: Staff
) -> None:
    customer = make_customer()
    with database(app).sessions() as sess:
        sess.add(
            Call(
                call_sid="CA" + "7" * 32,
                from_number=CUSTOMER,
                customer_id=customer.id,
                started_at=T0,
                ended_at=T0 + timedelta(seconds=245),
                duration_seconds=245,
                route="written_only",
            )
        )
        sess.commit()
    page = shown(signed_in(app, agent), "/agent/customers/HMS-0001")
    assert "2 Dec 2026, 16:05" in page and "4 min 05 s" in page
    no_codes(page)


def test_a_field_path_in_the_domains_message_is_shown_in_words(
    app: Flask, make_customer: Callable[..., Customer], supervisor: Staff
) -> None:
    make_customer()
    browser = signed_in(app, supervisor)
    form = browser.get("/supervisor/customers/HMS-0001").get_data(as_text=True)
    refused = browser.post(
        "/supervisor/customers/HMS-0001/restrictions",
        data={
            "csrf_token": csrf(form),
            "kind": "limited_contact",
            "reason": "Very long daily calls (6.2)",
            "limited_contact-windows-days": "tue",
            "limited_contact-windows-start": "10:00",
            "limited_contact-windows-end": "12:00",
            "limited_contact-windows-days-2": "wed",
            "limited_contact-windows-start-2": "15:00",
            "limited_contact-windows-end-2": "14:00",
        },
    )
    assert refused.status_code == 422
    page = text_of(refused.get_data(as_text=True))
    assert "Permitted days and times, row 2: start 15:00 must be before end 14:00" in page
    assert "windows[1]" not in page


# --- the filters --------------------------------------------------------------------------------


def test_every_route_routing_can_give_has_words(app: Flask) -> None:
    routes = [k.value for k in RouteKind] + [
        k.name
        for k in kinds.all_kinds()
        if k.effect in (kinds.Effect.ENDS_CALL, kinds.Effect.PERSON)
    ]
    for route in routes:
        said = words.route_name(route)
        assert said and route not in said and "_" not in said, route
    assert words.route_name("default") == "Contact centre"
    assert words.route_name("written_only") == "Writing only: told, and the call ended"
    assert words.route_name("spoc") == "Single point of contact: put through to them"
    assert words.route_name("something_new") == "Something new"
    assert words.route_name(None) == "Not decided yet"


def test_contact_rules_in_words(app: Flask) -> None:
    assert words.rule_name("calls-per-hour") == "5 calls within an hour"  # from the settings
    assert words.rule_name("calls-per-day") == "10 calls within a day"
    assert words.rule_name("talk-time-per-week") == "3 hours of calls within a week"
    stored = {"name": "x", "window_minutes": 90, "max_calls": 1, "max_minutes": None}
    assert words.rule_name(stored) == "1 call within 90 minutes"
    assert words.rule_name({"name": "calls-per-hour"}) == "5 calls within an hour"
    assert words.rule_name(ContactRule("y", window_minutes=2880, max_minutes=45)) == (
        "45 minutes of calls within 2 days"
    )
    assert words.rule_name("retired-rule") == "Retired rule"
    assert words.rule_window("calls-per-day") == "a day" and words.rule_window("gone") == ""


def test_audit_actions_in_words(app: Flask) -> None:
    assert words.action_name("restriction.created") == "Restriction recorded"
    assert words.action_name("restriction.reviewed.continue") == "Reviewed: it continues"
    assert words.action_name("appeal.overturned") == "Appeal decided: overturned"
    assert words.action_name("letter.sent.decision") == "Letter sent: Decision letter"
    assert words.action_name("agent.end.failed") == "Agent's ending the call failed"
    assert words.action_name("due.review_overdue") == "Review overdue"
    assert words.action_name("something.quite_new") == "Something quite new"
    for said in words.ACTION_NAMES.values():
        assert "." not in said and "_" not in said


def test_every_action_the_code_writes_has_words(app: Flask) -> None:
    """Each literal action string passed to ``audit(`` has an entry (the dynamic ones, such as
    ``letter.sent.<kind>``, are listed in the mapping by their parts)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    written: set[str] = set()
    for folder in ("restrictions", "telephony", "handlers"):
        for source in (root / folder).rglob("*.py"):
            text = source.read_text()
            for call in re.finditer(r"\baudit\((.{0,160})", text, re.S):
                found = re.search(r'"([a-z_]+(?:\.[a-z_]+)+)"', call[1])
                if found:
                    written.add(found[1])
    assert written, "no audit( calls were found"
    assert written - set(words.ACTION_NAMES) == set()


def test_durations_moments_and_languages(app: Flask) -> None:
    assert words.duration(245) == "4 min 05 s"
    assert words.duration(45) == "45 s"
    assert words.duration(120) == "2 min 00 s"
    assert words.duration(0) == "0 s" and words.duration(None) == ""
    assert words.when(datetime(2026, 12, 2, 16, 5, tzinfo=UTC)) == "2 Dec 2026, 16:05"
    assert words.when(datetime(2026, 7, 1, 13, 5, tzinfo=UTC)) == "1 Jul 2026, 14:05"  # BST
    assert words.when("2026-07-01T13:05:09+00:00") == "1 Jul 2026, 14:05"  # from evidence
    assert words.when(datetime(2026, 7, 1, 13, 5)) == "1 Jul 2026, 14:05"  # naive is UTC
    assert words.when(None) == ""
    assert words.language_name("cy-GB") == "Welsh (Cymraeg)"
    assert words.language_name("pl-PL") == "Polish (polski)"


def test_field_paths_in_the_domains_messages(app: Flask) -> None:
    said = words.plain_message
    assert said("windows[0].days: 'xyz' is not a weekday") == (
        "Permitted days and times, row 1, days: 'xyz' is not a weekday"
    )
    assert said('windows[1].start must be a time like "10:00"') == (
        'Permitted days and times, row 2, start must be a time like "10:00"'
    )
    assert said("max_calls_per_week must be a whole number of at least 1") == (
        "Calls allowed per week must be a whole number of at least 1"
    )
    assert said("postal_address[2] must be text") == "Postal address, line 3 must be text"
    assert said("adjustments.representative needs a name") == (
        "Adjustments, representative or support worker needs a name"
    )
    assert said("sent_on is required: a date like 2026-12-02") == (
        "Sent on is required: a date like 2026-12-02"
    )
    assert said("reason is required and must be text") == "Reason is required and must be text"
    # a message that does not begin with a field is left as it is
    assert said("the password must be at least 12 characters") == (
        "the password must be at least 12 characters"
    )
    assert said("number must be text: a phone number") == "number must be text: a phone number"


def test_the_api_keeps_its_codes(
    app: Flask, client: FlaskClient, make_customer: Callable[..., Customer], supervisor: Staff
) -> None:
    make_customer()
    with database(app).sessions() as sess:
        sess.add(
            ContactAlert(
                subject="number:+447400100077",
                phone_e164="+447400100077",
                rule_name="calls-per-hour",
                rule={"name": "calls-per-hour", "window_minutes": 60, "max_calls": 5},
                evidence={"calls": []},
            )
        )
        sess.commit()
    answer = client.get("/api/v1/alerts", headers=supervisor.headers)
    assert answer.status_code == 200
    assert answer.get_json()["alerts"][0]["rule"] == "calls-per-hour"
