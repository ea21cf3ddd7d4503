"""The JSON API under /api/v1. Errors are always ``{"error": "..."}`` with a 4xx."""

from __future__ import annotations

import functools
import logging
import re
from typing import Any

from flask import Blueprint, Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException

from restrictions.errors import DomainError
from telephony.errors import is_page, json_error, page_error
from telephony.inputs import json_object

log = logging.getLogger("callguard.api")

bp = Blueprint("api", __name__, url_prefix="/api/v1")


error = json_error


def json_body(*, required: bool = True) -> dict[str, Any]:
    """The request's JSON object, in the shape its operation takes: a 400/415 when it is not a
    JSON object, a 422 naming the first field that does not fit (``required=False`` takes an
    empty body as ``{}``). Called by a view after it has found what its path names, so the
    role comes first, then a 404, then the body."""
    from telephony.api.openapi import check_body

    body = json_object(required=required)
    if request.url_rule is not None:
        check_body(request.method, _openapi_path(request.url_rule.rule), body)
    return body


def _openapi_path(rule: str) -> str:
    """A Flask rule as OpenAPI writes its path: ``<id:restriction_id>`` → ``{restriction_id}``."""
    return re.sub(r"<(?:[^:>]*:)?(\w+)>", r"{\1}", rule)


@bp.errorhandler(DomainError)
def _domain_error(exc: DomainError) -> Response:
    from telephony.database import session

    session().rollback()
    return error(exc.message, exc.status)


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Response:
    return error(exc.description or exc.name, exc.code or 400)


@functools.cache
def _documented_queries() -> dict[tuple[str, str], frozenset[str]]:
    """Each operation's query parameters, as its OpenAPI document declares them."""
    from telephony.api.openapi import OPERATIONS, PREFIX

    return {
        (op.method.upper(), PREFIX + op.path): frozenset(
            p["name"] for p in op.parameters if p.get("in") == "query"
        )
        for op in OPERATIONS
    }


@bp.before_request
def _body_read_first() -> None:
    """The whole body (bounded by MAX_API_BODY_BYTES) is read off the socket before the view
    runs: a view finds and locks its row before it checks the body (a 404 before a 422), and a
    client sending slowly must not hold that lock or its pooled connection meanwhile."""
    if request.method in ("POST", "PUT", "PATCH"):
        request.get_data(cache=True)


@bp.before_request
def _known_queries_only() -> Response | None:
    """A query parameter the operation does not take is a 400 naming it, never silently
    ignored (a misspelt filter would otherwise return everything)."""
    if not request.args or request.url_rule is None:
        return None
    allowed = _documented_queries().get((request.method, _openapi_path(request.url_rule.rule)))
    if allowed is None:
        return None
    unknown = sorted(set(request.args) - allowed)
    if unknown:
        named = ", ".join(repr(name[:40]) for name in unknown[:3])
        return error(f"unknown query parameter {named}; this takes {sorted(allowed)}", 400)
    return None


@bp.after_request
def _answer_fits_its_shape(response: Response) -> Response:
    """Under test (``CHECK_ANSWERS``), every JSON success must fit the shape its operation
    documents: an answer that does not is a bug, and fails the test that made it."""
    if not current_app.config.get("CHECK_ANSWERS") or request.url_rule is None:
        return response
    from telephony.api.openapi import check_answer

    if response.mimetype == "application/json":
        path = _openapi_path(request.url_rule.rule)
        wrong = check_answer(request.method, path, response.status_code, response.get_data())
        if wrong is not None:
            raise AssertionError(f"{request.method} {path} answered outside its shape: {wrong}")
    return response


def init_app(app: Flask) -> None:
    from telephony.api import (  # noqa: F401  (routes on bp)
        alerts,
        callers,
        calls,
        customers,
        events,
        openapi,
        restrictions,
        sharing,
        voicemails,
    )

    app.register_blueprint(bp)

    @app.errorhandler(404)
    def _not_found(exc: HTTPException) -> Any:
        if request.path.startswith("/api/"):
            return error("no such resource", 404)
        return page_error(exc) if is_page(request.path) else exc

    @app.errorhandler(405)
    def _method(exc: HTTPException) -> Any:
        if request.path.startswith("/api/"):
            answer = error(f"{request.method} is not allowed here", 405)
            allowed = getattr(exc, "valid_methods", None) or []
            answer.headers["Allow"] = ", ".join(sorted(allowed))  # what is, as HTTP asks
            return answer
        return page_error(exc) if is_page(request.path) else exc
