"""The database: an engine, its session factory, and work that waits for a commit.

No web framework here: the Flask binding (one session per request or job) lives in
``telephony.database``; scripts and tests open sessions from ``Database.sessions`` directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from restrictions.resilience import Breaker

# Session.info keys the domain reads: the Redis client the routing cache is written to.
CACHE_REDIS = "callguard.cache_redis"


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
        # for work that is one statement, its own implicit transaction: no BEGIN and no COMMIT,
        # two round trips fewer (a status callback's insert)
        self.single_statement_sessions = sessionmaker(
            self.engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False
        )

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
