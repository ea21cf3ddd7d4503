"""Keeping personal data no longer than needed (UK GDPR storage limitation).

Raw callback payloads go after ``callback_payload_days`` (90: long enough to settle any dispute
about a call's events, which are summarised on the call's row); call rows after ``call_days``
(730: two years of contact history is what excessive-contact decisions and their reviews look
back on) — anonymised where an agent's incident still refers to them, deleted otherwise; agents'
incidents and ended restrictions (with their reviews and appeals; their letters are made from
those records) after ``closed_years`` (6: the limitation period for a claim). Nothing about a
restriction in force, an open alert or an undecided appeal is touched. Each run is audited with
its counts; ``dry_run`` counts without changing anything.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, delete, exists, func, or_, select, update
from sqlalchemy.orm import Session

from restrictions.lifecycle import SYSTEM, audit
from restrictions.models import (
    AgentAction,
    Appeal,
    Call,
    CallEvent,
    ContactAlert,
    Restriction,
    Review,
)


@dataclass(frozen=True)
class Retention:
    callback_payload_days: int = 90
    call_days: int = 730
    closed_years: int = 6


@dataclass(frozen=True)
class Purged:
    callback_events: int
    calls_deleted: int
    calls_anonymised: int
    incidents: int
    restrictions: int

    def lines(self) -> list[str]:
        return [f"{name.replace('_', ' ')}: {count}" for name, count in asdict(self).items()]


def _customer_protected() -> object:
    """Customers with a restriction in force, an open alert or an undecided appeal."""
    live = select(Restriction.customer_id).where(Restriction.ended_at.is_(None))
    alerts = select(ContactAlert.customer_id).where(
        ContactAlert.status == "open", ContactAlert.customer_id.is_not(None)
    )
    appeals = (
        select(Restriction.customer_id)
        .join(Appeal, Appeal.restriction_id == Restriction.id)
        .where(Appeal.outcome.is_(None))
    )
    return live.union(alerts, appeals)


def _count(sess: Session, query: Select[Any]) -> int:
    return int(sess.scalar(select(func.count()).select_from(query.subquery())) or 0)


def purge(
    sess: Session, rules: Retention, *, now: datetime | None = None, dry_run: bool = False
) -> Purged:
    """Apply the rules; the caller commits (or, for a dry run, nothing is changed)."""
    now = now or datetime.now(UTC)
    events_before = now - timedelta(days=rules.callback_payload_days)
    calls_before = now - timedelta(days=rules.call_days)
    closed_before = now - timedelta(days=365 * rules.closed_years + rules.closed_years // 4)
    protected = _customer_protected()

    old_events = select(CallEvent.id).where(
        CallEvent.received_at < events_before, CallEvent.processed_at.is_not(None)
    )
    old_calls = select(Call.id).where(
        Call.started_at < calls_before,
        or_(Call.customer_id.is_(None), Call.customer_id.not_in(protected)),  # type: ignore[arg-type]
    )
    referenced = exists().where(AgentAction.call_id == Call.id)
    deletable_calls = old_calls.where(~referenced)
    anonymisable_calls = old_calls.where(referenced, Call.from_number != "")
    old_incidents = select(AgentAction.id).where(AgentAction.created_at < closed_before)
    old_restrictions = select(Restriction.id).where(
        Restriction.ended_at.is_not(None), Restriction.ended_at < closed_before
    )
    counts = Purged(
        callback_events=_count(sess, old_events),
        calls_deleted=_count(sess, deletable_calls),
        calls_anonymised=_count(sess, anonymisable_calls),
        incidents=_count(sess, old_incidents),
        restrictions=_count(sess, old_restrictions),
    )
    if dry_run:
        return counts
    sess.execute(delete(CallEvent).where(CallEvent.id.in_(old_events)))
    sess.execute(delete(AgentAction).where(AgentAction.id.in_(old_incidents)))
    sess.execute(
        update(Call)
        .where(Call.id.in_(anonymisable_calls))
        .values(from_number="", from_e164=None, caller_name=None, voicemail_url=None, flags={})
    )
    sess.execute(delete(Call).where(Call.id.in_(deletable_calls.where(~referenced))))
    doomed = list(sess.scalars(old_restrictions))
    if doomed:
        for table, column in (
            (Call, Call.restriction_id),
            (ContactAlert, ContactAlert.restriction_id),
            (Restriction, Restriction.replaces_id),
        ):
            sess.execute(update(table).where(column.in_(doomed)).values({column.key: None}))
        sess.execute(
            update(Appeal).where(Appeal.successor_id.in_(doomed)).values(successor_id=None)
        )
        sess.execute(
            update(Review).where(Review.successor_id.in_(doomed)).values(successor_id=None)
        )
        sess.execute(delete(Appeal).where(Appeal.restriction_id.in_(doomed)))
        sess.execute(delete(Review).where(Review.restriction_id.in_(doomed)))
        sess.execute(delete(Restriction).where(Restriction.id.in_(doomed)))
    audit(sess, SYSTEM, "retention.purged", "retention", 0, customer_id=None, after=asdict(counts))
    return counts
