"""The one JSON error answer: ``{"error": "<what is wrong>"}`` with its status."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, request
from markupsafe import escape
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError

log = logging.getLogger("callguard.errors")


def json_error(message: str, status: int) -> Response:
    response = jsonify(error=message)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="callguard"'
    return response


def error_page(title: str, message: str, status: int) -> Response:
    """A page's error answer: a plain page that says what is wrong (it reads no session, no
    database: it may be answered before anything else about the request is known)."""
    body = (
        '<!doctype html>\n<html lang="en-GB"><head><meta charset="utf-8">'
        f"<title>{escape(title)} · callguard</title></head>"
        f"<body><main><h1>{escape(title)}</h1><p>{escape(message)}</p></main></body></html>\n"
    )
    return Response(body, status=status, mimetype="text/html")


def too_large(limit: int) -> Response:
    """413: the body is over its route's limit (telephony.limits). JSON for the API and
    Twilio's webhooks, a page for the pages."""
    message = f"the request body is larger than this address takes ({limit} bytes at most)"
    if request.path.startswith(("/api/", "/twilio/")):
        return json_error(message, 413)
    return error_page("Too large", message[0].upper() + message[1:] + ".", 413)


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
