"""Security headers on every page family and the API (telephony/security.py), none of them on
Twilio's webhooks, the pages working in Chromium under the Content-Security-Policy, and
redirect: routes only to public https hosts."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from restrictions.settings import SettingsError, parse_settings
from tests.conftest import Staff
from tests.pages import signed_in

TEMPLATES = Path(__file__).resolve().parents[2] / "telephony" / "templates"
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def csp(response: TestResponse) -> dict[str, list[str]]:
    """The Content-Security-Policy, directive by directive."""
    header = response.headers.get("Content-Security-Policy")
    assert header, f"{response.request.path}: no Content-Security-Policy"
    directives: dict[str, list[str]] = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name.lower()] = values
    return directives


def assert_page_headers(response: TestResponse, *, hsts: bool = True) -> None:
    path = response.request.path
    policy = csp(response)
    scripts = policy.get("script-src", policy.get("default-src"))
    assert scripts is not None, f"{path}: the CSP says nothing about scripts"
    assert "'unsafe-inline'" not in scripts and "'unsafe-eval'" not in scripts, path
    assert "*" not in scripts and "'unsafe-inline'" not in policy.get("style-src", []), path
    assert policy.get("frame-ancestors") == ["'none'"], path
    assert response.headers.get("X-Frame-Options") == "DENY", path
    assert response.headers.get("Referrer-Policy") in ("same-origin", "no-referrer"), path
    assert response.headers.get("X-Content-Type-Options") == "nosniff", path
    assert "no-store" in response.headers.get("Cache-Control", ""), path
    if hsts:
        assert response.headers.get("Strict-Transport-Security", "").startswith("max-age="), path
    else:
        assert "Strict-Transport-Security" not in response.headers, path


# --- each page family ----------------------------------------------------------------------------


def test_the_sign_in_page(client: FlaskClient) -> None:
    response = client.get("/sign-in")
    assert response.status_code == 200
    assert_page_headers(response)


def test_supervisor_pages_a_customer_record_and_a_letter(
    app: Flask,
    supervisor: Staff,
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
) -> None:
    customer = make_customer()
    restriction = restrict(customer, kind="written_only")
    browser = signed_in(app, supervisor)
    for path in (
        "/supervisor/alerts",
        f"/supervisor/customers/{customer.reference}",
        f"/supervisor/restrictions/{restriction.id}/letter",
    ):
        response = browser.get(path)
        assert response.status_code == 200, path
        assert_page_headers(response)
    letter = response.get_data(as_text=True)  # the letter's preview: styled from a static file
    assert "<style" not in letter and 'href="/static/letter.css"' in letter


def test_the_agent_console_and_its_live_list(app: Flask, agent: Staff) -> None:
    browser = signed_in(app, agent)
    console = browser.get("/agent/")
    assert console.status_code == 200
    assert_page_headers(console)
    live = browser.get("/agent/live.json")
    assert live.status_code == 200 and live.is_json
    assert_page_headers(live)


def test_the_json_api(client: FlaskClient, supervisor: Staff) -> None:
    response = client.get("/api/v1/alerts", headers=supervisor.headers)
    assert response.status_code == 200 and response.is_json
    assert_page_headers(response)
    refused = client.get("/api/v1/alerts")  # 401, JSON too
    assert refused.status_code == 401
    assert_page_headers(refused)


def test_the_api_docs_page_loads_its_style_from_our_static_files(
    client: FlaskClient, supervisor: Staff
) -> None:
    response = client.get("/api/v1/docs", headers=supervisor.headers)
    assert response.status_code == 200
    assert_page_headers(response)
    page = response.get_data(as_text=True)
    assert "<style" not in page and "<script" not in page
    stylesheets = re.findall(r'<link rel="stylesheet" href="([^"]+)"', page)
    assert stylesheets == ["/static/api_docs.css"]
    assert "'self'" in csp(response)["style-src"]
    css = client.get(stylesheets[0])
    assert css.status_code == 200 and css.mimetype == "text/css"
    assert "no-store" not in css.headers.get("Cache-Control", "")  # static files may be kept


def test_error_pages(app: Flask, client: FlaskClient, agent: Staff) -> None:
    missing = client.get("/no-such-page")
    assert missing.status_code == 404
    assert_page_headers(missing)
    forbidden = signed_in(app, agent).get("/supervisor/alerts")  # an agent on a supervisor page
    assert forbidden.status_code == 403
    assert_page_headers(forbidden)
    api_missing = client.get("/api/v1/no-such-thing")
    assert api_missing.status_code == 404 and api_missing.is_json
    assert_page_headers(api_missing)


def test_hsts_only_when_the_public_base_url_is_https(app_with: Callable[..., Flask]) -> None:
    """``make run`` (http://localhost) gets every other header, no HSTS and no Secure cookie."""
    plain = app_with(PUBLIC_BASE_URL="http://localhost:5000")
    response = plain.test_client().get("/sign-in")
    assert response.status_code == 200
    assert_page_headers(response, hsts=False)
    assert "Secure" not in response.headers.get("Set-Cookie", "")
    secure = app_with(PUBLIC_BASE_URL="https://calls.example.org")
    assert_page_headers(secure.test_client().get("/sign-in"), hsts=True)


def test_twilio_webhooks_answer_twiml_without_page_headers(twilio: Any) -> None:
    response = twilio.incoming("+447400100001")
    assert response.status_code == 200
    assert response.mimetype == "text/xml"
    for header in ("Content-Security-Policy", "X-Frame-Options", "Strict-Transport-Security"):
        assert header not in response.headers


def test_no_template_has_inline_script_or_style() -> None:
    """A CSP violation breaks inline script silently: none may be written in the first place."""
    inline = re.compile(
        r"<script(?![^>]*\bsrc=)[^>]*>|<style[\s>]|\sstyle\s*=|\son[a-z]+\s*=|javascript:", re.I
    )
    templates = sorted(TEMPLATES.rglob("*.html"))
    assert len(templates) > 10
    found = {
        str(path.relative_to(TEMPLATES)): hits
        for path in templates
        # the letter's own comment says why it has no <style> block: comments are not markup
        if (hits := inline.findall(re.sub(r"{#.*?#}", "", path.read_text(), flags=re.S)))
    }
    assert found == {}


# --- the pages in a real browser, under the CSP --------------------------------------------------


@pytest.fixture
def console_log(page: Any) -> Iterator[list[str]]:
    """Every message the page writes to its console (a CSP violation is one)."""
    messages: list[str] = []

    def record(message: Any) -> None:
        messages.append(message.text)

    page.on("console", record)
    yield messages
    page.remove_listener("console", record)


def csp_violations(messages: list[str]) -> list[str]:
    return [m for m in messages if "Content Security Policy" in m]


@pytest.mark.browser
def test_the_agent_console_and_a_supervisor_form_run_their_scripts_under_the_csp(
    page: Any,
    console_log: list[str],
    sign_in: Callable[[Any, Staff], None],
    agent: Staff,
    supervisor: Staff,
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
) -> None:
    customer = make_customer()
    sign_in(page, agent)
    assert page.url.endswith("/agent/")
    page.get_by_text("Updated ").wait_for()  # agent.js ran: it polled and said so
    assert csp_violations(console_log) == []

    page.context.clear_cookies()
    sign_in(page, supervisor)
    answer = page.goto(f"/supervisor/customers/{customer.reference}")
    assert (
        answer is not None and "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    )
    page.get_by_text("Record a new restriction…").click()
    kind = page.locator("#restriction-form select#kind")
    kind.select_option("spoc")
    # kind_fields.js ran: only the chosen kind's own fields are shown
    assert page.locator('fieldset.kind-fields[data-kind="spoc"]').is_visible()
    hidden = page.locator("fieldset.kind-fields:not([data-kind='spoc'])")
    assert hidden.count() > 0
    assert all(not hidden.nth(i).is_visible() for i in range(hidden.count()))
    assert csp_violations(console_log) == []

    restriction = restrict(customer, kind="written_only")
    page.goto(f"/supervisor/restrictions/{restriction.id}/letter")  # the letter's preview
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(238, 238, 238)"  # letter.css was allowed and applied
    assert csp_violations(console_log) == []


@pytest.mark.browser
def test_the_api_docs_page_is_styled_under_the_csp(
    browser: Any, live_server: str, supervisor: Staff
) -> None:
    context = browser.new_context(base_url=live_server, extra_http_headers=supervisor.headers)
    try:
        tab = context.new_page()
        messages: list[str] = []
        tab.on("console", lambda message: messages.append(message.text))
        answer = tab.goto("/api/v1/docs")
        assert answer is not None and answer.status == 200
        weight = tab.locator(".method").first.evaluate("e => getComputedStyle(e).fontWeight")
        assert weight == "700"  # api_docs.css was allowed and applied
        assert csp_violations(messages) == []
    finally:
        context.close()


# --- redirect: routes go to public https hosts only -----------------------------------------------


@pytest.mark.parametrize(
    ("route", "says"),
    [
        ("redirect:http://cc.example.org/voice", "not http://"),
        ("redirect:https://10.0.0.5/x", "10.0.0.5 is a private, loopback or link-local address"),
        ("redirect:https://127.0.0.1/x", "127.0.0.1 is a private, loopback or link-local"),
        ("redirect:https://169.254.169.254/x", "169.254.169.254 is a private, loopback"),
        ("redirect:https://[::1]/x", "::1 is a private, loopback or link-local address"),
        ("redirect:https://localhost/x", "localhost is not a public host name"),
        ("redirect:https://intranet/x", "intranet is not a public host name"),
        ("redirect:ftp://cc.example.org/x", "not ftp://"),
    ],
)
def test_redirect_routes_to_anything_but_a_public_https_host_are_refused(
    route: str, says: str
) -> None:
    with pytest.raises(SettingsError) as refused:
        parse_settings({"routes": {"default": route}})
    message = str(refused.value)
    assert message.startswith(f"routes.default: {route} must be an https:// URL on a public host")
    assert says in message


def test_a_redirect_route_to_a_public_https_host_is_accepted() -> None:
    route = "redirect:https://studio.twilio.com/v2/Flows/FW0123/Executions"
    assert parse_settings({"routes": {"default": route}}).default_route == route
