"""Attaching an unidentified caller's calls to a customer (their counts and alerts move with
them, on the audit trail), and the subject access export of everything held about a customer
(the CLI's ZIP and the supervisor page's download), checked against PostgreSQL itself."""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Table, select

from restrictions import counting
from restrictions.models import (
    AgentAction,
    AuditEntry,
    Base,
    Call,
    CallEvent,
    ContactAlert,
    Customer,
    PhoneNumber,
    Voicemail,
)
from telephony.cli import main
from telephony.database import database
from telephony.redis_store import redis_client
from tests.calls import status_event
from tests.conftest import Staff
from tests.pages import signed_in

KNOWN = "+447400100001"  # the customer's number on file
UNKNOWN = "+447400100077"  # their other phone, not on file
STRANGER = "+447400100099"  # somebody else's
CSRF = re.compile(r'name="([\w-]*csrf_token)" type="hidden" value="([^"]+)"')


def finished_call(twilio: Any, sid: str, number: str, seconds: int) -> None:
    """A call's signed ``completed`` callback: it began ``seconds`` ago and lasted that long."""
    answer = status_event(twilio, sid, "completed", 1, from_=number, CallDuration=str(seconds))
    assert answer.status_code == 204, answer.data


def window(app: Flask, subject: str) -> counting.WindowStats:
    return counting.window(redis_client(app), subject, datetime.now(UTC), 60)


def calls_from(twilio: Any, run_jobs: Callable[[], int], number: str, *lengths: int) -> list[str]:
    sids = []
    for seconds in lengths:
        sid = twilio.new_call_sid()
        finished_call(twilio, sid, number, seconds)
        sids.append(sid)
    run_jobs()
    return sids


# --- attaching -----------------------------------------------------------------------------------


def test_attaching_a_call_with_its_number_moves_counts_and_alerts_to_the_customer(
    app: Flask,
    client: FlaskClient,
    twilio: Any,
    run_jobs: Callable[[], int],
    make_customer: Callable[..., Customer],
    supervisor: Staff,
) -> None:
    customer = make_customer(numbers=(KNOWN,))
    ours = calls_from(twilio, run_jobs, KNOWN, 900, 800)  # the earliest two
    theirs = calls_from(twilio, run_jobs, UNKNOWN, 500, 400, 300, 200, 100)
    # counted under the number, which tripped calls-per-hour on its own
    assert window(app, f"number:{UNKNOWN}").calls == 5
    assert window(app, f"customer:{customer.id}").calls == 2
    with database(app).sessions() as sess:
        number_alert = sess.scalar(
            select(ContactAlert).where(ContactAlert.subject == f"number:{UNKNOWN}")
        )
        assert number_alert is not None and number_alert.status == "open"
        assert (
            sess.scalar(select(ContactAlert).where(ContactAlert.customer_id == customer.id)) is None
        )

    answer = client.post(
        f"/api/v1/calls/{theirs[0]}/attach",
        headers=supervisor.headers,
        json={
            "customer": customer.reference,
            "reason": "She said it is her mobile",
            "number": True,
        },
    )
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["number_added"] == UNKNOWN
    assert sorted(c["call_sid"] for c in body["calls"]) == sorted(theirs)
    assert body["alerts_merged"] == [number_alert.id]
    assert len(body["alerts_opened"]) == 1

    # the counts moved: nothing left under the number, all seven under the customer
    assert window(app, f"number:{UNKNOWN}").calls == 0
    moved = window(app, f"customer:{customer.id}")
    assert moved.calls == 7 and set(moved.call_sids) == set(ours + theirs)
    assert moved.seconds == 900 + 800 + 500 + 400 + 300 + 200 + 100

    with database(app).sessions() as sess:
        merged = sess.get(ContactAlert, number_alert.id)
        assert merged is not None
        assert (merged.status, merged.customer_id) == ("merged", customer.id)
        assert customer.reference in (merged.close_reason or "")
        opened = sess.get(ContactAlert, body["alerts_opened"][0])
        assert opened is not None and opened.status == "open"
        assert (opened.subject, opened.customer_id) == (f"customer:{customer.id}", customer.id)
        assert opened.rule_name == "calls-per-hour"
        evidence = opened.evidence["calls"]
        # the excess across both numbers: their two calls, then the first three from the other
        assert [c["call_sid"] for c in evidence] == ours + theirs[:3]
        assert {c["number"] for c in evidence} == {KNOWN, UNKNOWN}
        rows = sess.scalars(select(Call).where(Call.call_sid.in_(theirs))).all()
        assert {c.customer_id for c in rows} == {customer.id}
        entry = sess.scalar(select(AuditEntry).where(AuditEntry.action == "calls.attached"))
        assert entry is not None
        assert (entry.actor, entry.customer_id) == (supervisor.user.name, customer.id)
        assert entry.note == "She said it is her mobile"
        assert entry.after is not None and sorted(entry.after["calls"]) == sorted(theirs)
        assert entry.after["alerts_merged"] == [number_alert.id]
        actions = set(sess.scalars(select(AuditEntry.action)))
        assert {"alert.merged", "customer.updated"} <= actions

    # the number is theirs now: their next call from it is counted as theirs
    later = calls_from(twilio, run_jobs, UNKNOWN, 10)
    assert later[0] in window(app, f"customer:{customer.id}").call_sids


def test_a_dismissed_alert_stays_decided_when_its_calls_are_attached_to_a_customer(
    app: Flask,
    client: FlaskClient,
    twilio: Any,
    run_jobs: Callable[[], int],
    make_customer: Callable[..., Customer],
    supervisor: Staff,
) -> None:
    """A supervisor dismissed the number's alert; attaching the number's calls to a customer
    moves them, and does not open a new alert about the same calls under the customer. A new
    excess after the dismissal still opens one."""
    customer = make_customer(numbers=(KNOWN,))
    theirs = calls_from(twilio, run_jobs, UNKNOWN, 500, 400, 300, 200, 100)
    with database(app).sessions() as sess:
        alert_id = sess.scalar(
            select(ContactAlert.id).where(ContactAlert.subject == f"number:{UNKNOWN}")
        )
    dismissed = client.post(
        f"/api/v1/alerts/{alert_id}/dismiss",
        headers=supervisor.headers,
        json={"reason": "A leak: she rang about it five times"},
    )
    assert dismissed.status_code == 200, dismissed.get_json()

    answer = client.post(
        f"/api/v1/calls/{theirs[0]}/attach",
        headers=supervisor.headers,
        json={"customer": customer.reference, "reason": "Her mobile", "number": True},
    )
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["alerts_opened"] == []
    assert window(app, f"customer:{customer.id}").calls == 5  # the counts moved all the same
    with database(app).sessions() as sess:
        dismissed_row = sess.get(ContactAlert, alert_id)
        assert dismissed_row is not None
        assert (dismissed_row.status, dismissed_row.customer_id) == ("dismissed", customer.id)
        assert (
            sess.scalar(
                select(ContactAlert.id).where(ContactAlert.subject == f"customer:{customer.id}")
            )
            is None
        )

    # five more calls after the dismissal: a new excess, a new alert about those calls only
    later = calls_from(twilio, run_jobs, KNOWN, 50, 40, 30, 20, 10)
    with database(app).sessions() as sess:
        fresh = sess.scalar(
            select(ContactAlert).where(ContactAlert.subject == f"customer:{customer.id}")
        )
        assert fresh is not None and fresh.status == "open"
        assert {c["call_sid"] for c in fresh.evidence["calls"]} == set(later)


def test_one_call_alone_moves_only_that_call_and_says_why(
    app: Flask,
    client: FlaskClient,
    twilio: Any,
    run_jobs: Callable[[], int],
    make_customer: Callable[..., Customer],
    supervisor: Staff,
    agent: Staff,
) -> None:
    customer = make_customer(numbers=(KNOWN,))
    first, second = calls_from(twilio, run_jobs, STRANGER, 300, 200)
    path = f"/api/v1/calls/{first}/attach"
    ask = {"customer": customer.reference, "reason": "Called back from a friend's phone"}
    assert client.post(path, headers=agent.headers, json=ask).status_code == 403
    no_reason = client.post(path, headers=supervisor.headers, json={"customer": "HMS-0001"})
    assert no_reason.status_code == 422 and "reason" in no_reason.get_json()["error"]
    nobody = client.post(path, headers=supervisor.headers, json={**ask, "customer": "NOPE"})
    assert nobody.status_code == 404

    answer = client.post(path, headers=supervisor.headers, json=ask)
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["number_added"] is None
    assert [c["call_sid"] for c in answer.get_json()["calls"]] == [first]
    assert window(app, f"number:{STRANGER}").call_sids == (second,)
    assert window(app, f"customer:{customer.id}").call_sids == (first,)
    again = client.post(path, headers=supervisor.headers, json=ask)
    assert again.status_code == 409
    with database(app).sessions() as sess:
        entry = sess.scalar(select(AuditEntry).where(AuditEntry.action == "call.attached"))
        assert entry is not None and entry.note == ask["reason"]
        assert sess.scalar(select(PhoneNumber).where(PhoneNumber.e164 == STRANGER)) is None


def test_a_number_added_later_brings_its_past_calls(
    app: Flask,
    client: FlaskClient,
    twilio: Any,
    run_jobs: Callable[[], int],
    make_customer: Callable[..., Customer],
    supervisor: Staff,
) -> None:
    customer = make_customer(numbers=(KNOWN,))
    before = calls_from(twilio, run_jobs, UNKNOWN, 120, 60)
    # adding the number without asking changes nothing for its past calls (as before) …
    patched = client.patch(
        f"/api/v1/customers/{customer.reference}",
        headers=supervisor.headers,
        json={"phone_numbers": [KNOWN, UNKNOWN]},
    )
    assert patched.status_code == 200
    assert window(app, f"number:{UNKNOWN}").calls == 2
    # … attach_past_calls brings them
    patched = client.patch(
        f"/api/v1/customers/{customer.reference}",
        headers=supervisor.headers,
        json={"attach_past_calls": True, "reason": "Confirmed by letter"},
    )
    assert patched.status_code == 200, patched.get_json()
    assert window(app, f"number:{UNKNOWN}").calls == 0
    assert set(window(app, f"customer:{customer.id}").call_sids) == set(before)

    # and POST …/numbers adds a number and its past calls in one go
    others = calls_from(twilio, run_jobs, STRANGER, 30)
    added = client.post(
        f"/api/v1/customers/{customer.reference}/numbers",
        headers=supervisor.headers,
        json={"number": "07400 100099"},
    )
    assert added.status_code == 200, added.get_json()
    assert added.get_json()["number_added"] == STRANGER
    assert [c["call_sid"] for c in added.get_json()["calls"]] == others
    assert others[0] in window(app, f"customer:{customer.id}").call_sids
    other = client.post(
        f"/api/v1/customers/{customer.reference}/numbers",
        headers=supervisor.headers,
        json={"number": "not a number"},
    )
    assert other.status_code == 422


# --- the subject access export -------------------------------------------------------------------


def _everything_for(app: Flask, customer: Customer, supervisor: Staff, agent: Staff) -> None:
    """Rows of every kind about the customer (and, beside them, about somebody else)."""
    with database(app).sessions() as sess:
        calls = list(sess.scalars(select(Call).where(Call.customer_id == customer.id)))
        call = calls[0]
        call.agent_label = f"client:{agent.user.name}"
        sess.add(
            AgentAction(
                call_id=call.id,
                customer_id=customer.id,
                user_id=agent.user.id,
                kind="warn",
                outcome="ok",
            )
        )
        sess.add(
            Voicemail(
                call_id=call.id,
                customer_id=customer.id,
                spoc=f"client:{agent.user.name}",
                recording_sid="RE" + "a" * 32,
                recording_url="https://api.twilio.com/recording",
                duration_seconds=12,
            )
        )
        sess.commit()


def _rows_about(app: Flask, customer_id: int) -> dict[str, set[int]]:
    """From PostgreSQL itself: every row of every table with a customer_id or call_id column
    that is about the customer, and their calls' stored callbacks."""
    found: dict[str, set[int]] = {}
    with database(app).sessions() as sess:
        call_ids = set(sess.scalars(select(Call.id).where(Call.customer_id == customer_id)))
        sids = set(sess.scalars(select(Call.call_sid).where(Call.customer_id == customer_id)))
        table: Table
        for table in Base.metadata.sorted_tables:
            ids: set[int] = set()
            if "customer_id" in table.c:
                ids |= set(
                    sess.scalars(select(table.c.id).where(table.c.customer_id == customer_id))
                )
            if "call_id" in table.c and call_ids:
                ids |= set(sess.scalars(select(table.c.id).where(table.c.call_id.in_(call_ids))))
            if "customer_id" in table.c or "call_id" in table.c:
                found[table.name] = ids
        found["customers"] = {customer_id}
        found["call_events"] = set(
            sess.scalars(select(CallEvent.id).where(CallEvent.call_sid.in_(sids)))
        )
    return found


def _check_export(app: Flask, data: bytes, customer: Customer, other: Customer) -> dict[str, Any]:
    archive = zipfile.ZipFile(io.BytesIO(data))
    names = set(archive.namelist())
    tables = {
        n.removeprefix("data/").removesuffix(".json"): json.loads(archive.read(n))
        for n in names
        if n.startswith("data/")
    }
    ours, theirs = _rows_about(app, customer.id), _rows_about(app, other.id)
    for table, ids in ours.items():
        assert table in tables, f"{table} is not in the export"
        exported = {row["id"] for row in tables[table]}
        assert ids <= exported, f"{table}: rows {sorted(ids - exported)} are missing"
        assert not theirs.get(table, set()) & exported, f"{table}: somebody else's rows"
    for table in ("calls", "audit_entries", "agent_actions", "voicemails", "restrictions"):
        assert ours[table], f"the test made no {table} row"
    assert "users.json" not in names and "api_tokens.json" not in names
    summary = archive.read("summary.html").decode()
    assert customer.reference in summary and "RE" + "a" * 32 in summary
    letters = [n for n in names if n.startswith("letters/")]
    assert letters and all(archive.read(n).startswith(b"%PDF") for n in letters)
    # each restriction whose notice went has its letters: as sent where kept, else a copy
    listed = json.loads(archive.read("manifest.json"))["letters"]
    assert {item["file"] for item in listed} == set(letters)
    for restriction in tables["restrictions"]:
        if restriction["notice_sent_on"]:
            assert any(item["restriction_id"] == restriction["id"] for item in listed)
    return {"tables": tables, "names": names, "archive": archive, "letters": listed}


def test_the_export_holds_every_row_that_names_the_customer(
    app: Flask,
    client: FlaskClient,
    runner: Any,
    twilio: Any,
    run_jobs: Callable[[], int],
    make_customer: Callable[..., Customer],
    supervisor: Staff,
    agent: Staff,
    restrict: Callable[..., Any],
    tmp_path: Path,
) -> None:
    customer = make_customer(numbers=(KNOWN,))
    other = make_customer(reference="HMS-0002", name="Sam Other", numbers=(STRANGER,))
    calls_from(twilio, run_jobs, KNOWN, 600, 500, 400)
    calls_from(twilio, run_jobs, UNKNOWN, 300, 200, 100)
    calls_from(twilio, run_jobs, STRANGER, 90)
    attached = client.post(
        f"/api/v1/customers/{customer.reference}/numbers",
        headers=supervisor.headers,
        json={"number": UNKNOWN, "reason": "Their other phone"},
    )
    assert attached.status_code == 200 and attached.get_json()["alerts_opened"]
    restricted = client.post(
        f"/api/v1/customers/{customer.reference}/restrictions",
        headers=supervisor.headers,
        json={
            "kind": "warning",
            "reason": "Abusive language to staff on 3 March",
            "notice_sent_on": datetime.now(UTC).date().isoformat(),
        },
    )
    assert restricted.status_code == 201, restricted.get_json()
    restrict(customer, kind="warning", reason="Recorded before letters were kept")
    _everything_for(app, customer, supervisor, agent)

    out = tmp_path / "pat.zip"
    result = runner.invoke(main, ["export", "customer", customer.reference, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "written to" in result.output
    found = _check_export(app, out.read_bytes(), customer, other)
    tables = found["tables"]
    assert {c["call_sid"] for c in attached.get_json()["calls"]} <= {
        c["call_sid"] for c in tables["calls"]
    }
    # staff: whoever decided about them is named, anyone else is their role and a pseudonym
    restriction = tables["restrictions"][0]
    assert restriction["decided_by"] == supervisor.user.name
    assert "decided_by_id" not in restriction
    incident = tables["agent_actions"][0]
    assert incident["user"].startswith("agent ") and "user_id" not in incident
    assert agent.user.name not in json.dumps(tables)
    assert all(agent.user.name.encode() not in found["archive"].read(n) for n in found["names"])
    manifest = json.loads(found["archive"].read("manifest.json"))
    assert manifest["customer"] == customer.reference
    kinds = {item["kept_as_sent"] for item in found["letters"]}
    assert kinds == {True, False}, "a letter kept as sent, and a rendered copy marked as one"
    assert all("rendered-copy" in i["file"] for i in found["letters"] if not i["kept_as_sent"])
    with database(app).sessions() as sess:
        exported = sess.scalar(select(AuditEntry).where(AuditEntry.action == "customer.exported"))
        assert exported is not None and exported.customer_id == customer.id


def test_a_supervisor_attaches_from_the_page_and_downloads_the_same_export(
    app: Flask,
    twilio: Any,
    run_jobs: Callable[[], int],
    make_customer: Callable[..., Customer],
    supervisor: Staff,
    agent: Staff,
) -> None:
    customer = make_customer(numbers=(KNOWN,))
    other = make_customer(reference="HMS-0002", name="Sam Other", numbers=(STRANGER,))
    calls_from(twilio, run_jobs, KNOWN, 400)
    (loose,) = calls_from(twilio, run_jobs, UNKNOWN, 200)
    calls_from(twilio, run_jobs, STRANGER, 90)
    browser = signed_in(app, supervisor)
    page = browser.get(f"/supervisor/customers/{customer.reference}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    export_url = f"/supervisor/customers/{customer.reference}/export"
    assert f'href="{export_url}"' in html
    attach_url = f"/supervisor/customers/{customer.reference}/calls/{loose}/attach"
    assert f'action="{attach_url}"' in html  # the unidentified call, with its button
    token = next(v for n, v in CSRF.findall(html) if n == f"attach-{loose}-csrf_token")
    done = browser.post(
        attach_url,
        data={
            f"attach-{loose}-csrf_token": token,
            f"attach-{loose}-reason": "Same voice, same address",
        },
    )
    assert done.status_code == 302, done.get_data(as_text=True)
    assert loose in window(app, f"customer:{customer.id}").call_sids
    restricted = browser.application.test_client().post(
        f"/api/v1/customers/{customer.reference}/restrictions",
        headers=supervisor.headers,
        json={
            "kind": "warning",
            "reason": "Threats on 3 March",
            "notice_sent_on": datetime.now(UTC).date().isoformat(),
        },
    )
    assert restricted.status_code == 201
    _everything_for(app, customer, supervisor, agent)

    download = browser.get(export_url)
    assert download.status_code == 200
    assert download.mimetype == "application/zip"
    assert "attachment" in download.headers["Content-Disposition"]
    found = _check_export(app, download.data, customer, other)
    assert loose in {c["call_sid"] for c in found["tables"]["calls"]}
