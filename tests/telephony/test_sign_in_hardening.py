"""Sign-in and sessions against OWASP ASVS 4 level 2: sessions that end when idle and when old,
CSRF tokens that end with them, API tokens that expire, rotate and are revoked with the password,
strong passwords only, one password hash per attempt whoever is named, attempts counted before
their password is checked, a known device never locked out by a stranger, Redis down refusing
sign-in, and staff pages answering through a sign-in flood."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, make_url, select, text

from restrictions import staff
from restrictions.errors import Invalid
from restrictions.models import ApiToken, User
from telephony.cli import alembic_config, main
from telephony.database import database

CSRF_FIELD = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
CSRF_META = re.compile(r'name="csrf-token" content="([^"]+)"')
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
WEAK = ["Password1234", "P@ssw0rd2024", "Summer2024!!", "iloveyou1234", "qwertyuiop12"]
API = "/api/v1/calls/active"


def csrf_token(client: FlaskClient, path: str = "/sign-in") -> str:
    page = client.get(path).get_data(as_text=True)
    found = CSRF_FIELD.search(page) or CSRF_META.search(page)
    assert found is not None, f"no CSRF token on {path}"
    return found.group(1)


def sign_in(client: FlaskClient, name: str, password: str, **environ: Any) -> Any:
    data = {"csrf_token": csrf_token(client), "name": name, "password": password}
    if environ:
        return client.post("/sign-in", data=data, environ_base=environ)
    return client.post("/sign-in", data=data)


def signed_in(client: FlaskClient) -> bool:
    return client.get("/agent/").status_code == 200


def api_status(client: FlaskClient, token: str) -> int:
    return client.get(API, headers={"Authorization": f"Bearer {token}"}).status_code


def cli(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(main, list(args), input=input)


def last_line(output: str) -> str:
    return output.strip().splitlines()[-1]


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every password hash computed in restrictions.staff (made or checked), by method."""
    made: list[str] = []
    check, generate = staff.check_password_hash, staff.generate_password_hash  # type: ignore[attr-defined]

    def counting_check(stored: str, password: str) -> bool:
        made.append("check:" + stored.split("$")[0])
        return bool(check(stored, password))

    def counting_generate(password: str, method: str = "scrypt", salt_length: int = 16) -> str:
        made.append("make:" + method)
        return str(generate(password, method=method, salt_length=salt_length))

    monkeypatch.setattr(staff, "check_password_hash", counting_check)
    monkeypatch.setattr(staff, "generate_password_hash", counting_generate)
    yield made


# --- sessions: idle timeout, absolute lifetime, CSRF ------------------------------------------


def test_a_session_ends_after_30_idle_minutes_and_activity_keeps_it(
    app: Flask, make_staff: Callable[..., Any]
) -> None:
    person = make_staff("agent", "alex")
    with time_machine.travel(START, tick=False) as clock:
        client = app.test_client()
        assert sign_in(client, "alex", person.password).status_code == 302
        clock.shift(timedelta(minutes=29))
        assert signed_in(client), "29 minutes idle is within the timeout"
        clock.shift(timedelta(minutes=29))
        assert signed_in(client), "each request restarts the idle clock"
        clock.shift(timedelta(minutes=31))
        response = client.get("/agent/")
        assert response.status_code == 302 and "/sign-in" in response.headers["Location"]
        assert not signed_in(client), "an idle session does not come back"


def test_the_consoles_background_polls_do_not_keep_a_session_alive(
    app: Flask, make_staff: Callable[..., Any]
) -> None:
    person = make_staff("agent", "alex")
    with time_machine.travel(START, tick=False) as clock:
        client = app.test_client()
        sign_in(client, "alex", person.password)
        for _ in range(3):
            clock.shift(timedelta(minutes=10))
            assert client.get("/agent/live.json").status_code == 200
        clock.shift(timedelta(minutes=1, seconds=1))
        assert client.get("/agent/live.json").status_code == 302, "31 minutes without a person"


def test_a_session_ends_12_hours_after_signing_in_however_busy(
    app: Flask, make_staff: Callable[..., Any]
) -> None:
    person = make_staff("agent", "alex")
    with time_machine.travel(START, tick=False) as clock:
        client = app.test_client()
        sign_in(client, "alex", person.password)
        for _ in range(35):  # a request every 20 minutes: 11 h 40 min
            clock.shift(timedelta(minutes=20))
            assert signed_in(client)
        clock.shift(timedelta(minutes=20, seconds=1))
        assert not signed_in(client), "12 hours after signing in the session is over"
        assert sign_in(client, "alex", person.password).status_code == 302
        assert signed_in(client)


def test_session_lifetimes_are_settings(
    app_with: Callable[..., Flask], make_staff: Callable[..., Any]
) -> None:
    person = make_staff("agent", "alex")
    short = app_with(SESSION_IDLE_MINUTES=5, SESSION_MAX_HOURS=1)
    assert short.config["PERMANENT_SESSION_LIFETIME"] == timedelta(hours=1)
    assert short.config["WTF_CSRF_TIME_LIMIT"] == 3600
    with time_machine.travel(START, tick=False) as clock:
        client = short.test_client()
        sign_in(client, "alex", person.password)
        clock.shift(timedelta(minutes=4))
        assert signed_in(client)
        clock.shift(timedelta(minutes=6))
        assert not signed_in(client)


def test_a_csrf_token_expires_with_the_sessions_lifetime(
    app: Flask, make_staff: Callable[..., Any]
) -> None:
    person = make_staff("agent", "alex")
    assert app.config["WTF_CSRF_TIME_LIMIT"] == 12 * 3600
    with time_machine.travel(START, tick=False) as clock:
        fresh, stale = app.test_client(), app.test_client()
        fresh_token, stale_token = csrf_token(fresh), csrf_token(stale)
        clock.shift(timedelta(hours=11))
        ok = fresh.post(
            "/sign-in",
            data={"csrf_token": fresh_token, "name": "alex", "password": person.password},
        )
        assert ok.status_code == 302, "an 11-hour-old token still works"
        clock.shift(timedelta(hours=1, minutes=1))
        refused = stale.post(
            "/sign-in",
            data={"csrf_token": stale_token, "name": "alex", "password": person.password},
        )
        assert refused.status_code == 400 and "CSRF" in refused.get_data(as_text=True)
        assert not signed_in(stale)


def test_a_csrf_token_dies_with_its_session(app: Flask, make_staff: Callable[..., Any]) -> None:
    person = make_staff("agent", "alex")
    with time_machine.travel(START, tick=False) as clock:
        client = app.test_client()
        sign_in(client, "alex", person.password)
        old = csrf_token(client, "/agent/")
        clock.shift(timedelta(minutes=31))  # the session ends idle
        sign_in(client, "alex", person.password)  # a new session, a new CSRF secret
        refused = client.post("/sign-out", data={"csrf_token": old})
        assert refused.status_code == 400
        assert signed_in(client)


# --- API tokens ---------------------------------------------------------------------------------


def test_a_token_expires_after_90_days(
    app: Flask, client: FlaskClient, make_staff: Callable[..., Any]
) -> None:
    with time_machine.travel(START, tick=False) as clock:
        person = make_staff("agent", "alex")
        clock.shift(timedelta(days=89, hours=23))
        assert api_status(client, person.token) == 200
        clock.shift(timedelta(hours=1, seconds=1))
        assert api_status(client, person.token) == 401
    listed = cli("users", "token", "list", "alex")
    assert "expired" in listed.output


def test_a_new_password_revokes_the_users_tokens(
    app: Flask, client: FlaskClient, make_staff: Callable[..., Any]
) -> None:
    person = make_staff("agent", "alex")
    bystander = make_staff("agent", "kim")
    assert api_status(client, person.token) == 200
    changed = cli("users", "password", "alex", input="a much longer passphrase\n")
    assert changed.exit_code == 0, changed.output
    assert api_status(client, person.token) == 401
    assert api_status(client, bystander.token) == 200, "only that user's tokens"


def test_disabling_a_user_revokes_their_tokens(
    app: Flask, client: FlaskClient, make_staff: Callable[..., Any]
) -> None:
    person = make_staff("agent", "alex")
    assert cli("users", "disable", "alex").exit_code == 0
    assert api_status(client, person.token) == 401
    listed = cli("users", "token", "list", "alex")
    assert "revoked" in listed.output and "active" not in listed.output
    assert cli("users", "token", "rotate", "alex").exit_code == 1, "no new token when disabled"


def test_signing_out_everywhere_revokes_the_users_tokens(
    app: Flask, client: FlaskClient, make_staff: Callable[..., Any]
) -> None:
    person = make_staff("agent", "alex")
    sign_in(client, "alex", person.password)
    assert api_status(client, person.token) == 200
    client.post("/sign-out", data={"csrf_token": csrf_token(client, "/agent/")})
    assert not signed_in(client)
    assert api_status(client, person.token) == 401


def test_tokens_are_listed_rotated_and_revoked_from_the_cli(
    app: Flask, client: FlaskClient, make_staff: Callable[..., Any]
) -> None:
    person = make_staff("agent", "alex")
    assert api_status(client, person.token) == 200
    listed = cli("users", "token", "list", "alex")
    assert listed.exit_code == 0 and "active" in listed.output
    assert "last used never" not in listed.output, "the use is recorded"

    rotated = cli("users", "token", "rotate", "alex", "--label", "reporting script")
    assert rotated.exit_code == 0, rotated.output
    new = last_line(rotated.output)
    assert new.startswith("cg_") and " " not in new
    assert api_status(client, person.token) == 401
    assert api_status(client, new) == 200
    listed = cli("users", "token", "list", "alex").output
    assert "revoked" in listed and "'reporting script'" in listed

    revoked = cli("users", "token", "revoke", "alex")
    assert revoked.exit_code == 0 and "1 API token(s) revoked" in revoked.output
    assert api_status(client, new) == 401
    assert cli("users", "token", "list", "nobody").exit_code == 1


def test_tokens_follow_the_api_token_days_setting(
    app: Flask, client: FlaskClient, make_staff: Callable[..., Any]
) -> None:
    make_staff("agent", "alex")
    app.config["API_TOKEN_DAYS"] = 7
    with time_machine.travel(START, tick=False) as clock:
        token = last_line(cli("users", "token", "rotate", "alex").output)
        clock.shift(timedelta(days=7, seconds=1))
        assert api_status(client, token) == 401


def test_the_previous_releases_column_follows_the_newest_token(
    app: Flask, make_staff: Callable[..., Any]
) -> None:
    """users.token_hash is what the previous release checks: it must never let a revoked
    token in."""
    person = make_staff("agent", "alex")

    def column() -> str:
        with database(app).sessions() as sess:
            return str(sess.scalar(select(User.token_hash).where(User.name == "alex")))

    assert column() == staff.hash_token(person.token)
    new = last_line(cli("users", "token", "rotate", "alex").output)
    assert column() == staff.hash_token(new)
    cli("users", "token", "revoke", "alex")
    assert column() not in (staff.hash_token(person.token), staff.hash_token(new))


def _signed_in_client(app: Flask, person: Any) -> FlaskClient:
    client = app.test_client()
    assert sign_in(client, person.user.name, person.password).status_code == 302
    return client


def test_an_admin_rotates_and_revokes_anyones_token_from_the_staff_page(
    app: Flask, make_staff: Callable[..., Any]
) -> None:
    admin = make_staff("admin", "ada.admin")
    person = make_staff("agent", "alex")
    page = _signed_in_client(app, admin)
    listing = page.get("/admin/staff")
    assert listing.status_code == 200 and "alex" in listing.get_data(as_text=True)
    token = csrf_token(page, "/admin/staff")

    rotated = page.post(f"/admin/staff/{person.user.id}/token/rotate", data={"csrf_token": token})
    assert rotated.status_code == 200
    shown = re.search(r'<code id="new-token">(cg_[^<]+)</code>', rotated.get_data(as_text=True))
    assert shown is not None
    assert api_status(page, person.token) == 401
    assert api_status(page, shown.group(1)) == 200
    assert shown.group(1) not in page.get("/admin/staff").get_data(as_text=True), "shown once"

    page.post(f"/admin/staff/{person.user.id}/token/revoke", data={"csrf_token": token})
    assert api_status(page, shown.group(1)) == 401

    supervisor = _signed_in_client(app, make_staff("supervisor", "sam"))
    assert supervisor.get("/admin/staff").status_code == 403
    refused = supervisor.post(
        f"/admin/staff/{person.user.id}/token/rotate",
        data={"csrf_token": csrf_token(supervisor, "/account")},
    )
    assert refused.status_code == 403


def test_anyone_rotates_their_own_token_from_their_account_page(
    app: Flask, make_staff: Callable[..., Any]
) -> None:
    person = make_staff("agent", "alex")
    page = _signed_in_client(app, person)
    assert "Rotate my token" in page.get("/account").get_data(as_text=True)
    rotated = page.post("/account/token/rotate", data={"csrf_token": csrf_token(page, "/account")})
    shown = re.search(r'<code id="new-token">(cg_[^<]+)</code>', rotated.get_data(as_text=True))
    assert rotated.status_code == 200 and shown is not None
    assert api_status(page, person.token) == 401
    assert api_status(page, shown.group(1)) == 200
    assert signed_in(page), "rotating a token leaves the session alone"


# --- passwords ----------------------------------------------------------------------------------


@pytest.mark.parametrize("weak", WEAK)
def test_each_common_password_is_refused_with_the_reason(
    app: Flask, make_staff: Callable[..., Any], weak: str
) -> None:
    make_staff("agent", "alex")
    refused = cli("users", "password", "alex", input=weak + "\n")
    assert refused.exit_code == 1
    assert "too common" in refused.output and "breached" in refused.output, refused.output
    added = cli("users", "add", "kim", "--role", "agent", input=weak + "\n")
    assert added.exit_code == 1 and "too common" in added.output


def test_zxcvbn_refuses_what_the_list_misses_and_takes_a_passphrase() -> None:
    from restrictions.passwords import is_common

    for pattern in ("zxcvbnmasdfg", "abcdefghijkl"):  # a keyboard walk, a sequence
        assert not is_common(pattern)
        with pytest.raises(Invalid, match="too easy to guess"):
            staff.check_strength("kim", pattern)
    assert staff.check_strength("kim", "velvet lantern orbit") == "velvet lantern orbit"


# --- one hash, whoever is named ----------------------------------------------------------------


def test_unknown_disabled_and_passwordless_users_cost_exactly_one_hash(
    app: Flask, make_staff: Callable[..., Any], hashes: list[str]
) -> None:
    make_staff("agent", "alex")
    make_staff("agent", "gone")
    assert cli("users", "disable", "gone").exit_code == 0
    assert cli("users", "add", "api.only", "--role", "agent", "--no-password").exit_code == 0
    for name in ("alex", "nobody.at.all", "gone", "api.only"):
        hashes.clear()
        assert sign_in(app.test_client(), name, "wrong password here").status_code == 401
        assert len(hashes) == 1, (name, hashes)
        assert hashes[0] == f"check:{staff.PASSWORD_METHOD}"


# --- throttling ---------------------------------------------------------------------------------


@pytest.fixture
def slow_hashes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Password checks that take 0.2 s (as scrypt does, and then some), counted."""
    checked: list[str] = []
    real = staff.check_password_hash  # type: ignore[attr-defined]

    def slow(stored: str, password: str) -> bool:
        checked.append(password)
        time.sleep(0.2)
        return bool(real(stored, password))

    monkeypatch.setattr(staff, "check_password_hash", slow)
    yield checked


def test_thirty_parallel_wrong_attempts_check_no_more_passwords_than_the_limit(
    app_with: Callable[..., Flask], make_staff: Callable[..., Any], slow_hashes: list[str]
) -> None:
    make_staff("agent", "alex")
    # room for all 30 at once, and CSRF off: only the sign-in limits are being tested
    roomy = app_with(WTF_CSRF_ENABLED=False, WEB_THREADS=64, SIGN_IN_THREADS=40)
    start = threading.Barrier(30)

    def attempt(i: int) -> int:
        client = roomy.test_client()
        start.wait()
        return client.post(
            "/sign-in",
            data={"name": "alex", "password": f"guess number {i}"},
            environ_base={"REMOTE_ADDR": f"10.0.{i}.1"},  # many addresses: the name's limit
        ).status_code

    with ThreadPoolExecutor(max_workers=30) as pool:
        statuses = list(pool.map(attempt, range(30)))
    assert len(slow_hashes) <= 5, f"{len(slow_hashes)} passwords checked"
    assert statuses.count(401) == len(slow_hashes) and statuses.count(429) == 30 - len(slow_hashes)


def test_a_known_device_still_signs_in_after_a_strangers_failures(
    app: Flask, make_staff: Callable[..., Any]
) -> None:
    person = make_staff("agent", "alex")
    desk = app.test_client()
    assert sign_in(desk, "alex", person.password).status_code == 302  # the desk becomes known
    desk.post("/sign-out", data={"csrf_token": csrf_token(desk, "/agent/")})
    statuses = [sign_in(app.test_client(), "alex", f"guess {i}").status_code for i in range(30)]
    # the desk's own first sign-in was the first of the name's five
    assert statuses[:4] == [401] * 4 and set(statuses[4:]) == {429}
    stranger = sign_in(app.test_client(), "alex", person.password)
    assert stranger.status_code == 429, "the right password from an unknown browser waits"
    assert "Too many attempts" in stranger.get_data(as_text=True)
    assert sign_in(desk, "alex", person.password).status_code == 302
    assert signed_in(desk)


def test_a_device_cookie_counts_only_for_its_own_name_and_cannot_be_forged(
    app: Flask, make_staff: Callable[..., Any]
) -> None:
    person = make_staff("agent", "alex")
    make_staff("agent", "kim")
    desk = app.test_client()
    sign_in(desk, "alex", person.password)
    for i in range(5):
        sign_in(app.test_client(), "kim", f"guess {i}")
    assert sign_in(desk, "kim", "guess 6").status_code == 429, "alex's desk is a stranger to kim"
    for i in range(5):
        sign_in(app.test_client(), "alex", f"guess {i}")
    forged = app.test_client()
    forged.set_cookie("cg_device", "eyJhbGV4IjoieCJ9.forged.signature", path="/sign-in")
    assert sign_in(forged, "alex", person.password).status_code == 429
    assert sign_in(desk, "alex", person.password).status_code == 302


def test_a_known_device_has_a_limit_of_its_own(app: Flask, make_staff: Callable[..., Any]) -> None:
    person = make_staff("agent", "alex")
    desk = app.test_client()
    sign_in(desk, "alex", person.password)
    statuses = [sign_in(desk, "alex", f"guess {i}").status_code for i in range(11)]
    assert statuses[:10] == [401] * 10 and statuses[10] == 429


def test_redis_down_refuses_sign_in_without_checking_a_password(
    app_with: Callable[..., Flask], make_staff: Callable[..., Any], hashes: list[str]
) -> None:
    person = make_staff("agent", "alex")
    broken = app_with(REDIS_URL="redis://127.0.0.1:1/0")
    client = broken.test_client()
    hashes.clear()
    refused = sign_in(client, "alex", person.password)
    assert refused.status_code == 503, "never counted in one process's memory"
    assert "try again shortly" in refused.get_data(as_text=True)
    assert refused.headers["Retry-After"] == "5"
    assert hashes == [], "no password is checked when the attempt cannot be counted"
    assert not signed_in(client)


def test_staff_pages_answer_through_a_sign_in_flood(
    app: Flask, make_staff: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """16 sign-ins at once, each stuck in its password hash: they may hold only the sign-in
    slots (2), never every staff slot (5 of 8 threads), so a signed-in agent's page answers."""
    agent = _signed_in_client(app, make_staff("agent", "alex"))
    flood = [(client, csrf_token(client)) for client in (app.test_client() for _ in range(16))]
    release, hashing = threading.Event(), []
    real = staff.check_password_hash  # type: ignore[attr-defined]

    def stuck(stored: str, password: str) -> bool:
        hashing.append(password)
        release.wait(10)
        return bool(real(stored, password))

    monkeypatch.setattr(staff, "check_password_hash", stuck)

    def attempt(n: int) -> int:
        client, token = flood[n]
        return client.post(
            "/sign-in",
            data={"csrf_token": token, "name": f"flood.{n}", "password": "not it at all"},
            environ_base={"REMOTE_ADDR": f"10.1.{n}.1"},  # many addresses: no address limit
        ).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        sent = [pool.submit(attempt, n) for n in range(16)]
        time.sleep(0.5)  # every attempt has arrived: the ones let in are stuck hashing
        try:
            pages = [agent.get("/agent/").status_code for _ in range(3)]
        finally:
            release.set()
        answers = [future.result() for future in sent]
    assert pages == [200] * 3, "the flood must not take the threads staff pages need"
    assert len(hashing) == 2 and answers.count(401) == 2
    assert answers.count(503) == 14, "sign-ins past their own slots are turned away at once"


# --- 429: a page that says when to try again ----------------------------------------------------


def test_the_sixth_wrong_password_gets_a_styled_page_saying_when_to_try_again(
    app: Flask, make_staff: Callable[..., Any]
) -> None:
    make_staff("agent", "alex")
    with time_machine.travel(START, tick=False):  # 08:00 on the landlord's clock (GMT)
        browser = app.test_client()
        statuses = [sign_in(browser, "alex", f"wrong guess {i}").status_code for i in range(5)]
        locked = sign_in(browser, "alex", "wrong guess 6")
    assert statuses == [401] * 5
    assert locked.status_code == 429
    assert locked.mimetype == "text/html"
    # 15 minutes after the window's first attempt (Flask-Limiter rounds it up a second)
    assert locked.headers["Retry-After"] in ("900", "901")
    page = locked.get_data(as_text=True)
    assert 'href="/static/callguard.css"' in page, "base.html's page, styled"
    assert "Too many attempts to sign in. Try again in 15 minutes, at 08:15." in page
    assert "Too Many Requests" not in page and "per 15 minute" not in page
    assert 'name="password"' in page, "the form is there for when the time comes"


def test_when_to_try_again_is_in_words_on_the_landlords_clock(app: Flask) -> None:
    from telephony.auth import try_again_in_words

    late = datetime(2026, 7, 1, 22, 50, 30, tzinfo=UTC)  # 23:50:30 in London (BST)
    assert try_again_in_words(1, late) == "Try again in 1 second."
    assert try_again_in_words(45, late) == "Try again in 45 seconds."
    assert try_again_in_words(60, late) == "Try again in 1 minute, at 23:52."  # never too early
    assert try_again_in_words(900, late) == "Try again in 15 minutes, tomorrow at 00:06."
    assert try_again_in_words(3_661, late) == "Try again in 1 hour 2 minutes, tomorrow at 00:52."
    assert try_again_in_words(86_400, late) == "Try again in 24 hours, tomorrow at 23:51."


def test_any_other_limit_gets_a_styled_page_and_the_api_keeps_its_json(
    app_with: Callable[..., Flask],
) -> None:
    from telephony.auth import limiter

    fresh = app_with()

    @limiter.limit("1 per minute")
    def limited_page() -> str:
        return "a page"

    @limiter.limit("1 per minute")
    def limited_api() -> dict[str, bool]:
        return {"ok": True}

    fresh.add_url_rule("/limited", "limited_page", limited_page)
    fresh.add_url_rule("/api/v1/limited", "limited_api", limited_api)
    with time_machine.travel(START, tick=False):
        client = fresh.test_client()
        assert client.get("/limited").status_code == 200
        page = client.get("/limited")
        assert client.get("/api/v1/limited").status_code == 200
        api = client.get("/api/v1/limited")

    assert page.status_code == 429 and page.mimetype == "text/html"
    assert page.headers["Retry-After"] in ("60", "61")
    text = page.get_data(as_text=True)
    assert 'href="/static/callguard.css"' in text and "<h1>Too many requests</h1>" in text
    assert "Try again in 1 minute, at 08:01." in text

    assert api.status_code == 429 and api.mimetype == "application/json"
    assert api.headers["Retry-After"] in ("60", "61")
    assert api.get_json() == {
        "error": "too many requests (1 per 1 minute); try again in 60 seconds"
    }


# --- the migration --------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_migration_keeps_each_users_existing_token_working(database_url: str) -> None:
    from alembic import command

    url = make_url(database_url)
    scratch = url.set(database=f"{url.database}_tokens")
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{scratch.database}"'))
        conn.execute(text(f'CREATE DATABASE "{scratch.database}"'))
    try:
        cfg = alembic_config(scratch.render_as_string(hide_password=False))
        command.upgrade(cfg, "0005")  # type: ignore[arg-type]
        engine = create_engine(scratch)
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO users (name, role, token_hash, active, created_at) "
                    "VALUES ('old.timer', 'agent', :h, true, now())"
                ),
                {"h": staff.hash_token("cg_from_the_previous_release")},
            )
        command.upgrade(cfg, "head")  # type: ignore[arg-type]
        from sqlalchemy.orm import Session

        with Session(engine) as sess:
            user = staff.user_for_token(sess, "cg_from_the_previous_release")
            assert user is not None and user.name == "old.timer"
            row = sess.scalar(select(ApiToken))
            assert row is not None and row.label == "legacy"
            assert row.expires_at > datetime.now(UTC) + timedelta(days=89)
        engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{scratch.database}" WITH (FORCE)'))
        admin.dispose()
