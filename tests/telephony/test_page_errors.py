"""The pages' one answer to the domain's refusals (telephony.pages.refusals): every page blueprint
has it; a form comes back as typed with the refusal beside its field and listed at its top, or
flashed above it, with the refusal's status; a look-up that finds nothing is the site's 404 page;
the console's calls get JSON; and a refusal of a kind no page expected is still a page of the
site with its status and the domain's message, escaped, never a 500."""

from __future__ import annotations

import html
import re
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from restrictions import agent_actions, due_list
from restrictions.errors import DomainError
from restrictions.models import AuditEntry, Customer, User
from telephony.database import database
from telephony.pages import refusals
from tests.conftest import Staff
from tests.pages import csrf, signed_in

PAGE_BLUEPRINTS = {"auth", "agent", "supervisor", "incidents", "voicemails", "staff"}
GOOD = "plum tractor lantern vessel"
HOSTILE = "<script>alert('x')</script> & <b>bold</b>"


def token_of(browser: FlaskClient) -> str:
    """A CSRF token for the signed-in browser (any of its forms' serves every form)."""
    return csrf(browser.get("/account").get_data(as_text=True))


def field_input(page: str, name: str) -> str:
    """The input (or textarea, or select) named ``name``, as rendered."""
    found = re.search(rf'<(?:input|textarea|select)[^>]*name="{re.escape(name)}"[^>]*>', page)
    assert found is not None, f"no field named {name}"
    return found.group(0)


def summary(page: str) -> str:
    """The error summary at the form's top."""
    found = re.search(r'<div class="error-summary".*?</div>', page, re.S)
    assert found is not None, "no error summary"
    return found.group(0)


@pytest.fixture
def admin(make_staff: Callable[..., Staff]) -> Staff:
    return make_staff("admin", "ada.admin")


def test_every_page_blueprint_has_the_one_handler_and_the_api_its_own(app: Flask) -> None:
    for name in PAGE_BLUEPRINTS:
        assert app.error_handler_spec[name][None][DomainError] is refusals.answer, name
    assert app.error_handler_spec["api"][None][DomainError] is not refusals.answer
    assert set(app.blueprints) - PAGE_BLUEPRINTS <= {"api", "twilio"}, "a page blueprint left out"


def test_a_refused_form_comes_back_as_typed_with_the_refusal_beside_its_field_and_on_top(
    app: Flask, admin: Staff, make_staff: Callable[..., Staff]
) -> None:
    make_staff("agent", "taken")
    browser = signed_in(app, admin)
    token = csrf(browser.get("/admin/staff/new").get_data(as_text=True))
    answer = browser.post(
        "/admin/staff/new",
        data={
            "csrf_token": token,
            "name": "taken",
            "role": "supervisor",
            "display_name": "Typed Name",
            "job_title": "Typed Title",
            "password": GOOD,
            "confirm": GOOD,
        },
    )
    assert answer.status_code == 409, "a taken name is a conflict"
    page = answer.get_data(as_text=True)
    name = field_input(page, "name")
    assert 'aria-invalid="true"' in name and "name-error-1" in name
    assert re.search(r'id="name-error-1">[^<]*already exists', page), "beside its field"
    top = summary(page)
    assert 'href="#name"' in top and "already exists" in html.unescape(top), "and on top"
    assert "aria-invalid" not in field_input(page, "display_name"), "only the field it is about"
    assert 'value="Typed Name"' in field_input(page, "display_name"), "what was typed stays"
    assert 'value="Typed Title"' in field_input(page, "job_title")
    assert GOOD not in page, "never a password"
    with database(app).sessions() as sess:
        assert sess.scalar(select(func.count()).select_from(User)) == 2, "nobody added"


def test_a_conflict_on_the_customer_page_keeps_the_form_open_as_typed_with_its_status(
    app: Flask, supervisor: Staff, make_customer: Callable[..., Customer]
) -> None:
    make_customer()
    make_customer("HMS-0002", "Robin Other", ("+447400200002",))
    browser = signed_in(app, supervisor)
    answer = browser.post(
        "/supervisor/customers/HMS-0001/details",
        data={
            "customer-csrf_token": token_of(browser),
            "customer-name": "Pat Typed",
            "customer-numbers": "07400 100001; 07400200002",
            "customer-language": "en-GB",
        },
    )
    assert answer.status_code == 409
    page = answer.get_data(as_text=True)
    assert "phone number +447400200002 already belongs to customer HMS-0002" in html.unescape(page)
    assert re.search(r"<details\s+open>\s*<summary>Edit details", page), "its form open"
    assert 'value="Pat Typed"' in field_input(page, "customer-name")
    assert 'value="07400 100001; 07400200002"' in field_input(page, "customer-numbers")
    with database(app).sessions() as sess:
        found = sess.scalar(select(Customer).where(Customer.reference == "HMS-0001"))
        assert found is not None and found.name == "Pat Example", "nothing changed"
        assert [n.e164 for n in found.numbers] == ["+447400100001"]


@pytest.mark.parametrize(
    "path",
    [
        "/supervisor/customers/NOBODY",
        "/supervisor/alerts/999",
        "/supervisor/letters/999",
        "/supervisor/appeals/999/vary",
        "/supervisor/restrictions/999/letter",
    ],
)
def test_a_look_up_that_finds_nothing_is_the_sites_404_page(
    app: Flask, supervisor: Staff, path: str
) -> None:
    answer = signed_in(app, supervisor).get(path)
    assert answer.status_code == 404
    page = answer.get_data(as_text=True)
    assert "Page not found" in page and "Error 404." in page
    assert 'id="main"' in page, "a page of the site"


def test_an_agent_gets_the_404_page_for_a_customer_and_json_from_the_console(
    app: Flask, agent: Staff
) -> None:
    browser = signed_in(app, agent)
    assert browser.get("/agent/customers/NOBODY").status_code == 404
    sid = "CA" + "0" * 32
    token = token_of(browser)
    by_json = browser.post(
        f"/agent/calls/{sid}/wrap-up", json={"note": "Hello"}, headers={"X-CSRFToken": token}
    )
    assert by_json.status_code == 404
    assert by_json.get_json() == {"error": f"no call {sid}"}
    by_form = browser.post(f"/agent/calls/{sid}/wrap-up", data={"csrf_token": token, "note": "x"})
    assert by_form.status_code == 404 and "Page not found" in by_form.get_data(as_text=True)
    pressed = browser.post(f"/agent/calls/{sid}/warn", json={}, headers={"X-CSRFToken": token})
    assert pressed.status_code == 404 and "error" in pressed.get_json()


def test_a_refusal_that_goes_back_says_why_on_the_page_it_goes_back_to(
    app: Flask, supervisor: Staff
) -> None:
    browser = signed_in(app, supervisor)
    answer = browser.post(
        "/supervisor/incidents/999/reviewed", data={"review-999-csrf_token": token_of(browser)}
    )
    assert answer.status_code == 302
    assert answer.headers["Location"].endswith("/supervisor/incidents/#incident-999")
    assert "no incident 999" in browser.get("/supervisor/incidents/").get_data(as_text=True)
    with database(app).sessions() as sess:
        reviewed = select(AuditEntry).where(AuditEntry.action == "incident.reviewed")
        assert sess.scalar(reviewed) is None


class Teapot(DomainError):
    """A refusal of a kind no page was written for."""

    status = 418


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (Teapot(HOSTILE), 418),
        (DomainError(HOSTILE), 422),
        (DomainError(HOSTILE).with_status(409), 409),
    ],
)
def test_a_refusal_nobody_expected_is_a_page_with_its_status_and_its_message_escaped(
    app: Flask,
    supervisor: Staff,
    monkeypatch: pytest.MonkeyPatch,
    error: DomainError,
    status: int,
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(agent_actions, "incidents", refuse)
    monkeypatch.setattr(due_list, "due", refuse)
    browser = signed_in(app, supervisor)
    for path in ("/supervisor/incidents/", "/supervisor/due"):
        answer = browser.get(path)
        assert answer.status_code == status, path
        page = answer.get_data(as_text=True)
        assert "<script>alert" not in page and "<b>bold" not in page, "escaped"
        assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &lt;b&gt;bold" in page
        assert "That cannot be done" in page and f"Error {status}." in page
        assert 'id="main"' in page, "a page of the site"
