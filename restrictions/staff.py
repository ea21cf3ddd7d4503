"""Staff users: who they are, their role, their password and their API tokens (only hashes are
kept)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
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
