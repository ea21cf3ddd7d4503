"""Staff sign-in as a bank would do it: Secure cookies behind https, sessions that end when the
person signs out, is disabled or changes password, sign-in throttled per user name and per
address with the same work for unknown names, passwords never on the command line, and agents
pressing only on their own calls."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from restrictions import staff
from telephony import create_app
from telephony.cli import main
from tests.calls import conference_event


def sign_in(client: FlaskClient, name: str, password: str) -> Any:
    page = client.get("/sign-in").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token is not None
    return client.post(
        "/sign-in", data={"csrf_token": token.group(1), "name": name, "password": password}
    )


def sign_out(client: FlaskClient) -> Any:
    page = client.get("/agent/").get_data(as_text=True)
    token = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert token is not None
    return client.post("/sign-out", data={"csrf_token": token.group(1)})


def signed_in(client: FlaskClient) -> bool:
    return client.get("/agent/").status_code == 200


def test_session_cookies_are_secure_behind_https(app_config: dict[str, Any]) -> None:
    config = {k: v for k, v in app_config.items() if k != "SESSION_COOKIE_SECURE"}
    secure = create_app({**config, "PUBLIC_BASE_URL": "https://calls.example.org"})
    assert secure.config["SESSION_COOKIE_SECURE"] is True
    plain = create_app({**config, "PUBLIC_BASE_URL": "http://localhost:5000"})
    assert not plain.config.get("SESSION_COOKIE_SECURE")


def test_the_session_cookie_carries_secure_and_httponly(
    app: Flask, make_staff: Callable[..., Any]
) -> None:
    staff_member = make_staff("agent", "alex")
    response = sign_in(app.test_client(), "alex", staff_member.password)
    cookies = response.headers.getlist("Set-Cookie")
    cookie = next(c for c in cookies if c.startswith("session="))
    assert response.status_code == 302
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    device = next(c for c in cookies if c.startswith("cg_device="))
    assert "Secure" in device and "HttpOnly" in device and "Path=/sign-in" in device


def test_signing_out_ends_every_session_of_that_person(
    app: Flask, make_staff: Callable[..., Any]
) -> None:
    person = make_staff("agent", "alex")
    laptop, phone = app.test_client(), app.test_client()
    sign_in(laptop, "alex", person.password)
    sign_in(phone, "alex", person.password)
    assert signed_in(laptop) and signed_in(phone)
    sign_out(laptop)
    assert not signed_in(laptop)
    assert not signed_in(phone), "a copy of the old cookie must not work after signing out"


def test_disabling_a_user_ends_their_sessions_and_token(
    app: Flask, client: FlaskClient, make_staff: Callable[..., Any]
) -> None:
    person = make_staff("agent", "alex")
    sign_in(client, "alex", person.password)
    assert signed_in(client)
    result = CliRunner().invoke(main, ["users", "disable", "alex"])
    assert result.exit_code == 0, result.output
    assert not signed_in(client)
    assert client.get("/api/v1/calls/active", headers=person.headers).status_code == 401


def test_a_new_password_ends_every_session_and_weak_ones_are_refused(
    app: Flask, client: FlaskClient, make_staff: Callable[..., Any]
) -> None:
    person = make_staff("agent", "alex")
    sign_in(client, "alex", person.password)
    weak = CliRunner().invoke(main, ["users", "password", "alex"], input="short\n")
    assert weak.exit_code == 1 and "at least 12 characters" in weak.output
    assert signed_in(client)
    changed = CliRunner().invoke(
        main, ["users", "password", "alex"], input="a much longer passphrase\n"
    )
    assert changed.exit_code == 0, changed.output
    assert not signed_in(client)
    assert sign_in(app.test_client(), "alex", "a much longer passphrase").status_code == 302


def test_sign_in_is_throttled_per_user_name(app: Flask, make_staff: Callable[..., Any]) -> None:
    person = make_staff("agent", "alex")
    for i in range(5):
        assert sign_in(app.test_client(), "alex", f"guess number {i}").status_code == 401
    blocked = sign_in(app.test_client(), "alex", person.password)
    assert blocked.status_code == 429, "the right password after five guesses waits its turn"
    assert sign_in(app.test_client(), "someone.else", "guess").status_code == 401


def test_sign_in_is_throttled_per_address(app: Flask) -> None:
    statuses = [sign_in(app.test_client(), f"name{i}", "guess").status_code for i in range(21)]
    assert statuses[:20] == [401] * 20 and statuses[20] == 429


def test_an_unknown_user_name_costs_the_same_password_check(
    app: Flask, make_staff: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    make_staff("agent", "alex")
    checks: list[str] = []
    real = staff.check_password_hash  # type: ignore[attr-defined]

    def counting(stored: str, password: str) -> bool:
        checks.append(stored.split("$")[0])
        return real(stored, password)

    monkeypatch.setattr(staff, "check_password_hash", counting)
    sign_in(app.test_client(), "alex", "wrong password here")
    sign_in(app.test_client(), "nobody.at.all", "wrong password here")
    assert len(checks) == 2 and checks[0] == checks[1], "both hash with the same method"


def test_users_add_takes_the_password_from_stdin_never_argv(app: Flask) -> None:
    runner = CliRunner()
    from_stdin = runner.invoke(
        main, ["users", "add", "jo", "--role", "agent"], input="correct horse battery\n"
    )
    assert from_stdin.exit_code == 0, from_stdin.output
    assert sign_in(app.test_client(), "jo", "correct horse battery").status_code == 302
    no_input = runner.invoke(main, ["users", "add", "api.only", "--role", "agent"], input="")
    assert no_input.exit_code == 0 and no_input.output.strip().splitlines()[-1].startswith("cg_")
    argv = runner.invoke(main, ["users", "add", "kim", "--role", "agent", "--password", "x"])
    assert argv.exit_code == 2 and "No such option" in argv.output
    weak = runner.invoke(main, ["users", "add", "lee", "--role", "agent"], input="lee12345678901\n")
    assert weak.exit_code == 1 and "user name" in weak.output


def test_agents_press_only_on_calls_they_are_on(
    app: Flask,
    client: FlaskClient,
    twilio: Any,
    make_staff: Callable[..., Any],
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
    run_jobs: Callable[[], int],
) -> None:
    jo = make_staff("agent", "jo")
    alex = make_staff("agent", "alex")
    boss = make_staff("supervisor", "sam")
    restrict(make_customer(), kind="spoc", spoc="jo")  # Jo is this caller's SPOC
    params = twilio.call_params("+447400100001")
    twilio.post("/twilio/voice/incoming", params)
    run_jobs()
    caller = params["CallSid"]
    conference_event(twilio, caller, "participant-join", caller)
    conference_event(twilio, caller, "participant-join", "CA" + "b" * 32, sequence=2)
    refused = client.post(f"/api/v1/calls/{caller}/warn", headers=alex.headers)
    assert refused.status_code == 403 and "another member of staff" in refused.get_json()["error"]
    assert client.post(f"/api/v1/calls/{caller}/warn", headers=jo.headers).status_code == 200
    assert client.post(f"/api/v1/calls/{caller}/warn", headers=boss.headers).status_code == 200
