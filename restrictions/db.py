"""The database: an engine, its session factory, and work that waits for a commit.

No web framework here: the Flask binding (one session per request or job) lives in
``telephony.database``; scripts and tests open sessions from ``Database.sessions`` directly.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from restrictions.resilience import Breaker, database_unavailable

# Session.info keys the domain reads: the Redis client the routing cache is written to.
CACHE_REDIS = "callguard.cache_redis"
# failures in a row on the call path before callers skip PostgreSQL for a moment
CALL_PATH_FAILURES = 3
T = TypeVar("T")

# The bounds every PostgreSQL use is held to, in milliseconds.
TIMEOUTS_MS = {
    "statement_timeout": 5000,
    "lock_timeout": 2000,
    "idle_in_transaction_session_timeout": 30000,
}
# The most connections each pool opens, by default (a web process; the CLI and workers ask for
# fewer: telephony.database, README "PostgreSQL connections and PgBouncer").
POOL_SIZE = 8
MAX_OVERFLOW = 4
AUTOCOMMIT_POOL_SIZE = 4


def _set_local(timeouts: dict[str, int]) -> str:
    """One statement that sets ``timeouts`` for the current transaction only (SET LOCAL)."""
    calls = ", ".join(f"set_config('{name}', '{ms}', true)" for name, ms in timeouts.items())
    return f"SELECT {calls}"


class Database:
    """An engine and its session factory, built from DATABASE_URL.

    Every PostgreSQL use is bounded in time (connect, statement, lock and pool timeouts), so a
    sick database costs a fast error, never a hung worker.
    """

    def __init__(
        self,
        url: str,
        *,
        pgbouncer: bool = False,
        pool_size: int = POOL_SIZE,
        max_overflow: int = MAX_OVERFLOW,
        autocommit_pool_size: int = AUTOCOMMIT_POOL_SIZE,
    ) -> None:
        self.url = url
        # Through PgBouncer in transaction pooling (DATABASE_PGBOUNCER): each transaction runs on
        # whichever server connection is free, and PgBouncer refuses the ``options`` startup
        # parameter. So the bounds are set inside every transaction (SET LOCAL, one round trip
        # more), never for the session, and psycopg prepares no statement (one prepared on one
        # server connection is missing on the next). Direct to PostgreSQL, the bounds are the
        # session's, set once when a connection is made, and psycopg prepares what it repeats.
        self.pgbouncer = pgbouncer and url.startswith("postgresql")
        timeouts = dict(TIMEOUTS_MS)
        self._set_local = _set_local(timeouts)
        options: dict[str, Any] = {"pool_pre_ping": True}
        if url.startswith("postgresql"):
            connect_args: dict[str, Any] = {
                "connect_timeout": 2,  # libpq's smallest
                "application_name": "callguard",
                # a peer that vanished is noticed in seconds, not hours
                "keepalives": 1,
                "keepalives_idle": 5,
                "keepalives_interval": 2,
                "keepalives_count": 2,
                "tcp_user_timeout": 5000,
            }
            if self.pgbouncer:
                connect_args["prepare_threshold"] = None
            else:
                connect_args["options"] = " ".join(f"-c {k}={v}" for k, v in timeouts.items())
            options["connect_args"] = connect_args
            options["pool_timeout"] = 1
            options["pool_size"] = pool_size
            options["max_overflow"] = max_overflow
        elif url.startswith("sqlite"):
            options["connect_args"] = {"check_same_thread": False, "timeout": 5}
        self.engine: Engine = create_engine(url, **options)
        if self.pgbouncer:
            event.listen(self.engine, "begin", self._bound_transaction)
        # webhooks that must answer in time skip PostgreSQL for a moment after it fails; one
        # breaker per kind of work, so a slow callback insert does not turn callers away from
        # a PostgreSQL that answers the call path's reads
        self.breakers = {
            "call-path": Breaker(
                "postgresql", threshold=CALL_PATH_FAILURES, outage=database_unavailable
            ),
            "callbacks": Breaker("postgresql (callbacks)", outage=database_unavailable),
            "health": Breaker("postgresql (readiness)", outage=database_unavailable),
        }
        self.breaker = self.breakers["call-path"]
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        install_after_commit(self.sessions)
        # Writes that are one statement (a status callback's insert) on a small pool of their
        # own: autocommit (no BEGIN, no COMMIT; through PgBouncer, see _bounded) and no ping
        # before each use, three round trips fewer; a connection found dead is replaced and the
        # statement tried once more.
        if url.startswith("postgresql"):
            single = {
                **options,
                "pool_pre_ping": False,
                "pool_size": autocommit_pool_size,
                "max_overflow": 0,
            }
            self._single: Engine = create_engine(url, isolation_level="AUTOCOMMIT", **single)
        else:
            self._single = self.engine.execution_options(isolation_level="AUTOCOMMIT")

    def _bound_transaction(self, conn: Connection) -> None:
        """The bounds for the transaction ``conn`` begins (the engine's ``begin`` event: on the
        DBAPI connection, as SQLAlchemy's own would begin another)."""
        dbapi = conn.connection.dbapi_connection
        assert dbapi is not None  # a connection that begins is checked out
        cursor = dbapi.cursor()
        try:
            cursor.execute(self._set_local)
        finally:
            cursor.close()

    def one_statement(self, work: Callable[[Connection], T]) -> T:
        """Run ``work``, a single statement, in its own implicit transaction (through PgBouncer,
        an explicit one carrying the bounds)."""
        try:
            with self._single.connect() as conn:
                return self._bounded(conn, work)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
        with self._single.connect() as conn:  # PostgreSQL restarted since this connection
            return self._bounded(conn, work)

    def _bounded(self, conn: Connection, work: Callable[[Connection], T]) -> T:
        if not self.pgbouncer:
            return work(conn)
        # Through PgBouncer a statement's bounds need a transaction to live in: BEGIN and the
        # bounds in one round trip (a simple query, prepared by nobody), then the statement, then
        # COMMIT: two round trips more than autocommit, two fewer than a session's (its ping,
        # BEGIN, bounds, statement, COMMIT).
        conn.exec_driver_sql(f"BEGIN; {self._set_local}")
        try:
            result = work(conn)
        except BaseException:
            if not conn.invalidated:  # else the connection is gone, and its transaction with it
                with contextlib.suppress(DBAPIError):
                    conn.exec_driver_sql("ROLLBACK")
            raise
        conn.exec_driver_sql("COMMIT")
        return result

    def dispose(self) -> None:
        """Close every pooled connection (tests, and processes that fork)."""
        self.engine.dispose()
        if self._single is not self.engine:
            self._single.dispose()

    def attach_cache(self, redis: Any) -> None:
        """Sessions from now on refresh the routing cache in ``redis`` after their commits."""
        self.sessions.configure(info={CACHE_REDIS: redis})


def install_after_commit(target: Any) -> None:
    """Work registered with ``after_commit`` runs only once the transaction is durable.

    ``target`` is a sessionmaker, a Session class or a Session (tests bind their own).
    """

    @event.listens_for(target, "after_commit")
    def _run(sess: Session) -> None:
        pending = sess.info.pop("after_commit", [])
        for fn, args, kwargs in pending:
            fn(*args, **kwargs)

    @event.listens_for(target, "after_rollback")
    def _drop(sess: Session) -> None:
        sess.info.pop("after_commit", None)


def after_commit(sess: Session, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Run ``fn`` after the session's transaction commits (and never if it rolls back)."""
    sess.info.setdefault("after_commit", []).append((fn, args, kwargs))
