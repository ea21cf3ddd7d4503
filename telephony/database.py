"""The Flask binding of the database: one session per request or job, closed when it ends.

Code on the web side asks for it with ``session()`` and never makes its own; the domain takes the
session as an argument.
"""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from restrictions.db import Database

EXTENSION = "callguard.db"


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


def _close_session(exc: BaseException | None) -> None:
    sess: Session | None = g.pop("db_session", None)
    if sess is not None:
        if exc is not None:
            sess.rollback()
        sess.close()
