"""Every setting callguard reads from the environment, in one table: ``TUNABLES``.

Each ``Tunable`` has its name, its default, how its text is read and what it does; README's
*Configuration* table lists the same names with the same defaults (tests/telephony/test_config.py
holds the two together). No other module reads the environment for a setting or keeps a default
of its own: the app's code reads ``app.config[NAME]``, filled by ``load`` (the defaults, then the
environment, then a test's overrides, then the checks); code that runs without an app (gunicorn's
hooks, Alembic's ``migrations/env.py``, a scrape without an app) calls ``from_environment(NAME)``.

A setting that is wrong stops the start with one line naming it (``ConfigurationError``): a number
that is not one, an unknown webhook algorithm, a proxy count that is not a whole number.
"""

from __future__ import annotations

import copy
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask, current_app

from restrictions.settings import Settings, SettingsError, load_settings

INSTANCE = Path(__file__).resolve().parent.parent / "instance"
# the organisation's settings (CALLGUARD_CONFIG, read once) in ``app.extensions``
SETTINGS = "callguard.settings"


class ConfigurationError(RuntimeError):
    """A setting callguard needs is missing or wrong; the message names it."""


# --- how a default is given ----------------------------------------------------------------------


@dataclass(frozen=True)
class PerProcess:
    """A default that differs between a web process and the rest (``callguard worker`` and the
    other commands: ``create_app(serving=False)``)."""

    web: Any
    other: Any


@dataclass(frozen=True)
class Derived:
    """A default worked out when it is needed (``make``), as README shows it (``shown``)."""

    make: Callable[[], Any]
    shown: str


def default_database_url() -> str:
    """The zero-setup database: a SQLite file under instance/ (made when missing)."""
    INSTANCE.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{INSTANCE / 'callguard.db'}"


def default_log_format() -> str:
    """json in production (DATABASE_URL set in the environment), text for ``make run``."""
    return "json" if given("DATABASE_URL") else "text"


# --- how a value is read -------------------------------------------------------------------------
# Each takes the environment's text; a ValueError says what the value must be, and ``load``
# names the variable ("WEB_THREADS must be a whole number, not 'abc'").


def text(raw: str) -> str:
    return raw


def whole(raw: str) -> int:
    """A whole number: digits only (no sign, no spaces)."""
    if not raw.isdigit():
        raise ValueError("a whole number")
    return int(raw)


def seconds(raw: str) -> float:
    """A number of seconds above 0 (``0.5``)."""
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise ValueError("a number of seconds above 0")
    return value


FLAG_WORDS = {"1": True, "true": True, "yes": True, "on": True}
FLAG_WORDS |= {"0": False, "false": False, "no": False, "off": False}


def flag(raw: str) -> bool:
    """``1``, ``true``, ``yes``, ``on`` or ``0``, ``false``, ``no``, ``off``."""
    try:
        return FLAG_WORDS[raw.strip().lower()]
    except KeyError:
        raise ValueError("1 or 0 (true or false)") from None


def signing_keys(raw: str | None) -> dict[str, str]:
    """TWILIO_WEBHOOK_SIGNING_KEYS: ``key_id=secret,key_id=secret`` for HMAC-SHA256 webhooks."""
    keys: dict[str, str] = {}
    for part in (raw or "").split(","):
        key_id, sep, secret = part.strip().partition("=")
        if sep and key_id and secret:
            keys[key_id] = secret
    return keys


def proxy_hops(raw: Any) -> int:
    """TRUSTED_PROXY_HOPS: how many proxies in front of callguard add X-Forwarded-For,
    -Proto and -Host (0: none is believed, the connecting address is the client)."""
    value = str(raw if raw is not None else 0).strip()
    if not value.isdigit():
        raise ConfigurationError(
            f"TRUSTED_PROXY_HOPS must be a whole number of proxies (0 for none), not {raw!r}"
        )
    return int(value)


# TWILIO_WEBHOOK_ALGORITHM as written in the environment -> twilio's name for it.
WEBHOOK_ALGORITHMS = {"HMAC-SHA1": "HMAC_SHA1", "HMAC-SHA256": "HMAC_SHA256"}


def webhook_algorithm(raw: Any, keys: Mapping[str, str]) -> str:
    """How Twilio signs our webhooks, fixed here (never by a request's headers): HMAC-SHA1 with
    the auth token, or HMAC-SHA256 with one of TWILIO_WEBHOOK_SIGNING_KEYS."""
    name = str(raw or "HMAC-SHA1").strip().upper().replace("_", "-")
    if name not in WEBHOOK_ALGORITHMS:
        raise ConfigurationError(
            f"TWILIO_WEBHOOK_ALGORITHM must be HMAC-SHA1 or HMAC-SHA256, not {raw!r}"
        )
    if name == "HMAC-SHA256" and not keys:
        raise ConfigurationError(
            "TWILIO_WEBHOOK_ALGORITHM=HMAC-SHA256 needs TWILIO_WEBHOOK_SIGNING_KEYS "
            "(key_id=secret,...)"
        )
    if name == "HMAC-SHA1" and keys:
        raise ConfigurationError(
            "TWILIO_WEBHOOK_SIGNING_KEYS is set but webhooks are checked with HMAC-SHA1 and the "
            "auth token: set TWILIO_WEBHOOK_ALGORITHM=HMAC-SHA256 to use the keys"
        )
    return WEBHOOK_ALGORITHMS[name]


# --- the table -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tunable:
    """One environment variable: its default (a value, a ``PerProcess`` or a ``Derived``), how
    its text is read (``parse``), and what it does. An empty value is unset (the default) unless
    ``blank_is_value``."""

    name: str
    default: Any
    parse: Callable[[str], Any]
    doc: str
    blank_is_value: bool = False

    def default_for(self, *, serving: bool = True) -> Any:
        """The default in a web process (``serving``) or another."""
        value = self.default
        if isinstance(value, PerProcess):
            value = value.web if serving else value.other
        if isinstance(value, Derived):
            return value.make()
        return copy.copy(value)  # a mapping default is the app's own

    @property
    def shown_default(self) -> str:
        """The default as README's table begins its cell."""
        return _shown(self.default)


def _shown(value: Any) -> str:
    if isinstance(value, Derived):
        return value.shown
    if isinstance(value, PerProcess):
        return (
            f"{_shown(value.web)} in a web process; "
            f"{_shown(value.other)} in `callguard worker` and other commands"
        )
    if value is None or (isinstance(value, Mapping) and not value):
        return "unset"
    if isinstance(value, bool):
        return "`1`" if value else "`0`"
    if isinstance(value, float):
        return f"`{value:g}`"
    return f"`{value}`"


TUNABLES: tuple[Tunable, ...] = (
    # the system of record
    Tunable(
        "DATABASE_URL",
        Derived(default_database_url, "`sqlite:///instance/callguard.db`"),
        text,
        "SQLAlchemy URL of the system of record (postgresql+psycopg://… in production)",
    ),
    Tunable(
        "DATABASE_PGBOUNCER",
        False,
        flag,
        "1 when DATABASE_URL leads to PgBouncer in transaction pooling",
    ),
    Tunable(
        "DATABASE_POOL_SIZE",
        PerProcess(8, 3),
        whole,
        "connections a process keeps for sessions",
    ),
    Tunable(
        "DATABASE_MAX_OVERFLOW",
        PerProcess(4, 2),
        whole,
        "connections a process may open beyond its pool at a busy moment",
    ),
    Tunable(
        "DATABASE_AUTOCOMMIT_POOL_SIZE",
        PerProcess(4, 1),
        whole,
        "connections a process keeps for single-statement writes",
    ),
    Tunable(
        "MIGRATION_LOCK_TIMEOUT",
        "3s",
        text,
        "how long each migration waits for a lock on PostgreSQL (callguard db upgrade)",
    ),
    # Redis
    Tunable(
        "REDIS_URL",
        None,
        text,
        "Redis (redis://…, or redis+sentinel://…); unset: in-process Redis, jobs run inline",
    ),
    Tunable("REDIS_SENTINELS", None, text, "the Sentinels (host:port,host:port), with the master"),
    Tunable("REDIS_SENTINEL_MASTER", None, text, "the name of the master the Sentinels watch"),
    Tunable("REDIS_SENTINEL_PASSWORD", None, text, "the Sentinels' own password"),
    Tunable("REDIS_PASSWORD", None, text, "the Redis servers' password (requirepass), Sentinel"),
    Tunable("REDIS_SENTINEL_DB", None, text, "the Redis db number through Sentinel"),
    Tunable(
        "REDIS_TIMEOUT_SECONDS",
        0.25,
        seconds,
        "how long the call path waits on Redis for a connection or an answer",
    ),
    # Twilio
    Tunable(
        "PUBLIC_BASE_URL",
        "http://localhost:5000",
        text,
        "the public origin Twilio calls: signatures are checked against it",
    ),
    Tunable("TWILIO_ACCOUNT_SID", None, text, "the Twilio account"),
    Tunable("TWILIO_AUTH_TOKEN", None, text, "signs webhooks and authenticates REST calls"),
    Tunable(
        "TWILIO_WEBHOOK_ALGORITHM",
        "HMAC-SHA1",
        text,
        "how Twilio signs our webhooks: HMAC-SHA1 or HMAC-SHA256",
    ),
    Tunable(
        "TWILIO_WEBHOOK_SIGNING_KEYS",
        {},
        signing_keys,
        "the shared keys for HMAC-SHA256: key_id=secret,key_id=secret",
    ),
    Tunable(
        "TWILIO_API_BASE_URL",
        "https://api.twilio.com",
        text,
        "where REST calls to Twilio go",
    ),
    Tunable("TWILIO_WORKSPACE_SID", None, text, "the TaskRouter workspace (WS…)"),
    Tunable(
        "TWILIO_REST_TIMEOUT_SECONDS",
        5.0,
        seconds,
        "how long a REST call to Twilio may take",
    ),
    # the app
    Tunable("CALLGUARD_CONFIG", None, text, "path of the organisation's TOML settings"),
    Tunable("SECRET_KEY", None, text, "signs page sessions and CSRF tokens"),
    Tunable(
        "SESSION_IDLE_MINUTES",
        30,
        whole,
        "a page session ends after this many minutes without a request",
    ),
    Tunable("SESSION_MAX_HOURS", 12, whole, "a page session ends this many hours after sign-in"),
    Tunable("API_TOKEN_DAYS", 90, whole, "an API token works this many days after it is issued"),
    Tunable(
        "DEVICE_COOKIE_DAYS",
        180,
        whole,
        "how long a browser stays known for sign-in throttling",
    ),
    # the web process
    Tunable("PORT", None, whole, "the port the web process listens on (the Procfile's gunicorn)"),
    Tunable("WEB_THREADS", 8, whole, "a web process's threads: gunicorn's --threads"),
    Tunable(
        "CALL_PATH_RESERVED_THREADS",
        3,
        whole,
        "threads of a web process only Twilio's webhooks may use",
    ),
    Tunable("SIGN_IN_THREADS", 2, whole, "sign-in attempts a web process handles at once"),
    Tunable(
        "TRUSTED_PROXY_HOPS",
        0,
        proxy_hops,
        "how many proxies in front of the web process add X-Forwarded-For and the rest",
    ),
    Tunable(
        "MAX_WEBHOOK_BODY_BYTES",
        16 * 1024,
        whole,
        "the largest body Twilio's webhooks may send",
    ),
    Tunable("MAX_API_BODY_BYTES", 64 * 1024, whole, "the largest body the JSON API takes"),
    Tunable("MAX_PAGE_BODY_BYTES", 64 * 1024, whole, "the largest body the pages take"),
    Tunable(
        "INBOUND_DEADLINE_SECONDS",
        0.6,
        seconds,
        "the most an incoming call's routing decision may take before the fallback",
    ),
    Tunable(
        "CALLBACK_DEADLINE_SECONDS",
        0.5,
        seconds,
        "the most storing a Twilio callback may take before it is kept in Redis",
    ),
    # logs and metrics
    Tunable(
        "LOG_FORMAT",
        Derived(
            default_log_format,
            "`json` when `DATABASE_URL` is set (production), `text` otherwise (`make run`)",
        ),
        text,
        "json (one object a line) or text",
    ),
    Tunable("LOG_LEVEL", "INFO", text, "the least level logged"),
    Tunable("METRICS_TOKEN", None, text, "a bearer token that lets a scraper read /metrics"),
    Tunable(
        "METRICS_ALLOWED_ADDRESSES",
        "127.0.0.0/8,::1",
        text,
        "addresses and networks that may read /metrics without the token (empty: none)",
        blank_is_value=True,
    ),
    Tunable(
        "PROMETHEUS_MULTIPROC_DIR",
        None,
        text,
        "a directory every process writes its metrics to, so any answers for all",
    ),
    Tunable(
        "WORKER_METRICS_PORT",
        None,
        whole,
        "the port a callguard worker serves its own /metrics on",
    ),
    Tunable(
        "WORKER_METRICS_ADDR",
        "127.0.0.1",
        text,
        "the address a callguard worker serves its /metrics on",
    ),
    Tunable(
        "READY_DEADLINE_SECONDS",
        0.5,
        seconds,
        "how long /readyz waits on each dependency",
    ),
    Tunable(
        "READY_MAX_CALLS_WAITING",
        50,
        whole,
        "/readyz fails with more inbound calls waiting for a worker",
    ),
    Tunable(
        "READY_MAX_READY_EVENTS",
        1000,
        whole,
        "/readyz fails with more stored events waiting for the worker",
    ),
    Tunable(
        "READY_MAX_BUFFERED_EVENTS",
        1000,
        whole,
        "/readyz fails with more callbacks kept in Redis",
    ),
    Tunable(
        "READY_MAX_UNPROCESSED_EVENTS",
        1000,
        whole,
        "/readyz fails with more stored events unprocessed in PostgreSQL",
    ),
)
TUNABLE = {t.name: t for t in TUNABLES}

# What callguard fixes of Flask's and its extensions' own settings, and a test's switch: none is
# read from the environment.
FIXED: dict[str, Any] = {
    "WTF_CSRF_TIME_LIMIT": None,  # None: a CSRF token dies with its session (telephony.auth)
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "JOBS_INLINE": False,  # True: jobs run in the request even with Redis (telephony.redis_store)
}


# --- reading the environment ---------------------------------------------------------------------


def _raw(tunable: Tunable) -> str | None:
    """The environment's text for ``tunable``, or None when it is unset (or empty)."""
    raw = os.environ.get(tunable.name)
    if raw is None or (raw == "" and not tunable.blank_is_value):
        return None
    return raw


def _parsed(tunable: Tunable, raw: str) -> Any:
    try:
        return tunable.parse(raw)
    except ConfigurationError:
        raise
    except ValueError as exc:
        raise ConfigurationError(f"{tunable.name} must be {exc}, not {raw!r}") from None


def given(name: str) -> bool:
    """Whether the environment sets ``name`` (one of ``TUNABLES``)."""
    return _raw(TUNABLE[name]) is not None


def from_environment(name: str, *, serving: bool = True) -> Any:
    """``name``'s value from the environment, or its default: for code that runs without an
    app. Raises ConfigurationError for a value that is wrong."""
    tunable = TUNABLE[name]
    raw = _raw(tunable)
    return tunable.default_for(serving=serving) if raw is None else _parsed(tunable, raw)


def default(name: str) -> Any:
    """``name``'s default in a web process (for what is described without an app)."""
    return TUNABLE[name].default_for()


# --- the app's configuration ---------------------------------------------------------------------


def _zero_setup_secret(instance: Path) -> str:
    """A per-install key for trying callguard out locally; real deployments set SECRET_KEY."""
    path = instance / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_hex(32), encoding="utf-8")
    return path.read_text(encoding="utf-8").strip()


def load(app: Flask, test_config: Mapping[str, Any] | None, *, serving: bool) -> Settings:
    """``app.config`` from the defaults, the environment and ``test_config``, checked before
    anything is built (``telephony.startup``); returns the organisation's settings. Raises
    ConfigurationError or SettingsError naming the setting."""
    instance = INSTANCE
    instance.mkdir(parents=True, exist_ok=True)

    app.config.from_mapping(FIXED)
    for tunable in TUNABLES:
        raw = _raw(tunable)
        app.config[tunable.name] = (
            tunable.default_for(serving=serving) if raw is None else _parsed(tunable, raw)
        )
    if test_config:
        app.config.update(test_config)
    app.config["TWILIO_WEBHOOK_ALGORITHM"] = webhook_algorithm(
        app.config["TWILIO_WEBHOOK_ALGORITHM"], app.config["TWILIO_WEBHOOK_SIGNING_KEYS"]
    )

    zero_setup = not given("DATABASE_URL") and not app.config.get("TESTING")
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
    app.config["TRUSTED_PROXY_HOPS"] = proxy_hops(app.config["TRUSTED_PROXY_HOPS"])
    return settings


def check_environment() -> None:
    """What ``create_app()`` would refuse in this environment, found without building anything
    (no connection, no extension). gunicorn's master calls it before forking any worker
    (``telephony.gunicorn_config``), and prints a RuntimeError's message alone: a bad setting
    is one line, not a traceback from each worker."""
    app = Flask("telephony", instance_path=str(INSTANCE))
    try:
        load(app, None, serving=True)
    except SettingsError as exc:
        raise ConfigurationError(str(exc)) from None
    from telephony.redis_store import sentinel_settings

    sentinel_settings(app.config)  # REDIS_SENTINELS and the rest: ConfigurationError


def current_settings() -> Settings:
    """The organisation's settings for the current app (CALLGUARD_CONFIG)."""
    value: Settings = current_app.extensions[SETTINGS]
    return value
