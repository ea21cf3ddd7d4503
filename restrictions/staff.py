"""Staff users: who they are, their role, and their API token (only its hash is kept)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from restrictions.errors import Conflict, Invalid
from restrictions.models import Role, User
from restrictions.validation import required_text

# werkzeug's default (scrypt). Tests lower it to keep hundreds of sign-ins fast.
PASSWORD_METHOD = "scrypt"


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=PASSWORD_METHOD)


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
        password_hash=hash_password(password) if password else None,
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
