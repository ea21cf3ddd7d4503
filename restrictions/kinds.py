"""Kinds of restriction (policy 10.1), each declared once.

A declaration says everything callguard does with a kind: its label for staff, the flag text an
agent sees on a live call, its fields with their validation, how it routes a call (its effect and
precedence: the lowest precedence number that applies wins) and, for a kind that ends the call,
the prompt key spoken to the caller. Routing, the lifecycle, the pages, the agent console, the
escalation form and the demo all read from here; adding a kind is one ``register`` call, one
prompt per language file, and its tests.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from restrictions import validation
from restrictions.destination import Destination, Scheme
from restrictions.errors import Invalid
from restrictions.models import User


class Effect(StrEnum):
    FLAG = "flag"  # the default route; agents see the flag
    PERSON = "person"  # the caller is put through to a named person
    LIMITED = "limited"  # permitted times and a weekly allowance
    ENDS_CALL = "ends_call"  # a spoken message (emergency repairs offered), then the call ends


class FieldType(StrEnum):
    TEXT = "text"
    COUNT = "count"  # a whole number of at least 1
    WINDOWS = "windows"  # permitted days and times
    CONTACT = "contact"  # a staff user name or a phone number


class Role(StrEnum):
    """What a field is for, beyond its value: routing and the worker find a kind's person by it."""

    DETAIL = "detail"  # a term of the restriction, shown and written as it is
    PERSON = "person"  # the person to route the caller to (a kind whose effect is PERSON has one)
    PERMITTED_TIMES = "permitted_times"  # when calls are allowed (a LIMITED kind has one)
    WEEKLY_ALLOWANCE = "weekly_allowance"  # calls allowed per week (a LIMITED kind may have one)


Validator = Callable[[Session, Any, str], Any]


def _text(max_length: int, required: bool) -> Validator:
    def check(sess: Session, value: Any, name: str) -> Any:
        if value in (None, "") and not required:
            return None
        return validation.required_text(value, name, max_length=max_length)

    return check


def _count(required: bool) -> Validator:
    def check(sess: Session, value: Any, name: str) -> Any:
        return validation.whole_number(value, name, minimum=1, required=required)

    return check


def _windows(required: bool) -> Validator:
    def check(sess: Session, value: Any, name: str) -> Any:
        if value in (None, []) and not required:
            return []
        return validation.windows(value, name)

    return check


def _contact(required: bool) -> Validator:
    """A staff user (``client:<name>``) or a phone number (E.164), as routing can dial it."""

    def check(sess: Session, value: Any, name: str) -> Any:
        if not isinstance(value, str) or not value.strip():
            if not required:
                return None
            raise Invalid(f"{name} is required: a staff member's phone number or user name")
        text = validation.clean_text(value.strip())
        user_name = text.removeprefix("client:").removeprefix("user:")
        user = sess.scalar(select(User).where(User.name == user_name))
        if user is not None:
            return f"client:{user.name}"
        if text.startswith(("client:", "user:")):
            raise Invalid(f"{name}: no staff user named {user_name!r}")
        destination = Destination.parse(text if text.startswith("dial:") else f"dial:{text}")
        if destination.scheme is not Scheme.NUMBER:
            raise Invalid(f"{name}: {value!r} is not a staff user or a phone number")
        return destination.target

    return check


_VALIDATORS: dict[FieldType, Callable[..., Validator]] = {
    FieldType.COUNT: _count,
    FieldType.WINDOWS: _windows,
    FieldType.CONTACT: _contact,
}


@dataclass(frozen=True)
class Field:
    """One of a kind's own fields, as the API takes it and the form shows it."""

    name: str
    label: str
    type: FieldType = FieldType.TEXT
    required: bool = True
    max_length: int = 500
    hint: str = ""
    role: Role = Role.DETAIL
    # a ``[letter]`` text that phrases the value in letters (``{value}``), said only when the field
    # has one; without it the value itself fills the kind's letter text
    letter_phrase: str | None = None

    def validate(self, sess: Session, value: Any) -> Any:
        if self.type is FieldType.TEXT:
            return _text(self.max_length, self.required)(sess, value, self.name)
        return _VALIDATORS[self.type](self.required)(sess, value, self.name)

    def schema(self) -> dict[str, Any]:
        """The field in JSON Schema terms (for the API description)."""
        if self.type is FieldType.COUNT:
            return {
                "type": "integer",
                "minimum": 1,
                "maximum": validation.MAX_INT,
                "description": self.label,
            }
        if self.type is FieldType.WINDOWS:
            return {
                "type": "array",
                "description": self.label,
                "minItems": 1,
                "maxItems": validation.MAX_WINDOWS,
                "items": {
                    "type": "object",
                    "required": ["days", "start", "end"],
                    "properties": {
                        "days": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": len(validation.DAYS),
                            "items": {"enum": list(validation.DAYS)},
                        },
                        "start": {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"},
                        "end": {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"},
                    },
                },
            }
        return {"type": "string", "maxLength": self.max_length, "description": self.label}


@dataclass(frozen=True)
class Kind:
    name: str
    label: str
    flag: str  # what an agent sees; {value} is the flag's detail (see flag_detail)
    effect: Effect
    precedence: int
    fields: tuple[Field, ...] = ()
    message: str | None = None  # prompt key, for ENDS_CALL kinds
    flag_detail: str | None = None  # the detail shown with the flag ("since" is the decision day)
    example: Mapping[str, Any] = field(default_factory=dict)  # demo and docs

    def validate(self, sess: Session, body: Mapping[str, Any]) -> dict[str, Any]:
        """The kind's own fields from ``body``, checked and normalised."""
        return {f.name: f.validate(sess, body.get(f.name)) for f in self.fields}

    def field_for(self, role: Role) -> Field | None:
        """The kind's field with ``role`` (the person, the permitted times …), if it has one."""
        return next((f for f in self.fields if f.role is role), None)


_REGISTRY: dict[str, Kind] = {}
# Which effect each role belongs to, the field type it must be, and whether that effect needs it.
_ROLES = (
    (Role.PERSON, Effect.PERSON, FieldType.CONTACT, True),
    (Role.PERMITTED_TIMES, Effect.LIMITED, FieldType.WINDOWS, True),
    (Role.WEEKLY_ALLOWANCE, Effect.LIMITED, FieldType.COUNT, False),
)


NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")  # a key in the prompt files, forms and the API
# A kind's fields sit beside the restriction's own keys, in a new restriction's body and in the
# answers about it (a restriction, a live call's): none may take one of those names.
RESERVED_FIELD_NAMES = frozenset(
    {
        "id", "customer", "kind", "label", "reason", "reason_translations", "details",
        "active", "state", "decided_at", "decided_by", "decided_on", "notice_sent_on",
        "notice_method", "apply_now", "urgent_reason", "notice_due_on", "takes_effect_on",
        "review_due_on", "last_reviewed_on", "replaces", "appeals", "sharing", "ended_at",
        "ended_by", "end_reason", "in_force", "lapsed_on", "lapse_letter_sent_on", "since",
        "terms", "spoc_name", "warnings", "successor", "appeal_last_day",
        "appeal_counted_from", "letter",
    }
)  # fmt: skip


def register(kind: Kind) -> Kind:
    if not NAME.fullmatch(kind.name):
        raise ValueError(f"kind {kind.name!r}: a name is lower-case letters, digits and _")
    for f in kind.fields:
        if not NAME.fullmatch(f.name) or f.name in RESERVED_FIELD_NAMES:
            raise ValueError(
                f"kind {kind.name}: field {f.name!r} must be lower-case letters, digits and _, "
                "and not a name the restriction itself uses"
            )
    if kind.effect is Effect.ENDS_CALL and not kind.message:
        raise ValueError(f"kind {kind.name}: a kind that ends the call needs a message key")
    for role, effect, type_, needed in _ROLES:
        holding = [f for f in kind.fields if f.role is role]
        if len(holding) > 1 or any(f.type is not type_ for f in holding):
            raise ValueError(f"kind {kind.name}: at most one {type_} field is the {role}")
        if (kind.effect is not effect and holding) or (
            kind.effect is effect and needed and not holding
        ):
            raise ValueError(
                f"kind {kind.name}: a {effect} kind {'needs' if needed else 'may have'} the "
                f"{role} field, and only such a kind"
            )
    _REGISTRY[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)


def get(name: Any) -> Kind:
    """The kind called ``name``, or Invalid listing the kinds there are."""
    kind = _REGISTRY.get(name) if isinstance(name, str) else None
    if kind is None:
        raise Invalid(f"kind must be one of {', '.join(_REGISTRY)}, not {name!r}")
    return kind


def find(name: str) -> Kind | None:
    return _REGISTRY.get(name)


def all_kinds() -> list[Kind]:
    """Every kind, in declaration order."""
    return list(_REGISTRY.values())


def person_kinds() -> tuple[str, ...]:
    """The kinds whose calls are put through to a named person."""
    return tuple(k.name for k in _REGISTRY.values() if k.effect is Effect.PERSON)


def routes_to_person(name: str | None) -> bool:
    """Whether a call routed by the kind ``name`` is put through to a named person."""
    kind = _REGISTRY.get(name) if name else None
    return kind is not None and kind.effect is Effect.PERSON


def value_for(name: str, details: Mapping[str, Any] | None, role: Role) -> Any:
    """What a restriction of the kind ``name`` holds in its field with ``role`` (None if the kind
    has no such field or it is empty)."""
    kind = _REGISTRY.get(name)
    field = kind.field_for(role) if kind is not None else None
    value = (details or {}).get(field.name) if field is not None else None
    return None if value in (None, "", []) else value


def person_of(name: str, details: Mapping[str, Any] | None) -> str | None:
    """The person a restriction of the kind ``name`` puts the caller through to, if any."""
    value = value_for(name, details, Role.PERSON)
    return str(value).strip() or None if value is not None else None


# Flags that are not restrictions: what else an agent needs to know about a call.
OTHER_FLAGS = {
    "under_appeal": "Restriction under appeal",
    "unidentified": "Caller not identified",
    "fallback": "Checks were skipped: callguard could not look the caller up",
}


def describe_flag(flag: str) -> str:
    """A flag code (``name`` or ``name:detail``) in words for an agent."""
    name, _, value = flag.partition(":")
    kind = _REGISTRY.get(name)
    if kind is not None:
        return kind.flag.format(value=value)
    return OTHER_FLAGS.get(name, flag)


register(
    Kind(
        name="warning",
        label="Warning on file",
        flag="Warning on file since {value}",
        effect=Effect.FLAG,
        precedence=90,
        flag_detail="since",
        example={"reason": "Swore at a repairs operative (policy 4.3)"},
    )
)
register(
    Kind(
        name="spoc",
        label="Single point of contact",
        flag="Has a single point of contact",
        effect=Effect.PERSON,
        precedence=40,
        fields=(
            Field(
                "spoc",
                "Single point of contact",
                FieldType.CONTACT,
                hint="a staff user name, or their phone number",
                role=Role.PERSON,
            ),
        ),
        example={
            "spoc": "+441332000555",
            "reason": "Repeated calls to several officers about one complaint (5.1)",
        },
    )
)
register(
    Kind(
        name="written_only",
        label="Writing only",
        flag="Writing only",
        effect=Effect.ENDS_CALL,
        precedence=20,
        message="written_only",
        example={"reason": "Abusive calls after two warnings (4.2, 10.1)"},
    )
)
register(
    Kind(
        name="limited_contact",
        label="Limited contact",
        flag="Limited contact arrangement",
        effect=Effect.LIMITED,
        precedence=30,
        fields=(
            Field(
                "windows",
                "Permitted days and times",
                FieldType.WINDOWS,
                role=Role.PERMITTED_TIMES,
            ),
            Field(
                "max_calls_per_week",
                "Calls allowed per week",
                FieldType.COUNT,
                required=False,
                role=Role.WEEKLY_ALLOWANCE,
                letter_phrase="allowance",
            ),
        ),
        example={
            "max_calls_per_week": 2,
            "windows": [{"days": ["tue", "thu"], "start": "10:00", "end": "12:00"}],
            "reason": "Very long daily calls (6.2)",
        },
    )
)
register(
    Kind(
        name="representative_only",
        label="Representative only",
        flag="Representative only",
        effect=Effect.ENDS_CALL,
        precedence=10,
        message="representative_only",
        fields=(Field("representative", "Nominated representative", max_length=200),),
        example={
            "representative": "Derby Advocacy Service",
            "reason": "Threats to staff (4.6); contact through an advocate",
        },
    )
)
register(
    Kind(
        name="no_engagement",
        label="Not engaging on an issue",
        flag="Do not engage on: {value}",
        effect=Effect.FLAG,
        precedence=90,
        flag_detail="issue",
        fields=(Field("issue", "Issue not to be engaged on", max_length=500),),
        example={
            "issue": "the 2019 boundary fence dispute",
            "reason": "Decision explained three times (5.1)",
        },
    )
)
