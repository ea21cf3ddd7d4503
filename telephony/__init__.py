"""callguard: applies a landlord's unacceptable-customer-behaviour decisions on its phone line.

``create_app`` is the only way an app is made: defaults, then the environment, then
a test's overrides. Each piece of infrastructure has an ``init_app``; nothing is built at import.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Any

from flask import Flask, current_app
from flask_wtf.csrf import CSRFProtect

from restrictions.settings import Settings, load_settings

SETTINGS = "callguard.settings"
csrf = CSRFProtect()
INSTANCE = Path(__file__).resolve().parent.parent / "instance"


class ConfigurationError(RuntimeError):
    """A setting callguard needs is missing or wrong; the message names it."""


def default_database_url() -> str:
    """The zero-setup database: a SQLite file under instance/ (made when missing)."""
    INSTANCE.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{INSTANCE / 'callguard.db'}"


ENV_KEYS = (
    "DATABASE_URL",
    "REDIS_URL",
    "PUBLIC_BASE_URL",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_API_BASE_URL",
    "CALLGUARD_CONFIG",
    "SECRET_KEY",
)


def _zero_setup_secret(instance: Path) -> str:
    """A per-install key for trying callguard out locally; real deployments set SECRET_KEY."""
    path = instance / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_hex(32), encoding="utf-8")
    return path.read_text(encoding="utf-8").strip()


def _signing_keys(raw: str | None) -> dict[str, str]:
    """TWILIO_WEBHOOK_SIGNING_KEYS: ``key_id=secret,key_id=secret`` for HMAC-SHA256 webhooks."""
    keys: dict[str, str] = {}
    for part in (raw or "").split(","):
        key_id, sep, secret = part.strip().partition("=")
        if sep and key_id and secret:
            keys[key_id] = secret
    return keys


def create_app(test_config: dict[str, Any] | None = None, *, serving: bool = True) -> Flask:
    """Build the app. ``serving=False`` (the CLI) does not need SECRET_KEY: nothing is signed."""
    app = Flask(__name__, instance_path=str(INSTANCE))
    instance = INSTANCE
    instance.mkdir(parents=True, exist_ok=True)

    app.config.from_mapping(
        DATABASE_URL=default_database_url(),
        REDIS_URL=None,
        PUBLIC_BASE_URL="http://localhost:5000",
        TWILIO_ACCOUNT_SID=None,
        TWILIO_AUTH_TOKEN=None,
        TWILIO_API_BASE_URL="https://api.twilio.com",
        CALLGUARD_CONFIG=None,
        SECRET_KEY=None,
        INBOUND_DEADLINE_SECONDS=0.6,
        WTF_CSRF_TIME_LIMIT=None,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
    )
    for key in ENV_KEYS:
        if os.environ.get(key):
            app.config[key] = os.environ[key]
    if os.environ.get("WEB_THREADS", "").isdigit():
        app.config["WEB_THREADS"] = int(os.environ["WEB_THREADS"])
    app.config["TWILIO_WEBHOOK_SIGNING_KEYS"] = _signing_keys(
        os.environ.get("TWILIO_WEBHOOK_SIGNING_KEYS")
    )
    if test_config:
        app.config.update(test_config)

    zero_setup = not os.environ.get("DATABASE_URL") and not app.config.get("TESTING")
    if not app.config["SECRET_KEY"]:
        if serving and not zero_setup and not app.config.get("TESTING"):
            raise ConfigurationError(
                "SECRET_KEY must be set (it signs staff sessions) when DATABASE_URL is set"
            )
        app.config["SECRET_KEY"] = (
            secrets.token_hex(32) if not zero_setup else _zero_setup_secret(instance)
        )
    # Flask always has the key, so it is set, not defaulted: https means Secure cookies.
    if app.config["PUBLIC_BASE_URL"].startswith("https://") and "SESSION_COOKIE_SECURE" not in (
        test_config or {}
    ):
        app.config["SESSION_COOKIE_SECURE"] = True
        app.config["REMEMBER_COOKIE_SECURE"] = True

    settings = app.config.get("SETTINGS") or load_settings(app.config["CALLGUARD_CONFIG"])
    app.extensions[SETTINGS] = settings

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    from telephony import (
        api,
        auth,
        bulkhead,
        errors,
        inputs,
        pages,
        redis_store,
        twilio_gateway,
        webhooks,
    )
    from telephony import database as db

    bulkhead.init_app(app)
    errors.init_app(app)
    inputs.init_app(app)
    db.init_app(app)
    redis_store.init_app(app)
    db.database(app).attach_cache(redis_store.redis_client(app))
    twilio_gateway.init_app(app)
    auth.init_app(app)
    csrf.init_app(app)
    webhooks.init_app(app)
    api.init_app(app)
    pages.init_app(app)
    csrf.exempt(webhooks.bp)
    csrf.exempt(api.bp)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def current_settings() -> Settings:
    """The organisation's settings for the current app (CALLGUARD_CONFIG)."""
    value: Settings = current_app.extensions[SETTINGS]
    return value
