"""A customer's reasonable adjustments are typed fields, checked and shown in words; their
sensitive note reaches supervisors only and never the audit trail. Retention covers every
table (``callguard purge [--dry-run]``), Twilio's copies of old voicemails included. Sharing a
restriction with another agency (policy 10.1) is recorded, listed and audited."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import func, select

from restrictions import cache
from restrictions.models import (
    AuditEntry,
    Base,
    Call,
    ContactAlert,
    Customer,
    PhoneNumber,
    Restriction,
    SharingRecord,
    Voicemail,
)
from telephony.cli import main
from telephony.database import database
from tests.conftest import Staff
from tests.fake_twilio import ACCOUNT_SID, FakeTwilio
from tests.pages import csrf, signed_in

NOTE = "Diagnosed with PTSD in 2024; calls may distress them (from their GP letter)"
FULL = {
    "slow_speech": True,
    "large_print": True,
    "preferred_contact": "email",
    "representative": {"name": "Sam Jones", "contact": "07700 900123", "role": "support_worker"},
    "interpreter": "Polish",
    "sensitive_note": NOTE,
}
NEW = {"reference": "HMS-0001", "name": "Pat Example", "phone_numbers": ["+447400100001"]}
WORDS = [
    "Speaks Welsh (Cymraeg)",
    "Speak slowly and clearly: they asked for slower speech",
    "Needs an interpreter: Polish",
    "Large print for anything written to them",
    "Prefers to be contacted by email",
    "Support worker: Sam Jones (07700 900123)",
]
CALLER = "CA" + "c" * 32
RECORDING = "RE" + "5" * 32


def rows(app: Flask, model: type, *where: Any) -> int:
    with database(app).sessions() as sess:
        return int(sess.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def audit_text(app: Flask) -> str:
    """Every audit entry, whole, as text."""
    with database(app).sessions() as sess:
        entries = sess.scalars(select(AuditEntry)).all()
        return json.dumps([[e.action, e.before, e.after, e.note] for e in entries])


# --- typed adjustments -------------------------------------------------------------------------


def test_adjustments_are_typed_checked_and_shown_in_words(
    app: Flask, client: FlaskClient, supervisor: Staff, agent: Staff
) -> None:
    made = client.post(
        "/api/v1/customers",
        json={**NEW, "language": "cy-GB", "adjustments": FULL},
        headers=supervisor.headers,
    )
    assert made.status_code == 201, made.get_json()
    assert made.get_json()["adjustments"] == FULL  # a supervisor reads the note back
    assert made.get_json()["adjustment_texts"] == WORDS

    url = "/api/v1/customers/HMS-0001"
    shown = client.get(url, headers=agent.headers)
    assert shown.status_code == 200
    as_agent = shown.get_json()
    assert as_agent["adjustments"] == {k: v for k, v in FULL.items() if k != "sensitive_note"}
    assert as_agent["adjustment_texts"] == WORDS
    assert NOTE not in shown.get_data(as_text=True), "an agent's answer never holds the note"
    assert client.get(url, headers=supervisor.headers).get_json()["adjustments"] == FULL

    bad = [
        ({"slow_speech": "yes"}, "adjustments.slow_speech must be true or false"),
        ({"large_print": None}, "adjustments.large_print must be true or false"),
        ({"preferred_contact": "pigeon"}, "preferred_contact must be one of post, email"),
        ({"representative": {"name": "Sam Jones"}}, "needs a name and how to reach them"),
        ({"representative": {"name": "S", "contact": "c", "role": "friend"}}, "role must be"),
        ({"interpreter": 5}, "adjustments.interpreter must be text"),
        ({"hearing": "deaf in the left ear"}, "hearing is not an adjustment"),
    ]
    for adjustments, message in bad:
        created = client.post(
            "/api/v1/customers",
            json={**NEW, "reference": "HMS-0002", "phone_numbers": ["+447400100002"]}
            | {"adjustments": adjustments},
            headers=supervisor.headers,
        )
        assert created.status_code == 422, adjustments
        assert message in created.get_json()["error"], (adjustments, created.get_json())
        patched = client.patch(url, json={"adjustments": adjustments}, headers=supervisor.headers)
        assert patched.status_code == 422, adjustments
    assert rows(app, Customer) == 1
    assert client.get(url, headers=supervisor.headers).get_json()["adjustments"] == FULL

    # the shape from before adjustments were typed still works, and leaves the note as it is
    old_shape = client.patch(
        url, json={"adjustments": {"slow_speech": True}}, headers=supervisor.headers
    )
    assert old_shape.status_code == 200
    assert old_shape.get_json()["adjustments"] == {"slow_speech": True, "sensitive_note": NOTE}
    assert old_shape.get_json()["adjustment_texts"] == WORDS[:2]
    as_agent = client.get(url, headers=agent.headers).get_json()
    assert as_agent["adjustments"] == {"slow_speech": True}


def test_a_row_from_before_typed_adjustments_hides_its_free_text_from_agents(
    app: Flask, client: FlaskClient, supervisor: Staff, agent: Staff, make_customer: Any
) -> None:
    customer = make_customer()
    with database(app).sessions() as sess:  # as the previous release stored it
        row = sess.get(Customer, customer.id)
        assert row is not None
        row.adjustments = {"slow_speech": True, "health": "epilepsy"}
        sess.commit()
    url = "/api/v1/customers/HMS-0001"
    as_agent = client.get(url, headers=agent.headers)
    assert as_agent.get_json()["adjustments"] == {"slow_speech": True}
    assert "epilepsy" not in as_agent.get_data(as_text=True)
    as_supervisor = client.get(url, headers=supervisor.headers).get_json()
    assert as_supervisor["adjustments"]["sensitive_note"] == "health: epilepsy"


def test_the_sensitive_note_is_never_in_the_audit_trail(
    app: Flask, client: FlaskClient, supervisor: Staff, agent: Staff
) -> None:
    url = "/api/v1/customers/HMS-0001"
    client.post("/api/v1/customers", json={**NEW, "adjustments": FULL}, headers=supervisor.headers)
    changed = "Now also: hospital stay in March"
    for note in (changed, None):
        answer = client.patch(
            url, json={"adjustments": {**FULL, "sensitive_note": note}}, headers=supervisor.headers
        )
        assert answer.status_code == 200
    trail = audit_text(app)
    assert NOTE not in trail and changed not in trail and "PTSD" not in trail
    with database(app).sessions() as sess:
        entries = sess.scalars(
            select(AuditEntry).where(AuditEntry.entity == "customer").order_by(AuditEntry.id)
        ).all()
        assert [(e.action, e.note) for e in entries] == [
            ("customer.created", "sensitive note changed"),
            ("customer.updated", "sensitive note changed"),
            ("customer.updated", "sensitive note changed"),
        ]
        assert entries[1].after is not None and entries[1].after["sensitive_note"] == "changed"
        assert all(e.after and "sensitive_note" not in e.after["adjustments"] for e in entries)
    record = client.get(url, headers=agent.headers)
    assert [a["action"] for a in record.get_json()["audit"]][0] == "customer.updated"
    assert changed not in record.get_data(as_text=True)


def test_the_live_card_shows_the_adjustments_in_words_and_never_the_note(
    app: Flask,
    client: FlaskClient,
    twilio: Any,
    run_jobs: Callable[[], int],
    agent: Staff,
    make_customer: Callable[..., Customer],
) -> None:
    make_customer(language="cy-GB", adjustments=FULL)
    twilio.post("/twilio/voice/incoming", twilio.call_params("+447400100001", CallSid=CALLER))
    run_jobs()
    console = signed_in(app, agent).get("/agent/live.json?all=1")
    assert console.status_code == 200
    (card,) = console.get_json()["calls"]
    assert card["customer"]["adjustment_texts"] == WORDS
    assert card["customer"]["adjustments"] == {
        k: v for k, v in FULL.items() if k != "sensitive_note"
    }
    assert NOTE not in console.get_data(as_text=True)
    api = client.get("/api/v1/calls/active", headers=agent.headers)
    assert api.status_code == 200 and NOTE not in api.get_data(as_text=True)
    assert api.get_json()["calls"][0]["customer"]["adjustment_texts"] == WORDS


def test_the_customer_page_shows_them_in_words_and_saves_them(
    app: Flask, supervisor: Staff, make_customer: Callable[..., Customer]
) -> None:
    make_customer(adjustments=FULL)
    browser = signed_in(app, supervisor)
    page = browser.get("/supervisor/customers/HMS-0001").get_data(as_text=True)
    for words in WORDS[1:]:
        assert words in page
    assert NOTE in page  # the supervisor's page
    form = {
        "customer-csrf_token": csrf(page),
        "customer-name": "Pat Example",
        "customer-numbers": "+447400100001",
        "customer-language": "en-GB",
        "customer-large_print": "y",
        "customer-preferred_contact": "post",
        "customer-representative_name": "Sam Jones",
        "customer-representative_contact": "",
        "customer-representative_role": "support_worker",
        "customer-interpreter": "",
        "customer-sensitive_note": NOTE,
    }
    refused = browser.post("/supervisor/customers/HMS-0001/details", data=form)
    assert refused.status_code == 422
    assert "needs a name and how to reach them" in refused.get_data(as_text=True)
    form["customer-representative_contact"] = "sam@example.org"
    saved = browser.post("/supervisor/customers/HMS-0001/details", data=form)
    assert saved.status_code == 302
    page = browser.get("/supervisor/customers/HMS-0001").get_data(as_text=True)
    assert "Prefers to be contacted by post" in page
    assert "Support worker: Sam Jones (sam@example.org)" in page
    assert "Speak slowly" not in page and "Needs an interpreter" not in page
    with database(app).sessions() as sess:
        customer = sess.scalar(select(Customer))
        assert customer is not None and customer.sensitive_note == NOTE
        assert customer.adjustments == {
            "large_print": True,
            "preferred_contact": "post",
            "representative": {
                "name": "Sam Jones",
                "contact": "sam@example.org",
                "role": "support_worker",
            },
        }


# --- retention ---------------------------------------------------------------------------------

T0 = datetime(2026, 1, 5, 10, tzinfo=UTC)
LATER = T0 + timedelta(days=7 * 366)  # past every period: calls, six years, voicemails


def every_table(app: Flask) -> dict[str, int]:
    with database(app).sessions() as sess:
        return {
            t.name: int(sess.scalar(select(func.count()).select_from(t)) or 0)
            for t in Base.metadata.sorted_tables
        }


@pytest.fixture
def history(
    app: Flask,
    make_customer: Callable[..., Customer],
    restrict: Callable[..., Restriction],
) -> dict[str, Any]:
    """At T0: a customer who then goes quiet (a call with a voicemail nobody handled, a closed
    alert, an ended restriction), one with a restriction still held, and an unknown caller's
    closed alert."""
    with time_machine.travel(T0, tick=False):
        quiet = make_customer(adjustments={"sensitive_note": NOTE})
        held = make_customer("HMS-0002", "Robin Held", ("+447400100002",))
        ended = restrict(quiet, kind="warning")
        live = restrict(held, kind="written_only")
        with database(app).sessions() as sess:
            gone = sess.get(Restriction, ended.id)
            assert gone is not None
            gone.ended_at = T0
            gone.end_reason = "Behaviour improved"
            calls = [
                Call(call_sid="CA" + "1" * 32, customer_id=quiet.id, from_number="+447400100001"),
                Call(call_sid="CA" + "2" * 32, customer_id=held.id, from_number="+447400100002"),
                Call(call_sid="CA" + "3" * 32, from_number="+447400999999"),
            ]
            sess.add_all(calls)
            sess.flush()
            sess.add(
                Voicemail(
                    call_id=calls[0].id,
                    customer_id=quiet.id,
                    spoc="client:jo.bloggs",
                    recording_sid=RECORDING,
                    recording_url=f"https://api.twilio.com/Recordings/{RECORDING}",
                    duration_seconds=12,
                )
            )
            for customer_id, subject in ((quiet.id, f"customer:{quiet.id}"), (None, "+4474009")):
                sess.add(
                    ContactAlert(
                        subject=subject,
                        customer_id=customer_id,
                        rule_name="calls-per-day",
                        status="dismissed",
                        closed_at=T0,
                        close_reason="Reasonable",
                    )
                )
            sess.commit()
    return {"quiet": quiet, "held": held, "live": live, "ended": ended}


def test_purge_dry_run_lists_every_table_and_changes_nothing(
    app: Flask, runner: Any, fake_twilio: FakeTwilio, history: dict[str, Any]
) -> None:
    before = every_table(app)
    with time_machine.travel(LATER, tick=False):
        dry = runner.invoke(main, ["purge", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would purge (nothing was changed)" in dry.output
    listed = dict(re.findall(r"^  ([a-z_]+): (\d+)$", dry.output, re.M))
    assert set(Base.metadata.tables) <= set(listed), "every table is listed with its count"
    assert listed["customers"] == "1" and listed["phone_numbers"] == "1"
    assert listed["voicemails"] == "1" and listed["contact_alerts"] == "2"
    assert listed["users"] == "0"
    assert "recordings deleted: 1" in dry.output  # would be deleted at Twilio
    assert every_table(app) == before, "a dry run deletes nothing"
    assert fake_twilio.requests == [], "nor anything at Twilio"
    assert rows(app, AuditEntry, AuditEntry.action == "retention.purged") == 0


def test_a_purge_after_the_periods_deletes_what_it_should_and_records_it_once(
    app: Flask,
    runner: Any,
    redis_conn: Redis,
    fake_twilio: FakeTwilio,
    history: dict[str, Any],
) -> None:
    quiet, held, live = history["quiet"], history["held"], history["live"]
    assert redis_conn.get(cache.key("+447400100001")) is not None  # their number is cached
    with time_machine.travel(T0 + timedelta(days=5 * 365), tick=False):
        early = runner.invoke(main, ["purge"])  # within the six years: only the old calls
    assert early.exit_code == 0, early.output
    assert "customers: 0" in early.output and rows(app, Customer) == 2
    assert [r.method for r in fake_twilio.requests] == ["DELETE"]  # the voicemail's 90 days
    fake_twilio.reset()

    with time_machine.travel(LATER, tick=False):
        done = runner.invoke(main, ["purge"])
    assert done.exit_code == 0, done.output
    assert fake_twilio.requests == [], "Twilio's copy was deleted once, the first time"
    assert "customers: 1" in done.output and "alerts: 2" in done.output

    with database(app).sessions() as sess:
        assert sess.get(Customer, quiet.id) is None, "a customer quiet for six years goes"
        for model in (PhoneNumber, Call, ContactAlert, Voicemail, AuditEntry):
            assert not sess.scalars(select(model).where(model.customer_id == quiet.id)).all(), (
                model.__name__
            )
        assert sess.get(Restriction, history["ended"].id) is None
        kept = sess.get(Customer, held.id)
        assert kept is not None, "never a customer with a restriction still held"
        assert sess.get(Restriction, live.id) is not None
        assert [n.e164 for n in kept.numbers] == ["+447400100002"]
        assert sess.scalar(select(Call).where(Call.customer_id == held.id)) is not None
        assert sess.scalar(select(ContactAlert)) is None  # closed six years ago
        about_live = sess.scalars(
            select(AuditEntry.action).where(
                AuditEntry.entity == "restriction", AuditEntry.entity_id == live.id
            )
        ).all()
        assert about_live == ["restriction.created"], "kept while the restriction is held"
        assert (
            sess.scalar(
                select(AuditEntry).where(
                    AuditEntry.action == "customer.created", AuditEntry.customer_id == held.id
                )
            )
            is None
        ), "an entry older than six years about nothing held goes"
        purges = sess.scalars(
            select(AuditEntry)
            .where(AuditEntry.action == "retention.purged")
            .order_by(AuditEntry.id)
        ).all()
        assert len(purges) == 2, "one audit entry a run"
        counts = purges[1].after
        assert counts is not None
        assert (counts["customers"], counts["alerts"], counts["restrictions"]) == (1, 2, 1)
        assert counts["tables"]["customers"] == 1 and counts["tables"]["phone_numbers"] == 1
        assert purges[0].after is not None and purges[0].after["recordings_deleted"] == 1
    assert redis_conn.get(cache.key("+447400100001")) is None, "their number names nobody now"


def test_an_unhandled_old_voicemails_recording_is_deleted_at_twilio(
    app: Flask, runner: Any, fake_twilio: FakeTwilio, history: dict[str, Any]
) -> None:
    with time_machine.travel(T0 + timedelta(days=89), tick=False):
        assert runner.invoke(main, ["purge"]).exit_code == 0
    assert fake_twilio.requests == [], "within voicemail_unhandled_days it stays"
    purged_at = T0 + timedelta(days=91)
    with time_machine.travel(purged_at, tick=False):
        done = runner.invoke(main, ["purge"])
    assert done.exit_code == 0 and "recordings deleted: 1" in done.output
    assert [(r.method, r.path) for r in fake_twilio.requests] == [
        ("DELETE", f"/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{RECORDING}.json")
    ]
    with database(app).sessions() as sess:
        voicemail = sess.scalar(select(Voicemail))
        assert voicemail is not None and voicemail.status == "new"
        assert voicemail.twilio_deleted_at == purged_at


# --- sharing with other agencies ---------------------------------------------------------------

SHARED = {
    "shared_with": "Derbyshire Constabulary (PC 1234 Smith)",
    "purpose": "Threats to staff reported as a crime",
    "lawful_basis": "legal_obligation",
}


def test_sharing_is_recorded_listed_and_audited_and_refused_for_an_agent(
    app: Flask,
    client: FlaskClient,
    supervisor: Staff,
    agent: Staff,
    make_customer: Callable[..., Customer],
    restrict: Callable[..., Restriction],
) -> None:
    today = datetime.now(ZoneInfo("Europe/London")).date()
    shared = {**SHARED, "shared_on": (today - timedelta(days=1)).isoformat()}
    r = restrict(make_customer(), kind="written_only")
    url = f"/api/v1/restrictions/{r.id}/sharing"
    refused = client.post(url, json=shared, headers=agent.headers)
    assert refused.status_code == 403
    for wrong, message in (
        ({"lawful_basis": "because"}, "lawful_basis must be one of"),
        ({"shared_on": (today + timedelta(days=1)).isoformat()}, "is in the future"),
        ({"shared_on": None}, "shared_on is required"),
        ({"shared_with": ""}, "shared_with is required"),
        ({"purpose": None}, "purpose is required"),
    ):
        bad = client.post(url, json={**shared, **wrong}, headers=supervisor.headers)
        assert bad.status_code == 422 and message in bad.get_json()["error"], wrong
    missing = client.post(
        "/api/v1/restrictions/999/sharing", json=shared, headers=supervisor.headers
    )
    assert missing.status_code == 404
    assert rows(app, SharingRecord) == 0

    made = client.post(url, json=shared, headers=supervisor.headers)
    assert made.status_code == 201
    record = made.get_json()
    assert {k: record[k] for k in shared} == shared
    assert record["recorded_by"] == supervisor.user.name

    shown = client.get(f"/api/v1/restrictions/{r.id}", headers=supervisor.headers).get_json()
    assert [{k: s[k] for k in shared} for s in shown["sharing"]] == [shared]
    with database(app).sessions() as sess:
        (entry,) = sess.scalars(
            select(AuditEntry).where(AuditEntry.action == "restriction.shared")
        ).all()
        assert (entry.entity, entry.entity_id, entry.actor, entry.customer_id) == (
            "restriction",
            r.id,
            supervisor.user.name,
            r.customer_id,
        )
        assert entry.after is not None
        assert {k: entry.after[k] for k in shared} == shared

    browser = signed_in(app, supervisor)
    page = browser.get("/supervisor/customers/HMS-0001").get_data(as_text=True)
    assert "with Derbyshire Constabulary (PC 1234 Smith): Threats to staff" in page
    assert "Legal obligation (Article 6(1)(c))" in page
    key = f"sharing-{r.id}"
    by_page = browser.post(
        f"/supervisor/restrictions/{r.id}/sharing",
        data={
            f"{key}-csrf_token": csrf(page),
            f"{key}-shared_with": "Derby City Council adult social care",
            f"{key}-shared_on": today.isoformat(),
            f"{key}-purpose": "Safeguarding referral",
            f"{key}-lawful_basis": "vital_interests",
        },
    )
    assert by_page.status_code == 302, by_page.get_data(as_text=True)
    page = browser.get("/supervisor/customers/HMS-0001").get_data(as_text=True)
    assert "with Derby City Council adult social care: Safeguarding referral" in page
    with database(app).sessions() as sess:
        assert sess.scalars(select(SharingRecord.shared_with).order_by(SharingRecord.id)).all() == [
            SHARED["shared_with"],
            "Derby City Council adult social care",
        ]
    assert rows(app, AuditEntry, AuditEntry.action == "restriction.shared") == 2
