"""Staff and their API tokens: an admin's list of everyone (rotate or revoke anyone's tokens, sign
anyone out everywhere, change how letters name and sign as them) and each person's own account
page (rotate my token). A new token is shown once, on the answer to the button that made it, and
never again (answers are no-store). Every button is a POST with the page's CSRF token
(CSRFProtect checks it before the view)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, url_for
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import StringField

from restrictions import staff as domain
from restrictions.errors import DomainError
from restrictions.models import Role, User
from telephony.auth import current_actor, page_role
from telephony.database import session

bp = Blueprint("staff", __name__)


def _days() -> int:
    return int(current_app.config["API_TOKEN_DAYS"])


def _person(user_id: int) -> User:
    user = session().get(User, user_id)
    if user is None:
        abort(404)
    return user


def _issued(user: User, token: str, back: str) -> Any:
    """The page that shows a new token, once."""
    return render_template("staff/token.html", person=user, token=token, days=_days(), back=back)


def _rotate(user: User, label: str, back: str) -> Any:
    if not user.active:
        flash(f"{user.name} is disabled: their tokens cannot be renewed.", "error")
        return redirect(back)
    try:
        token = domain.rotate_token(user, label=label, days=_days())
    except DomainError as exc:
        flash(exc.message, "error")
        return redirect(back)
    session().commit()
    return _issued(user, token, back)


@bp.route("/account")
@page_role(Role.AGENT)
def account() -> Any:
    return render_template(
        "staff/account.html", person=g.user, now=datetime.now(UTC), form=FlaskForm()
    )


@bp.route("/account/token/rotate", methods=["POST"])
@page_role(Role.AGENT)
def rotate_mine() -> Any:
    user = _person(g.user.id)
    return _rotate(user, f"rotated by {user.name}", url_for("staff.account"))


class DetailsForm(FlaskForm):  # type: ignore[misc]
    """How letters name and sign as a person; an emptied field removes the detail."""

    display_name = StringField('Name in letters (e.g. "Jo Bloggs")')
    job_title = StringField("Job title (left empty: letters give their role in words)")
    direct_line = StringField("Direct line (for customers they are named contact for)")


def _details_prefix(user_id: int) -> str:
    return f"details-{user_id}"


def _listing(bound: tuple[int, DetailsForm] | None = None, status: int = 200) -> Any:
    """Everyone; the details form just submitted, when it failed, comes back as typed with its
    errors beside the fields (and open)."""
    people = session().scalars(select(User).order_by(User.name)).all()

    def details_form(person: User) -> FlaskForm:
        if bound is not None and bound[0] == person.id:
            return bound[1]
        return DetailsForm(
            formdata=None, prefix=_details_prefix(person.id), **domain.letter_details(person)
        )

    return (
        render_template(
            "staff/list.html",
            people=people,
            now=datetime.now(UTC),
            form=FlaskForm(),
            details_form=details_form,
            details_open=bound[0] if bound is not None else None,
        ),
        status,
    )


@bp.route("/admin/staff")
@page_role(Role.ADMIN)
def listing() -> Any:
    return _listing()


@bp.route("/admin/staff/<id:user_id>/details", methods=["POST"])
@page_role(Role.ADMIN)
def details(user_id: int) -> Any:
    """Change how letters name and sign as someone (recorded on the audit trail)."""
    user = _person(user_id)
    form = DetailsForm(prefix=_details_prefix(user.id))
    if not form.validate_on_submit():
        if form.meta.csrf and form.csrf_token.errors:
            flash("The form had expired; please try again.", "error")
        return _listing((user.id, form), 422)
    sess = session()
    try:
        changed = domain.change_letter_details(
            sess,
            current_actor(),
            user,
            display_name=form.display_name.data,
            job_title=form.job_title.data,
            direct_line=form.direct_line.data,
        )
        sess.commit()
    except domain.DetailsInvalid as exc:
        sess.rollback()
        for field, message in exc.errors.items():
            form[field].errors.append(message)
        return _listing((user.id, form), exc.status)
    except DomainError as exc:
        sess.rollback()
        flash(exc.message, "error")
        return _listing((user.id, form), exc.status)
    flash(f"{user.name}: {'details saved' if changed else 'nothing had changed'}.", "info")
    return redirect(url_for("staff.listing", _anchor=f"person-{user.id}"))


@bp.route("/admin/staff/<id:user_id>/token/rotate", methods=["POST"])
@page_role(Role.ADMIN)
def rotate(user_id: int) -> Any:
    return _rotate(_person(user_id), f"rotated by {g.user.name}", url_for("staff.listing"))


@bp.route("/admin/staff/<id:user_id>/token/revoke", methods=["POST"])
@page_role(Role.ADMIN)
def revoke(user_id: int) -> Any:
    user = _person(user_id)
    revoked = domain.revoke_tokens(user)
    session().commit()
    flash(f"{user.name}: {revoked} API token(s) revoked.", "info")
    return redirect(url_for("staff.listing"))


@bp.route("/admin/staff/<id:user_id>/sign-out", methods=["POST"])
@page_role(Role.ADMIN)
def sign_out(user_id: int) -> Any:
    """Sign someone out everywhere: their sessions end and their API tokens stop working."""
    user = _person(user_id)
    domain.sign_out_everywhere(user)
    session().commit()
    flash(f"{user.name} is signed out everywhere and their API tokens are revoked.", "info")
    return redirect(url_for("staff.listing"))
