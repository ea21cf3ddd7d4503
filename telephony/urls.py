"""Public URLs: what Twilio calls us on, built from PUBLIC_BASE_URL (never from the request,
which behind a TLS-terminating proxy is the internal address). The one builder."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Flask, current_app

from telephony.twiml import CallbackUrls


def public_url(path: str, app: Flask | None = None, **query: str) -> str:
    base: str = (app or current_app).config["PUBLIC_BASE_URL"].rstrip("/")
    return base + path + (f"?{urlencode(query)}" if query else "")


def callback_urls(call_sid: str, app: Flask | None = None) -> CallbackUrls:
    return CallbackUrls(
        emergency_gather=public_url("/twilio/voice/emergency", app, call_sid=call_sid),
        conference_status=public_url("/twilio/conference/events", app),
        voicemail=public_url("/twilio/voice/voicemail", app, call_sid=call_sid),
    )
