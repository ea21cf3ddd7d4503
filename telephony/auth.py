"""Staff identity: API bearer tokens (stored hashed) and signed-in page sessions, with roles.

Roles are ordered agent < supervisor < admin (restrictions.models.Role.may). The API answers 401
without a valid token and 403 for a role that may not; pages send the person to sign in.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from flask import Flask, abort, g, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, current_user

from restrictions.lifecycle import Actor
from restrictions.models import Role, User
from restrictions.staff import user_for_token
from telephony.database import session
from telephony.errors import json_error

P = ParamSpec("P")
T = TypeVar("T")

login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Please sign in."


class StaffLimiter(Limiter):
    """Flask-Limiter, whose check before every request skips Twilio's signed webhooks: only
    staff sign-in has limits, and the check was a sixth of an inbound webhook's time."""

    def _check_request_limit(
        self, callable_name: str | None = None, in_middleware: bool = True
    ) -> None:
        if in_middleware and request.blueprint == "twilio":
            return
        super()._check_request_limit(callable_name, in_middleware)


# Sign-in is throttled per address and per user name, in Redis (shared by every web process).
limiter = StaffLimiter(key_func=get_remote_address, strategy="moving-window")
SIGN_IN_PER_ADDRESS = "20 per minute"
SIGN_IN_PER_NAME = "5 per 15 minutes"


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
            user = user_for_token(session(), token.strip())
            if user is None:
                return json_error("the bearer token is not valid", 401)
            if not user.role_enum.may(needed):
                return json_error(f"this needs the {needed.value} role", 403)
            g.user = user
            return view(*args, **kwargs)

        return wrapper

    return decorate


def page_role(needed: Role) -> Callable[[Callable[P, T]], Callable[P, T | Any]]:
    """Guard a page: sign in first, then 403 for a role that may not."""

    def decorate(view: Callable[P, T]) -> Callable[P, T | Any]:
        @functools.wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T | Any:
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            user: User = current_user.user
            if not user.role_enum.may(needed):
                abort(403)
            g.user = user
            return view(*args, **kwargs)

        return wrapper

    return decorate


def current_actor() -> Actor:
    """The signed-in staff member, as recorded in the audit trail."""
    user: User = g.user
    return Actor.of(user)


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config.get("REDIS_URL") or "memory://")
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    # Redis down must not lock staff out: the limits fall back to this process's memory.
    app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    limiter.init_app(app)
