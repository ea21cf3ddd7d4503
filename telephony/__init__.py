"""callguard: applies a landlord's unacceptable-customer-behaviour decisions on its phone line.

``create_app`` is the only way an app is made: defaults, then the environment, then
a test's overrides. Each piece of infrastructure has an ``init_app``; nothing is built at import.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from flask import Flask, current_app
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from restrictions.settings import Settings, SettingsError, load_settings

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
    "DATABASE_PGBOUNCER",
    "REDIS_URL",
    "REDIS_SENTINELS",
    "REDIS_SENTINEL_MASTER",
    "REDIS_SENTINEL_PASSWORD",
    "REDIS_SENTINEL_DB",
    "REDIS_PASSWORD",
    "PUBLIC_BASE_URL",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_API_BASE_URL",
    "TWILIO_WEBHOOK_ALGORITHM",
    "TWILIO_WORKSPACE_SID",
    "CALLGUARD_CONFIG",
    "SECRET_KEY",
    "TRUSTED_PROXY_HOPS",
)
# The web process's threads, the bulkhead's reserve for Twilio's webhooks and the sign-in's
# share (telephony.bulkhead); whole numbers from the environment.
THREAD_KEYS = ("WEB_THREADS", "CALL_PATH_RESERVED_THREADS", "SIGN_IN_THREADS")
# Request bodies, in bytes, per family of routes (telephony.limits); whole numbers from the
# environment.
BODY_LIMIT_KEYS = ("MAX_WEBHOOK_BODY_BYTES", "MAX_API_BODY_BYTES", "MAX_PAGE_BODY_BYTES")
# The most connections each of a process's database pools opens (telephony.database): whole
# numbers.
DATABASE_POOL_KEYS = (
    "DATABASE_POOL_SIZE",
    "DATABASE_MAX_OVERFLOW",
    "DATABASE_AUTOCOMMIT_POOL_SIZE",
)
# Sessions, API tokens and sign-in (telephony.auth, telephony.bulkhead): whole numbers.
SIGN_IN_KEYS = (
    "SESSION_IDLE_MINUTES",
    "SESSION_MAX_HOURS",
    "API_TOKEN_DAYS",
    "DEVICE_COOKIE_DAYS",
    "SIGN_IN_THREADS",
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


# TWILIO_WEBHOOK_ALGORITHM as written in the environment -> twilio's name for it.
WEBHOOK_ALGORITHMS = {"HMAC-SHA1": "HMAC_SHA1", "HMAC-SHA256": "HMAC_SHA256"}


def _webhook_algorithm(raw: Any, signing_keys: dict[str, str]) -> str:
    """How Twilio signs our webhooks, fixed here (never by a request's headers): HMAC-SHA1 with
    the auth token, or HMAC-SHA256 with one of TWILIO_WEBHOOK_SIGNING_KEYS."""
    name = str(raw or "HMAC-SHA1").strip().upper().replace("_", "-")
    if name not in WEBHOOK_ALGORITHMS:
        raise ConfigurationError(
            f"TWILIO_WEBHOOK_ALGORITHM must be HMAC-SHA1 or HMAC-SHA256, not {raw!r}"
        )
    if name == "HMAC-SHA256" and not signing_keys:
        raise ConfigurationError(
            "TWILIO_WEBHOOK_ALGORITHM=HMAC-SHA256 needs TWILIO_WEBHOOK_SIGNING_KEYS "
            "(key_id=secret,...)"
        )
    if name == "HMAC-SHA1" and signing_keys:
        raise ConfigurationError(
            "TWILIO_WEBHOOK_SIGNING_KEYS is set but webhooks are checked with HMAC-SHA1 and the "
            "auth token: set TWILIO_WEBHOOK_ALGORITHM=HMAC-SHA256 to use the keys"
        )
    return WEBHOOK_ALGORITHMS[name]


def _proxy_hops(raw: Any) -> int:
    """TRUSTED_PROXY_HOPS: how many proxies in front of callguard add X-Forwarded-For,
    -Proto and -Host (0: none is believed, the connecting address is the client)."""
    text = str(raw if raw is not None else 0).strip()
    if not text.isdigit():
        raise ConfigurationError(
            f"TRUSTED_PROXY_HOPS must be a whole number of proxies (0 for none), not {raw!r}"
        )
    return int(text)


def configure(app: Flask, test_config: dict[str, Any] | None, *, serving: bool) -> Settings:
    """``app.config`` from the defaults, the environment and ``test_config``, checked before
    anything is built (``telephony.startup``); returns the organisation's settings. Raises
    ConfigurationError or SettingsError naming the setting."""
    instance = INSTANCE
    instance.mkdir(parents=True, exist_ok=True)

    app.config.from_mapping(
        DATABASE_URL=default_database_url(),
        REDIS_URL=None,
        PUBLIC_BASE_URL="http://localhost:5000",
        TWILIO_ACCOUNT_SID=None,
        TWILIO_AUTH_TOKEN=None,
        TWILIO_API_BASE_URL="https://api.twilio.com",
        TWILIO_WEBHOOK_ALGORITHM="HMAC-SHA1",
        CALLGUARD_CONFIG=None,
        SECRET_KEY=None,
        INBOUND_DEADLINE_SECONDS=0.6,
        MAX_WEBHOOK_BODY_BYTES=16 * 1024,
        MAX_API_BODY_BYTES=64 * 1024,
        MAX_PAGE_BODY_BYTES=64 * 1024,
        WTF_CSRF_TIME_LIMIT=None,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
    )
    for key in ENV_KEYS:
        if os.environ.get(key):
            app.config[key] = os.environ[key]
    for key in (*THREAD_KEYS, *BODY_LIMIT_KEYS, *SIGN_IN_KEYS, *DATABASE_POOL_KEYS):
        if os.environ.get(key, "").isdigit():
            app.config[key] = int(os.environ[key])
    app.config["TWILIO_WEBHOOK_SIGNING_KEYS"] = _signing_keys(
        os.environ.get("TWILIO_WEBHOOK_SIGNING_KEYS")
    )
    if test_config:
        app.config.update(test_config)
    app.config["TWILIO_WEBHOOK_ALGORITHM"] = _webhook_algorithm(
        app.config["TWILIO_WEBHOOK_ALGORITHM"], app.config["TWILIO_WEBHOOK_SIGNING_KEYS"]
    )

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

    from telephony import startup

    # the web refuses to serve (and ``callguard worker`` to start) on a setting that is wrong;
    # any other command refuses only a REDIS_URL that is not Redis
    refused = startup.refusals(app.config) if serving else startup.redis_refusals(app.config)
    if refused:
        raise ConfigurationError("; ".join(refused))
    app.config["TRUSTED_PROXY_HOPS"] = _proxy_hops(app.config.get("TRUSTED_PROXY_HOPS"))
    return settings


def check_environment() -> None:
    """What ``create_app()`` would refuse in this environment, found without building anything
    (no connection, no extension). gunicorn's master calls it before forking any worker
    (``telephony.gunicorn_config``), and prints a RuntimeError's message alone: a bad setting
    is one line, not a traceback from each worker."""
    app = Flask(__name__, instance_path=str(INSTANCE))
    try:
        configure(app, None, serving=True)
    except SettingsError as exc:
        raise ConfigurationError(str(exc)) from None
    from telephony.redis_store import sentinel_settings

    sentinel_settings(app.config)  # REDIS_SENTINELS and the rest: ConfigurationError


def create_app(test_config: dict[str, Any] | None = None, *, serving: bool = True) -> Flask:
    """Build the app. ``serving=False`` (the CLI) does not need SECRET_KEY: nothing is signed,
    and only a REDIS_URL that is not Redis is refused (``telephony.startup``)."""
    app = Flask(__name__, instance_path=str(INSTANCE))
    settings = configure(app, test_config, serving=serving)
    app.extensions[SETTINGS] = settings

    from telephony import (
        api,
        auth,
        bulkhead,
        errors,
        inputs,
        limits,
        logs,
        metrics,
        pages,
        readiness,
        redis_store,
        security,
        startup,
        twilio_gateway,
        webhooks,
    )
    from telephony import database as db

    logs.init_app(app)  # first: every answer gets its access line (its hook reads no body)
    if serving:
        startup.log_warnings(app, settings, "web")
    limits.init_app(app)  # then: an oversize body is refused before anything reads it
    bulkhead.init_app(app)
    errors.init_app(app)
    security.init_app(app)
    inputs.init_app(app)
    metrics.init_app(app)  # before the breakers are made: they report to it
    db.init_app(app, serving=serving)
    redis_store.init_app(app)
    readiness.init_app(app)
    db.database(app).attach_cache(redis_store.redis_client(app))
    twilio_gateway.init_app(app)
    auth.init_app(app)
    csrf.init_app(app)
    webhooks.init_app(app)
    api.init_app(app)
    pages.init_app(app)
    csrf.exempt(webhooks.bp)
    csrf.exempt(api.bp)
    hops = app.config["TRUSTED_PROXY_HOPS"]
    if hops:  # outermost: every hook, the limiter and the logs see the client the proxy saw
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops
        )
    return app


def current_settings() -> Settings:
    """The organisation's settings for the current app (CALLGUARD_CONFIG)."""
    value: Settings = current_app.extensions[SETTINGS]
    return value
