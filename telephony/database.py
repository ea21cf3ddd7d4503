"""The Flask binding of the database: one session per request or job, closed when it ends.

Code on the web side asks for it with ``session()`` and never makes its own; the domain takes the
session as an argument.
"""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from restrictions.db import Database
from telephony.config import ConfigurationError

EXTENSION = "callguard.db"


# The most connections a process's pools open (README "Connections"): a web process's, and the
# CLI's and workers' (create_app(serving=False)), who run a job, a call and a sweep at a time:
# their defaults differ by process (telephony.config).
POOL_SIZES = ("DATABASE_POOL_SIZE", "DATABASE_MAX_OVERFLOW", "DATABASE_AUTOCOMMIT_POOL_SIZE")


def init_app(app: Flask) -> None:
    """The app's Database, with the pools' sizes of its process (web, or the CLI or a worker)."""
    sizes = {key: int(app.config[key]) for key in POOL_SIZES}
    for key, size in sizes.items():
        least = 0 if key == "DATABASE_MAX_OVERFLOW" else 1  # SQLAlchemy's pool_size=0: no limit
        if size < least:
            raise ConfigurationError(f"{key} must be at least {least}, not {size}")
    app.extensions[EXTENSION] = Database(
        app.config["DATABASE_URL"],
        pgbouncer=_flag(app.config["DATABASE_PGBOUNCER"]),
        pool_size=sizes["DATABASE_POOL_SIZE"],
        max_overflow=sizes["DATABASE_MAX_OVERFLOW"],
        autocommit_pool_size=sizes["DATABASE_AUTOCOMMIT_POOL_SIZE"],
    )
    # A request ends its session even when its app context outlives it (as in tests).
    app.teardown_request(_close_session)
    app.teardown_appcontext(_close_session)


def _flag(value: object) -> bool:
    """DATABASE_PGBOUNCER: ``1``, ``true``, ``yes`` or ``on`` (or True, in a test's config)."""
    return str(value or "").strip().lower() in ("1", "true", "yes", "on")


def database(app: Flask | None = None) -> Database:
    db: Database = (app or current_app).extensions[EXTENSION]
    return db


def session() -> Session:
    """The session of the current request or job."""
    if "db_session" not in g:
        g.db_session = database().sessions()
    sess: Session = g.db_session
    return sess


def _close_session(exc: BaseException | None) -> None:
    sess: Session | None = g.pop("db_session", None)
    if sess is not None:
        if exc is not None:
            sess.rollback()
        sess.close()
