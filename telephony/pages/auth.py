"""Sign-in and sign-out for the pages (session cookie, CSRF-protected form).

Every sign-in attempt is counted in Redis before its password is checked (Flask-Limiter, one
atomic script per limit), so attempts made in parallel check no more passwords than the limits
allow: per address (``SIGN_IN_PER_ADDRESS``) and, from a browser not known to be the person's,
per user name (``SIGN_IN_PER_NAME``). A browser its person signed in from before carries a
signed device cookie and has an allowance of its own (``SIGN_IN_PER_DEVICE``), so a stranger's
failures on a name never lock its owner out of their own desk. Redis unreachable: 503.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Response, flash, redirect, render_template, request, url_for
from flask_limiter import RequestLimit
from flask_login import current_user, logout_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired

from restrictions.models import Role, User
from restrictions.staff import sign_out_everywhere, verify_password
from telephony.auth import (
    SIGN_IN_PER_ADDRESS,
    SIGN_IN_PER_DEVICE,
    SIGN_IN_PER_NAME,
    device_for,
    limiter,
    remember_device,
    seconds_until_allowed,
    start_session,
    try_again_in_words,
)
from telephony.database import session
from telephony.pages.refusals import page_blueprint

bp = page_blueprint("auth", __name__)


class SignInForm(FlaskForm):  # type: ignore[misc]
    name = StringField("User name", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired()])


def home_for(user: User) -> str:
    return (
        url_for("supervisor.alerts")
        if user.role_enum.may(Role.SUPERVISOR)
        else url_for("agent.console")
    )


def _safe_next(target: str | None) -> str | None:
    """``next`` when it is a path on this site, else None (the person's home page): never
    another site (``//host``, ``/\\host``, which browsers read as ``//host``), and never a
    control character (a CR or LF cannot go into the Location header; browsers drop tabs)."""
    if not target or len(target) > 2000 or not target.startswith("/"):
        return None
    if "\\" in target or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in target):
        return None
    parts = urlsplit(target)
    return None if parts.scheme or parts.netloc or target.startswith("//") else target


@bp.route("/", methods=["GET"])
def index() -> Any:
    return redirect(url_for("auth.login"))


def _name() -> str:
    return (request.form.get("name") or "").strip().lower()[:80]


def _name_key() -> str:
    return "sign-in:" + _name()


def _device_key() -> str:
    return "sign-in-device:" + (device_for(_name()) or "")


def _known_device() -> bool:
    return device_for(_name()) is not None


def _unknown_device() -> bool:
    return not _known_device()


def _too_many(limit: RequestLimit) -> Response:
    """429, the same words whether or not the name is anyone's, saying when to try again: when
    the limit refused lets the next attempt through (also the ``Retry-After`` header)."""
    seconds = seconds_until_allowed(limit)
    page = render_template(
        "sign_in.html",
        form=SignInForm(formdata=None),
        refusal=f"Too many attempts to sign in. {try_again_in_words(seconds)}",
    )
    response = Response(page, status=429, mimetype="text/html")
    response.headers["Retry-After"] = str(seconds)
    return response


# Each limit is counted (and checked) before the view runs, so before any password is hashed.
@bp.route("/sign-in", methods=["GET", "POST"])
@limiter.limit(
    SIGN_IN_PER_ADDRESS, methods=["POST"], exempt_when=_known_device, on_breach=_too_many
)
@limiter.limit(
    SIGN_IN_PER_NAME,
    methods=["POST"],
    key_func=_name_key,
    exempt_when=_known_device,
    on_breach=_too_many,
)
@limiter.limit(
    SIGN_IN_PER_DEVICE,
    methods=["POST"],
    key_func=_device_key,
    exempt_when=_unknown_device,
    on_breach=_too_many,
)
def login() -> Any:
    form = SignInForm()
    if form.validate_on_submit():
        user = session().scalar(select(User).where(User.name == form.name.data))
        if verify_password(user, form.password.data or ""):
            assert user is not None
            start_session(user)
            response = redirect(_safe_next(request.args.get("next")) or home_for(user))
            remember_device(response, user.name)
            return response
        flash("That user name and password do not match.", "error")
        return render_template("sign_in.html", form=form), 401
    return render_template("sign_in.html", form=form)


@bp.route("/sign-out", methods=["POST"])
def logout() -> Any:
    """Signing out signs this person out everywhere: every session they have, on every device,
    ends, and their API tokens stop working."""
    if current_user.is_authenticated:
        sess = session()
        user = sess.get(User, current_user.user.id)
        if user is not None:
            sign_out_everywhere(user)
            sess.commit()
    logout_user()
    return redirect(url_for("auth.login"))
