"""Settings checked when a process starts, so a mistake is found at deploy time, not on a call.

Two kinds. A *refusal* stops the web process (``create_app``; under gunicorn, before any worker
is forked: ``telephony.gunicorn_config``) and ``callguard worker`` with one line naming the
setting: a ``PUBLIC_BASE_URL`` that is not https (http only for localhost), no
``TWILIO_AUTH_TOKEN`` with a real database, a ``REDIS_URL`` that is not Redis. The TOML file's own
mistakes (a misspelt ``timezone``, a bad route) are refused as it is read
(``restrictions.settings.SettingsError``). A *warning* is a setting whose absence is safer served
than refused (callers still get TwiML): each is logged at every start and fails ``/readyz``
(``telephony.readiness``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from flask import Flask

from restrictions.settings import Settings
from telephony.config import given

log = logging.getLogger("callguard.startup")

LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
REDIS_SCHEMES = ("redis", "rediss", "unix", "redis+sentinel")


def real_database(config: Mapping[str, Any]) -> bool:
    """Serving a real system of record: DATABASE_URL set in the environment (not the zero-setup
    SQLite file), and not a test's app."""
    return given("DATABASE_URL") and not config.get("TESTING")


def redis_refusals(config: Mapping[str, Any]) -> list[str]:
    """REDIS_URL must name Redis (any process that uses it, the CLI too). Only the scheme is
    repeated: the URL may hold a password."""
    url = str(config.get("REDIS_URL") or "").strip()
    if not url:
        return []
    scheme = urlsplit(url).scheme if "://" in url else ""
    if scheme.lower() not in REDIS_SCHEMES:
        shown = f"{scheme}://…" if scheme else "a value without a scheme"
        return [
            "REDIS_URL must start with redis://, rediss://, unix:// or redis+sentinel://, "
            f"not {shown}"
        ]
    return []


def public_url_refusals(config: Mapping[str, Any]) -> list[str]:
    raw = str(config.get("PUBLIC_BASE_URL") or "")
    try:
        parts = urlsplit(raw)
        host = parts.hostname or ""
    except ValueError:
        return [f"PUBLIC_BASE_URL is not a URL: {raw!r}"]
    if parts.scheme not in ("http", "https") or not host:
        return [f"PUBLIC_BASE_URL must be the https:// origin Twilio calls, not {raw!r}"]
    if parts.query or parts.fragment or parts.username or parts.password:
        return [f"PUBLIC_BASE_URL must be an origin, without credentials, query or #: {raw!r}"]
    if parts.scheme == "http" and host.lower() not in LOCAL_HOSTS:
        return [
            f"PUBLIC_BASE_URL must be https:// (http:// only for localhost), not {raw!r}: "
            "Twilio signs and calls this URL, and staff sign in on it"
        ]
    return []


def refusals(config: Mapping[str, Any]) -> list[str]:
    """What stops a web process or a worker from starting, each a line naming its setting."""
    found = public_url_refusals(config) + redis_refusals(config)
    if real_database(config) and not config.get("TWILIO_AUTH_TOKEN"):
        found.append(
            "TWILIO_AUTH_TOKEN must be set when DATABASE_URL is set: without it every webhook "
            "is refused and nobody can be rung"
        )
    return found


def warnings(config: Mapping[str, Any], settings: Settings) -> list[str]:
    """What is served on, but logged at every start and failing ``/readyz``."""
    found = []
    for key, why in (
        ("TWILIO_AUTH_TOKEN", "every webhook is refused"),
        ("TWILIO_ACCOUNT_SID", "nobody can be rung"),
    ):
        if not config.get(key):
            found.append(f"{key} is not set: {why}")
    try:
        settings.default_destination  # noqa: B018  (parsed: it must parse)
    except Exception as exc:
        found.append(f"routes.default: {type(exc).__name__}: {exc}")
    return found


def problems(app: Flask, settings: Settings) -> list[str]:
    """Everything wrong with the running app's settings (``/readyz``): refusals too, for an
    app built by a test or changed after it started."""
    return refusals(app.config) + warnings(app.config, settings)


def log_warnings(app: Flask, settings: Settings, process: str) -> None:
    for line in warnings(app.config, settings):
        log.warning("%s started with a setting to fix: %s", process, line)
