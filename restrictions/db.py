"""The database: an engine, its session factory, and work that waits for a commit.

No web framework here: the Flask binding (one session per request or job) lives in
``telephony.database``; scripts and tests open sessions from ``Database.sessions`` directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from restrictions.resilience import Breaker

# Session.info keys the domain reads: the Redis client the routing cache is written to.
CACHE_REDIS = "callguard.cache_redis"
T = TypeVar("T")


class Database:
    """An engine and its session factory, built from DATABASE_URL.

    Every PostgreSQL use is bounded in time (connect, statement, lock and pool timeouts), so a
    sick database costs a fast error, never a hung worker.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        options: dict[str, Any] = {"pool_pre_ping": True}
        if url.startswith("postgresql"):
            options["connect_args"] = {
                "connect_timeout": 2,  # libpq's smallest
                "options": "-c statement_timeout=5000 -c lock_timeout=2000"
                " -c idle_in_transaction_session_timeout=30000",
                "application_name": "callguard",
                # a peer that vanished is noticed in seconds, not hours
                "keepalives": 1,
                "keepalives_idle": 5,
                "keepalives_interval": 2,
                "keepalives_count": 2,
                "tcp_user_timeout": 5000,
            }
            options["pool_timeout"] = 1
            options["pool_size"] = 10
            options["max_overflow"] = 10
        elif url.startswith("sqlite"):
            options["connect_args"] = {"check_same_thread": False, "timeout": 5}
        self.engine: Engine = create_engine(url, **options)
        # webhooks that must answer in time skip PostgreSQL for a moment after it fails
        self.breaker = Breaker("postgresql")
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        install_after_commit(self.sessions)
        # Writes that are one statement (a status callback's insert) on a small pool of their
        # own: autocommit (no BEGIN, no COMMIT) and no ping before each use, three round trips
        # fewer; a connection found dead is replaced and the statement tried once more.
        if url.startswith("postgresql"):
            single = {**options, "pool_pre_ping": False, "pool_size": 8, "max_overflow": 0}
            self._single: Engine = create_engine(url, isolation_level="AUTOCOMMIT", **single)
        else:
            self._single = self.engine.execution_options(isolation_level="AUTOCOMMIT")

    def one_statement(self, work: Callable[[Connection], T]) -> T:
        """Run ``work``, a single statement, in its own implicit transaction."""
        try:
            with self._single.connect() as conn:
                return work(conn)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
        with self._single.connect() as conn:  # PostgreSQL restarted since this connection
            return work(conn)

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
