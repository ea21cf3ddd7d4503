"""A customer's reasonable adjustments (policy 9.1-9.2) as typed fields, and a sensitive note.

Every agent sees the adjustments, in words, on each call (the live card) and on the customer's
record: slower speech, large print, how they prefer to be contacted, their representative or
support worker and how to reach them, an interpreter's language (their own language is the
customer's ``language``). Health details and anything else only a supervisor should read go in
the **sensitive note**: never in an agent's answer, never on the agent console, and never copied
into the audit trail (which records that it changed, not what it says).

Storage: the typed fields are the ``customers.adjustments`` JSON, in the shape ``public()``
answers (``{"slow_speech": true}`` is such a shape, so the previous release reads what this one
writes); the sensitive note is ``customers.sensitive_note``. A row written before adjustments were
typed may hold other entries (free text, say): they are read as part of the sensitive note, so an
agent never sees them, and go into the note column the next time the adjustments are saved.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import prompts
from restrictions.errors import Invalid
from restrictions.models import Customer
from restrictions.validation import MAX_ADJUSTMENT_VALUE, clean_text

PREFERRED_CONTACT = ("post", "email", "phone", "portal")
REPRESENTATIVE_ROLES = ("representative", "support_worker")
FIELDS = (
    "slow_speech",
    "large_print",
    "preferred_contact",
    "representative",
    "interpreter",
    "sensitive_note",
)
MAX_TEXT = MAX_ADJUSTMENT_VALUE  # a name, how to reach them
MAX_INTERPRETER = 64  # a language's name
MAX_SENSITIVE_NOTE = 2000

language_name = prompts.display_name  # "cy-GB" → "Welsh (Cymraeg)", from the language's own file


CONTACT_WORDS = {
    "post": "by post",
    "email": "by email",
    "phone": "by phone",
    "portal": "through the customer portal",
}
ROLE_WORDS = {"representative": "Representative", "support_worker": "Support worker"}


@dataclass(frozen=True)
class Representative:
    """Someone who acts for the customer, or supports them, and how to reach them."""

    name: str
    contact: str
    role: str = "representative"

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "contact": self.contact, "role": self.role}


@dataclass(frozen=True)
class Adjustments:
    slow_speech: bool = False
    large_print: bool = False
    preferred_contact: str | None = None
    representative: Representative | None = None
    interpreter: str | None = None  # the language an interpreter speaks with them
    sensitive_note: str | None = None  # supervisors only

    def public(self) -> dict[str, Any]:
        """What any member of staff may see, the fields that are set only (the API's shape and
        what ``customers.adjustments`` holds): never the sensitive note."""
        found: dict[str, Any] = {}
        if self.slow_speech:
            found["slow_speech"] = True
        if self.large_print:
            found["large_print"] = True
        if self.preferred_contact:
            found["preferred_contact"] = self.preferred_contact
        if self.representative is not None:
            found["representative"] = self.representative.to_json()
        if self.interpreter:
            found["interpreter"] = self.interpreter
        return found

    def for_supervisor(self) -> dict[str, Any]:
        """The public fields and, when there is one, the sensitive note."""
        found = self.public()
        if self.sensitive_note:
            found["sensitive_note"] = self.sensitive_note
        return found

    def words(self, language: str | None = None) -> list[str]:
        """The adjustments in words for staff (never the sensitive note); ``language`` is the
        customer's, named first."""
        found = []
        if language:
            found.append(f"Speaks {language_name(language)}")
        if self.slow_speech:
            found.append("Speak slowly and clearly: they asked for slower speech")
        if self.interpreter:
            found.append(f"Needs an interpreter: {self.interpreter}")
        if self.large_print:
            found.append("Large print for anything written to them")
        if self.preferred_contact:
            found.append(f"Prefers to be contacted {CONTACT_WORDS[self.preferred_contact]}")
        if self.representative is not None:
            who = ROLE_WORDS.get(self.representative.role, "Representative")
            found.append(f"{who}: {self.representative.name} ({self.representative.contact})")
        return found


# --- reading what is stored ---------------------------------------------------------------------


def _stored_representative(value: Any) -> Representative | None:
    if not isinstance(value, Mapping):
        return None
    name, contact, role = value.get("name"), value.get("contact"), value.get("role")
    if not isinstance(name, str) or not isinstance(contact, str) or not name.strip():
        return None
    return Representative(name, contact, role if role in REPRESENTATIVE_ROLES else "representative")


def slow_speech(stored: Mapping[str, Any] | None) -> bool:
    """Whether ``customers.adjustments`` asks for slower speech (what routing and the spoken
    prompts need, without the rest)."""
    return (stored or {}).get("slow_speech") is True


def of(customer: Customer) -> Adjustments:
    """The customer's adjustments as stored. Entries the typed fields do not know (written
    before they were typed) are read into the sensitive note, a line each."""
    return from_stored(customer.adjustments, customer.sensitive_note)


@functools.lru_cache(maxsize=256)
def public_json(stored_json: str) -> str:
    """The typed adjustments staff may see, as JSON text, from the column's JSON text (the bulk
    import's audit entries: never the free text of a row written before they were typed)."""
    return json.dumps(from_stored(json.loads(stored_json or "{}"), None).public())


def from_stored(stored_value: Mapping[str, Any] | None, sensitive_note: str | None) -> Adjustments:
    """``of``, from the column's value and the sensitive note."""
    stored = dict(stored_value or {})
    slow = stored.pop("slow_speech", False)
    large = stored.pop("large_print", False)
    contact = stored.pop("preferred_contact", None)
    representative_raw = stored.pop("representative", None)
    representative = _stored_representative(representative_raw)
    interpreter = stored.pop("interpreter", None)
    other: dict[str, Any] = {}
    for key, value, good in (
        ("slow_speech", slow, isinstance(slow, bool)),
        ("large_print", large, isinstance(large, bool)),
        ("preferred_contact", contact, contact is None or contact in PREFERRED_CONTACT),
        ("representative", representative_raw, representative_raw is None or bool(representative)),
        ("interpreter", interpreter, interpreter is None or isinstance(interpreter, str)),
    ):
        if not good:
            other[key] = value
    other.update(stored)
    note = sensitive_note or None
    if other:
        lines = [
            f"{key}: {value if isinstance(value, str) else json.dumps(value)}"
            for key, value in other.items()
        ]
        note = "\n".join(([note] if note else []) + lines)
    return Adjustments(
        slow_speech=slow is True,
        large_print=large is True,
        preferred_contact=contact if contact in PREFERRED_CONTACT else None,
        representative=representative,
        interpreter=(interpreter.strip() or None) if isinstance(interpreter, str) else None,
        sensitive_note=note,
    )


def store(customer: Customer, adjustments: Adjustments) -> None:
    customer.adjustments = adjustments.public()
    customer.sensitive_note = adjustments.sensitive_note or None


# --- checking what staff send -------------------------------------------------------------------


def _text(value: Any, field: str, max_length: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise Invalid(f"adjustments.{field} must be text")
    if len(value) > max_length:
        raise Invalid(f"adjustments.{field} is longer than {max_length} characters")
    clean_text(value)
    return value.strip() or None


def _flag(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"adjustments.{field} must be true or false")
    return value


def _representative(value: Any) -> Representative | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise Invalid(
            'adjustments.representative must be an object like {"name": "Sam Jones", '
            '"contact": "07700 900123", "role": "support_worker"}, or null'
        )
    unknown = sorted(set(value) - {"name", "contact", "role"})
    if unknown:
        raise Invalid(
            f"adjustments.representative.{unknown[0][:40]} is not known: give name, contact "
            "and role"
        )
    name = _text(value.get("name"), "representative.name", MAX_TEXT)
    contact = _text(value.get("contact"), "representative.contact", MAX_TEXT)
    if name is None or contact is None:
        raise Invalid("adjustments.representative needs a name and how to reach them (contact)")
    role = value.get("role", "representative")
    if role not in REPRESENTATIVE_ROLES:
        raise Invalid(
            f"adjustments.representative.role must be one of {', '.join(REPRESENTATIVE_ROLES)}"
        )
    return Representative(name, contact, str(role))


def known_fields_only(value: Any) -> None:
    """Invalid unless ``value`` is an object of adjustments' fields (the API's shape checks this
    too, in these words)."""
    if not isinstance(value, Mapping):
        raise Invalid('adjustments must be an object, for example {"slow_speech": true}')
    for key in value:
        if key not in FIELDS:
            raise Invalid(
                f"adjustments.{str(key)[:40]} is not an adjustment: they are "
                f"{', '.join(FIELDS)} (health details go in sensitive_note, which only "
                "supervisors see)"
            )


def parse(value: Any, current: Adjustments | None = None) -> Adjustments:
    """Check adjustments as staff send them: an object of the typed fields (any left out is
    unset; ``{"slow_speech": true}`` is a whole, valid answer). The sensitive note is kept as it
    is unless ``sensitive_note`` is given (null or "" removes it)."""
    if value is None:
        return current or Adjustments()
    known_fields_only(value)
    contact = value.get("preferred_contact")
    if contact is not None and contact not in PREFERRED_CONTACT:
        raise Invalid(
            f"adjustments.preferred_contact must be one of {', '.join(PREFERRED_CONTACT)}"
        )
    note = (
        _text(value["sensitive_note"], "sensitive_note", MAX_SENSITIVE_NOTE)
        if "sensitive_note" in value
        else (current.sensitive_note if current is not None else None)
    )
    return Adjustments(
        slow_speech=_flag(value.get("slow_speech", False), "slow_speech"),
        large_print=_flag(value.get("large_print", False), "large_print"),
        preferred_contact=contact,
        representative=_representative(value.get("representative")),
        interpreter=_text(value.get("interpreter"), "interpreter", MAX_INTERPRETER),
        sensitive_note=note,
    )
