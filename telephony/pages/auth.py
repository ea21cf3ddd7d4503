"""Sign-in and sign-out for the pages (session cookie, CSRF-protected form)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired

from restrictions.models import Role, User
from restrictions.staff import end_sessions, verify_password
from telephony.auth import SIGN_IN_PER_ADDRESS, SIGN_IN_PER_NAME, LoginUser, limiter
from telephony.database import session

bp = Blueprint("auth", __name__)


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
    if not target:
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc and target.startswith("/") else None


@bp.route("/", methods=["GET"])
def index() -> Any:
    return redirect(url_for("auth.login"))


def _name_key() -> str:
    return "sign-in:" + (request.form.get("name") or "").strip().lower()[:80]


def _failed(response: Response) -> bool:
    return response.status_code != 302


@bp.route("/sign-in", methods=["GET", "POST"])
@limiter.limit(SIGN_IN_PER_ADDRESS, methods=["POST"], deduct_when=_failed)
@limiter.limit(SIGN_IN_PER_NAME, methods=["POST"], key_func=_name_key, deduct_when=_failed)
def login() -> Any:
    form = SignInForm()
    if form.validate_on_submit():
        user = session().scalar(select(User).where(User.name == form.name.data))
        if verify_password(user, form.password.data or ""):
            assert user is not None
            login_user(LoginUser(user))
            return redirect(_safe_next(request.args.get("next")) or home_for(user))
        flash("That user name and password do not match.", "error")
        return render_template("sign_in.html", form=form), 401
    return render_template("sign_in.html", form=form)


@bp.route("/sign-out", methods=["POST"])
def logout() -> Any:
    """Signing out ends every session this person has, on every device."""
    if current_user.is_authenticated:
        sess = session()
        user = sess.get(User, current_user.user.id)
        if user is not None:
            end_sessions(user)
            sess.commit()
    logout_user()
    return redirect(url_for("auth.login"))
