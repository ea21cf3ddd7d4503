"""Staff identity: API bearer tokens (stored hashed) and signed-in page sessions, with roles.

Roles are ordered agent < supervisor < admin (restrictions.models.Role.may). The API answers 401
without a valid token and 403 for a role that may not; pages send the person to sign in.

A page session lives in the signed session cookie with when it began and when its person was
last seen: it ends after ``SESSION_IDLE_MINUTES`` without a request from them (the agent
console's background polls do not count) and ``SESSION_MAX_HOURS`` after signing in, whatever
happens, checked here on every request; the user's ``session_epoch`` ends all of their sessions
at once. CSRF tokens live in the session (Flask-WTF) and so die with it; none is older than
``SESSION_MAX_HOURS`` either (``WTF_CSRF_TIME_LIMIT``).

Sign-in is throttled in Redis before any password is checked (see telephony.pages.auth), with a
signed *device cookie* (ASVS 2.2.1; OWASP's "device cookies") that lets a browser its person has
signed in from before get past the limit strangers' failures put on their name.
"""

from __future__ import annotations

import functools
import logging
import math
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, ParamSpec, TypeVar, cast
from zoneinfo import ZoneInfo

from flask import Flask, Response, abort, current_app, flash, g, render_template, request
from flask import session as flask_session
from flask_limiter import Limiter, RateLimitExceeded, RequestLimit
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, current_user, login_user
from itsdangerous import BadData, URLSafeTimedSerializer
from sqlalchemy import update
from werkzeug.exceptions import TooManyRequests
from werkzeug.wrappers import Response as BaseResponse

from restrictions.lifecycle import Actor
from restrictions.models import ApiToken, Role, User
from restrictions.staff import authenticate_token, dummy_hash
from telephony.database import database, session
from telephony.errors import error_page, json_error

P = ParamSpec("P")
T = TypeVar("T")

login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Please sign in."


log = logging.getLogger("callguard.auth")


def try_again_shortly() -> Response:
    """503: sign-in cannot be throttled (Redis is unreachable) or is busy; nothing was checked."""
    response = error_page(
        "Try again shortly", "Signing in is unavailable just now; try again shortly.", 503
    )
    response.headers["Retry-After"] = "5"
    return response


class StaffLimiter(Limiter):
    """Flask-Limiter, whose check before every request skips Twilio's signed webhooks: only
    staff sign-in has limits, and the check was a sixth of an inbound webhook's time.

    It fails closed: when Redis cannot count an attempt, the sign-in is refused with a 503
    ("try again shortly") and no password is checked. Counting in each process's memory
    instead would give an attacker a fresh allowance per process and per restart."""

    def _check_request_limit(
        self, callable_name: str | None = None, in_middleware: bool = True
    ) -> None:
        if in_middleware and request.blueprint == "twilio":
            return
        try:
            super()._check_request_limit(callable_name, in_middleware)
        except RateLimitExceeded:
            raise
        except Exception as exc:  # the storage: Redis down, refusing or too slow
            log.warning("sign-in refused: its attempts cannot be counted: %s", exc)
            abort(try_again_shortly())


# Sign-in is throttled per address, per user name and per known device, in Redis (shared by
# every web process). Each attempt is counted, atomically (one Lua script per limit), before
# its password is checked.
limiter = StaffLimiter(key_func=get_remote_address, strategy="moving-window")
SIGN_IN_PER_ADDRESS = "20 per minute"
# From a browser not known to be the person's: 5 in any 15 minutes, and 20 a day.
SIGN_IN_PER_NAME = "5 per 15 minutes; 20 per day"
# From a browser the person has signed in from (their device cookie): its own allowance.
SIGN_IN_PER_DEVICE = "10 per 15 minutes"

# --- 429: when to try again ------------------------------------------------------------------

UNKNOWN_WAIT_SECONDS = 60  # a 429 whose limit cannot be read (none known, or its storage failed)


def seconds_until_allowed(limit: RequestLimit | None) -> int:
    """Seconds until ``limit`` lets a request through again (at least 1): its window's reset
    time (Flask-Limiter's ``RequestLimit.window``, which its ``reset_at`` and ``Retry-After``
    header round up a second past), when the moving window lets the oldest attempt go."""
    if limit is None:
        return UNKNOWN_WAIT_SECONDS
    try:
        reset_time = limit.window.reset_time
    except Exception as exc:  # the storage, read again: Redis gone since the check
        log.warning("the limit's reset time cannot be read: %s", exc)
        return UNKNOWN_WAIT_SECONDS
    return max(1, math.ceil(reset_time - time.time()))


def _count(n: int, unit: str) -> str:
    return f"{n} {unit}" if n == 1 else f"{n} {unit}s"


def try_again_in_words(seconds: int, now: datetime | None = None) -> str:
    """When to try again, as a person says it, on the landlord's clock: "Try again in 15
    minutes, at 16:32." (minutes rounded up, so the time given is never too early)."""
    from telephony.config import current_settings

    if seconds < 60:
        return f"Try again in {_count(seconds, 'second')}."
    minutes = math.ceil(seconds / 60)
    hours, minutes = divmod(minutes, 60)
    parts = [_count(hours, "hour")] if hours else []
    parts += [_count(minutes, "minute")] if minutes else []
    wait = " ".join(parts)
    zone = ZoneInfo(current_settings().timezone)
    moment = now or datetime.now(UTC)
    start = moment.astimezone(zone)
    at = (moment + timedelta(seconds=seconds)).astimezone(zone)
    late = at.second or at.microsecond  # rounded up to the minute: never too early
    at = at.replace(second=0, microsecond=0) + timedelta(minutes=1 if late else 0)
    days = (at.date() - start.date()).days
    day = "" if days == 0 else "tomorrow " if days == 1 else f"on {at.day} {at:%B} "
    return f"Try again in {wait}, {day}at {at:%H:%M}."


def too_many_requests(exc: TooManyRequests) -> BaseResponse:
    """Every 429 (a limit refused the request): JSON ``{"error": …}`` for the API and Twilio's
    webhooks, a styled page for the pages (or the page the limit's own ``on_breach`` made, as
    sign-in's does), always saying when to try again and with ``Retry-After``."""
    seconds = seconds_until_allowed(limiter.current_limit)
    response: BaseResponse
    if exc.response is not None:  # made by the limit's on_breach (a Flask response)
        response = cast(BaseResponse, exc.response)
    elif request.path.startswith(("/api/", "/twilio/")):
        response = json_error(
            f"too many requests ({exc.description}); try again in {_count(seconds, 'second')}",
            429,
        )
    else:
        page = render_template(
            "too_many.html",
            message="There have been too many requests here for now.",
            when=try_again_in_words(seconds),
        )
        response = Response(page, status=429, mimetype="text/html")
    response.headers.setdefault("Retry-After", str(seconds))
    return response


# --- page sessions: idle and absolute lifetime -----------------------------------------------

SESSION_STARTED = "cg_started"
SESSION_SEEN = "cg_seen"
# Background requests a page makes by itself: they do not keep a session alive.
PASSIVE_ENDPOINTS = frozenset({"agent.live_json"})
SEEN_GRANULARITY_SECONDS = 15  # last-seen is rewritten at most this often (the cookie changes)


def session_limits(app: Flask | None = None) -> tuple[timedelta, timedelta]:
    """(idle timeout, absolute lifetime) of a page session."""
    config = (app or current_app).config
    return (
        timedelta(minutes=int(config["SESSION_IDLE_MINUTES"])),
        timedelta(hours=int(config["SESSION_MAX_HOURS"])),
    )


def start_session(user: User) -> None:
    """Sign ``user`` in on a fresh session: nothing of the signed-out one (its CSRF secret
    included) carries over."""
    flask_session.clear()
    login_user(LoginUser(user))
    now = int(time.time())
    flask_session[SESSION_STARTED] = now
    flask_session[SESSION_SEEN] = now
    # A browser-session cookie: its life is checked here, on the server, on every request
    # (_session_life), and its signature is refused once older than the absolute lifetime.


def _session_life() -> None:
    """End a signed-in session that has been idle or alive too long (before anything reads the
    signed-in user), and note that its person was seen."""
    if request.blueprint == "twilio" or "_user_id" not in flask_session:
        return
    idle, lifetime = session_limits()
    now = time.time()
    started, seen = flask_session.get(SESSION_STARTED), flask_session.get(SESSION_SEEN)
    if (
        not isinstance(started, int)
        or not isinstance(seen, int)
        or now - started > lifetime.total_seconds()
        or now - seen > idle.total_seconds()
        or started > now + 60
    ):
        flask_session.clear()
        g.pop("_login_user", None)
        g.session_ended = True
        return
    if request.endpoint not in PASSIVE_ENDPOINTS and now - seen >= SEEN_GRANULARITY_SECONDS:
        flask_session[SESSION_SEEN] = int(now)


# --- known devices (ASVS 2.2.1: a device cookie per successful sign-in) -----------------------

DEVICE_COOKIE = "cg_device"
DEVICE_SALT = "callguard.known-device"
DEVICES_PER_COOKIE = 8  # a shared desk's browser knows its last few people


def _devices() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key or "", salt=DEVICE_SALT)


def _device_max_age() -> int:
    return int(current_app.config["DEVICE_COOKIE_DAYS"]) * 86400


def known_devices() -> dict[str, str]:
    """user name (lower case) -> this browser's device id for them, from its signed cookie."""
    raw = request.cookies.get(DEVICE_COOKIE)
    if not raw:
        return {}
    try:
        value = _devices().loads(raw, max_age=_device_max_age())
    except (BadData, ValueError):
        return {}
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items()}


def device_for(name: str) -> str | None:
    """This browser's device id when the person named has signed in on it before."""
    return known_devices().get(name.strip().lower()[:80])


def remember_device(response: BaseResponse, name: str) -> None:
    """After a successful sign-in: this browser is known for ``name`` (a new device id)."""
    devices = known_devices()
    key = name.strip().lower()[:80]
    devices.pop(key, None)
    devices[key] = secrets.token_urlsafe(12)
    kept = dict(list(devices.items())[-DEVICES_PER_COOKIE:])
    response.set_cookie(
        DEVICE_COOKIE,
        _devices().dumps(kept),
        max_age=_device_max_age(),
        path="/sign-in",
        secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")),
        httponly=True,
        samesite="Strict",
    )


class LoginUser:
    """Flask-Login's view of a staff user (kept apart from the ORM row)."""

    def __init__(self, user: User) -> None:
        self.user = user
        self.is_authenticated = True
        self.is_active = user.active
        self.is_anonymous = False

    def get_id(self) -> str:
        """The session names the user and their session epoch: bumping the epoch ends it."""
        return f"{self.user.id}.{self.user.session_epoch or 0}"


@login_manager.user_loader  # type: ignore[untyped-decorator]
def _load_user(session_id: str) -> LoginUser | None:
    user_id, _, epoch = session_id.partition(".")
    if not user_id.isdigit() or not epoch.isdigit() or len(user_id) > 10:
        return None
    user = session().get(User, int(user_id))
    if user is None or not user.active or (user.session_epoch or 0) != int(epoch):
        return None  # signed out elsewhere, disabled, or the password changed
    return LoginUser(user)


def api_role(needed: Role) -> Callable[[Callable[P, T]], Callable[P, T | Any]]:
    """Guard a JSON API view: 401 without a valid bearer token, 403 for a role that may not."""

    def decorate(view: Callable[P, T]) -> Callable[P, T | Any]:
        @functools.wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T | Any:
            header = request.headers.get("Authorization", "")
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return json_error("sign in: send Authorization: Bearer <token>", 401)
            found = authenticate_token(session(), token.strip())
            if found is None:
                return json_error("the bearer token is not valid", 401)
            user, row = found
            _note_use(row)
            if not user.role_enum.may(needed):
                return json_error(f"this needs the {needed.value} role", 403)
            g.user = user
            return view(*args, **kwargs)

        return wrapper

    return decorate


TOKEN_USE_GRANULARITY = timedelta(minutes=1)


def _note_use(row: ApiToken) -> None:
    """Record when a token was last used (at most once a minute, one autocommit statement)."""
    now = datetime.now(UTC)
    if row.last_used_at is not None and now - row.last_used_at < TOKEN_USE_GRANULARITY:
        return
    database().one_statement(
        lambda conn: conn.execute(
            update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now)
        )
    )


def page_role(needed: Role) -> Callable[[Callable[P, T]], Callable[P, T | Any]]:
    """Guard a page: sign in first, then 403 for a role that may not."""

    def decorate(view: Callable[P, T]) -> Callable[P, T | Any]:
        @functools.wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T | Any:
            if not current_user.is_authenticated:
                if g.pop("session_ended", False):
                    flash("Your session has ended: please sign in again.", "info")
                return login_manager.unauthorized()
            user: User = current_user.user
            if not user.role_enum.may(needed):
                abort(403)
            g.user = user
            return view(*args, **kwargs)

        return wrapper

    return decorate


def token_or_page_role(token: Role, page: Role) -> Callable[[Callable[P, T]], Callable[P, T | Any]]:
    """Guard an API view people also open in a browser (the API's docs): with an
    ``Authorization`` header, as ``api_role(token)``; without one, by the signed-in page
    session, as a page is: sign in first, then a 403 page for a role below ``page``."""

    def decorate(view: Callable[P, T]) -> Callable[P, T | Any]:
        by_token = api_role(token)(view)

        @functools.wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T | Any:
            if "Authorization" in request.headers:
                return by_token(*args, **kwargs)
            if not current_user.is_authenticated:
                if g.pop("session_ended", False):
                    flash("Your session has ended: please sign in again.", "info")
                return login_manager.unauthorized()
            user: User = current_user.user
            if not user.role_enum.may(page):
                return error_page(
                    "Forbidden",
                    f"This page needs the {page.value} role (or an API token: "
                    "Authorization: Bearer <token>).",
                    403,
                )
            g.user = user
            return view(*args, **kwargs)

        return wrapper

    return decorate


def current_actor() -> Actor:
    """The signed-in staff member, as recorded in the audit trail."""
    user: User = g.user
    return Actor.of(user)


def init_app(app: Flask) -> None:
    # SESSION_IDLE_MINUTES, SESSION_MAX_HOURS, API_TOKEN_DAYS, DEVICE_COOKIE_DAYS: telephony.config
    _, lifetime = session_limits(app)
    app.config["PERMANENT_SESSION_LIFETIME"] = lifetime
    if app.config.get("WTF_CSRF_TIME_LIMIT") is None:  # a CSRF token dies with its session
        app.config["WTF_CSRF_TIME_LIMIT"] = int(lifetime.total_seconds())
    login_manager.init_app(app)
    app.before_request(_session_life)
    dummy_hash()  # made now, so no sign-in for an unknown name ever pays for making it
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config.get("REDIS_URL") or "memory://")
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    # Fail closed: Redis down refuses sign-in (503), never counts in this process's memory.
    app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", False)
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", False)
    if str(app.config["RATELIMIT_STORAGE_URI"]).startswith("redis"):
        # a sick Redis costs a sign-in half a second at most, then a 503
        app.config.setdefault(
            "RATELIMIT_STORAGE_OPTIONS", {"socket_timeout": 0.5, "socket_connect_timeout": 0.5}
        )
    limiter.init_app(app)
    app.register_error_handler(TooManyRequests, too_many_requests)
