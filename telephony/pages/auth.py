"""Sign-in and sign-out for the pages (session cookie, CSRF-protected form)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import login_user, logout_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.security import check_password_hash
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired

from restrictions.models import Role, User
from telephony.auth import LoginUser
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


@bp.route("/sign-in", methods=["GET", "POST"])
def login() -> Any:
    form = SignInForm()
    if form.validate_on_submit():
        user = session().scalar(select(User).where(User.name == form.name.data))
        if (
            user is not None
            and user.active
            and user.password_hash
            and check_password_hash(user.password_hash, form.password.data or "")
        ):
            login_user(LoginUser(user))
            return redirect(_safe_next(request.args.get("next")) or home_for(user))
        flash("That user name and password do not match.", "error")
        return render_template("sign_in.html", form=form), 401
    return render_template("sign_in.html", form=form)


@bp.route("/sign-out", methods=["POST"])
def logout() -> Any:
    logout_user()
    return redirect(url_for("auth.login"))
