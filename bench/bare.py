"""The benchmarks' baseline: a bare Flask app answering the webhooks' paths with fixed answers,
checking nothing and storing nothing (what the web server and Flask alone cost)."""

from __future__ import annotations

from flask import Flask, Response

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
