"""Staff users: who they are, their role, and their API token (only its hash is kept)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from restrictions.errors import Conflict, Invalid
from restrictions.models import Role, User
from restrictions.validation import required_text

# werkzeug's default (scrypt). Tests lower it to keep hundreds of sign-ins fast.
PASSWORD_METHOD = "scrypt"


COMMON = frozenset(
    {"password", "passw0rd", "123456789012", "qwertyuiopas", "letmeinplease", "callguard123"}
)
MIN_LENGTH = 12


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=PASSWORD_METHOD)


def check_strength(name: str, password: str) -> str:
    """A password staff may use, or Invalid saying why not (length over complexity rules)."""
    if len(password) < MIN_LENGTH:
        raise Invalid(f"the password must be at least {MIN_LENGTH} characters")
    if len(password) > 256:
        raise Invalid("the password must be at most 256 characters")
    lowered = password.lower()
    if lowered in COMMON or len(set(password)) < 5:
        raise Invalid("that password is too easy to guess")
    if name and name.lower() in lowered:
        raise Invalid("the password must not contain the user name")
    return password


_DUMMY: dict[str, str] = {}


def verify_password(user: User | None, password: str) -> bool:
    """Whether ``password`` is this user's; an unknown user, a disabled one or one without a
    password costs the same hash as a known one, so timing tells nothing."""
    stored = user.password_hash if user is not None and user.active else None
    if stored is None:
        dummy = _DUMMY.setdefault(PASSWORD_METHOD, hash_password("not anyone's password"))
        check_password_hash(dummy, password)
        return False
    return check_password_hash(stored, password)


def set_password(user: User, password: str) -> None:
    """A new password ends every session the user had."""
    user.password_hash = hash_password(check_strength(user.name, password))
    end_sessions(user)


def end_sessions(user: User) -> None:
    """Every page session of this user stops working at its next request."""
    user.session_epoch = (user.session_epoch or 0) + 1


def disable(user: User) -> None:
    user.active = False
    end_sessions(user)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_user(
    sess: Session, name: str, role: str, password: str | None = None
) -> tuple[User, str]:
    """A new staff user and their API token (returned once; only its hash is kept)."""
    name = required_text(name, "user name", max_length=80)
    try:
        role_value = Role(role)
    except ValueError:
        raise Invalid(f"role must be agent, supervisor or admin, not {role!r}") from None
    if sess.scalar(select(User.id).where(User.name == name)) is not None:
        raise Conflict(f"a user named {name!r} already exists")
    token = "cg_" + secrets.token_urlsafe(32)
    user = User(
        name=name,
        role=role_value.value,
        token_hash=hash_token(token),
        password_hash=hash_password(check_strength(name, password)) if password else None,
    )
    sess.add(user)
    sess.flush()
    return user, token


def user_for_token(sess: Session, token: str) -> User | None:
    user = sess.scalar(select(User).where(User.token_hash == hash_token(token)))
    if user is None or not user.active:
        return None
    # constant-time re-check of what the index found
    return user if hmac.compare_digest(user.token_hash, hash_token(token)) else None
