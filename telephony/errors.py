"""The one JSON error answer: ``{"error": "<what is wrong>"}`` with its status."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, render_template, request, url_for
from markupsafe import escape
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from werkzeug.exceptions import HTTPException

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
    stylesheet = escape(url_for("static", filename="callguard.css"))
    body = (
        '<!doctype html>\n<html lang="en-GB"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} · callguard</title>"
        f'<link rel="stylesheet" href="{stylesheet}"></head>'
        '<body><header class="top"><span class="brand">callguard</span></header>'
        f'<main id="main"><h1>{escape(title)}</h1><p>{escape(message)}</p></main></body></html>\n'
    )
    return Response(body, status=status, mimetype="text/html")


# What a page's error says, in plain words (Werkzeug's own descriptions are written for developers).
PAGE_ERRORS = {
    400: (
        "Something was wrong with the request",
        "The page could not use what was sent. Go back, reload the page and try again.",
    ),
    403: (
        "You cannot open this page",
        "Your role does not allow this page. Ask a supervisor or an admin if you need it.",
    ),
    404: (
        "Page not found",
        "There is no page at this address. Check the address, or start again from the menu.",
    ),
    405: ("That cannot be done here", "This address does not take that kind of request."),
}


def page_error(exc: HTTPException) -> Response:
    """A page's 4xx answer: a page of the site (base.html: its header, its menu for the signed-in,
    a main landmark), never Werkzeug's bare one. The API and Twilio's webhooks keep theirs."""
    status = exc.code or 500
    title, message = PAGE_ERRORS.get(status, (exc.name, exc.description or exc.name))
    if status == 400 and exc.description:  # what was wrong (a CSRF token's end), then what to do
        message = f"{exc.description} {message}"
    body = render_template("error.html", title=title, message=message, status=status)
    response = Response(body, status=status, mimetype="text/html")
    allowed = getattr(exc, "valid_methods", None)
    if status == 405 and allowed:
        response.headers["Allow"] = ", ".join(sorted(allowed))
    return response


def is_page(path: str) -> bool:
    """Whether an error at ``path`` is answered with a page (not JSON, not TwiML)."""
    return not path.startswith(("/api/", "/twilio/"))


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

    @app.errorhandler(400)
    @app.errorhandler(403)
    def _page_error(exc: HTTPException) -> Response | HTTPException:
        # by its code, this handler is found before the API blueprint's own: it answers as that does
        if request.path.startswith("/api/"):
            return json_error(exc.description or exc.name, exc.code or 400)
        return page_error(exc) if is_page(request.path) else exc
