"""The JSON API under /api/v1. Errors are always ``{"error": "..."}`` with a 4xx."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Flask, Response, request
from werkzeug.exceptions import HTTPException

from restrictions.errors import DomainError
from telephony.errors import json_error
from telephony.inputs import json_object

log = logging.getLogger("callguard.api")

bp = Blueprint("api", __name__, url_prefix="/api/v1")


error = json_error


def json_body() -> dict[str, Any]:
    """The request's JSON object, or a 400/415 that says what is wrong."""
    return json_object()


@bp.errorhandler(DomainError)
def _domain_error(exc: DomainError) -> Response:
    from telephony.database import session

    session().rollback()
    return error(exc.message, exc.status)


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Response:
    return error(exc.description or exc.name, exc.code or 400)


def init_app(app: Flask) -> None:
    from telephony.api import (  # noqa: F401  (routes on bp)
        alerts,
        callers,
        calls,
        customers,
        events,
        openapi,
        restrictions,
        voicemails,
    )

    app.register_blueprint(bp)

    @app.errorhandler(404)
    def _not_found(exc: HTTPException) -> Any:
        if request.path.startswith("/api/"):
            return error("no such resource", 404)
        return exc

    @app.errorhandler(405)
    def _method(exc: HTTPException) -> Any:
        if request.path.startswith("/api/"):
            return error(f"{request.method} is not allowed here", 405)
        return exc
