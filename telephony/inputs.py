"""The edge: what comes in is checked here, once, before any view sees it.

Bad input gets a 4xx that says what is wrong, never a 500: ids in paths are PostgreSQL integers
(anything larger is simply not found), text carries no NUL characters (nor, in JSON, lone
surrogates such as "\\ud800": PostgreSQL can store neither), JSON bodies are objects of
bounded depth, and Twilio's ids look like Twilio's ids. The inbound-call webhook is the exception
that proves the rule: a call is never refused, so its odd input is cleaned, not rejected.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, request
from werkzeug.routing import BaseConverter, IntegerConverter

from restrictions.errors import DomainError
from restrictions.validation import MAX_INT
from telephony.errors import json_error

SID = re.compile(r"^[A-Z]{2}[0-9a-fA-F]{32}$")
MAX_JSON_DEPTH = 20
# A UTF-16 surrogate on its own (JSON's "\ud800"): no character, and no encoding can store it.
SURROGATE = re.compile(r"[\ud800-\udfff]")
NUL_TEXT = "text must not contain NUL characters"
SURROGATE_TEXT = "text must not contain lone surrogates (\\ud800 to \\udfff are not characters)"
INBOUND = "/twilio/voice/incoming"


class IdConverter(IntegerConverter):
    """``<id:name>``: a whole number that fits PostgreSQL's integer (else 404, not a 500)."""

    def __init__(self, map: Any) -> None:
        super().__init__(map, min=1, max=MAX_INT)


class SidConverter(BaseConverter):
    """``<sid:name>``: a Twilio id (two letters and 32 hex digits); anything else is not found."""

    regex = r"[A-Z]{2}[0-9a-fA-F]{32}"


def is_sid(value: str | None) -> bool:
    """Whether ``value`` is a Twilio id, all of it (``$`` alone would let a newline end it)."""
    return bool(value) and SID.fullmatch(value or "") is not None


def sid_for_log(value: str | None) -> str:
    """A Twilio id as a log line may show it: itself when it is one, else never raw (a newline
    in a signed field must not forge a line of the log): its repr, cut short."""
    if is_sid(value):
        return str(value)
    if not value:
        return "?"
    return f"(not a CallSid: {value[:40]!r})"


def _check_text(value: str) -> None:
    if "\x00" in value:
        raise DomainError(NUL_TEXT).with_status(400)
    if SURROGATE.search(value):
        raise DomainError(SURROGATE_TEXT).with_status(400)


def _depth(value: Any, limit: int) -> int:
    if limit < 0:
        raise DomainError(f"the JSON is nested more than {MAX_JSON_DEPTH} levels").with_status(400)
    if isinstance(value, dict):
        for key in value:  # keys are text too: stored as they are in adjustments, say
            _check_text(key)
        return 1 + max((_depth(v, limit - 1) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v, limit - 1) for v in value), default=0)
    if isinstance(value, str):
        _check_text(value)
    return 0


def _not_a_number(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def json_object(*, required: bool = True) -> dict[str, Any]:
    """The request's JSON object, or a 400/415 that says what is wrong; ``required=False`` takes
    an empty body as ``{}``."""
    if not request.get_data(cache=True):
        if required:
            raise DomainError("send a JSON object with Content-Type: application/json").with_status(
                415 if not request.is_json else 400
            )
        return {}
    if not request.is_json:
        raise DomainError("send a JSON object with Content-Type: application/json").with_status(415)
    try:
        data = json.loads(request.get_data(as_text=True), parse_constant=_not_a_number)
    except RecursionError:
        raise DomainError(f"the JSON is nested more than {MAX_JSON_DEPTH} levels").with_status(
            400
        ) from None
    except ValueError as exc:
        raise DomainError(f"the body is not valid JSON ({exc})").with_status(400) from None
    if not isinstance(data, dict):
        raise DomainError("the body must be a JSON object").with_status(400)
    _depth(data, MAX_JSON_DEPTH)
    return data


def _has_nul(values: Mapping[str, Any]) -> bool:
    return any("\x00" in k or "\x00" in str(v) for k, v in values.items())


def clean_form(form: Mapping[str, str]) -> dict[str, str]:
    """Twilio's fields for the inbound call, NULs removed and lengths bounded (never refused)."""
    return {k.replace("\x00", "")[:64]: str(v).replace("\x00", "")[:500] for k, v in form.items()}


def _check_request() -> Response | None:
    if "\x00" in request.path:
        return json_error("the path must not contain NUL characters", 400)
    query = request.query_string.decode("latin-1")
    if ("\x00" in query or "%00" in query) and request.path != INBOUND:
        return json_error("the query must not contain NUL characters", 400)
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        if request.path != INBOUND and _has_nul(request.form):
            return json_error("form fields must not contain NUL characters", 400)
    return None


def init_app(app: Flask) -> None:
    app.url_map.converters["id"] = IdConverter
    app.url_map.converters["sid"] = SidConverter
    app.before_request(_check_request)
