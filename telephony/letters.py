"""Letters to the customer (decision, appeal decision, review outcome): HTML and PDF."""

from __future__ import annotations

from flask import Response

from restrictions.models import Restriction


def respond(restriction: Restriction, which: str, html: bool) -> Response:
    """The letter as a response: ``application/pdf``, or the HTML preview."""
    raise NotImplementedError(which)
