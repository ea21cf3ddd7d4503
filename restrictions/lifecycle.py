"""Creating and changing customers and restrictions, each change written to the audit trail.

Every function here takes the session and the acting person, changes rows and adds AuditEntry rows
in the same transaction; the caller commits. The routing cache is refreshed after the commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import prompts
from restrictions import cache, kinds, policy_dates, validation
from restrictions.adjustments import of as adjustments_of
from restrictions.adjustments import parse as parse_adjustments
from restrictions.adjustments import store as store_adjustments
from restrictions.errors import Conflict, Invalid, NotFound
from restrictions.models import AuditEntry, Customer, PhoneNumber, Restriction, User
from restrictions.phone import MAX_NUMBERS, to_e164
from restrictions.validation import optional_date, required_text

# The policy's dates are restrictions.policy_dates's (12 months to a review, 2 working days to
# the notice of one applied at once); the names stay here for what imported them from here.
REVIEW_MONTHS = policy_dates.REVIEW_MONTHS
NOTICE_WORKING_DAYS = policy_dates.NOTICE_WORKING_DAYS
NOTICE_METHODS = ("post", "email", "hand", "portal")


@dataclass(frozen=True)
class Actor:
    """Who is making a change: a staff user, or a named system process (CLI import, scheduler)."""

    user_id: int | None
    label: str

    @classmethod
    def of(cls, user: User) -> Actor:
        return cls(user.id, user.name)


SYSTEM = Actor(None, "callguard")  # changes callguard makes by itself (alerts)
SENSITIVE_NOTE_CHANGED = "sensitive note changed"  # all the audit trail says about the note


def audit(
    sess: Session,
    actor: Actor,
    action: str,
    entity: str,
    entity_id: int,
    *,
    customer_id: int | None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    note: str | None = None,
) -> AuditEntry:
    entry = AuditEntry(
        actor_id=actor.user_id,
        actor=actor.label,
        action=action,
        entity=entity,
        entity_id=entity_id,
        customer_id=customer_id,
        before=dict(before) if before is not None else None,
        after=dict(after) if after is not None else None,
        note=note,
    )
    sess.add(entry)
    return entry


def customer_snapshot(customer: Customer) -> dict[str, Any]:
    return {
        "reference": customer.reference,
        "name": customer.name,
        "language": customer.language,
        # the typed adjustments staff may see: never the sensitive note (nor, from a row written
        # before adjustments were typed, the free text read into it)
        "adjustments": adjustments_of(customer).public(),
        "phone_numbers": [n.e164 for n in customer.numbers],
        "postal_address": list(customer.postal_address or []),
    }


def restriction_snapshot(r: Restriction) -> dict[str, Any]:
    return {
        "id": r.id,
        "kind": r.kind,
        "reason": r.reason,
        "reason_translations": dict(r.reason_translations or {}),
        "details": dict(r.details or {}),
        "decided_at": r.decided_at.isoformat() if r.decided_at else None,
        "notice_sent_on": r.notice_sent_on.isoformat() if r.notice_sent_on else None,
        "review_due_on": r.review_due_on.isoformat() if r.review_due_on else None,
        "state": r.state,
        "decided_on": r.decided_on.isoformat() if r.decided_on else None,
        "apply_now": r.apply_now,
        "notice_method": r.notice_method,
        "last_reviewed_on": r.last_reviewed_on.isoformat() if r.last_reviewed_on else None,
        "ended_at": r.ended_at.isoformat() if r.ended_at else None,
        "end_reason": r.end_reason,
    }


# --- customers -------------------------------------------------------------------------------


def _language(value: Any) -> str:
    if value is None or value == "":
        return "en-GB"
    languages = prompts.languages()
    if value not in languages:
        raise Invalid(f"language must be one of {', '.join(languages)}, not {value!r}")
    return str(value)


def normalise_numbers(raw: Any) -> list[str]:
    if not isinstance(raw, list) or not raw:
        raise Invalid("phone_numbers must be a non-empty list")
    if len(raw) > MAX_NUMBERS:
        raise Invalid(f"phone_numbers may hold at most {MAX_NUMBERS} numbers")
    numbers: list[str] = []
    for item in raw:
        if not isinstance(item, str):
            raise Invalid(f"phone number {item!r} must be text")
        e164 = to_e164(item)
        if e164 not in numbers:
            numbers.append(e164)
    return numbers


def _check_numbers_free(sess: Session, numbers: Iterable[str], customer_id: int | None) -> None:
    clash = sess.execute(
        select(PhoneNumber.e164, Customer.reference)
        .join(Customer)
        .where(PhoneNumber.e164.in_(list(numbers)))
        .where(Customer.id != (customer_id or -1))
    ).first()
    if clash is not None:
        raise Conflict(f"phone number {clash[0]} already belongs to customer {clash[1]}")


def create_customer(
    sess: Session,
    actor: Actor,
    *,
    reference: Any,
    name: Any,
    phone_numbers: Any,
    language: Any = None,
    adjustments: Any = None,
    postal_address: Any = None,
    refresh_cache: bool = True,
) -> Customer:
    ref = required_text(reference, "reference", max_length=64)
    customer = Customer(
        reference=ref,
        name=required_text(name, "name", max_length=200),
        language=_language(language),
        postal_address=validation.postal_address(postal_address),
    )
    store_adjustments(customer, parse_adjustments(adjustments))
    numbers = normalise_numbers(phone_numbers)
    if sess.scalar(select(Customer.id).where(Customer.reference == ref)) is not None:
        raise Conflict(f"a customer with reference {ref!r} already exists")
    _check_numbers_free(sess, numbers, None)
    customer.numbers = [PhoneNumber(e164=n) for n in numbers]
    try:
        with sess.begin_nested():  # two creations at once: the unique keys decide, not a 500
            sess.add(customer)
            sess.flush()
    except IntegrityError:
        raise Conflict(
            f"a customer with reference {ref!r} or one of these numbers was created just now"
        ) from None
    audit(
        sess,
        actor,
        "customer.created",
        "customer",
        customer.id,
        customer_id=customer.id,
        after=customer_snapshot(customer),
        # what it says stays out of the audit trail: only that there is one
        note=SENSITIVE_NOTE_CHANGED if customer.sensitive_note else None,
    )
    if refresh_cache:
        cache.refresh_after_commit(sess, customer.id)
    return customer


def update_customer(
    sess: Session,
    actor: Actor,
    customer: Customer,
    *,
    name: Any = None,
    phone_numbers: Any = None,
    language: Any = None,
    adjustments: Any = None,
    postal_address: Any = None,
    refresh_cache: bool = True,
) -> bool:
    """Apply the given fields; returns whether anything changed (and so was audited). A field
    left as None stays as it is; ``postal_address=[]`` removes the address."""
    before = customer_snapshot(customer)
    note_before = adjustments_of(customer).sensitive_note
    if name is not None:
        customer.name = required_text(name, "name", max_length=200)
    if language is not None:
        customer.language = _language(language)
    if adjustments is not None:
        store_adjustments(customer, parse_adjustments(adjustments, adjustments_of(customer)))
    if postal_address is not None:
        customer.postal_address = validation.postal_address(postal_address)
    stale: list[str] = []
    if phone_numbers is not None:
        numbers = normalise_numbers(phone_numbers)
        _check_numbers_free(sess, numbers, customer.id)
        current = {n.e164: n for n in customer.numbers}
        stale = [n for n in current if n not in numbers]
        customer.numbers = [current.get(n) or PhoneNumber(e164=n) for n in numbers]
    after = customer_snapshot(customer)
    # The sensitive note is compared here and never copied into the trail: the entry says that
    # it changed, not what it said or says.
    note_changed = adjustments_of(customer).sensitive_note != note_before
    if after == before and not note_changed:
        return False
    sess.flush()
    audit(
        sess,
        actor,
        "customer.updated",
        "customer",
        customer.id,
        customer_id=customer.id,
        before=before,
        after={**after, "sensitive_note": "changed"} if note_changed else after,
        note=SENSITIVE_NOTE_CHANGED if note_changed else None,
    )
    if refresh_cache:
        cache.refresh_after_commit(sess, customer.id, stale)
    return True


def get_customer(sess: Session, reference: str) -> Customer:
    customer = sess.scalar(select(Customer).where(Customer.reference == reference))
    if customer is None:
        raise NotFound(f"no customer with reference {reference!r}")
    return customer


# --- restrictions ----------------------------------------------------------------------------


def add_restriction(
    sess: Session,
    actor: Actor,
    customer: Customer,
    body: Mapping[str, Any],
    *,
    decided_at: datetime | None = None,
    source_alert_id: int | None = None,
    today: date | None = None,
) -> Restriction:
    """Record a decision under policy 10.1. It applies to calls from the day its written notice
    is recorded (``notice_sent_on`` records it at once), or at once with ``apply_now`` and an
    ``urgent_reason`` (danger, 4.6: the notice is then due within 2 working days). The first
    review falls due 12 months after it takes effect (10.4)."""
    when = decided_at or datetime.now(UTC)
    today = today or policy_dates.today(now=when)
    kind = kinds.get(body.get("kind"))
    reason = required_text(body.get("reason"), "reason", max_length=5000)
    translations = validation.reason_translations(
        body.get("reason_translations"), prompts.languages(), max_length=5000
    )
    details = kind.validate(sess, body)
    decided_on = optional_date(body.get("decided_on"), "decided_on") or today
    if decided_on > today:
        raise Invalid(f"decided_on {decided_on.isoformat()} is in the future")
    notice_sent_on = optional_date(body.get("notice_sent_on"), "notice_sent_on")
    if notice_sent_on is not None and not decided_on <= notice_sent_on <= today:
        raise Invalid(
            f"notice_sent_on {notice_sent_on.isoformat()} must be between the decision "
            f"({decided_on.isoformat()}) and today"
        )
    method = body.get("notice_method") or ("post" if notice_sent_on else None)
    if method is not None and method not in NOTICE_METHODS:
        raise Invalid(f"notice_method must be one of {', '.join(NOTICE_METHODS)}, not {method!r}")
    apply_now = body.get("apply_now", False)
    if not isinstance(apply_now, bool):
        raise Invalid("apply_now must be true or false")
    urgent_reason = None
    if apply_now:
        urgent_reason = required_text(body.get("urgent_reason"), "urgent_reason", max_length=5000)
    restriction = Restriction(
        customer_id=customer.id,
        kind=kind.name,
        reason=reason,
        reason_translations=translations or None,
        details=details,
        decided_by_id=actor.user_id,
        decided_at=when,
        decided_on=decided_on,
        notice_sent_on=notice_sent_on,
        notice_method=method,
        apply_now=apply_now,
        urgent_reason=urgent_reason,
        notice_due_on=policy_dates.notice_due(decided_on) if apply_now else None,
        source_alert_id=source_alert_id,
    )
    effect = restriction.takes_effect_on
    restriction.review_due_on = policy_dates.review_due(effect) if effect else None
    restriction.customer = customer
    sess.add(restriction)
    sess.flush()
    audit(
        sess,
        actor,
        "restriction.created",
        "restriction",
        restriction.id,
        customer_id=customer.id,
        after=restriction_snapshot(restriction),
        note=urgent_reason,
    )
    cache.refresh_after_commit(sess, customer.id)
    return restriction


def get_restriction(
    sess: Session, restriction_id: int, *, for_decision: bool = False
) -> Restriction:
    """The restriction; ``for_decision`` locks its row for this transaction (one decision at a
    time: ending, appealing, reviewing)."""
    restriction = sess.get(Restriction, restriction_id, with_for_update=for_decision or None)
    if restriction is None:
        raise NotFound(f"no restriction with id {restriction_id}")
    return restriction


def end_restriction(
    sess: Session, actor: Actor, restriction: Restriction, reason: Any
) -> Restriction:
    """A restriction ends only by a recorded decision; the row stays."""
    text = required_text(reason, "reason", max_length=5000)
    if restriction.ended_at is not None:
        raise Conflict(
            f"restriction {restriction.id} already ended on {restriction.ended_at:%Y-%m-%d}"
        )
    before = restriction_snapshot(restriction)
    restriction.ended_at = datetime.now(UTC)
    restriction.ended_by_id = actor.user_id
    restriction.end_reason = text
    audit(
        sess,
        actor,
        "restriction.ended",
        "restriction",
        restriction.id,
        customer_id=restriction.customer_id,
        before=before,
        after=restriction_snapshot(restriction),
    )
    cache.refresh_after_commit(sess, restriction.customer_id)
    return restriction


def clashes(restriction: Restriction) -> list[str]:
    """Which other live restriction of the customer wins over this one on the phone line (the
    routing precedence), in words; empty when this one applies."""
    mine = kinds.find(restriction.kind)
    if mine is None:
        return []
    warnings = []
    for other in restriction.customer.restrictions:
        if other.id == restriction.id or other.state != "active":
            continue  # only what applies to calls can override
        theirs = kinds.find(other.kind)
        if theirs is None or theirs.effect is kinds.Effect.FLAG:
            continue
        if theirs.precedence < mine.precedence or (
            theirs.name == mine.name and other.decided_at > restriction.decided_at
        ):
            warnings.append(
                f"restriction {other.id} ({theirs.label}) overrides this one on calls: "
                f"it comes first in the routing order"
            )
    return warnings
