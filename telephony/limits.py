"""Bounded input: each family of routes takes a body of at most so many bytes.

Twilio's webhooks (``/twilio/``) are small forms, the JSON API (``/api/``) and the pages small
bodies. A request that says it is larger (``Content-Length``) is refused 413 before a byte of
its body is read, before the webhooks' signature check and before any other ``before_request``
(this one is registered first); a body sent without a length (chunked) is read up to the limit
and refused, also 413, when there is more. Flask's ``MAX_CONTENT_LENGTH`` is the largest of
the limits, for anything read outside a request's own. Each limit is a setting
(``MAX_WEBHOOK_BODY_BYTES``, ``MAX_API_BODY_BYTES``, ``MAX_PAGE_BODY_BYTES``).
"""

from __future__ import annotations

import io
from typing import Any

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from telephony.errors import too_large

WEBHOOK_PREFIX = "/twilio/"
API_PREFIX = "/api/"
LIMITS = ("MAX_WEBHOOK_BODY_BYTES", "MAX_API_BODY_BYTES", "MAX_PAGE_BODY_BYTES")


def body_limit(path: str) -> int:
    """The most bytes a request to ``path`` may send."""
    if path.startswith(WEBHOOK_PREFIX):
        key = "MAX_WEBHOOK_BODY_BYTES"
    elif path.startswith(API_PREFIX):
        key = "MAX_API_BODY_BYTES"
    else:
        key = "MAX_PAGE_BODY_BYTES"
    return int(current_app.config[key])


class _Capped(io.RawIOBase):
    """A body sent without a length, refused (413) as soon as it runs past ``limit`` bytes.
    (Werkzeug's own cut-off, ``max_content_length``, stops reading at the limit and hands on
    what it read: a body cut short, not refused.)"""

    def __init__(self, stream: Any, limit: int) -> None:
        self.stream, self.limit, self.seen = stream, limit, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.stream.read(len(buffer))
        self.seen += len(data)
        if self.seen > self.limit:
            raise RequestEntityTooLarge()
        buffer[: len(data)] = data
        return len(data)


def _bound_the_body() -> Response | None:
    limit = body_limit(request.path)
    length = request.content_length  # the header alone: nothing of the body is read
    if length is not None:
        request.max_content_length = limit
        return too_large(limit) if length > limit else None
    if request.environ.get("wsgi.input_terminated") and "wsgi.input" in request.environ:
        # No length (chunked): the server ends the stream, and it is refused past the limit.
        request.environ["wsgi.input"] = _Capped(request.environ["wsgi.input"], limit)
        request.max_content_length = limit + 1  # Werkzeug's cut-off, after ours
    else:
        request.max_content_length = limit  # (nothing is read of a body without a length)
    return None


def init_app(app: Flask) -> None:
    """Register the limit; call it before anything else registers a ``before_request``."""
    # Flask defines MAX_CONTENT_LENGTH (as None), so it is set, never defaulted.
    app.config["MAX_CONTENT_LENGTH"] = max(int(app.config[key]) for key in LIMITS)
    app.before_request_funcs.setdefault(None, []).insert(0, _bound_the_body)

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(exc: RequestEntityTooLarge) -> Response:
        return too_large(body_limit(request.path))
