"""The benchmarks' baselines, served under the same web command as callguard.

- ``app``: a bare Flask app answering the webhooks' paths with fixed answers, checking nothing
  and storing nothing (what the web server and Flask alone cost).
- ``floor``: the least any correct answer must do, with nothing else: check Twilio's signature
  (the ``twilio`` library, one HMAC), then for an inbound call one Redis GET of the caller's
  entry, for a status callback one autocommit INSERT into PostgreSQL, before the same fixed
  answer. callguard's figure against ``floor`` is what its own logic costs; ``floor`` against
  ``app`` is what the work itself costs on this stack.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import psycopg
from flask import Flask, Response, abort, request
from redis import Redis
from sqlalchemy import make_url
from twilio.request_validator import RequestValidator

from restrictions import redis_keys

TWIML = (
    '<?xml version="1.0" encoding="UTF-8"?><Response><Say language="en-GB">Connecting you now.'
    "</Say><Dial><Number>+441332000100</Number></Dial></Response>"
)

app = Flask(__name__)


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/twilio/voice/incoming")
def incoming() -> Response:
    return Response(TWIML, mimetype="text/xml")


@app.post("/twilio/voice/status")
def status() -> Response:
    return Response(status=204)


floor = Flask("floor")
floor.add_url_rule("/healthz", view_func=healthz)
_local = threading.local()


def _signed() -> None:
    validator = RequestValidator(os.environ["TWILIO_AUTH_TOKEN"])
    url = os.environ["PUBLIC_BASE_URL"] + request.path
    if not validator.compute_signature(url, request.form) == request.headers.get(
        "X-Twilio-Signature"
    ):
        abort(403)


def _redis() -> Redis:
    if not hasattr(_local, "redis"):
        _local.redis = Redis.from_url(os.environ["REDIS_URL"])
    return _local.redis  # type: ignore[no-any-return]


def _postgresql() -> Any:
    if not hasattr(_local, "pg"):
        url = make_url(os.environ["DATABASE_URL"]).set(drivername="postgresql")
        _local.pg = psycopg.connect(url.render_as_string(hide_password=False), autocommit=True)
        _local.pg.execute(
            "CREATE TABLE IF NOT EXISTS bench_floor_events (sid text, seq int, body text, "
            "PRIMARY KEY (sid, seq))"
        )
    return _local.pg


@floor.post("/twilio/voice/incoming")
def floor_incoming() -> Response:
    _signed()
    _redis().get(redis_keys.CALLER.of(request.form.get("From", "")))
    return Response(TWIML, mimetype="text/xml")


@floor.post("/twilio/voice/status")
def floor_status() -> Response:
    _signed()
    _postgresql().execute(
        "INSERT INTO bench_floor_events VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
        (
            request.form.get("CallSid"),
            int(request.form.get("SequenceNumber", 0)),
            str(request.form),
        ),
    )
    return Response(status=204)
