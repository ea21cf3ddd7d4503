"""Twilio's webhooks, all under /twilio/, all signed.

The signature check is written once, as this blueprint's ``before_request``: it runs before any
view, fails closed (403), and checks against the public URL Twilio used (PUBLIC_BASE_URL + path +
query), so it is right behind a TLS-terminating proxy. The algorithm is configuration's
(TWILIO_WEBHOOK_ALGORITHM), never the unsigned X-Twilio-Webhooks-Signature-Settings header's.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from flask import Blueprint, Flask, Response, current_app, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask.wrappers import Request
from twilio.request_validator import HMAC_SHA1, RequestValidator, compare

from telephony import logs, twiml
from telephony.inputs import is_sid
from telephony.urls import public_url

log = logging.getLogger("callguard.webhooks")

bp = Blueprint("twilio", __name__, url_prefix="/twilio")


def requested_url() -> str:
    """The URL as Twilio requested it: our public origin, this path, this query string as sent."""
    query = request.query_string.decode("latin-1")
    return public_url(request.path) + (f"?{query}" if query else "")


def _settings(header: str | None) -> dict[str, str]:
    """X-Twilio-Webhooks-Signature-Settings (``key=<id>,algorithm=<name>``), unsigned: it may
    name the shared key to try, never the algorithm."""
    parts = (p.strip().partition("=") for p in (header or "").split(","))
    return {name.strip(): value.strip() for name, sep, value in parts if sep}


def _signing_secret(algorithm: str, settings: dict[str, str]) -> str | None:
    """The auth token for HMAC-SHA1; for HMAC-SHA256 the shared key the settings header names."""
    if algorithm == HMAC_SHA1:
        return current_app.config.get("TWILIO_AUTH_TOKEN") or None
    keys: dict[str, str] = current_app.config["TWILIO_WEBHOOK_SIGNING_KEYS"]
    return keys.get(settings.get("key", "")) or None


@functools.lru_cache(maxsize=16)
def _validator(secret: str) -> RequestValidator:
    return RequestValidator(secret)


def signature_is_valid() -> bool:
    """The one check, with the configured algorithm (TWILIO_WEBHOOK_ALGORITHM): a settings header
    that claims another is refused; a ``bodySHA256`` in the query must be the body's hash."""
    signature = request.headers.get("X-Twilio-Signature", "")
    algorithm: str = current_app.config["TWILIO_WEBHOOK_ALGORITHM"]
    settings = _settings(request.headers.get("X-Twilio-Webhooks-Signature-Settings"))
    claimed = settings.get("algorithm", algorithm).upper().replace("-", "_")
    secret = _signing_secret(algorithm, settings)
    if not secret or not signature or claimed != algorithm:
        return False
    validator, url = _validator(secret), requested_url()
    params: Any = request.form
    if "bodySHA256" in request.args:
        # A JSON body: Twilio signs the URL, whose bodySHA256 is the body's hash.
        body_hash = validator.compute_hash(request.get_data(as_text=True))
        if not compare(body_hash, request.args["bodySHA256"]):
            return False
        params = {}
    # The URL as we publish it is what Twilio signs: one HMAC. ``validate`` computes two (with
    # and without the default port): the slow path.
    if compare(validator.compute_signature(url, params, algorithm), signature):
        return True
    return bool(validator.validate(url, params, signature, algorithm))


@bp.before_request
def require_twilio_signature() -> Response | None:
    if request.method != "POST":
        return Response("Twilio webhooks are POST only\n", status=405, mimetype="text/plain")
    if not signature_is_valid():
        log.warning("refused %s: missing or invalid X-Twilio-Signature", request.path)
        return Response(
            "invalid or missing X-Twilio-Signature\n", status=403, mimetype="text/plain"
        )
    _log_the_call()
    return None


def _log_the_call() -> None:
    """Signed: what is logged from here on names the caller's call (the query's ``call_sid``,
    set already; a conference's ``cg-<CallSid>``; else the form's ``CallSid``), if it is one."""
    if logs.CALL_SID.get() is not None:
        return
    form = request.form
    caller = twiml.call_sid_of_conference(form.get("FriendlyName", "") or "")
    logs.set_call_sid(caller if is_sid(caller) else form.get("CallSid"))


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
        queue,
        status,
        studio,
        taskrouter_events,
        voice,
        whisper,
    )

    limiter.exempt(bp)  # staff sign-in is throttled; Twilio's requests are signed instead
    app.session_interface = NoSessionForTwilio()
    app.register_blueprint(bp)
