"""What the API takes: each request body, as its view expects it. A model checks the shape (the
fields, their types, their lengths); the domain then checks the rules (a date not in the future,
a number phonenumbers can read, a staff user who exists) and names the field when one fails."""

from __future__ import annotations

import functools
import operator
from typing import Annotated, Any, Literal, cast

from pydantic import ConfigDict, Field, TypeAdapter, WithJsonSchema, create_model

import prompts
from restrictions import appeals, kinds, reviews, sharing
from restrictions.phone import MAX_NUMBER_LENGTH, MAX_NUMBERS
from restrictions.validation import MAX_ADDRESS_LINE, MAX_ADDRESS_LINES
from telephony.api.shapes import AtMostAsMany, Blank, Choice, Shape
from telephony.api.shapes.common import Adjustments, Day, Method, SomeDay, SomeMethod

MAX_BODY_FIELDS = 40  # an object whose fields are not listed (a restriction's body in another)
REASON = 5000  # the longest reason, note or explanation staff may write

Language = Annotated[
    str, Choice(prompts.languages), Field(description="What callguard speaks to them in.")
]
Text = Annotated[str, Field(max_length=REASON)]
PhoneNumber = Annotated[
    str,
    Field(
        max_length=MAX_NUMBER_LENGTH,
        description="A phone number (E.164, or a UK number as dialled in the UK).",
    ),
]
AddressLine = Annotated[
    str,
    Field(
        max_length=MAX_ADDRESS_LINE,
        description="One line of the address, as the envelope shows it.",
    ),
]
PostalAddress = Annotated[
    list[AddressLine],
    Field(max_length=MAX_ADDRESS_LINES, examples=[["Flat 2", "14 Mill Lane", "Derby", "DE1 3AB"]]),
]
AnyBody = Annotated[
    dict[str, Any],
    Field(max_length=MAX_BODY_FIELDS),
]
LetterMethod = Annotated[
    SomeMethod, Field(description="How the letter goes to the customer; post if left out.")
]


class NewCustomer(Shape):
    reference: str = Field(description="The landlord's own reference.", max_length=64)
    name: str = Field(description="Their name.", max_length=200)
    phone_numbers: list[PhoneNumber] = Field(
        description="The numbers they call from.", min_length=1, max_length=MAX_NUMBERS
    )
    language: Annotated[Language | None, Blank()] = Field(
        None, description=f"What callguard speaks to them in; {prompts.DEFAULT} if left out."
    )
    adjustments: Adjustments | None = None
    postal_address: PostalAddress | None = Field(
        None,
        description="Their postal address, a line each, for the letters' window envelope.",
    )


class CustomerChanges(Shape):
    """The fields to change; a field left out (or null) stays as it is."""

    name: str | None = Field(None, description="Their name.", max_length=200)
    phone_numbers: list[PhoneNumber] | None = Field(
        None,
        description="All their numbers (replaces the list).",
        min_length=1,
        max_length=MAX_NUMBERS,
    )
    language: Language | None = None
    adjustments: Adjustments | None = Field(None, description="Replaces the adjustments.")
    postal_address: PostalAddress | None = Field(
        None, description="Their postal address, a line each (replaces it; [] removes it)."
    )
    attach_past_calls: bool | None = Field(
        None,
        description=(
            "true: the past calls from their numbers (a number added now, or earlier) that are "
            "not yet anyone's become theirs, with their counts and alerts, as "
            "POST /customers/{reference}/numbers does."
        ),
    )
    reason: Text | None = Field(
        None, description="Why, for the audit trail (with attach_past_calls)."
    )


class AttachCall(Shape):
    customer: str = Field(
        description="The reference of the customer whose call it was.", max_length=64
    )
    reason: Text = Field(description="How it is known to be theirs (the audit trail says).")
    number: bool = Field(
        False,
        description=(
            "true: the call's number is theirs as well (added to their record), and so is every "
            "past call from it that is not yet anyone's."
        ),
    )


class AttachNumber(Shape):
    number: PhoneNumber
    reason: Text | None = Field(None, description="Why, for the audit trail.")


class EndRestriction(Shape):
    reason: Text = Field(description="Why it ends (said in the end letter).")
    letter_method: LetterMethod = None


class NewSharing(Shape):
    """Information about a restriction shared with another agency (policy 10.1)."""

    shared_with: str = Field(
        description="The agency (and person) it was shared with.",
        max_length=sharing.MAX_SHARED_WITH,
    )
    shared_on: Day = Field(description="The day it was shared (not in the future).")
    purpose: str = Field(description="Why it was shared.", max_length=sharing.MAX_PURPOSE)
    lawful_basis: Annotated[str, Choice(lambda: sharing.LAWFUL_BASES)] = Field(
        description="The lawful basis, UK GDPR Article 6(1)."
    )


class NewAppeal(Shape):
    lodged_on: SomeDay = Field(None, description="When it was lodged; today if left out.")
    grounds: str = Field(description="The customer's grounds.", max_length=10000)
    late_reason: Text | None = Field(None, description="Why a late appeal is accepted (recorded).")


class Notice(Shape):
    sent_on: Day = Field(description="When the notice was sent.")
    method: Method


class ReviewBody(Shape):
    outcome: Annotated[str, Choice(lambda: reviews.REVIEW_OUTCOMES)]
    notes: Text = Field(description="What the review found.")
    next_review_on: SomeDay = Field(None, description="For continue: at most 12 months.")
    successor: AnyBody | None = Field(None, description="For vary: a new restriction's body.")
    letter_method: LetterMethod = None


class AppealDecision(Shape):
    outcome: Annotated[str, Choice(lambda: appeals.APPEAL_OUTCOMES)]
    notes: str = Field(description="Why.", max_length=10000)
    successor: AnyBody | None = Field(None, description="For varied: a new restriction's body.")
    override_reason: Text | None = Field(
        None,
        description=(
            "Required of an admin who took part in the restriction (decided, reviewed, varied or "
            "continued it): why they decide the appeal all the same. Recorded on the appeal and "
            "the audit trail; ignored from anyone else."
        ),
    )
    letter_method: LetterMethod = None


class LapseLetter(Shape):
    sent_on: Day = Field(
        description="When the letter about the lapse was sent (from the lapse to today)."
    )
    method: SomeMethod = Field(
        None, description="How the letter went to the customer; post if left out."
    )
    letter_method: SomeMethod = Field(
        None,
        description=(
            "Another name for method (as the other steps call it); if both are given they must "
            "agree."
        ),
    )


class DismissAlert(Shape):
    reason: Text = Field(description="Why no action is needed.")


class WarnCall(Shape):
    """Nothing is needed; a body, if sent, must be a JSON object."""

    model_config = ConfigDict(json_schema_extra={"maxProperties": MAX_BODY_FIELDS})


class EndCall(Shape):
    reason: str | None = Field(
        None, description="Why; needed unless the call was warned first.", max_length=2000
    )


# --- a new restriction: one body per registered kind ---------------------------------------------

EFFECTS = {
    kinds.Effect.FLAG: "Calls take the default route; agents see the flag.",
    kinds.Effect.PERSON: "Calls are put through to the named person.",
    kinds.Effect.LIMITED: "Calls are taken only at the permitted times, up to a weekly allowance.",
    kinds.Effect.ENDS_CALL: (
        "The caller hears a message (emergency repairs are offered); then the call ends."
    ),
}


class RestrictionCommon(Shape):
    """What every kind's body has: the reason, its translations and the notice."""

    reason: Text = Field(description="Why: the behaviour and the policy section.")
    reason_translations: (
        Annotated[
            dict[
                Annotated[str, Choice(prompts.languages)],
                Annotated[str, Field(min_length=1, max_length=REASON)],
            ],
            AtMostAsMany(prompts.languages),
        ]
        | None
    ) = Field(
        None,
        description=(
            "The reason in the customer's language, for their letters (the reason itself is used "
            "in a language left out); each is marked in the letter as written by staff."
        ),
        examples=[{"cy-GB": "Gweiddi ar weithiwr atgyweirio ar 3 Rhagfyr (polisi 4.3)"}],
    )
    decided_on: SomeDay = Field(None, description="The decision's date (today if left out).")
    notice_sent_on: SomeDay = Field(
        None, description="When the customer was sent notice: it applies from then."
    )
    notice_method: SomeMethod = None
    apply_now: bool | None = Field(
        None, description="Apply at once, for danger (4.6); needs urgent_reason."
    )
    urgent_reason: Text | None = Field(None, description="Why it cannot wait for the notice.")


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def component_name(name: str) -> str:
    """A kind's body's component key (a kind's name is letters, digits and ``_``)."""
    return f"NewRestriction-{name}"


def kind_body(kind: kinds.Kind) -> type[Shape]:
    """The body for a restriction of ``kind``: the common fields and the kind's own, whose
    shapes (and deeper checks) its declaration gives (``kinds.Field.schema``/``validate``)."""
    own: dict[str, Any] = {
        "kind": (
            Annotated[
                Literal[kind.name],
                WithJsonSchema({"const": kind.name, "description": kind.label}),
            ],
            ...,
        )
    }
    for f in kind.fields:  # as the declaration says it, with no default to show
        shaped = Annotated[Any, WithJsonSchema(f.schema()), Field(json_schema_extra=_no_default)]
        own[f.name] = (shaped, ... if f.required else None)
    extra: dict[str, Any] = {"title": kind.label}
    if kind.example:
        extra["json_schema_extra"] = {"examples": [{"kind": kind.name, **kind.example}]}
    model: type[Shape] = create_model(
        component_name(kind.name),
        __base__=RestrictionCommon,
        __doc__=" ".join(filter(None, [f"{kind.label}.", EFFECTS.get(kind.effect)])),
        __config__=None,
        **own,
    )
    cast(dict[str, Any], model.model_config).update(extra)
    model.model_rebuild(force=True)
    return model


def declared() -> tuple[object, ...]:
    """What the generated shapes depend on that can change while callguard runs: the kinds
    registered and the languages there are (a test adds both). Shapes made from it are kept
    until it changes."""
    return (*((kind.name, id(kind)) for kind in kinds.all_kinds()), *prompts.languages())


@functools.lru_cache(maxsize=8)
def _kind_bodies(declared: tuple[object, ...]) -> dict[str, type[Shape]]:
    return {kind.name: kind_body(kind) for kind in kinds.all_kinds()}


def kind_bodies() -> dict[str, type[Shape]]:
    """Each registered kind's body, made again when a kind is registered or goes."""
    return _kind_bodies(declared())


def new_restriction() -> TypeAdapter[Any]:
    """``NewRestriction``: one of the kinds' bodies, told apart by ``kind``."""
    return _new_restriction(declared())


@functools.lru_cache(maxsize=4)
def _new_restriction(declared: tuple[object, ...]) -> TypeAdapter[Any]:
    bodies = list(kind_bodies().values())
    if not bodies:  # nothing can be recorded, but the document stays valid
        return TypeAdapter(RestrictionCommon)
    members: Any = functools.reduce(operator.or_, bodies)  # A | B | …
    union: Any = bodies[0] if len(bodies) == 1 else Annotated[members, Field(discriminator="kind")]
    return TypeAdapter(
        Annotated[
            union,
            Field(
                description=(
                    "A decision under policy 10.1: the kind, the reason and the kind's own fields."
                )
            ),
        ]
    )
