"""Fixtures, two kinds of test:

- Domain tests (``tests/restrictions``) take ``sess``: a real PostgreSQL session inside a
  transaction that is rolled back after the test (the SAVEPOINT pattern: the code under test may
  commit), with the routing cache in an in-process Redis (``cache_redis``). No app, no Flask.
- End-to-end tests take ``app``, ``client``, ``twilio`` (signed webhooks), ``fake_twilio`` (the
  REST API, tests/fake_twilio.py), ``run_jobs`` (a real rq worker), ``page`` (Chromium): a fresh
  app per test on real PostgreSQL and Redis, from empty tables and an empty Redis db.

Databases: CALLGUARD_TEST_DATABASE_URL (default postgres on localhost, database callguard_test,
created when missing) and CALLGUARD_TEST_REDIS_URL (default db 15). The schema is rebuilt with the
Alembic migrations once per run.
"""

from __future__ import annotations

import contextvars
import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import fakeredis
import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from redis import Redis
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator
from werkzeug.serving import make_server
from werkzeug.test import TestResponse

from restrictions.db import CACHE_REDIS, install_after_commit
from restrictions.lifecycle import Actor, add_restriction, create_customer
from restrictions.models import Base, Customer, Restriction, User
from restrictions.settings import ContactRule, Organisation, Settings
from restrictions.staff import create_user
from telephony import create_app, twilio_gateway
from telephony.auth import limiter
from telephony.database import database
from telephony.redis_store import call_path_breaker, queues
from telephony.worker import BurstWorker, take_calls
from tests.fake_twilio import ACCOUNT_SID, FakeTwilio
from tests.faults import hung_server

AUTH_TOKEN = "test-auth-token-0123456789abcdef"
PUBLIC_BASE_URL = "https://calls.example.org"
LANDLORD_NUMBER = "+441332000000"

# With pytest-xdist (``make test`` runs two workers) each worker has a database and a Redis db of
# its own: ``callguard_test_gw1`` and the Redis db below the configured one.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
_BASE_DATABASE_URL = make_url(
    os.environ.get(
        "CALLGUARD_TEST_DATABASE_URL",
        "postgresql+psycopg://postgres@127.0.0.1:5432/callguard_test",
    )
)
TEST_DATABASE_URL = (
    _BASE_DATABASE_URL.set(database=f"{_BASE_DATABASE_URL.database}_{WORKER}")
    if WORKER
    else _BASE_DATABASE_URL
).render_as_string(hide_password=False)
_BASE_REDIS_URL = os.environ.get("CALLGUARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
_REDIS_DB = int(_BASE_REDIS_URL.rsplit("/", 1)[1]) - int(WORKER.removeprefix("gw") or 0)
TEST_REDIS_URL = f"{_BASE_REDIS_URL.rsplit('/', 1)[0]}/{_REDIS_DB}"


# --- databases ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def database_url() -> str:
    """A fresh schema, built by the project's own migrations, once per test run."""
    from alembic import command

    from telephony.cli import alembic_config

    url = make_url(TEST_DATABASE_URL)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.scalar(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": url.database}
        )
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{url.database}"'))
        # a test database need not wait for each commit to reach the disk (0.45 -> 0.07 ms)
        conn.execute(text(f'ALTER DATABASE "{url.database}" SET synchronous_commit = off'))
    admin.dispose()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    command.upgrade(alembic_config(TEST_DATABASE_URL), "head")  # type: ignore[arg-type]
    return TEST_DATABASE_URL


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    shared = create_engine(database_url)
    yield shared
    shared.dispose()


@pytest.fixture
def cache_redis() -> fakeredis.FakeRedis:
    """An in-process Redis for domain tests (counters, the routing cache)."""
    return fakeredis.FakeRedis()


@pytest.fixture
def sess(engine: Engine, cache_redis: fakeredis.FakeRedis) -> Iterator[Session]:
    """A session whose every commit is a SAVEPOINT inside one transaction, rolled back after the
    test: nothing a domain test writes outlives it, and no table is emptied."""
    connection = engine.connect()
    outer = connection.begin()
    session = Session(
        bind=connection,
        join_transaction_mode="create_savepoint",
        expire_on_commit=False,
        info={CACHE_REDIS: cache_redis},
    )
    install_after_commit(session)
    yield session
    session.close()
    outer.rollback()
    connection.close()


@pytest.fixture
def redis_conn() -> Iterator[Redis]:
    conn: Redis = Redis.from_url(TEST_REDIS_URL)
    conn.flushdb()
    yield conn
    conn.close()


def _empty_tables(engine: Engine) -> None:
    """Every table emptied and its ids restarted: DELETE with foreign keys paused, which on tables
    this small is fifteen times faster than TRUNCATE."""
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    statements = ["SET LOCAL session_replication_role = replica"]
    statements += [f'DELETE FROM "{name}"' for name in tables]
    statements += [f'ALTER SEQUENCE "{name}_id_seq" RESTART' for name in tables]
    with engine.begin() as conn:
        conn.exec_driver_sql("; ".join(statements))


@pytest.fixture(scope="session", autouse=True)
def _quick_password_hashes() -> Iterator[None]:
    """Staff passwords hashed cheaply in tests (production keeps scrypt)."""
    from restrictions import staff

    before = staff.PASSWORD_METHOD
    staff.PASSWORD_METHOD = "pbkdf2:sha256:1000"
    yield
    staff.PASSWORD_METHOD = before


# --- the fake Twilio REST API (tests/fake_twilio.py) --------------------------------------------


@contextmanager
def serving(wsgi: Callable[..., Any]) -> Iterator[str]:
    """``wsgi`` served over HTTP on a free localhost port, on a thread, until the block ends."""
    server = make_server("127.0.0.1", 0, wsgi, threaded=True)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


@pytest.fixture(scope="session")
def _fake_twilio_server() -> Iterator[FakeTwilio]:
    fake = FakeTwilio()
    with serving(fake.wsgi) as url:
        fake.url = url
        yield fake


@pytest.fixture
def fake_twilio(_fake_twilio_server: FakeTwilio) -> FakeTwilio:
    _fake_twilio_server.reset()
    return _fake_twilio_server


# --- the app -----------------------------------------------------------------------------------


@pytest.fixture
def settings() -> Settings:
    """The organisation's settings the tests run with (what a CALLGUARD_CONFIG file would say)."""
    return Settings(
        default_route="dial:+441332000100",
        emergency_line="+441332000999",
        caller_id=LANDLORD_NUMBER,
        organisation=Organisation(
            name="Example Homes",
            postal_address="1 Example Street, Derby DE1 1AA",
            email="customer.services@example.org",
            website="https://www.example.org/contact",
            phone="+441332000100",
        ),
        contact_rules=(
            ContactRule("calls-per-hour", window_minutes=60, max_calls=5),
            ContactRule("calls-per-day", window_minutes=1440, max_calls=10),
            ContactRule("talk-time-per-week", window_minutes=10080, max_minutes=180),
        ),
    )


@pytest.fixture
def app_config(database_url: str, fake_twilio: FakeTwilio, settings: Settings) -> dict[str, Any]:
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "DATABASE_URL": database_url,
        "REDIS_URL": TEST_REDIS_URL,
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_API_BASE_URL": fake_twilio.url,
        "TWILIO_REST_TIMEOUT_SECONDS": 1,
        "SETTINGS": settings,
        "CHECK_ANSWERS": True,  # every JSON answer of the API is checked against its shape
    }


class RequestClient(FlaskClient):
    """Each request in an app context of its own, as in production (the test's own app context
    would otherwise be shared, and with it ``g``: the signed-in user, the CSRF token)."""

    def open(self, *args: Any, **kwargs: Any) -> TestResponse:
        response: TestResponse = contextvars.Context().run(super().open, *args, **kwargs)
        return response


_APPS: dict[str, Flask] = {}  # one app per configuration, kept for the run


@pytest.fixture
def app(app_config: dict[str, Any], redis_conn: Redis, engine: Engine) -> Iterator[Flask]:
    """The app, from empty tables and an empty Redis db. Building one costs some 20 ms (werkzeug
    compiles every URL rule) and its pool's connections more, so one is built per configuration
    and kept; what it holds between requests (its config, its extensions such as the settings,
    its circuit breakers) is put back after each test, and the rate limiter (one per process,
    bound to the last app built: a CLI test or ``app_with`` builds others) is bound to it again,
    with a fresh in-memory fallback."""
    _empty_tables(engine)
    key = repr(sorted(app_config.items()))
    application = _APPS.get(key)
    if application is None:
        application = _APPS[key] = create_app(app_config)
        application.test_client_class = RequestClient
    else:
        limiter.init_app(application)  # the one rate limiter goes with the last app built
    config, extensions = dict(application.config), dict(application.extensions)
    with application.app_context():
        yield application
    application.config.clear()
    application.config.update(config)
    application.extensions.clear()
    application.extensions.update(extensions)
    for breaker in database(application).breakers.values():  # each kind of work's
        breaker.succeeded()
    call_path_breaker(application).succeeded()
    _empty_tables(engine)  # domain tests share the database and must find it empty


@pytest.fixture
def app_with(app_config: dict[str, Any], app: Flask) -> Iterator[Callable[..., Flask]]:
    """A second app, configured like the test app but with some of its dependencies broken."""
    made: list[Flask] = []

    def make(**overrides: Any) -> Flask:
        application = create_app({**app_config, **overrides})
        application.test_client_class = RequestClient
        made.append(application)
        return application

    yield make
    for application in made:
        database(application).dispose()


@pytest.fixture
def twilio_too_slow(app: Flask, fake_twilio: FakeTwilio) -> Iterator[None]:
    """Twilio's REST API answers only after the REST client has given up. The client waits
    0.2 s here instead of the tests' usual second, so the test does not wait that second."""
    clients = [app.extensions[key] for key in (twilio_gateway.EXTENSION, twilio_gateway.FAST)]
    before = [c.http_client.timeout for c in clients]
    for c in clients:
        c.http_client.timeout = 0.2
    fake_twilio.delay = 0.5
    yield
    fake_twilio.delay = 0.0
    for c, seconds in zip(clients, before, strict=True):
        c.http_client.timeout = seconds


@pytest.fixture(scope="session")
def hung_port() -> int:
    """A TCP port that accepts connections and never answers (a hung PostgreSQL)."""
    return hung_server()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def run_jobs(app: Flask) -> Callable[[], int]:
    """Take the waiting inbound calls, then run a real rq worker over the queues until they are
    empty, as `callguard worker` does; returns how many calls and jobs it ran."""

    def run() -> int:
        both = queues(app)
        before = sum(q.count for q in both)
        calls = take_calls(app, both[0].connection, burst=True)  # as the worker does first
        worker = BurstWorker(both, connection=both[0].connection)
        worker.work(burst=True)
        return calls + before

    return run


# --- Twilio webhooks, signed as Twilio signs them -------------------------------------------------


class TwilioWebhooks:
    """Posts form-encoded webhooks the way Twilio does, with a valid X-Twilio-Signature."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self._n = 0

    @staticmethod
    def sign(url: str, params: dict[str, str], token: str = AUTH_TOKEN) -> str:
        return str(RequestValidator(token).compute_signature(url, params))

    def new_call_sid(self) -> str:
        self._n += 1
        return f"CA{self._n:032x}"

    def call_params(self, from_: str, **overrides: str) -> dict[str, str]:
        """The fields Twilio sends to a Voice URL for an inbound call."""
        params = {
            "AccountSid": ACCOUNT_SID,
            "ApiVersion": "2010-04-01",
            "CallSid": overrides.pop("CallSid", None) or self.new_call_sid(),
            "CallStatus": "ringing",
            "Direction": "inbound",
            "From": from_,
            "To": LANDLORD_NUMBER,
            "Caller": from_,
            "Called": LANDLORD_NUMBER,
            "FromCountry": "GB",
            "FromCity": "DERBY",
            "ToCountry": "GB",
            "ToCity": "DERBY",
            "CallerCountry": "GB",
            "CalledCountry": "GB",
        }
        params.update(overrides)
        return params

    def post(
        self,
        path: str,
        params: dict[str, str],
        *,
        signature: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> TestResponse:
        url = PUBLIC_BASE_URL + path
        sig = signature if signature is not None else self.sign(url, params)
        all_headers = {"X-Twilio-Signature": sig, **(headers or {})}
        return self.client.post(path, data=params, headers=all_headers)

    def incoming(self, from_: str, **overrides: str) -> TestResponse:
        return self.post("/twilio/voice/incoming", self.call_params(from_, **overrides))


@pytest.fixture
def twilio(client: FlaskClient) -> TwilioWebhooks:
    return TwilioWebhooks(client)


# --- staff and customers -------------------------------------------------------------------------


@dataclass
class Staff:
    user: User
    token: str
    password: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def make_staff(app: Flask) -> Callable[..., Staff]:
    def make(
        role: str = "supervisor", name: str | None = None, password: str = "correct horse"
    ) -> Staff:
        sess = database(app).sessions()
        user, token = create_user(sess, name or f"{role}-{os.urandom(3).hex()}", role, password)
        sess.commit()
        sess.close()
        return Staff(user, token, password)

    return make


@pytest.fixture
def supervisor(make_staff: Callable[..., Staff]) -> Staff:
    return make_staff("supervisor", "sam.supervisor")


@pytest.fixture
def agent(make_staff: Callable[..., Staff]) -> Staff:
    return make_staff("agent", "alex.agent")


@pytest.fixture
def make_customer(app: Flask) -> Callable[..., Customer]:
    """Create a customer through the domain layer (audited, cache refreshed after commit)."""

    def make(
        reference: str = "HMS-0001",
        name: str = "Pat Example",
        numbers: tuple[str, ...] = ("+447400100001",),
        language: str = "en-GB",
        adjustments: dict[str, Any] | None = None,
    ) -> Customer:
        sess = database(app).sessions()
        customer = create_customer(
            sess,
            Actor(None, "test"),
            reference=reference,
            name=name,
            phone_numbers=list(numbers),
            language=language,
            adjustments=adjustments,
        )
        sess.commit()
        sess.close()
        return customer

    return make


@pytest.fixture
def restrict(app: Flask) -> Callable[..., Restriction]:
    """Record a restriction through the domain layer: ``restrict(customer, kind="spoc", ...)``."""

    def make(customer: Customer, **body: Any) -> Restriction:
        """In force at once: its notice is recorded as sent today unless the test says."""
        body.setdefault("reason", "Decided at case review")
        if "notice_sent_on" not in body and not body.get("apply_now"):
            body["notice_sent_on"] = datetime.now(UTC).date().isoformat()
        sess = database(app).sessions()
        attached = sess.get(Customer, customer.id)
        assert attached is not None
        restriction = add_restriction(sess, Actor(None, "test"), attached, body)
        sess.commit()
        sess.close()
        return restriction

    return make


# --- pages in a real browser --------------------------------------------------------------------


class _RunningApp:
    """The WSGI app behind the run's one HTTP server: whichever test app is running now."""

    def __init__(self) -> None:
        self.app: Flask | None = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if self.app is None:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"no test is running"]
        return self.app(environ, start_response)


@pytest.fixture(scope="session")
def _http_server() -> Iterator[tuple[_RunningApp, str]]:
    running = _RunningApp()
    with serving(running) as url:
        yield running, url


@pytest.fixture
def live_server(app: Flask, _http_server: tuple[_RunningApp, str]) -> Iterator[str]:
    """The test's app served over HTTP on localhost (one server per run, one origin for the
    browser, so its page can be kept from test to test)."""
    running, url = _http_server
    running.app = app
    yield url
    running.app = None


CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def _tab(browser: Any, _http_server: tuple[_RunningApp, str]) -> Iterator[Any]:
    context = browser.new_context(base_url=_http_server[1])
    yield context.new_page()
    context.close()


@pytest.fixture
def page(_tab: Any, live_server: str) -> Iterator[Any]:
    """A browser tab on the test's app, signed out and on a blank page: one tab serves the whole
    run (a new context costs a renderer process, some 170 ms a test)."""
    _tab.set_default_timeout(15000)  # generous: two test workers and Chromium share two cores
    yield _tab
    _tab.goto("about:blank")  # stops the page's timers before the next test's app takes over
    _tab.context.clear_cookies()


@pytest.fixture
def server_errors(page: Any) -> Iterator[list[str]]:
    """Every response the browser got with a 5xx status, in any of the tab's context's pages (a
    link that opens a new tab included): a page must never answer with one."""
    seen: list[str] = []

    def note(response: Any) -> None:
        if response.status >= 500:
            seen.append(f"{response.status} {response.url}")

    page.context.on("response", note)
    yield seen
    page.context.remove_listener("response", note)


@pytest.fixture
def check(page: Any) -> Iterator[Any]:
    """axe and the 320 px reflow check on each page state: ``check("label")``, then
    ``check.assert_none()`` (tests/a11y.py)."""
    from tests.a11y import WIDE, Checks

    page.set_viewport_size(WIDE)
    yield Checks(page)
    page.set_viewport_size(WIDE)


CSRF_FIELD = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


@pytest.fixture
def sign_in() -> Callable[[Any, Staff], None]:
    """Sign in with the sign-in form's own fields and CSRF token, then open the page it leads to:
    ``sign_in(page, staff)``. (Typing into the form is tested once, in the page tests.)"""

    def do(page: Any, staff: Staff) -> None:
        form = page.request.get("/sign-in")
        token = CSRF_FIELD.search(form.text())
        assert token is not None, "the sign-in form has no CSRF token"
        signed_in = page.request.post(
            "/sign-in",
            form={"csrf_token": token[1], "name": staff.user.name, "password": staff.password},
        )
        assert signed_in.ok and not signed_in.url.endswith("/sign-in"), signed_in.url
        page.goto(signed_in.url)

    return do
