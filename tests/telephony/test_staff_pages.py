"""Staff administration on the pages: an admin adds a member of staff, changes their role,
disables and re-enables them, gives them a new password and rotates their API token, each on the
audit trail (never with the password or the token); no admin takes away their own admin role or
disables themselves; and everyone changes their own password with their current one."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from restrictions import staff as domain
from restrictions.errors import Conflict
from restrictions.lifecycle import Actor
from restrictions.models import AuditEntry, User
from telephony.database import database
from tests.conftest import Staff
from tests.pages import csrf, signed_in

API = "/api/v1/calls/active"  # any member of staff may ask
GOOD = "plum tractor lantern vessel"
ALSO_GOOD = "quiet orbit fennel marmalade"
WEAK = "Password1234"
NEW_TOKEN = re.compile(r'<code id="new-token">(cg_[^<]+)</code>')


# --- helpers -------------------------------------------------------------------------------------


def user_named(app: Flask, name: str) -> User | None:
    with database(app).sessions() as sess:
        user = sess.scalar(select(User).where(User.name == name))
        if user is not None:
            sess.expunge(user)
        return user


def audit_entries(app: Flask, user_id: int) -> list[AuditEntry]:
    with database(app).sessions() as sess:
        return list(
            sess.scalars(
                select(AuditEntry)
                .where(AuditEntry.entity == "user", AuditEntry.entity_id == user_id)
                .order_by(AuditEntry.id)
            )
        )


def holds_nothing_secret(entry: AuditEntry, *secrets: str) -> None:
    """The entry names no customer, and no password or token is anywhere in it."""
    assert entry.entity == "user" and entry.customer_id is None
    written = json.dumps([entry.actor, entry.before, entry.after, entry.note])
    for secret in secrets:
        assert secret not in written
    assert "cg_" not in written, "no API token"


def sign_in(app: Flask, name: str, password: str) -> tuple[int, FlaskClient]:
    browser = app.test_client()
    token = csrf(browser.get("/sign-in").get_data(as_text=True))
    answer = browser.post(
        "/sign-in", data={"csrf_token": token, "name": name, "password": password}
    )
    return answer.status_code, browser


def api_status(app: Flask, token: str) -> int:
    answer = app.test_client().get(API, headers={"Authorization": f"Bearer {token}"})
    return answer.status_code


def still_signed_in(browser: FlaskClient) -> bool:
    return browser.get("/account").status_code == 200


def listing_csrf(browser: FlaskClient) -> str:
    return csrf(browser.get("/admin/staff").get_data(as_text=True))


def card_form(token: str, kind: str, user_id: int, **fields: str) -> dict[str, str]:
    prefix = f"{kind}-{user_id}"
    return {f"{prefix}-csrf_token": token, **{f"{prefix}-{k}": v for k, v in fields.items()}}


def error_beside(page: str, name: str) -> str:
    """The error shown just after the input (or the select) named ``name``."""
    found = re.search(
        rf'name="{re.escape(name)}"[^>]*>(?:(?:\s*<option[^>]*>[^<]*</option>)*\s*</select>)?'
        r'\s*<span class="flash error field-error"[^>]*>([^<]+)</span>',
        page,
    )
    assert found is not None, f"no error beside {name}"
    return html.unescape(found.group(1))


@pytest.fixture
def admin(make_staff: Callable[..., Staff]) -> Staff:
    return make_staff("admin", "ada.admin")


# --- 1. adding a member of staff -----------------------------------------------------------------


def add_form(browser: FlaskClient, **fields: str) -> dict[str, str]:
    token = csrf(browser.get("/admin/staff/new").get_data(as_text=True))
    return {"csrf_token": token, **fields}


def test_an_admin_adds_a_member_of_staff_whose_token_is_shown_once(
    app: Flask, admin: Staff
) -> None:
    browser = signed_in(app, admin)
    assert 'href="/admin/staff/new"' in browser.get("/admin/staff").get_data(as_text=True)
    added = browser.post(
        "/admin/staff/new",
        data=add_form(
            browser,
            name="jo.bloggs",
            role="supervisor",
            display_name="Jo Bloggs",
            job_title="Tenancy Officer",
            direct_line="01332 000777",
            password=GOOD,
            confirm=GOOD,
        ),
    )
    assert added.status_code == 200, added.get_data(as_text=True)
    shown = NEW_TOKEN.search(added.get_data(as_text=True))
    assert shown is not None
    token = shown.group(1)

    user = user_named(app, "jo.bloggs")
    assert user is not None and user.active and user.role == "supervisor"
    assert (user.display_name, user.job_title, user.direct_line) == (
        "Jo Bloggs",
        "Tenancy Officer",
        "+441332000777",
    )
    assert GOOD not in (user.password_hash or "")
    assert api_status(app, token) == 200
    status, _ = sign_in(app, "jo.bloggs", GOOD)
    assert status == 302, "they sign in with the password given"
    assert token not in browser.get("/admin/staff").get_data(as_text=True), "shown once"

    [entry] = audit_entries(app, user.id)
    assert (entry.action, entry.actor_id, entry.actor) == (
        "user.created",
        admin.user.id,
        "ada.admin",
    )
    assert entry.after == {
        "name": "jo.bloggs",
        "role": "supervisor",
        "active": True,
        "display_name": "Jo Bloggs",
        "job_title": "Tenancy Officer",
        "direct_line": "+441332000777",
    }
    holds_nothing_secret(entry, GOOD, token)


def test_adding_refuses_a_weak_password_a_mismatch_and_a_taken_name_beside_their_fields(
    app: Flask, admin: Staff, make_staff: Callable[..., Staff]
) -> None:
    browser = signed_in(app, admin)
    weak = browser.post(
        "/admin/staff/new",
        data=add_form(browser, name="jo", role="agent", password=WEAK, confirm=WEAK),
    )
    assert weak.status_code == 422
    page = weak.get_data(as_text=True)
    assert "too common" in error_beside(page, "password")
    assert WEAK not in page, "a password is never shown back"
    assert 'value="jo"' in page, "what was typed is kept"

    mismatch = browser.post(
        "/admin/staff/new",
        data=add_form(browser, name="jo", role="agent", password=GOOD, confirm=ALSO_GOOD),
    )
    assert mismatch.status_code == 422
    assert "not the same" in error_beside(mismatch.get_data(as_text=True), "confirm")

    make_staff("agent", "taken")
    taken = browser.post(
        "/admin/staff/new",
        data=add_form(browser, name="taken", role="admin", password=GOOD, confirm=GOOD),
    )
    assert taken.status_code == 409
    assert "already exists" in error_beside(taken.get_data(as_text=True), "name")

    integration = browser.post(
        "/admin/staff/new",
        data=add_form(browser, name="jo", role="integration", password=GOOD, confirm=GOOD),
    )
    assert integration.status_code == 422, "staff roles only"
    assert user_named(app, "jo") is None
    with database(app).sessions() as sess:
        assert sess.scalars(select(AuditEntry).where(AuditEntry.entity == "user")).all() == []


# --- 2. changing a role --------------------------------------------------------------------------


def test_an_admin_changes_someones_role(
    app: Flask, admin: Staff, make_staff: Callable[..., Staff]
) -> None:
    person = make_staff("agent", "alex")
    alex = signed_in(app, person)
    assert alex.get("/supervisor/alerts").status_code == 403
    browser = signed_in(app, admin)
    changed = browser.post(
        f"/admin/staff/{person.user.id}/role",
        data=card_form(listing_csrf(browser), "role", person.user.id, role="supervisor"),
    )
    assert changed.status_code == 302, changed.get_data(as_text=True)
    user = user_named(app, "alex")
    assert user is not None and user.role == "supervisor"
    assert alex.get("/supervisor/alerts").status_code == 200, "at once, in their session"

    [entry] = audit_entries(app, person.user.id)
    assert (entry.action, entry.actor_id) == ("user.role_changed", admin.user.id)
    assert (entry.before, entry.after) == ({"role": "agent"}, {"role": "supervisor"})
    holds_nothing_secret(entry, person.password, person.token)

    same = browser.post(
        f"/admin/staff/{person.user.id}/role",
        data=card_form(listing_csrf(browser), "role", person.user.id, role="supervisor"),
    )
    assert same.status_code == 302
    assert len(audit_entries(app, person.user.id)) == 1, "nothing changed: nothing audited"

    unknown = browser.post(
        f"/admin/staff/{person.user.id}/role",
        data=card_form(listing_csrf(browser), "role", person.user.id, role="integration"),
    )
    assert unknown.status_code == 422
    assert error_beside(unknown.get_data(as_text=True), f"role-{person.user.id}-role")


# --- 3. disabling and re-enabling ----------------------------------------------------------------


def test_an_admin_disables_someone_who_then_cannot_sign_in_nor_use_their_token(
    app: Flask, admin: Staff, make_staff: Callable[..., Staff]
) -> None:
    person = make_staff("agent", "alex")
    alex = signed_in(app, person)
    assert api_status(app, person.token) == 200
    browser = signed_in(app, admin)

    disabled = browser.post(
        f"/admin/staff/{person.user.id}/disable", data={"csrf_token": listing_csrf(browser)}
    )
    assert disabled.status_code == 302
    user = user_named(app, "alex")
    assert user is not None and not user.active
    assert not still_signed_in(alex), "their session has ended"
    assert api_status(app, person.token) == 401, "their token stopped working"
    status, _ = sign_in(app, "alex", person.password)
    assert status == 401, "a disabled person cannot sign in"
    listing = browser.get("/admin/staff").get_data(as_text=True)
    assert f'action="/admin/staff/{person.user.id}/enable"' in listing

    [entry] = audit_entries(app, person.user.id)
    assert (entry.action, entry.actor_id) == ("user.disabled", admin.user.id)
    assert (entry.before, entry.after) == ({"active": True}, {"active": False})
    holds_nothing_secret(entry, person.password, person.token)

    enabled = browser.post(
        f"/admin/staff/{person.user.id}/enable", data={"csrf_token": listing_csrf(browser)}
    )
    assert enabled.status_code == 302
    user = user_named(app, "alex")
    assert user is not None and user.active
    status, _ = sign_in(app, "alex", person.password)
    assert status == 302, "re-enabled: they sign in again"
    assert api_status(app, person.token) == 401, "their old token stays revoked"

    entries = audit_entries(app, person.user.id)
    assert [e.action for e in entries] == ["user.disabled", "user.enabled"]
    assert (entries[1].before, entries[1].after) == ({"active": False}, {"active": True})
    holds_nothing_secret(entries[1], person.password, person.token)


# --- 4. a new password from an admin -------------------------------------------------------------


def test_an_admin_gives_someone_a_new_password(
    app: Flask, admin: Staff, make_staff: Callable[..., Staff]
) -> None:
    person = make_staff("agent", "alex")
    alex = signed_in(app, person)
    browser = signed_in(app, admin)
    url = f"/admin/staff/{person.user.id}/password"
    prefix = f"password-{person.user.id}"

    weak = browser.post(
        url,
        data=card_form(
            listing_csrf(browser), "password", person.user.id, password=WEAK, confirm=WEAK
        ),
    )
    assert weak.status_code == 422
    page = weak.get_data(as_text=True)
    assert "too common" in error_beside(page, f"{prefix}-password")
    assert WEAK not in page
    mismatch = browser.post(
        url,
        data=card_form(
            listing_csrf(browser), "password", person.user.id, password=GOOD, confirm=ALSO_GOOD
        ),
    )
    assert mismatch.status_code == 422
    assert "not the same" in error_beside(mismatch.get_data(as_text=True), f"{prefix}-confirm")
    assert still_signed_in(alex) and audit_entries(app, person.user.id) == []

    reset = browser.post(
        url,
        data=card_form(
            listing_csrf(browser), "password", person.user.id, password=GOOD, confirm=GOOD
        ),
    )
    assert reset.status_code == 302, reset.get_data(as_text=True)
    assert not still_signed_in(alex), "their sessions have ended"
    assert api_status(app, person.token) == 401, "their tokens are revoked"
    assert sign_in(app, "alex", person.password)[0] == 401, "the old password no longer works"
    assert sign_in(app, "alex", GOOD)[0] == 302

    [entry] = audit_entries(app, person.user.id)
    assert (entry.action, entry.actor_id) == ("user.password_reset", admin.user.id)
    holds_nothing_secret(entry, GOOD, person.password, person.token)


# --- 5. rotating a token -------------------------------------------------------------------------


def test_an_admin_rotates_someones_token_on_the_audit_trail(
    app: Flask, admin: Staff, make_staff: Callable[..., Staff]
) -> None:
    person = make_staff("agent", "alex")
    browser = signed_in(app, admin)
    rotated = browser.post(
        f"/admin/staff/{person.user.id}/token/rotate", data={"csrf_token": listing_csrf(browser)}
    )
    assert rotated.status_code == 200
    shown = NEW_TOKEN.search(rotated.get_data(as_text=True))
    assert shown is not None
    assert api_status(app, person.token) == 401 and api_status(app, shown.group(1)) == 200
    assert shown.group(1) not in browser.get("/admin/staff").get_data(as_text=True)

    [entry] = audit_entries(app, person.user.id)
    assert (entry.action, entry.actor_id) == ("user.token_rotated", admin.user.id)
    assert entry.after is not None and entry.after["label"] == "rotated by ada.admin"
    holds_nothing_secret(entry, shown.group(1), person.token, domain.hash_token(shown.group(1)))


# --- there is always an admin --------------------------------------------------------------------


def test_an_admin_cannot_take_their_own_admin_role_disable_themselves_or_reset_their_password(
    app: Flask, admin: Staff, make_staff: Callable[..., Staff]
) -> None:
    other = make_staff("admin", "bea.admin")
    browser = signed_in(app, admin)
    me = admin.user.id
    listing = browser.get("/admin/staff").get_data(as_text=True)
    assert f'action="/admin/staff/{me}/disable"' not in listing
    assert f'action="/admin/staff/{me}/role"' not in listing
    assert f'action="/admin/staff/{other.user.id}/disable"' in listing

    demoted = browser.post(
        f"/admin/staff/{me}/role", data=card_form(listing_csrf(browser), "role", me, role="agent")
    )
    assert demoted.status_code == 409
    assert "always" in html.unescape(demoted.get_data(as_text=True))
    disabled = browser.post(
        f"/admin/staff/{me}/disable", data={"csrf_token": listing_csrf(browser)}
    )
    assert disabled.status_code == 409
    reset = browser.post(
        f"/admin/staff/{me}/password",
        data=card_form(listing_csrf(browser), "password", me, password=GOOD, confirm=GOOD),
    )
    assert reset.status_code == 409
    assert "Change my password" in html.unescape(reset.get_data(as_text=True))

    user = user_named(app, "ada.admin")
    assert user is not None and user.role == "admin" and user.active
    assert sign_in(app, "ada.admin", admin.password)[0] == 302, "their password is unchanged"
    assert still_signed_in(browser)
    assert audit_entries(app, me) == []

    # another admin may: there is still one
    other_demoted = browser.post(
        f"/admin/staff/{other.user.id}/role",
        data=card_form(listing_csrf(browser), "role", other.user.id, role="supervisor"),
    )
    assert other_demoted.status_code == 302
    assert [e.action for e in audit_entries(app, other.user.id)] == ["user.role_changed"]


def test_the_last_admin_stays_one_whoever_asks(
    app: Flask, admin: Staff, make_staff: Callable[..., Staff]
) -> None:
    """No page lets it happen (the only admin is the one asking); the domain refuses anyone."""
    someone = Actor(None, "a script")
    with database(app).sessions() as sess:
        user = sess.get(User, admin.user.id)
        assert user is not None
        with pytest.raises(Conflict, match="last admin"):
            domain.change_role(sess, someone, user, "agent")
        with pytest.raises(Conflict, match="last admin"):
            domain.disable_user(sess, someone, user)
        sess.rollback()
    user_after = user_named(app, "ada.admin")
    assert user_after is not None and user_after.role == "admin" and user_after.active


# --- only admins ---------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["supervisor", "agent"])
def test_only_an_admin_administers_staff(
    app: Flask, role: str, make_staff: Callable[..., Staff]
) -> None:
    person = make_staff("agent", "alex")
    target = person.user.id
    browser = signed_in(app, make_staff(role, f"{role}.1"))
    own = csrf(browser.get("/account").get_data(as_text=True))  # a good token of theirs
    assert browser.get("/admin/staff").status_code == 403
    assert browser.get("/admin/staff/new").status_code == 403
    posts = {
        "/admin/staff/new": {
            "csrf_token": own,
            "name": "mallory",
            "role": "admin",
            "password": GOOD,
            "confirm": GOOD,
        },
        f"/admin/staff/{target}/role": card_form(own, "role", target, role="admin"),
        f"/admin/staff/{target}/disable": {"csrf_token": own},
        f"/admin/staff/{target}/enable": {"csrf_token": own},
        f"/admin/staff/{target}/password": card_form(
            own, "password", target, password=GOOD, confirm=GOOD
        ),
        f"/admin/staff/{target}/token/rotate": {"csrf_token": own},
    }
    for url, data in posts.items():
        assert browser.post(url, data=data).status_code == 403, url
    assert user_named(app, "mallory") is None
    user = user_named(app, "alex")
    assert user is not None and user.role == "agent" and user.active
    assert api_status(app, person.token) == 200
    assert sign_in(app, "alex", person.password)[0] == 302
    with database(app).sessions() as sess:
        assert sess.scalars(select(AuditEntry).where(AuditEntry.entity == "user")).all() == []


# --- my own password -----------------------------------------------------------------------------


def own_password(browser: FlaskClient, current: str, new: str, confirm: str | None = None) -> str:
    token = csrf(browser.get("/account/password").get_data(as_text=True))
    answer = browser.post(
        "/account/password",
        data={
            "csrf_token": token,
            "current_password": current,
            "new_password": new,
            "confirm": new if confirm is None else confirm,
        },
    )
    return f"{answer.status_code} {answer.get_data(as_text=True)}"


@pytest.mark.parametrize("role", ["agent", "supervisor", "admin"])
def test_anyone_changes_their_own_password_with_their_current_one(
    app: Flask, role: str, make_staff: Callable[..., Staff]
) -> None:
    person = make_staff(role, "pat")
    here, elsewhere = signed_in(app, person), signed_in(app, person)
    page = here.get("/account").get_data(as_text=True)
    assert 'href="/account/password">Change my password</a>' in page, "in the navigation"

    wrong = own_password(here, "not my password at all", GOOD)
    assert wrong.startswith("422 ")
    assert "not your current password" in error_beside(wrong, "current_password")
    weak = own_password(here, person.password, WEAK)
    assert weak.startswith("422 ")
    assert "too common" in error_beside(weak, "new_password")
    assert WEAK not in weak and person.password not in weak, "no password is shown back"
    mismatch = own_password(here, person.password, GOOD, ALSO_GOOD)
    assert mismatch.startswith("422 ")
    assert "not the same" in error_beside(mismatch, "confirm")
    assert audit_entries(app, person.user.id) == []
    assert still_signed_in(elsewhere)

    changed = own_password(here, person.password, GOOD)
    assert changed.startswith("302 "), changed
    account = here.get("/account")
    assert account.status_code == 200, "this session goes on"
    assert "Your password is changed" in account.get_data(as_text=True)
    assert not still_signed_in(elsewhere), "every other session has ended"
    assert api_status(app, person.token) == 401
    assert sign_in(app, "pat", person.password)[0] == 401, "the old password no longer works"
    assert sign_in(app, "pat", GOOD)[0] == 302, "the new one does"

    [entry] = audit_entries(app, person.user.id)
    assert (entry.action, entry.actor_id, entry.actor) == (
        "user.password_changed",
        person.user.id,
        "pat",
    )
    holds_nothing_secret(entry, GOOD, person.password, person.token)


def test_guessing_at_the_current_password_is_limited(
    app: Flask, make_staff: Callable[..., Staff]
) -> None:
    person = make_staff("agent", "pat")
    here = signed_in(app, person)
    for _ in range(5):
        assert own_password(here, "a wrong guess here", GOOD).startswith("422 ")
    assert own_password(here, person.password, GOOD).startswith("429 ")
    assert sign_in(app, "pat", person.password)[0] == 302, "nothing changed"


def test_signed_out_the_password_page_asks_to_sign_in(app: Flask) -> None:
    answer = app.test_client().get("/account/password")
    assert answer.status_code == 302 and "/sign-in" in answer.headers["Location"]
