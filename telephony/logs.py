"""Logs an operator can use: one JSON object a line (``LOG_FORMAT=json``, the default in
production, i.e. when DATABASE_URL is set) or plain text (``make run``), configured once.

Every line written while a call is being handled carries its ``call_sid`` and a ``request_id``
(the web request's, or the worker's job or stream entry): two context variables, set in a
``before_request`` (the path's or query's ``call_sid``; for Twilio's webhooks, once the signature
is checked, the form's ``CallSid``) and in the worker around each job and stream entry, and put
on each record by ``ContextFilter``. Only a value that ``is_sid`` accepts is ever put there, so a
CallSid that is not one is never logged as it came. One access line per request
(``callguard.access``: method, path without its query, status, duration, request id). The Twilio
library's request dumps (``twilio.http_client``) show only at ``LOG_LEVEL=DEBUG``.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, g, request

from restrictions.resilience import carry_context
from telephony.config import default_log_format
from telephony.inputs import is_sid

CALL_SID: contextvars.ContextVar[str | None] = contextvars.ContextVar("call_sid", default=None)
REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
carry_context(CALL_SID)  # work run under a deadline, on another thread, logs the same call
carry_context(REQUEST_ID)
HANDLER_NAME = "callguard"
ACCESS = logging.getLogger("callguard.access")
TWILIO_DUMPS = "twilio.http_client"
REQUEST_ID_HEADER = "X-Request-Id"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(context)s: %(message)s"
# what every LogRecord has: anything else on a record was given as ``extra`` and is written too
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "context",
    "call_sid",
    "request_id",
}


def call_sid_in(args: Iterable[Any]) -> str | None:
    """The CallSid a job is about: its first argument when that is one, or a record's
    ``call_sid``."""
    for arg in args:
        if isinstance(arg, str):
            return arg if is_sid(arg) else None
        if isinstance(arg, Mapping):
            found = arg.get("call_sid")
            return found if isinstance(found, str) and is_sid(found) else None
        return None
    return None


@contextlib.contextmanager
def context(*, call_sid: str | None = None, request_id: str | None = None) -> Iterator[None]:
    """Log lines inside the block carry this call (only if it is a CallSid) and request id;
    what is not given is kept from the surrounding context."""
    tokens = []
    if call_sid is not None and is_sid(call_sid):
        tokens.append((CALL_SID, CALL_SID.set(call_sid)))
    if request_id is not None:
        tokens.append((REQUEST_ID, REQUEST_ID.set(request_id)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def set_call_sid(value: str | None) -> None:
    """The current request is about this call (ignored unless it is a CallSid)."""
    if value and is_sid(value):
        CALL_SID.set(value)


class ContextFilter(logging.Filter):
    """Puts ``call_sid`` and ``request_id`` from the context on every record (None outside a
    call or a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "call_sid"):
            record.call_sid = CALL_SID.get()
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, call_sid and request_id when set,
    anything given as ``extra``, and the traceback (``exception``) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("call_sid", "request_id"):
            value = getattr(record, key, None)
            if value is not None:
                line[key] = value
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in line and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``make run``'s lines: the call and request, when there are, after the logger's name."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        parts = [
            f"{key}={value}"
            for key in ("call_sid", "request_id")
            if (value := getattr(record, key, None)) is not None
        ]
        record.context = f" [{' '.join(parts)}]" if parts else ""
        return super().format(record)


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to standard error as it is when each line is written (a test or a tool may have
    swapped ``sys.stderr`` since the handler was made)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def log_format(config: Mapping[str, Any]) -> str:
    """``LOG_FORMAT`` (json or text); otherwise its default (``telephony.config``): json in
    production (DATABASE_URL set in the environment), text for ``make run``."""
    chosen = str(config.get("LOG_FORMAT") or "").lower()
    if chosen in ("json", "text"):
        return chosen
    return default_log_format()


def configure(fmt: str, level: str | int = "INFO") -> logging.Handler:
    """Configure the process's logging: one handler on the root logger (replaced, not added
    to, when called again), its format, the level, and Twilio's request dumps at DEBUG only."""
    root = logging.getLogger()
    numeric = level if isinstance(level, int) else logging.getLevelName(str(level).upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    handler = next((h for h in root.handlers if h.get_name() == HANDLER_NAME), None)
    if handler is None:
        handler = _Stderr()
        handler.set_name(HANDLER_NAME)
        handler.addFilter(ContextFilter())
        root.addHandler(handler)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root.setLevel(numeric)
    # the library writes every request and response at INFO: only a DEBUG run wants them
    logging.getLogger(TWILIO_DUMPS).setLevel(
        logging.DEBUG if numeric <= logging.DEBUG else logging.WARNING
    )
    return handler


def _printable(text: str, limit: int = 300) -> str:
    return "".join(c if c.isprintable() else "?" for c in text[:limit])


def _begin_request() -> None:
    g.log_started = time.perf_counter()
    given = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
    REQUEST_ID.set(g.request_id)
    CALL_SID.set(None)
    view_args = request.view_args or {}
    set_call_sid(request.args.get("call_sid") or view_args.get("call_sid"))


def _access_line(response: Response) -> Response:
    started = g.get("log_started")
    duration = (time.perf_counter() - started) * 1000 if started is not None else None
    request_id = g.get("request_id")
    if request_id:
        response.headers[REQUEST_ID_HEADER] = request_id
    path = _printable(request.path)
    ACCESS.info(
        "%s %s %s %.1f ms",
        request.method,
        path,
        response.status_code,
        duration or 0.0,
        extra={
            "method": request.method,
            "path": path,
            "status": response.status_code,
            "duration_ms": round(duration, 2) if duration is not None else None,
        },
    )
    return response


def _end_request(exc: BaseException | None) -> None:
    CALL_SID.set(None)
    REQUEST_ID.set(None)


def init_app(app: Flask) -> None:
    """Logging for the process (once; a later app's settings replace an earlier one's), and the
    request's context and access line. Call first, so its hook runs before any that answers
    early."""
    configure(log_format(app.config), app.config["LOG_LEVEL"])
    app.before_request(_begin_request)
    app.after_request(_access_line)
    app.teardown_request(_end_request)
