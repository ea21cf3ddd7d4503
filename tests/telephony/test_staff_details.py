"""How letters name and sign as a member of staff (display name, job title, direct line), changed
after they were created: with ``callguard users details`` and on the admin's staff page, each
change on the audit trail."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

from flask import Flask
from sqlalchemy import select

from restrictions.models import AuditEntry, Customer, User
from telephony.cli import main
from telephony.database import database
from tests.conftest import Staff
from tests.pages import csrf, signed_in


def details_of(app: Flask, name: str) -> tuple[str | None, str | None, str | None]:
    with database(app).sessions() as sess:
        user = sess.scalar(select(User).where(User.name == name))
        assert user is not None
        return user.display_name, user.job_title, user.direct_line


def audit_entries(app: Flask, user_id: int) -> list[AuditEntry]:
    with database(app).sessions() as sess:
        return list(
            sess.scalars(
                select(AuditEntry)
                .where(AuditEntry.entity == "user", AuditEntry.entity_id == user_id)
                .order_by(AuditEntry.id)
            )
        )


# --- the command line ----------------------------------------------------------------------------


def test_users_details_sets_clears_and_audits(
    app: Flask, runner: Any, make_staff: Callable[..., Staff]
) -> None:
    person = make_staff("agent", "jo.bloggs")
    args = ["users", "details", "jo.bloggs", "--display-name", "Jo Bloggs"]
    args += ["--job-title", "Tenancy Officer", "--direct-line", "01332 000777"]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "display name: Jo Bloggs" in result.output
    assert "direct line: +441332000777" in result.output
    assert details_of(app, "jo.bloggs") == ("Jo Bloggs", "Tenancy Officer", "+441332000777")

    cleared = runner.invoke(main, ["users", "details", "jo.bloggs", "--job-title", ""])
    assert cleared.exit_code == 0, cleared.output
    assert "job title: (none)" in cleared.output
    assert details_of(app, "jo.bloggs") == ("Jo Bloggs", None, "+441332000777")

    entries = audit_entries(app, person.user.id)
    assert [e.action for e in entries] == ["user.details_changed"] * 2
    first, second = entries
    assert first.before == {"display_name": None, "job_title": None, "direct_line": None}
    assert first.after == {
        "display_name": "Jo Bloggs",
        "job_title": "Tenancy Officer",
        "direct_line": "+441332000777",
    }
    assert second.before == first.after
    assert second.after == {**first.after, "job_title": None}
    assert first.actor_id is None and "command line" in first.actor
    assert first.customer_id is None

    same = runner.invoke(main, ["users", "details", "jo.bloggs", "--display-name", "Jo Bloggs"])
    assert same.exit_code == 0 and "unchanged" in same.output
    assert len(audit_entries(app, person.user.id)) == 2, "nothing changed: nothing audited"


def test_users_details_refuses_a_bad_number_an_unknown_user_and_no_details(
    app: Flask, runner: Any, make_staff: Callable[..., Staff]
) -> None:
    person = make_staff("agent", "jo.bloggs")
    bad = runner.invoke(
        main, ["users", "details", "jo.bloggs", "--display-name", "Jo", "--direct-line", "abc"]
    )
    assert bad.exit_code == 1
    assert bad.exception is None or isinstance(bad.exception, SystemExit)
    assert "Traceback" not in bad.output
    message = [line for line in bad.output.splitlines() if line.startswith("Error:")]
    assert len(message) == 1 and "direct line" in message[0] and "'abc'" in message[0]
    assert details_of(app, "jo.bloggs") == (None, None, None), "nothing set when one is bad"
    assert audit_entries(app, person.user.id) == []

    unknown = runner.invoke(main, ["users", "details", "nobody", "--job-title", "Officer"])
    assert unknown.exit_code == 1 and "no staff user named 'nobody'" in unknown.output

    nothing = runner.invoke(main, ["users", "details", "jo.bloggs"])
    assert nothing.exit_code == 2 and "--display-name" in nothing.output


# --- the admin's staff page ----------------------------------------------------------------------


def form_data(page: str, user_id: int, **fields: str) -> dict[str, str]:
    prefix = f"details-{user_id}"
    return {f"{prefix}-csrf_token": csrf(page), **{f"{prefix}-{k}": v for k, v in fields.items()}}


def test_an_admin_edits_someones_letter_details_on_the_staff_page(
    app: Flask, make_staff: Callable[..., Staff]
) -> None:
    admin = make_staff("admin", "ada.admin")
    person = make_staff("supervisor", "sam")
    browser = signed_in(app, admin)
    listing = browser.get("/admin/staff").get_data(as_text=True)
    assert f'action="/admin/staff/{person.user.id}/details"' in listing
    assert f'name="details-{person.user.id}-display_name"' in listing

    saved = browser.post(
        f"/admin/staff/{person.user.id}/details",
        data=form_data(
            listing,
            person.user.id,
            display_name="Sam Carter",
            job_title="Tenancy Services Manager",
            direct_line="01332 000777",
        ),
    )
    assert saved.status_code == 302, saved.get_data(as_text=True)
    assert details_of(app, "sam") == ("Sam Carter", "Tenancy Services Manager", "+441332000777")
    [entry] = audit_entries(app, person.user.id)
    assert (entry.action, entry.actor_id, entry.actor) == (
        "user.details_changed",
        admin.user.id,
        "ada.admin",
    )
    assert entry.after == {
        "display_name": "Sam Carter",
        "job_title": "Tenancy Services Manager",
        "direct_line": "+441332000777",
    }
    again = browser.get("/admin/staff").get_data(as_text=True)
    assert "details saved" in again
    assert 'value="Sam Carter"' in again, "the form shows the current values"

    cleared = browser.post(
        f"/admin/staff/{person.user.id}/details",
        data=form_data(
            again, person.user.id, display_name="Sam Carter", job_title="", direct_line=""
        ),
    )
    assert cleared.status_code == 302
    assert details_of(app, "sam") == ("Sam Carter", None, None)


def test_a_bad_direct_line_is_shown_beside_its_field_and_nothing_is_saved(
    app: Flask, make_staff: Callable[..., Staff]
) -> None:
    admin = make_staff("admin", "ada.admin")
    person = make_staff("agent", "alex")
    browser = signed_in(app, admin)
    listing = browser.get("/admin/staff").get_data(as_text=True)
    refused = browser.post(
        f"/admin/staff/{person.user.id}/details",
        data=form_data(listing, person.user.id, display_name="Alex Smith", direct_line="abc"),
    )
    assert refused.status_code == 422
    page = refused.get_data(as_text=True)
    field = re.search(
        rf'name="details-{person.user.id}-direct_line"[^>]*>\s*'
        r'<span class="flash error field-error"[^>]*>([^<]+)</span>',
        page,
    )
    assert field is not None, "the error is beside the direct line"
    assert "is not a phone number" in html.unescape(field.group(1))
    assert 'value="Alex Smith"' in page, "what was typed is kept"
    assert details_of(app, "alex") == (None, None, None)
    assert audit_entries(app, person.user.id) == []


def test_only_an_admin_edits_letter_details(app: Flask, make_staff: Callable[..., Staff]) -> None:
    person = make_staff("agent", "alex")
    for role in ("supervisor", "agent"):
        browser = signed_in(app, make_staff(role, f"{role}.1"))
        assert browser.get("/admin/staff").status_code == 403
        own = csrf(browser.get("/account").get_data(as_text=True))  # a good token of theirs
        refused = browser.post(
            f"/admin/staff/{person.user.id}/details",
            data={
                f"details-{person.user.id}-csrf_token": own,
                f"details-{person.user.id}-display_name": "Mallory",
            },
        )
        assert refused.status_code == 403
    assert details_of(app, "alex") == (None, None, None)
    assert audit_entries(app, person.user.id) == []


# --- letters drawn after the change --------------------------------------------------------------


def test_a_letter_drawn_after_the_edit_signs_with_the_new_name(
    app: Flask,
    make_staff: Callable[..., Staff],
    supervisor: Staff,
    make_customer: Callable[..., Customer],
) -> None:
    make_customer()
    made = app.test_client().post(
        "/api/v1/customers/HMS-0001/restrictions",
        json={"kind": "spoc", "spoc": supervisor.user.name, "reason": "Repeated calls"},
        headers=supervisor.headers,
    )
    assert made.status_code == 201, made.get_json()
    letter = f"/api/v1/restrictions/{made.get_json()['id']}/letter?format=html"

    admin = signed_in(app, make_staff("admin", "ada.admin"))
    listing = admin.get("/admin/staff").get_data(as_text=True)
    saved = admin.post(
        f"/admin/staff/{supervisor.user.id}/details",
        data=form_data(
            listing,
            supervisor.user.id,
            display_name="Sam Carter",
            job_title="Tenancy Services Manager",
            direct_line="01332 000777",
        ),
    )
    assert saved.status_code == 302

    page = app.test_client().get(letter, headers=supervisor.headers)
    assert page.status_code == 200
    words = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page.get_data(as_text=True))).split())
    assert "Sam Carter Tenancy Services Manager" in words, "signed with the new name and title"
    assert "Sam Carter, on 01332 000777" in words, "named as contact on their direct line"
