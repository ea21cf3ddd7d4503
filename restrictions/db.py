"""The one owner of database sessions.

A session lives for one request or one job (both run inside a Flask app context) and is closed
when the context ends; code asks for it with ``session()`` and never makes its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

EXTENSION = "callguard.db"


class Database:
    """An engine and its session factory, built from DATABASE_URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        options: dict[str, Any] = {"pool_pre_ping": True}
        if url.startswith("postgresql"):
            options["connect_args"] = {
                "connect_timeout": 2,
                "options": "-c statement_timeout=10000",
                "application_name": "callguard",
            }
            options["pool_timeout"] = 2
        elif url.startswith("sqlite"):
            options["connect_args"] = {"check_same_thread": False, "timeout": 5}
        self.engine: Engine = create_engine(url, **options)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._after_commit_hooks()

    def _after_commit_hooks(self) -> None:
        """Work registered with ``after_commit`` runs only once the transaction is durable."""

        @event.listens_for(self.sessions, "after_commit")
        def _run(sess: Session) -> None:
            pending = sess.info.pop("after_commit", [])
            for fn, args, kwargs in pending:
                fn(*args, **kwargs)

        @event.listens_for(self.sessions, "after_rollback")
        def _drop(sess: Session) -> None:
            sess.info.pop("after_commit", None)


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION] = Database(app.config["DATABASE_URL"])
    # A request ends its session even when its app context outlives it (as in tests).
    app.teardown_request(_close_session)
    app.teardown_appcontext(_close_session)


def database(app: Flask | None = None) -> Database:
    db: Database = (app or current_app).extensions[EXTENSION]
    return db


def session() -> Session:
    """The session of the current request or job."""
    if "db_session" not in g:
        g.db_session = database().sessions()
    sess: Session = g.db_session
    return sess


def after_commit(sess: Session, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Run ``fn`` after the session's transaction commits (and never if it rolls back)."""
    sess.info.setdefault("after_commit", []).append((fn, args, kwargs))


def _close_session(exc: BaseException | None) -> None:
    sess: Session | None = g.pop("db_session", None)
    if sess is not None:
        if exc is not None:
            sess.rollback()
        sess.close()
