"""Shapes both ways: a customer's reasonable adjustments (taken and given back the same), dates."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import ConfigDict, Field

from restrictions import adjustments, lifecycle
from telephony.api.shapes import Blank, Choice, Shape, domain_rule

Day = date  # an ISO date, "2026-03-01"
Moment = datetime  # an ISO moment with its offset, "2026-03-01T10:30:00+00:00"
# how a letter or notice went: post, email, hand or portal
Method = Annotated[str, Choice(lambda: lifecycle.NOTICE_METHODS)]
# optional ones, where "" (as a form sends an empty field) is left out too
SomeDay = Annotated[Day | None, Blank()]
SomeMethod = Annotated[Method | None, Blank()]


class Representative(Shape):
    """A representative or support worker, and how to reach them."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Their name.", max_length=adjustments.MAX_TEXT)
    contact: str = Field(
        description="How to reach them (a phone number, an email address).",
        max_length=adjustments.MAX_TEXT,
    )
    role: Annotated[str, Choice(lambda: adjustments.REPRESENTATIVE_ROLES)] = "representative"


class Adjustments(Shape):
    """Reasonable adjustments (policy 9.1-9.2), typed: any left out is unset, so
    {"slow_speech": true} is a whole answer. The customer's language is their language field.
    Health details go in sensitive_note: only supervisors see it (an agent's answer and the agent
    console never hold it) and the audit trail records only that it changed. On a change,
    sensitive_note left out stays as it is; null or an empty text removes it. Answers hold the
    fields that are set."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"slow_speech": True},
                {
                    "slow_speech": True,
                    "large_print": True,
                    "preferred_contact": "email",
                    "representative": {
                        "name": "Sam Jones",
                        "contact": "07700 900123",
                        "role": "support_worker",
                    },
                    "interpreter": "Polish",
                },
            ]
        },
    )

    _as_the_domain_reads_them = domain_rule(adjustments.parse)

    slow_speech: bool = Field(False, description="Prompts spoken slowly.")
    large_print: bool = Field(False, description="Large print for anything written.")
    preferred_contact: Annotated[str, Choice(lambda: adjustments.PREFERRED_CONTACT)] | None = Field(
        None, description="How they prefer to be contacted."
    )
    representative: Representative | None = None
    interpreter: str | None = Field(
        None,
        description=(
            "The language an interpreter speaks with them (Polish, British Sign Language …)."
        ),
        max_length=adjustments.MAX_INTERPRETER,
    )
    sensitive_note: str | None = Field(
        None,
        description="Supervisors only: health details and anything else agents must not read.",
        max_length=adjustments.MAX_SENSITIVE_NOTE,
    )


AdjustmentTexts = Annotated[
    list[str],
    Field(description="The adjustments in words, the language first (never the sensitive note)."),
]
