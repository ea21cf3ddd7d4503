"""Twilio's webhooks, all under /twilio/, all signed.

The signature check is written once, as this blueprint's ``before_request``: it runs before any
view, fails closed (403), and checks against the public URL Twilio used (PUBLIC_BASE_URL + path +
query), so it is right behind a TLS-terminating proxy.
"""

from __future__ import annotations

import functools
import logging

from flask import Blueprint, Flask, Response, current_app, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask.wrappers import Request
from twilio.request_validator import (
    HMAC_SHA1,
    HMAC_SHA256,
    RequestValidator,
    compare,
    get_signature_algorithm,
)

from telephony.urls import public_url

log = logging.getLogger("callguard.webhooks")

bp = Blueprint("twilio", __name__, url_prefix="/twilio")


def requested_url() -> str:
    """The URL as Twilio requested it: our public origin, this path, this query string as sent."""
    query = request.query_string.decode("latin-1")
    return public_url(request.path) + (f"?{query}" if query else "")


def _signing_secret(settings_header: str | None) -> str | None:
    """The auth token, or for HMAC-SHA256 the shared key named in the settings header."""
    if not settings_header:
        return current_app.config.get("TWILIO_AUTH_TOKEN") or None
    parts = dict(p.strip().partition("=")[::2] for p in settings_header.split(","))
    key_id = parts.get("key", "")
    keys: dict[str, str] = current_app.config.get("TWILIO_WEBHOOK_SIGNING_KEYS", {})
    return keys.get(key_id) or None


@functools.lru_cache(maxsize=16)
def _validator(secret: str) -> RequestValidator:
    return RequestValidator(secret)


def signature_is_valid() -> bool:
    signature = request.headers.get("X-Twilio-Signature", "")
    settings_header = request.headers.get("X-Twilio-Webhooks-Signature-Settings")
    secret = _signing_secret(settings_header)
    if not secret or not signature:
        return False
    algorithm = get_signature_algorithm(settings_header)
    validator, url = _validator(secret), requested_url()
    if "bodySHA256" not in request.args and algorithm.upper() in (HMAC_SHA1, HMAC_SHA256):
        # The URL as we publish it is what Twilio signs: one HMAC. ``validate`` computes two
        # (with and without the default port) and checks a JSON body's hash: the slow path.
        if compare(validator.compute_signature(url, request.form, algorithm), signature):
            return True
    return bool(validator.validate(url, request.form, signature, algorithm))


@bp.before_request
def require_twilio_signature() -> Response | None:
    if request.method != "POST":
        return Response("Twilio webhooks are POST only\n", status=405, mimetype="text/plain")
    if not signature_is_valid():
        log.warning("refused %s: missing or invalid X-Twilio-Signature", request.path)
        return Response(
            "invalid or missing X-Twilio-Signature\n", status=403, mimetype="text/plain"
        )
    return None


class NoSessionForTwilio(SecureCookieSessionInterface):
    """Staff sessions as Flask keeps them, but none opened for Twilio, which sends no cookie:
    building the cookie's signer was a twentieth of an inbound webhook's time."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path.startswith("/twilio/"):
            return None  # Flask's null session: readable, never saved
        return super().open_session(app, request)


def init_app(app: Flask) -> None:
    from telephony.auth import limiter
    from telephony.webhooks import (  # noqa: F401  (routes on bp)
        conference,
        dial_results,
        status,
        voice,
        whisper,
    )

    limiter.exempt(bp)  # staff sign-in is throttled; Twilio's requests are signed instead
    app.session_interface = NoSessionForTwilio()
    app.register_blueprint(bp)
