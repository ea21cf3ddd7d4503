"""Staff users: who they are, their role, their password and their API tokens (only hashes are
kept)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from restrictions.errors import Conflict, Invalid
from restrictions.lifecycle import Actor, audit
from restrictions.models import ApiToken, Role, User
from restrictions.passwords import MIN_LENGTH as MIN_LENGTH
from restrictions.passwords import check_strength as check_strength
from restrictions.phone import to_e164
from restrictions.validation import required_text

# werkzeug's default (scrypt). Tests lower it to keep hundreds of sign-ins fast.
PASSWORD_METHOD = "scrypt"
# How long a new API token works (ASVS 3.5): the web app and the CLI pass their setting.
TOKEN_DAYS = 90


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=PASSWORD_METHOD)


_DUMMY: dict[str, str] = {}
_DUMMY_LOCK = threading.Lock()


def dummy_hash() -> str:
    """A hash of no one's password, made once per process (and hashing method): checking a
    password against it costs what checking a real one costs, and nothing more."""
    dummy = _DUMMY.get(PASSWORD_METHOD)
    if dummy is None:
        with _DUMMY_LOCK:
            dummy = _DUMMY.get(PASSWORD_METHOD)
            if dummy is None:
                dummy = _DUMMY[PASSWORD_METHOD] = hash_password(secrets.token_urlsafe(16))
    return dummy


def verify_password(user: User | None, password: str) -> bool:
    """Whether ``password`` is this user's. An unknown user, a disabled one or one without a
    password costs exactly one hash, as a known one does, so timing tells nothing."""
    stored = user.password_hash if user is not None and user.active else None
    if stored is None:
        check_password_hash(dummy_hash(), password)
        return False
    return check_password_hash(stored, password)


def set_password(user: User, password: str) -> None:
    """A new password ends every session the user had and revokes their API tokens."""
    user.password_hash = hash_password(check_strength(user.name, password))
    end_sessions(user)
    revoke_tokens(user)


def end_sessions(user: User) -> None:
    """Every page session of this user stops working at its next request."""
    user.session_epoch = (user.session_epoch or 0) + 1


def sign_out_everywhere(user: User) -> None:
    """Every page session ends and every API token of the user stops working."""
    end_sessions(user)
    revoke_tokens(user)


def disable(user: User) -> None:
    user.active = False
    end_sessions(user)
    revoke_tokens(user)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _new_token() -> str:
    return "cg_" + secrets.token_urlsafe(32)


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


def issue_token(
    user: User, *, label: str, days: int = TOKEN_DAYS, now: datetime | None = None
) -> str:
    """A new API token for ``user`` (returned once; only its hash is kept), working for
    ``days``. The previous release reads ``users.token_hash``: it gets the newest token."""
    if days < 1:
        raise Invalid("an API token must work for at least a day")
    label = required_text(label, "label", max_length=80)
    token, at = _new_token(), _now(now)
    user.token_hash = hash_token(token)
    user.api_tokens.append(
        ApiToken(
            token_hash=user.token_hash,
            label=label,
            created_at=at,
            expires_at=at + timedelta(days=days),
        )
    )
    return token


def revoke_tokens(user: User, *, now: datetime | None = None) -> int:
    """Every API token of ``user`` that still worked stops working; how many there were."""
    at, revoked = _now(now), 0
    for token in user.api_tokens:
        if token.revoked_at is None:
            token.revoked_at = at
            revoked += token.expires_at > at
    # the previous release's column: a hash no token has
    user.token_hash = hash_token("revoked:" + secrets.token_urlsafe(32))
    return revoked


def rotate_token(
    user: User, *, label: str, days: int = TOKEN_DAYS, now: datetime | None = None
) -> str:
    """Revoke the user's tokens and issue a new one (returned once)."""
    at = _now(now)
    revoke_tokens(user, now=at)
    return issue_token(user, label=label, days=days, now=at)


def create_user(
    sess: Session,
    name: str,
    role: str,
    password: str | None = None,
    *,
    token_days: int = TOKEN_DAYS,
    display_name: str | None = None,
    job_title: str | None = None,
    direct_line: str | None = None,
) -> tuple[User, str]:
    """A new staff user and their API token (returned once; only its hash is kept).
    ``display_name``, ``job_title`` and ``direct_line`` are how letters name and sign as them."""
    name = required_text(name, "user name", max_length=80)
    try:
        role_value = Role(role)
    except ValueError:
        raise Invalid(f"role must be agent, supervisor or admin, not {role!r}") from None
    if sess.scalar(select(User.id).where(User.name == name)) is not None:
        raise Conflict(f"a user named {name!r} already exists")
    user = User(
        name=name,
        role=role_value.value,
        password_hash=hash_password(check_strength(name, password)) if password else None,
    )
    set_letter_details(
        user, display_name=display_name, job_title=job_title, direct_line=direct_line
    )
    token = issue_token(user, label="first token", days=token_days)
    sess.add(user)
    sess.flush()
    return user, token


LETTER_DETAILS = ("display_name", "job_title", "direct_line")


class DetailsInvalid(Invalid):
    """Letter details that were refused, each with its reason (``errors``, by field), so a form
    can show each reason beside its field; the message gives them all."""

    def __init__(self, errors: dict[str, str]) -> None:
        named = [f"direct line: {e}" if f == "direct_line" else e for f, e in errors.items()]
        super().__init__("; ".join(named))
        self.errors = errors


def set_letter_details(
    user: User,
    *,
    display_name: str | None = None,
    job_title: str | None = None,
    direct_line: str | None = None,
) -> None:
    """How letters name them (``Jo Bloggs``), their job title (``Tenancy Enforcement Officer``;
    letters give their role in words without one) and their own phone number, for a customer
    whose named contact they are. None leaves a detail as it is; "" removes it. Nothing is set
    unless every given detail is good (DetailsInvalid, with each reason)."""
    given = {"display_name": display_name, "job_title": job_title, "direct_line": direct_line}
    values: dict[str, str | None] = {}
    errors: dict[str, str] = {}
    for field, value in given.items():
        if value is None:
            continue
        try:
            values[field] = _letter_detail(field, value)
        except Invalid as exc:
            errors[field] = exc.message
    if errors:
        raise DetailsInvalid(errors)
    for field, checked in values.items():
        setattr(user, field, checked)


def _letter_detail(field: str, value: str) -> str | None:
    if field == "direct_line":
        return to_e164(value) if value.strip() else None
    return _optional(value, field.replace("_", " "), 120)


def letter_details(user: User) -> dict[str, str | None]:
    return {field: getattr(user, field) for field in LETTER_DETAILS}


def change_letter_details(
    sess: Session,
    actor: Actor,
    user: User,
    *,
    display_name: str | None = None,
    job_title: str | None = None,
    direct_line: str | None = None,
) -> bool:
    """``set_letter_details`` for an existing user, written to the audit trail
    (``user.details_changed``, before and after); whether anything changed. The caller commits."""
    before = letter_details(user)
    set_letter_details(
        user, display_name=display_name, job_title=job_title, direct_line=direct_line
    )
    after = letter_details(user)
    if after == before:
        return False
    sess.flush()
    audit(
        sess,
        actor,
        "user.details_changed",
        "user",
        user.id,
        customer_id=None,
        before=before,
        after=after,
    )
    return True


# --- staff administration (the admin's staff page and a person's own password) ------------------
#
# Each change is on the audit trail (entity "user", no customer), never with a password or token.

STAFF_ROLES = (Role.AGENT, Role.SUPERVISOR, Role.ADMIN)


class FieldsInvalid(Invalid):
    """Input that was refused, each reason by the form field it is about (``errors``), so a form
    can show each beside its field; the message gives them all."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


def _staff_role(role: str) -> Role:
    try:
        value = Role(role)
    except ValueError:
        value = None
    if value is None or value not in STAFF_ROLES:
        raise Invalid(f"role must be agent, supervisor or admin, not {role!r}")
    return value


def add_user(
    sess: Session,
    actor: Actor,
    name: str,
    role: str,
    password: str,
    *,
    token_days: int = TOKEN_DAYS,
    display_name: str | None = None,
    job_title: str | None = None,
    direct_line: str | None = None,
) -> tuple[User, str]:
    """A new member of staff (agent, supervisor or admin) who signs in to the pages with
    ``password`` (the password rules apply), and their first API token (returned once), audited
    as ``user.created``. Every refusal is given by field (FieldsInvalid). The caller commits."""
    errors: dict[str, str] = {}
    try:
        name = required_text(name, "user name", max_length=80)
        if sess.scalar(select(User.id).where(User.name == name)) is not None:
            errors["name"] = f"a user named {name!r} already exists"
    except Invalid as exc:
        errors["name"] = exc.message
    try:
        _staff_role(role)
    except Invalid as exc:
        errors["role"] = exc.message
    try:
        check_strength(name.strip(), password or "")
    except Invalid as exc:
        errors["password"] = exc.message
    try:
        set_letter_details(
            User(), display_name=display_name, job_title=job_title, direct_line=direct_line
        )
    except DetailsInvalid as exc:
        errors.update(exc.errors)
    if errors:
        raise FieldsInvalid(errors).with_status(409 if set(errors) == {"name"} else 422)
    try:
        with sess.begin_nested():  # someone adding the same name at the same moment
            user, token = create_user(
                sess,
                name,
                role,
                None,  # the password is checked above, and hashed below
                token_days=token_days,
                display_name=display_name,
                job_title=job_title,
                direct_line=direct_line,
            )
            user.password_hash = hash_password(password)
    except IntegrityError:
        raise FieldsInvalid({"name": f"a user named {name!r} already exists"}).with_status(
            409
        ) from None
    after = {"name": user.name, "role": user.role, "active": True, **letter_details(user)}
    audit(sess, actor, "user.created", "user", user.id, customer_id=None, after=after)
    return user, token


def _keep_an_admin(sess: Session, actor: Actor, user: User, doing: str) -> None:
    """Refuse to take an admin away when it is the actor themselves, or the last active admin
    (the active admins are locked until the caller commits, so two admins cannot each remove the
    other at the same moment)."""
    if actor.user_id == user.id:
        raise Conflict(f"you cannot {doing} yourself: another admin must, so there is always one")
    admins = sess.scalars(
        select(User.id)
        .where(User.role == Role.ADMIN.value, User.active.is_(True))
        .order_by(User.id)
        .with_for_update()
    ).all()
    if not [other for other in admins if other != user.id]:
        raise Conflict(f"{user.name} is the last admin: make someone else an admin first")


def change_role(sess: Session, actor: Actor, user: User, role: str) -> bool:
    """Make a member of staff an agent, a supervisor or an admin (``user.role_changed``);
    whether anything changed. No admin takes away their own admin role, and the last admin
    keeps theirs. The caller commits."""
    new = _staff_role(role)
    if user.role_enum not in STAFF_ROLES:
        raise Invalid(f"{user.name} is an integration, not a member of staff: its role stays")
    if new.value == user.role:
        return False
    if user.role_enum is Role.ADMIN:
        _keep_an_admin(sess, actor, user, "take the admin role from")
    before = user.role
    user.role = new.value
    sess.flush()
    audit(
        sess,
        actor,
        "user.role_changed",
        "user",
        user.id,
        customer_id=None,
        before={"role": before},
        after={"role": new.value},
    )
    return True


def disable_user(sess: Session, actor: Actor, user: User) -> bool:
    """``disable`` (their sessions end and their API tokens are revoked), audited as
    ``user.disabled``; whether they were active. No one disables themselves, and the last
    admin stays. The caller commits."""
    if not user.active:
        return False
    if actor.user_id == user.id:
        raise Conflict("you cannot disable yourself: another admin must, so there is always one")
    if user.role_enum is Role.ADMIN:
        _keep_an_admin(sess, actor, user, "disable")
    disable(user)
    sess.flush()
    audit(
        sess,
        actor,
        "user.disabled",
        "user",
        user.id,
        customer_id=None,
        before={"active": True},
        after={"active": False},
        note="their sessions ended and their API tokens were revoked",
    )
    return True


def enable_user(sess: Session, actor: Actor, user: User) -> bool:
    """Let a disabled member of staff sign in again with their password (``user.enabled``);
    their API tokens stay revoked until one is rotated. Whether they were disabled."""
    if user.active:
        return False
    user.active = True
    sess.flush()
    audit(
        sess,
        actor,
        "user.enabled",
        "user",
        user.id,
        customer_id=None,
        before={"active": False},
        after={"active": True},
    )
    return True


def reset_password(sess: Session, actor: Actor, user: User, password: str) -> None:
    """An admin gives someone a new password (``set_password``: the rules apply, their sessions
    end and their API tokens are revoked), audited as ``user.password_reset``. Not their own:
    that is changed with the current one (``change_own_password``). The caller commits."""
    if actor.user_id == user.id:
        raise Conflict(
            "change your own password on the Change my password page: it asks for the current one"
        )
    try:
        set_password(user, password or "")
    except Invalid as exc:
        raise FieldsInvalid({"password": exc.message}) from None
    sess.flush()
    audit(
        sess,
        actor,
        "user.password_reset",
        "user",
        user.id,
        customer_id=None,
        note="a new password: their sessions ended and their API tokens were revoked",
    )


def change_own_password(sess: Session, user: User, current: str, new: str) -> None:
    """A person changes their own password, giving the current one (``set_password``: the rules
    apply, every session of theirs ends and their API tokens are revoked), audited as
    ``user.password_changed``. The caller commits, and signs the person in again."""
    if not verify_password(user, current or ""):
        raise FieldsInvalid({"current_password": "that is not your current password"})
    if new == current:
        raise FieldsInvalid({"new_password": "the new password must differ from the current one"})
    try:
        set_password(user, new or "")
    except Invalid as exc:
        raise FieldsInvalid({"new_password": exc.message}) from None
    sess.flush()
    audit(
        sess,
        Actor.of(user),
        "user.password_changed",
        "user",
        user.id,
        customer_id=None,
        note="their own: their other sessions ended and their API tokens were revoked",
    )


def rotate_token_for(
    sess: Session, actor: Actor, user: User, *, label: str, days: int = TOKEN_DAYS
) -> str:
    """``rotate_token`` for an active user, audited as ``user.token_rotated`` (which token, not
    the token); the new token is returned once. The caller commits."""
    if not user.active:
        raise Conflict(f"{user.name} is disabled: their tokens cannot be renewed.")
    token = rotate_token(user, label=label, days=days)
    sess.flush()
    newest = user.api_tokens[-1]
    audit(
        sess,
        actor,
        "user.token_rotated",
        "user",
        user.id,
        customer_id=None,
        after={
            "token_id": newest.id,
            "label": newest.label,
            "expires_at": newest.expires_at.isoformat(),
        },
        note="their earlier API tokens were revoked",
    )
    return token


def _optional(value: str, field: str, max_length: int) -> str | None:
    return required_text(value, field, max_length=max_length, required=False) or None


def authenticate_token(
    sess: Session, token: str, *, now: datetime | None = None
) -> tuple[User, ApiToken] | None:
    """The active user a bearer token belongs to, and the token's row; None for a token that is
    unknown, expired or revoked, or whose user is disabled."""
    digest = hash_token(token)
    found = sess.execute(
        select(ApiToken, User)
        .join(User, ApiToken.user_id == User.id)
        .where(ApiToken.token_hash == digest)
    ).first()
    if found is None:
        return None
    row, user = found[0], found[1]
    if row.state(_now(now)) != "active" or not user.active:
        return None
    # constant-time re-check of what the index found
    return (user, row) if hmac.compare_digest(row.token_hash, digest) else None


def user_for_token(sess: Session, token: str) -> User | None:
    found = authenticate_token(sess, token)
    return found[0] if found else None
