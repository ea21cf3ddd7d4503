"""The security headers of staff pages, the JSON API and its docs, set in this one place.

Flask-Talisman sets most of them on every answer but Twilio's webhooks:

- ``Content-Security-Policy``: our own origin only, and no inline script or style anywhere (the
  templates load telephony/static/*.js and *.css), ``frame-ancestors 'none'``; and
  ``X-Frame-Options: DENY`` for older browsers: the Dismiss, End call and Decide buttons cannot
  be framed by another site and clickjacked.
- ``Referrer-Policy: same-origin`` and ``X-Content-Type-Options: nosniff``.

One ``after_request`` here does what Talisman cannot:

- ``Cache-Control: no-store`` on every answer but the static files: pages, API answers, letters
  and recordings carry personal data, and no browser or proxy is to keep them.
- ``Strict-Transport-Security`` when PUBLIC_BASE_URL is https. TLS ends at the proxy, so the
  request itself is plain http here: Talisman's own test (``request.is_secure`` or
  X-Forwarded-Proto) would depend on the proxy; the configured public origin decides instead.
  ``make run`` (http://localhost) sends none, and a browser ignores one received over http.

Twilio's webhooks (``/twilio/*``) get none of these: TwiML is read by Twilio, not shown in a
browser, and (as with the rate limiter and the session) every check skipped there is time saved
on the call path. Their answers keep their own Content-Type (text/xml).

``csrf`` is the app's CSRF protection (Flask-WTF) of the pages' forms; ``create_app`` binds it
and exempts the webhooks (signed by Twilio) and the API (bearer tokens).
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, current_app, request
from flask_talisman import Talisman
from flask_wtf.csrf import CSRFProtect

CONTENT_SECURITY_POLICY = {
    "default-src": "'none'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self'",
    "font-src": "'self'",
    "connect-src": "'self'",  # the agent console's polls and presses
    "media-src": "'self'",  # voicemail recordings, played through callguard
    "form-action": "'self'",
    "base-uri": "'none'",
    "object-src": "'none'",
    "frame-ancestors": "'none'",
}
HSTS = "max-age=31536000; includeSubDomains"
EXTENSION = "callguard.talisman"
csrf = CSRFProtect()


def _for_twilio() -> bool:
    return request.blueprint == "twilio"


class PageHeaders(Talisman):  # type: ignore[misc]
    """Flask-Talisman, whose hooks skip Twilio's signed webhooks (as ``StaffLimiter`` does)."""

    def _force_https(self) -> Any:
        return None if _for_twilio() else super()._force_https()

    def _make_nonce(self) -> Any:
        return None if _for_twilio() else super()._make_nonce()

    def _set_response_headers(self, response: Response) -> Response:
        if _for_twilio():
            return response
        answered: Response = super()._set_response_headers(response)
        return answered


def _no_store_and_hsts(response: Response) -> Response:
    if _for_twilio():
        return response
    if request.endpoint != "static" and "no-store" not in response.headers.get("Cache-Control", ""):
        response.headers["Cache-Control"] = "no-store"
    if current_app.config["PUBLIC_BASE_URL"].startswith("https://"):
        response.headers["Strict-Transport-Security"] = HSTS
    return response


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION] = PageHeaders(
        app,
        content_security_policy=CONTENT_SECURITY_POLICY,
        frame_options="DENY",
        referrer_policy="same-origin",
        x_content_type_options=True,
        force_https=False,  # TLS ends at the proxy; http://localhost must work for `make run`
        strict_transport_security=False,  # sent below, decided by PUBLIC_BASE_URL
        # create_app makes the session cookie Secure when PUBLIC_BASE_URL is https (and only
        # then, so `make run` on http://localhost can sign in); Talisman would force it always.
        session_cookie_secure=False,
        session_cookie_samesite=app.config["SESSION_COOKIE_SAMESITE"],
    )
    app.after_request(_no_store_and_hsts)
