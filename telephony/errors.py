"""The one JSON error answer: ``{"error": "<what is wrong>"}`` with its status."""

from __future__ import annotations

from flask import Response, jsonify


def json_error(message: str, status: int) -> Response:
    response = jsonify(error=message)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="callguard"'
    return response
