"""Sharing a restriction's information with other agencies (policy 10.1): a record of who it was
shared with, when, why, and the lawful basis (UK GDPR Article 6(1)), kept with the restriction
and on the audit trail."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from restrictions.errors import Invalid
from restrictions.lifecycle import Actor, audit
from restrictions.models import Restriction, SharingRecord
from restrictions.validation import optional_date, required_text

# UK GDPR Article 6(1): each lawful basis, and how staff read it.
LAWFUL_BASES = {
    "consent": "Consent (Article 6(1)(a))",
    "contract": "Contract (Article 6(1)(b))",
    "legal_obligation": "Legal obligation (Article 6(1)(c))",
    "vital_interests": "Vital interests (Article 6(1)(d))",
    "public_task": "Public task (Article 6(1)(e))",
    "legitimate_interests": "Legitimate interests (Article 6(1)(f))",
}
MAX_SHARED_WITH = 200
MAX_PURPOSE = 2000


def snapshot(record: SharingRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "restriction_id": record.restriction_id,
        "shared_with": record.shared_with,
        "shared_on": record.shared_on.isoformat(),
        "purpose": record.purpose,
        "lawful_basis": record.lawful_basis,
    }


def record_sharing(
    sess: Session, actor: Actor, restriction: Restriction, body: Mapping[str, Any], *, today: date
) -> SharingRecord:
    """``{shared_with, shared_on, purpose, lawful_basis}``: recorded on the restriction (ended or
    not: sharing may be recorded after the event) and audited."""
    shared_with = required_text(body.get("shared_with"), "shared_with", max_length=MAX_SHARED_WITH)
    shared_on = optional_date(body.get("shared_on"), "shared_on")
    if shared_on is None:
        raise Invalid("shared_on is required: the day it was shared, like 2026-03-01")
    if shared_on > today:
        raise Invalid(f"shared_on {shared_on.isoformat()} is in the future")
    purpose = required_text(body.get("purpose"), "purpose", max_length=MAX_PURPOSE)
    basis = body.get("lawful_basis")
    if basis not in LAWFUL_BASES:
        raise Invalid(f"lawful_basis must be one of {', '.join(LAWFUL_BASES)}")
    record = SharingRecord(
        restriction_id=restriction.id,
        shared_with=shared_with,
        shared_on=shared_on,
        purpose=purpose,
        lawful_basis=str(basis),
        recorded_by_id=actor.user_id,
        recorded_by=actor.label,
    )
    restriction.sharing.append(record)
    sess.flush()
    audit(
        sess,
        actor,
        "restriction.shared",
        "restriction",
        restriction.id,
        customer_id=restriction.customer_id,
        after=snapshot(record),
    )
    return record
