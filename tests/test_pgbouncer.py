"""PostgreSQL through PgBouncer in transaction pooling (DATABASE_PGBOUNCER), against a real
pgbouncer, and how many connections a process's pools may open.

The module starts a pgbouncer of its own (Debian's, ``scripts/pgbouncer.sh``) on a free port, in
front of this worker's test database, and kills it at the end. Two names lead to the database:
the database's own (4 server connections, shared by every client, so a statement psycopg
prepared on one is missing on the next) and ``<database>_one`` (one server connection, so what a
transaction leaves behind is seen by the next client).
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask import Flask
from redis import Redis
from sqlalchemy import Connection, func, make_url, select, text
from sqlalchemy.exc import OperationalError

from restrictions import cache, db
from restrictions.events import BUFFER
from restrictions.models import Call, CallEvent
from telephony import create_app
from telephony.config import ConfigurationError
from telephony.database import database
from telephony.redis_store import redis_client
from telephony.worker import take_calls
from tests.calls import parse, spoken, status_event
from tests.conftest import TEST_DATABASE_URL, TwilioWebhooks

CONCURRENT = 50
# distinct from the defaults, so the values seen can only have come from TIMEOUTS_MS
TIMEOUTS = {
    "statement_timeout": (300, "300ms"),
    "lock_timeout": (250, "250ms"),
    "idle_in_transaction_session_timeout": (20000, "20s"),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgBouncer:
    port: int
    database: str
    user: str

    def url(self, database: str | None = None) -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database or self.database}"

    def connect(self, database: str) -> psycopg.Connection[Any]:
        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=self.user,
            dbname=database,
            autocommit=True,
            prepare_threshold=None,
            connect_timeout=2,
        )

    def transactions(self) -> int:
        """Transactions PgBouncer has passed to the database (its admin console's SHOW STATS)."""
        with self.connect("pgbouncer") as admin:
            rows = admin.execute("SHOW STATS").fetchall()
            names = [c.name for c in admin.execute("SHOW STATS").description or []]
        at = names.index("database"), names.index("total_xact_count")
        return sum(int(row[at[1]]) for row in rows if row[at[0]] == self.database)


def pgbouncer_binary() -> str:
    found = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin:/usr/bin")
    if found is None:
        pytest.fail("pgbouncer is not installed: run scripts/pgbouncer.sh (make test does)")
    return found


@pytest.fixture(scope="module")
def pgbouncer(database_url: str) -> Iterator[PgBouncer]:
    url = make_url(TEST_DATABASE_URL)
    name, user = str(url.database), str(url.username or "postgres")
    host, port = url.host or "127.0.0.1", url.port or 5432
    here = Path(tempfile.mkdtemp(prefix="callguard-pgbouncer-"))
    here.chmod(0o755)  # pgbouncer may run as another user (below), and reads its files
    listen = free_port()
    ini = here / "pgbouncer.ini"
    ini.write_text(
        "[databases]\n"
        f"{name} = host={host} port={port} dbname={name}\n"
        f"{name}_one = host={host} port={port} dbname={name} pool_size=1\n"
        "[pgbouncer]\n"
        "listen_addr = 127.0.0.1\n"
        f"listen_port = {listen}\n"
        "unix_socket_dir =\n"
        "auth_type = trust\n"
        f"auth_file = {here / 'users.txt'}\n"
        f"admin_users = {user}\n"
        # README's settings (Debian's 1.18 has no max_prepared_statements)
        "pool_mode = transaction\n"
        "server_reset_query = DISCARD ALL\n"
        "ignore_startup_parameters = extra_float_digits\n"
        "default_pool_size = 4\n"
        "max_client_conn = 500\n"
        "logfile =\n"
        "pidfile =\n",
        encoding="utf-8",
    )
    (here / "users.txt").write_text(f'"{user}" ""\n', encoding="utf-8")
    for path in here.iterdir():
        path.chmod(0o644)
    # pgbouncer refuses to run as root: it switches to Debian's postgres user itself (-u), so
    # the process started here is pgbouncer's, and killing it stops pgbouncer
    as_user = ["-u", "postgres"] if os.geteuid() == 0 else []
    log = (here / "pgbouncer.log").open("wb")
    process = subprocess.Popen(
        [pgbouncer_binary(), *as_user, str(ini)], stdout=log, stderr=subprocess.STDOUT
    )
    bouncer = PgBouncer(listen, name, user)
    deadline = time.monotonic() + 10
    while True:
        try:
            with bouncer.connect(name) as conn:
                conn.execute("SELECT 1")
            break
        except psycopg.OperationalError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                log.close()
                output = (here / "pgbouncer.log").read_text(encoding="utf-8", errors="replace")
                pytest.fail(f"pgbouncer did not start:\n{output}")
            time.sleep(0.05)
    yield bouncer
    process.kill()
    process.wait(timeout=10)
    log.close()
    shutil.rmtree(here, ignore_errors=True)


@pytest.fixture
def through(pgbouncer: PgBouncer, app_with: Callable[..., Flask]) -> Callable[..., Flask]:
    """An app whose database is reached through the module's pgbouncer (DATABASE_PGBOUNCER),
    with deadlines generous enough for a loaded test machine (what is tested is what PgBouncer
    does to the answers, not how fast they come)."""

    def make(database: str | None = None, **config: Any) -> Flask:
        return app_with(
            DATABASE_URL=pgbouncer.url(database),
            DATABASE_PGBOUNCER="1",
            INBOUND_DEADLINE_SECONDS=10,
            CALLBACK_DEADLINE_SECONDS=10,
            **config,
        )

    return make


def forget_routing_cache(redis: Redis) -> None:
    """Every caller is looked up in PostgreSQL next (the routing cache is rebuilt from it)."""
    for key in redis.scan_iter(cache.PREFIX + "*"):
        redis.delete(key)


# --- through PgBouncer -------------------------------------------------------------------------


def test_a_restricted_callers_call_is_routed_by_the_restriction_through_pgbouncer(
    app: Flask,
    through: Callable[..., Flask],
    pgbouncer: PgBouncer,
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
    redis_conn: Redis,
) -> None:
    restrict(make_customer(numbers=("+447400100001",)), kind="written_only")
    forget_routing_cache(redis_conn)
    bounced = through()
    before = pgbouncer.transactions()
    root = parse(TwilioWebhooks(bounced.test_client()).incoming("+447400100001"))
    assert "in writing only" in spoken(root), "the default route: the restriction was not read"
    assert pgbouncer.transactions() > before, "the caller was not looked up through PgBouncer"


def test_fifty_concurrent_calls_all_get_their_restriction_and_no_prepared_statement_fails(
    app: Flask,
    through: Callable[..., Flask],
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
    redis_conn: Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Fifty callers at once, each looked up in PostgreSQL (the routing cache emptied), then
    their calls recorded by five workers at once, as separate worker processes would: every
    answer and every call's row carries the caller's restriction. Twice: the second round finds
    every pooled connection used before, which is when psycopg would use the statements it
    prepared (on server connections the next transaction may not get)."""
    numbers = [f"+4474001{n:05d}" for n in range(CONCURRENT)]
    restriction_of: dict[str, int] = {}
    for n, number in enumerate(numbers):
        customer = make_customer(reference=f"HMS-{n:04d}", numbers=(number,))
        restriction_of[number] = restrict(customer, kind="written_only").id
    bounced = through()
    caplog.set_level(logging.WARNING)

    def call(sid: str, number: str) -> str:
        webhooks = TwilioWebhooks(bounced.test_client())
        return spoken(parse(webhooks.incoming(number, CallSid=sid)))

    def work(_: int) -> int:
        with bounced.app_context():
            return take_calls(bounced, redis_client(bounced), burst=True)

    for round_ in range(2):
        sids = [f"CA{round_:02x}{n:030x}" for n in range(CONCURRENT)]
        forget_routing_cache(redis_conn)
        with ThreadPoolExecutor(CONCURRENT) as threads:
            answers = list(threads.map(call, sids, numbers))
        routed = sum("in writing only" in answer for answer in answers)
        assert routed == CONCURRENT, f"{CONCURRENT - routed} callers got the default route"
        with ThreadPoolExecutor(5) as threads:
            taken = sum(threads.map(work, range(5)))
        assert taken == CONCURRENT
        with database(app).sessions() as sess:
            rows = sess.execute(
                select(Call.call_sid, Call.restriction_id).where(Call.call_sid.in_(sids))
            ).all()
        assert len(rows) == CONCURRENT, "calls were not recorded"
        assert {row.call_sid: row.restriction_id for row in rows} == {
            sid: restriction_of[number] for sid, number in zip(sids, numbers, strict=True)
        }
    assert "prepared statement" not in caplog.text
    assert "answering the default route instead" not in caplog.text


def test_status_callbacks_are_stored_in_postgresql_through_pgbouncer(
    app: Flask, through: Callable[..., Flask], redis_conn: Redis
) -> None:
    bounced = through()

    def callback(n: int) -> int:
        webhooks = TwilioWebhooks(bounced.test_client())
        sid = f"CA{n + 1:032x}"
        response = status_event(webhooks, sid, "completed", 3, CallDuration="30")
        return int(response.status_code)

    # concurrently, and more than psycopg's five uses before it prepares a statement
    with ThreadPoolExecutor(10) as threads:
        statuses = list(threads.map(callback, range(40)))
    assert statuses == [204] * 40
    with database(app).sessions() as sess:
        stored = sess.scalar(select(func.count()).select_from(CallEvent))
    assert stored == 40, "a callback was not stored in PostgreSQL (one_statement failed)"
    assert redis_conn.xlen(BUFFER) == 0, "a callback was kept in Redis instead of PostgreSQL"


@pytest.mark.parametrize("route", ["pgbouncer", "direct"])
def test_the_timeouts_apply_in_every_transaction_and_single_statement_and_end_with_it(
    app: Flask,
    through: Callable[..., Flask],
    app_with: Callable[..., Flask],
    pgbouncer: PgBouncer,
    monkeypatch: pytest.MonkeyPatch,
    route: str,
) -> None:
    """Through PgBouncer (one server connection, ``_one``), and with DATABASE_PGBOUNCER set
    but straight to PostgreSQL: the bounds are the transaction's (SET LOCAL)."""
    for name, (ms, _) in TIMEOUTS.items():
        monkeypatch.setitem(db.TIMEOUTS_MS, name, ms)
    if route == "pgbouncer":
        bounced = through(f"{pgbouncer.database}_one")
    else:
        bounced = app_with(DATABASE_PGBOUNCER="1")
    database_ = database(bounced)
    shown = {name: f"SHOW {name}" for name in TIMEOUTS}
    expected = {name: value for name, (_, value) in TIMEOUTS.items()}

    with database_.sessions() as sess:
        assert {name: sess.scalar(text(q)) for name, q in shown.items()} == expected
        started = time.monotonic()
        with pytest.raises(OperationalError) as cancelled:
            sess.execute(text("SELECT pg_sleep(3)"))
        assert isinstance(cancelled.value.orig, psycopg.errors.QueryCanceled)
        assert time.monotonic() - started < 2

    def show(conn: Connection) -> dict[str, Any]:
        return {name: conn.scalar(text(q)) for name, q in shown.items()}

    assert database_.one_statement(show) == expected
    started = time.monotonic()
    with pytest.raises(OperationalError) as cancelled:
        database_.one_statement(lambda conn: conn.execute(text("SELECT pg_sleep(3)")))
    assert isinstance(cancelled.value.orig, psycopg.errors.QueryCanceled)
    assert time.monotonic() - started < 2

    if route == "pgbouncer":
        # the one server connection, now another client's: nothing callguard set outlived its
        # transactions (a session-wide SET would be every later client's through PgBouncer)
        with pgbouncer.connect(f"{pgbouncer.database}_one") as other:
            leaked = other.execute("SHOW statement_timeout").fetchone()
        assert leaked is not None and leaked[0] != expected["statement_timeout"]


def test_without_the_setting_pgbouncer_refuses_the_connection_loudly(
    app: Flask, app_with: Callable[..., Flask], pgbouncer: PgBouncer
) -> None:
    """Direct to PostgreSQL the bounds are the session's, sent at connection (``options``), which
    PgBouncer refuses: a deployment that forgot DATABASE_PGBOUNCER fails at once, never with
    its bounds silently off."""
    direct = app_with(DATABASE_URL=pgbouncer.url())
    with pytest.raises(OperationalError, match="unsupported startup parameter: options"):
        with database(direct).sessions() as sess:
            sess.execute(text("SELECT 1"))


def test_straight_to_postgresql_the_bounds_are_the_sessions(app: Flask) -> None:
    database_ = database(app)
    with database_.sessions() as sess:
        assert sess.scalar(text("SHOW statement_timeout")) == "5s"
        assert sess.scalar(text("SHOW lock_timeout")) == "2s"
    assert database_.one_statement(lambda c: c.scalar(text("SHOW statement_timeout"))) == "5s"


# --- how many connections a process opens ------------------------------------------------------


def pool_sizes(application: Flask) -> tuple[int, int, int]:
    database_ = database(application)
    engine, single = database_.engine.pool, database_._single.pool
    return engine.size(), engine._max_overflow, single.size()  # type: ignore[attr-defined]


def test_pool_sizes_default_by_process_and_come_from_the_environment(
    app_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("DATABASE_POOL_SIZE", "DATABASE_MAX_OVERFLOW", "DATABASE_AUTOCOMMIT_POOL_SIZE"):
        monkeypatch.delenv(key, raising=False)
    made = [create_app(app_config), create_app(app_config, serving=False)]
    assert [pool_sizes(a) for a in made] == [(8, 4, 4), (3, 2, 1)]  # web, CLI and workers
    monkeypatch.setenv("DATABASE_POOL_SIZE", "5")
    monkeypatch.setenv("DATABASE_MAX_OVERFLOW", "0")
    monkeypatch.setenv("DATABASE_AUTOCOMMIT_POOL_SIZE", "2")
    made += [create_app(app_config), create_app(app_config, serving=False)]
    assert [pool_sizes(a) for a in made[2:]] == [(5, 0, 2), (5, 0, 2)]
    for application in made:
        database(application).dispose()


@pytest.mark.parametrize("key", ["DATABASE_POOL_SIZE", "DATABASE_AUTOCOMMIT_POOL_SIZE"])
def test_a_pool_of_no_connections_is_refused_not_unlimited(
    app_config: dict[str, Any], key: str
) -> None:
    with pytest.raises(ConfigurationError, match=key):
        create_app({**app_config, key: 0})
