"""Isolation of the call path inside a web process (a bulkhead).

gunicorn runs each web process with a pool of threads (the ``gthread`` worker). Twilio's webhooks
may always use any of them: their own work is bounded by deadlines (the inbound decision by
0.6 s, storing a callback by 0.5 s), so they hand their thread back quickly whatever PostgreSQL
does. Staff requests (pages, the JSON API, the console's polling) may hold at most the threads
left after a reserve: when the database hangs and those requests wait on it, they are answered
503 at once instead of queueing, and the reserve keeps answering calls.

Signing in (``POST /sign-in``) also needs one of a few sign-in slots (``SIGN_IN_THREADS``, 2 by
default) before it takes a staff slot: a flood of sign-in attempts, each a deliberately slow
password hash, holds at most that many threads, and the pages staff are using keep theirs. A
sign-in finding no slot free is answered 503 ("try again shortly") at once.
"""

from __future__ import annotations

import threading

from flask import Flask, Response, g, request

from telephony.errors import json_error

TWILIO_PREFIX = "/twilio/"
# liveness, readiness and metrics: bounded by their own deadlines, and answered while staff
# requests fill their slots (a busy process is still alive, and says whether it is ready)
PROBES = frozenset({"/healthz", "/readyz", "/metrics"})
SIGN_IN_PATH = "/sign-in"


def init_app(app: Flask) -> None:
    threads = int(app.config["WEB_THREADS"])
    reserve = int(app.config["CALL_PATH_RESERVED_THREADS"])
    slots = threading.BoundedSemaphore(max(1, threads - reserve))
    sign_in_slots = threading.BoundedSemaphore(max(1, int(app.config["SIGN_IN_THREADS"])))

    @app.before_request
    def _take_slot() -> Response | None:
        if request.path.startswith(TWILIO_PREFIX) or request.path in PROBES:
            return None
        if request.path == SIGN_IN_PATH and request.method == "POST":
            if not sign_in_slots.acquire(blocking=False):
                from telephony.auth import try_again_shortly

                return try_again_shortly()
            g.sign_in_slot = True
        if not slots.acquire(timeout=0.2):
            return json_error("callguard is busy; try again in a moment", 503)
        g.bulkhead_slot = True
        return None

    @app.teardown_request
    def _give_slot_back(exc: BaseException | None) -> None:
        if g.pop("bulkhead_slot", False):
            slots.release()
        if g.pop("sign_in_slot", False):
            sign_in_slots.release()
