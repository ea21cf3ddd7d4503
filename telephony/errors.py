"""The one JSON error answer: ``{"error": "<what is wrong>"}`` with its status."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, request
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError

log = logging.getLogger("callguard.errors")


def json_error(message: str, status: int) -> Response:
    response = jsonify(error=message)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="callguard"'
    return response


def init_app(app: Flask) -> None:
    """A database that is down, hung past its timeouts or out of connections is a 503 that says
    so (and is logged), never a stack trace."""

    @app.errorhandler(OperationalError)
    @app.errorhandler(SQLAlchemyTimeoutError)
    def _database_unavailable(exc: Exception) -> Response:
        log.warning("database unavailable for %s %s: %s", request.method, request.path, exc)
        response = json_error("the database is unavailable just now; try again shortly", 503)
        response.headers["Retry-After"] = "5"
        return response
