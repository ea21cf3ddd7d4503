"""rq jobs: plain module-level functions that take ids, enqueued after the commit they depend on.

The web queues them by name (``telephony.handover``) and never imports this package; jobs may
use the web's infrastructure (settings, the Twilio gateway, TwiML). ``@job`` makes a function run
inside a Flask app context of its own, whether it is called inline (zero-setup default, tests) or by
``callguard worker``, and in a log context of its own: its lines name the call its arguments
name (``call_sid``), and a job may name the call it finds (``logs.set_call_sid``) for its own
lines alone.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from flask import Flask, current_app, has_app_context

from telephony import create_app, logs

P = ParamSpec("P")
T = TypeVar("T")

_worker_app: Flask | None = None


def _app() -> Flask:
    global _worker_app
    if _worker_app is None:
        _worker_app = create_app()
    return _worker_app


def job(fn: Callable[P, T]) -> Callable[P, T]:
    """Run ``fn`` in a fresh app context of its own, so each job has its own session and ``g``
    (the current app's when one is active, inline or in tests; else the worker's app)."""

    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        app = current_app._get_current_object() if has_app_context() else _app()  # type: ignore[attr-defined]
        with app.app_context(), logs.context(call_sid=logs.call_sid_in(args)):
            return fn(*args, **kwargs)

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        return contextvars.copy_context().run(run, *args, **kwargs)

    return wrapper
