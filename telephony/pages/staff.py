"""Staff and their API tokens: an admin's list of everyone (add a member of staff, change their
role, disable or re-enable them, give them a new password, rotate or revoke their tokens, sign
them out everywhere, change how letters name and sign as them) and each person's own account
page (rotate my token) and password page (change my password). A new token is shown once, on
the answer to the button that made it, and never again (answers are no-store). Every button is a
POST with the page's CSRF token (CSRFProtect checks it before the view). Every change to a person
is on the audit trail (restrictions.staff), never with a password or a token. No admin takes away
their own admin role, disables themselves or resets their own password here (the last admin
stays one); a person changes their own password with their current one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from flask import abort, current_app, flash, g, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import PasswordField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo

from restrictions import staff as domain
from restrictions.models import Role, User
from telephony.auth import current_actor, limiter, page_role, start_session
from telephony.database import session
from telephony.pages.refusals import back_to, if_refused, page_blueprint

bp = page_blueprint("staff", __name__)


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
    """Revoke the person's tokens and show a new one, once (audited: which token, not it)."""
    sess = session()
    if_refused(back_to(back))
    token = domain.rotate_token_for(sess, current_actor(), user, label=label, days=_days())
    sess.commit()
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


ROLE_CHOICES = [SelectChoice(r.value, r.value.capitalize()) for r in domain.STAFF_ROLES]
PASSWORD_RULES = (
    f"At least {domain.MIN_LENGTH} characters, not the user name, not a common or breached "
    "password, and hard to guess: a few unrelated words work well."
)


def _new_password(label: str) -> PasswordField:
    return PasswordField(
        label, validators=[DataRequired()], render_kw={"autocomplete": "new-password"}
    )


def _confirm(of: str) -> PasswordField:
    return PasswordField(
        "The same again",
        validators=[DataRequired(), EqualTo(of, message="the two passwords are not the same")],
        render_kw={"autocomplete": "new-password"},
    )


class DetailsForm(FlaskForm):  # type: ignore[misc]
    """How letters name and sign as a person; an emptied field removes the detail."""

    display_name = StringField('Name in letters (e.g. "Jo Bloggs")')
    job_title = StringField("Job title (left empty: letters give their role in words)")
    direct_line = StringField("Direct line (for customers they are named contact for)")


class AddForm(DetailsForm):
    """A new member of staff: who they are, their role, how letters name them, and the password
    they first sign in with."""

    name = StringField(
        "User name (what they sign in with)",
        validators=[DataRequired()],
        render_kw={"autocomplete": "off"},
    )
    role = SelectField("Role", choices=ROLE_CHOICES, validators=[DataRequired()])
    password = _new_password("Password to sign in with (tell them; they can change it)")
    confirm = _confirm("password")


class RoleForm(FlaskForm):  # type: ignore[misc]
    role = SelectField("Role", choices=ROLE_CHOICES, validators=[DataRequired()])


class PasswordForm(FlaskForm):  # type: ignore[misc]
    """An admin gives someone a new password."""

    password = _new_password("New password")
    confirm = _confirm("password")


class OwnPasswordForm(FlaskForm):  # type: ignore[misc]
    current_password = PasswordField(
        "Your current password",
        validators=[DataRequired()],
        render_kw={"autocomplete": "current-password"},
    )
    new_password = _new_password("New password")
    confirm = _confirm("new_password")


# The forms on each person's card on the admin's list, each named by the person (its prefix).
CARD_FORMS: dict[str, type[FlaskForm]] = {
    "details": DetailsForm,
    "role": RoleForm,
    "password": PasswordForm,
}


def _prefix(kind: str, user_id: int) -> str:
    return f"{kind}-{user_id}"


def _card_form(kind: str, person: User) -> FlaskForm:
    """A person's form as it starts: their letter details and role as they are."""
    values: dict[str, Any] = {}
    if kind == "details":
        values = dict(domain.letter_details(person))
    elif kind == "role":
        values = {"role": person.role}
    return CARD_FORMS[kind](formdata=None, prefix=_prefix(kind, person.id), **values)


Bound = tuple[str, int, FlaskForm]


def _listing(bound: Bound | None = None, status: int = 200) -> Any:
    """Everyone; a person's form just submitted, when it failed, comes back as typed (never a
    password) with its errors beside the fields (and open)."""
    people = session().scalars(select(User).order_by(User.name)).all()

    def form_for(kind: str, person: User) -> FlaskForm:
        if bound is not None and bound[:2] == (kind, person.id):
            return bound[2]
        return _card_form(kind, person)

    return (
        render_template(
            "staff/list.html",
            people=people,
            me=g.user.id,
            now=datetime.now(UTC),
            form=FlaskForm(),
            form_for=form_for,
            open_form=bound[:2] if bound is not None else None,
            password_rules=PASSWORD_RULES,
        ),
        status,
    )


def _back_to(user: User) -> Any:
    return redirect(url_for("staff.listing", _anchor=f"person-{user.id}"))


def _expired(form: FlaskForm) -> None:
    if form.meta.csrf and form.csrf_token.errors:
        flash("The form had expired; please try again.", "error")


def _card_change(kind: str, user_id: int, change: Callable[[User, Any], str]) -> Any:
    """Submit one of a person's forms: ``change`` makes the change (raising a DomainError to
    refuse it) and says what it did; the form comes back with its errors when refused."""
    user = _person(user_id)
    form = CARD_FORMS[kind](prefix=_prefix(kind, user.id))
    if not form.validate_on_submit():
        _expired(form)
        return _listing((kind, user.id, form), 422)
    sess = session()
    if_refused(lambda status: _listing((kind, user.id, form), status), form=form)
    said = change(user, form)
    sess.commit()
    flash(f"{user.name}: {said}.", "info")
    return _back_to(user)


def _button(user_id: int, change: Callable[[User], str]) -> Any:
    """A person's button (its CSRF token checked already): ``change`` says what it did."""
    user = _person(user_id)
    sess = session()
    if_refused(lambda status: _listing(status=status))
    said = change(user)
    sess.commit()
    flash(f"{user.name}: {said}.", "info")
    return _back_to(user)


@bp.route("/admin/staff")
@page_role(Role.ADMIN)
def listing() -> Any:
    return _listing()


@bp.route("/admin/staff/new", methods=["GET", "POST"])
@page_role(Role.ADMIN)
def add() -> Any:
    """Add a member of staff; their first API token is shown once, on the answer."""
    form = AddForm()

    def again(status: int) -> Any:
        page = render_template("staff/new.html", form=form, password_rules=PASSWORD_RULES)
        return page, status

    if not form.is_submitted():
        return again(200)
    if not form.validate():
        _expired(form)
        return again(422)
    sess = session()
    if_refused(again, form=form)  # each refusal beside its field
    user, token = domain.add_user(
        sess,
        current_actor(),
        form.name.data or "",
        form.role.data or "",
        form.password.data or "",
        token_days=_days(),
        display_name=form.display_name.data,
        job_title=form.job_title.data,
        direct_line=form.direct_line.data,
    )
    sess.commit()
    return render_template(
        "staff/token.html",
        person=user,
        token=token,
        days=_days(),
        back=url_for("staff.listing", _anchor=f"person-{user.id}"),
        created=True,
    )


@bp.route("/admin/staff/<id:user_id>/details", methods=["POST"])
@page_role(Role.ADMIN)
def details(user_id: int) -> Any:
    """Change how letters name and sign as someone (recorded on the audit trail)."""

    def change(user: User, form: DetailsForm) -> str:
        changed = domain.change_letter_details(
            session(),
            current_actor(),
            user,
            display_name=form.display_name.data,
            job_title=form.job_title.data,
            direct_line=form.direct_line.data,
        )
        return "details saved" if changed else "nothing had changed"

    return _card_change("details", user_id, change)


@bp.route("/admin/staff/<id:user_id>/role", methods=["POST"])
@page_role(Role.ADMIN)
def role(user_id: int) -> Any:
    """Make someone an agent, a supervisor or an admin (not oneself: see restrictions.staff)."""

    def change(user: User, form: RoleForm) -> str:
        changed = domain.change_role(session(), current_actor(), user, form.role.data or "")
        return f"now {user.role_enum.value}" if changed else f"already {user.role}"

    return _card_change("role", user_id, change)


@bp.route("/admin/staff/<id:user_id>/password", methods=["POST"])
@page_role(Role.ADMIN)
def reset_password(user_id: int) -> Any:
    """Give someone a new password: their sessions end and their API tokens are revoked."""

    def change(user: User, form: PasswordForm) -> str:
        domain.reset_password(session(), current_actor(), user, form.password.data or "")
        return "new password set; their sessions have ended and their API tokens are revoked"

    return _card_change("password", user_id, change)


@bp.route("/admin/staff/<id:user_id>/disable", methods=["POST"])
@page_role(Role.ADMIN)
def disable(user_id: int) -> Any:
    """Disable someone: their sessions end and their API tokens are revoked at once."""

    def change(user: User) -> str:
        if not domain.disable_user(session(), current_actor(), user):
            return "was already disabled"
        return "disabled; their sessions have ended and their API tokens are revoked"

    return _button(user_id, change)


@bp.route("/admin/staff/<id:user_id>/enable", methods=["POST"])
@page_role(Role.ADMIN)
def enable(user_id: int) -> Any:
    """Let a disabled person sign in again (their API tokens stay revoked: rotate one)."""

    def change(user: User) -> str:
        if not domain.enable_user(session(), current_actor(), user):
            return "was already enabled"
        return "enabled: they can sign in again (rotate their token if they need one)"

    return _button(user_id, change)


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


# --- my password --------------------------------------------------------------------------------

# Each try checks a password: a session left open must not become a way to guess it (a 429,
# answered as every other, when over).
OWN_PASSWORD_LIMIT = "5 per 15 minutes"


def _own_password_key() -> str:
    who = current_user.user.id if current_user.is_authenticated else "nobody"
    return f"own-password:{who}"


@bp.route("/account/password", methods=["GET", "POST"])
@limiter.limit(OWN_PASSWORD_LIMIT, methods=["POST"], key_func=_own_password_key)
@page_role(Role.AGENT)
def password() -> Any:
    """Change my own password, giving the current one: every other session of mine ends and my
    API tokens are revoked; this one goes on, signed in afresh."""
    form = OwnPasswordForm()
    if form.is_submitted():
        if not form.validate():
            _expired(form)
            return _own_password_page(form, 422)
        sess = session()
        user = _person(g.user.id)
        if_refused(lambda status: _own_password_page(form, status), form=form)
        domain.change_own_password(
            sess, user, form.current_password.data or "", form.new_password.data or ""
        )
        sess.commit()
        start_session(user)  # this session, with the new epoch; every other one has ended
        flash(
            "Your password is changed. Your other sessions have ended and your API tokens are "
            "revoked: rotate your token below if you use one.",
            "info",
        )
        return redirect(url_for("staff.account"))
    return _own_password_page(form, 200)


def _own_password_page(form: OwnPasswordForm, status: int) -> Any:
    return (
        render_template("staff/password.html", form=form, password_rules=PASSWORD_RULES),
        status,
    )
