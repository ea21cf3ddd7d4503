"""How strong a staff password must be (ASVS 2.1): at least 12 characters, not the user name,
not a common or breached password (nor one with digits or symbols added, or letters swapped for
look-alikes), and hard to guess as zxcvbn measures it (score 3 or more, given the user name)."""

from __future__ import annotations

import functools
import re
from pathlib import Path

from restrictions.errors import Invalid

MIN_LENGTH = 12
MAX_LENGTH = 256
MIN_SCORE = 3  # zxcvbn: 3 is "safely unguessable: moderate protection from offline attacks"
COMMON_PASSWORDS = Path(__file__).resolve().parent / "data" / "common_passwords.txt"
ZXCVBN_MAX = 72  # zxcvbn refuses longer input; the first 72 characters decide

_LOOK_ALIKES = str.maketrans(
    {
        "@": "a",
        "4": "a",
        "0": "o",
        "1": "i",
        "3": "e",
        "$": "s",
        "5": "s",
        "7": "t",
        "!": "i",
        "|": "l",
        "+": "t",
    }
)
_EDGES = re.compile(r"^[^a-z]+|[^a-z]+$")


@functools.cache
def common_passwords() -> frozenset[str]:
    """The shipped list (restrictions/data/common_passwords.txt), read once."""
    lines = COMMON_PASSWORDS.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def _forms(password: str) -> set[str]:
    """The password as a list would hold it: itself, and its core (the letters left when digits
    and symbols are taken off both ends), each also with look-alikes put back (P@ssw0rd)."""
    lowered = password.lower()
    core = _EDGES.sub("", lowered)
    forms = {lowered, lowered.translate(_LOOK_ALIKES)}
    if len(core) >= 4:
        forms |= {core, core.translate(_LOOK_ALIKES)}
    return forms


def is_common(password: str) -> bool:
    return not _forms(password).isdisjoint(common_passwords())


def user_inputs(name: str) -> list[str]:
    """What zxcvbn should treat as known to an attacker: the user name and its parts."""
    parts = [p for p in re.split(r"[^a-z0-9]+", name.lower()) if p]
    return [name.lower(), *parts, "callguard"]


def check_strength(name: str, password: str) -> str:
    """The password, or Invalid saying why staff may not use it."""
    if len(password) < MIN_LENGTH:
        raise Invalid(f"the password must be at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise Invalid(f"the password must be at most {MAX_LENGTH} characters")
    lowered = password.lower()
    if name and name.lower() in lowered:
        raise Invalid("the password must not contain the user name")
    if len(set(password)) < 5:
        raise Invalid("that password is too easy to guess: it repeats too few characters")
    if is_common(password):
        raise Invalid(
            "that password is too common: it is on a list of common and breached passwords "
            "(or is one with digits or symbols added); choose a few unrelated words instead"
        )
    from zxcvbn import zxcvbn  # loaded on first use: the web process rarely needs it

    result = zxcvbn(password[:ZXCVBN_MAX], user_inputs=user_inputs(name))
    if int(result["score"]) < MIN_SCORE:
        feedback = result.get("feedback") or {}
        hint = feedback.get("warning") or " ".join(feedback.get("suggestions") or [])
        raise Invalid(
            "that password is too easy to guess"
            + (f": {hint.rstrip('.')}" if hint else "")
            + "; choose a few unrelated words instead"
        )
    return password
