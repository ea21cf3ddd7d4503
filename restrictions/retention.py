"""Keeping personal data no longer than needed (UK GDPR storage limitation), for every table.

- Raw callback payloads go after ``callback_payload_days`` (90: long enough to settle any dispute
  about a call's events, which are summarised on the call's row).
- Call rows after ``call_days`` (730: two years of contact history is what excessive-contact
  decisions and their reviews look back on): anonymised where an agent's incident still refers
  to them, deleted otherwise (with their voicemails, once Twilio's copy is gone).
- Agents' incidents and ended restrictions (with their reviews, appeals, letters as sent and
  sharing records) after ``closed_years`` (6: the limitation period for a claim).
- Closed alerts (dismissed, escalated, merged) ``alert_years`` after they were closed.
- Audit entries after ``closed_years``, except those about a restriction still held, an open
  alert or an undecided appeal.
- Customers with no activity for ``customer_years`` (their record unchanged, no call, nothing on
  the audit trail, no alert, restriction or incident), with everything about them: numbers,
  calls, alerts, incidents, ended restrictions, letters, voicemails, audit entries.
- Twilio's copy of a voicemail ``voicemail_days`` after it was handled, or
  ``voicemail_unhandled_days`` after it was left when nobody handled it: deleted at Twilio by the
  web layer (``telephony.purging``), which passes the count in.

Nothing about a restriction still held (in force or awaiting its notice), an open alert or an
undecided appeal is touched, and no customer goes while they have one. Each run records its
counts in one audit entry; ``dry_run`` does the same work inside a savepoint it rolls back, so
the counts are exactly what a real run would remove, and nothing changes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    CursorResult,
    Executable,
    Table,
    and_,
    delete,
    exists,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from restrictions import cache
from restrictions.lifecycle import SYSTEM, audit
from restrictions.models import (
    AgentAction,
    Appeal,
    AuditEntry,
    Base,
    Call,
    CallEvent,
    ContactAlert,
    Customer,
    PhoneNumber,
    Restriction,
    Voicemail,
)

CHUNK = 1000  # ids per statement (a statement's parameters are bounded)


@dataclass(frozen=True)
class Retention:
    callback_payload_days: int = 90
    call_days: int = 730
    closed_years: int = 6  # incidents, ended restrictions, audit entries: the limitation period
    alert_years: int = 6  # closed alerts, counted from when they were closed
    customer_years: int = 6  # customers with no activity for this long
    voicemail_days: int = 30  # Twilio's copy of a voicemail, after it was handled
    voicemail_unhandled_days: int = 90  # … of one nobody handled, after it was left


@dataclass(frozen=True)
class Purged:
    """What a run removed (or, dry, would remove), rule by rule, and ``tables``: the rows gone
    from each table, every table listed."""

    callback_events: int = 0
    calls_deleted: int = 0
    calls_anonymised: int = 0
    incidents: int = 0
    restrictions: int = 0
    alerts: int = 0
    audit_entries: int = 0
    customers: int = 0
    recordings_deleted: int = 0  # Twilio's copies of voicemails
    tables: dict[str, int] = field(default_factory=dict)

    def lines(self) -> list[str]:
        return [
            f"{name.replace('_', ' ')}: {count}"
            for name, count in asdict(self).items()
            if name != "tables"
        ]

    def table_lines(self) -> list[str]:
        return [f"{name}: {count}" for name, count in self.tables.items()]


def _years(n: int) -> timedelta:
    return timedelta(days=365 * n + n // 4)


def _chunks(ids: Sequence[int]) -> Iterator[Sequence[int]]:
    for i in range(0, len(ids), CHUNK):
        yield ids[i : i + CHUNK]


def _rows(sess: Session, statement: Executable) -> int:
    """How many rows a DELETE removed."""
    result: CursorResult[Any] = sess.execute(statement)  # type: ignore[assignment]
    return int(result.rowcount)


def _referrers(table: Table) -> list[tuple[Table, Column[Any]]]:
    """Every (table, column) whose foreign key points at ``table``, as the models declare them
    (so a table added later is covered without changing this module); the tables that depend on
    most come first, so a row is deleted before anything it refers to is touched (a letter as
    sent, which may never be updated, goes before the review it names)."""
    return [
        (other, fk.parent)
        for other in reversed(Base.metadata.sorted_tables)
        for fk in other.foreign_keys
        if fk.column.table is table
    ]


def _model(table: Table) -> Any:
    """The table's mapped class, or the table itself: a statement on the class keeps the
    session's objects in step (a deleted row is gone from it too)."""
    for mapper in Base.registry.mappers:
        if mapper.local_table is table:
            return mapper.class_
    return table


class _Run:
    def __init__(self, sess: Session) -> None:
        self.sess = sess
        self.tables = {t.name: 0 for t in sorted(Base.metadata.sorted_tables, key=lambda t: t.name)}

    def ids(self, query: Any) -> list[int]:
        return list(self.sess.scalars(query))

    def delete(self, table: Table, where: Any) -> int:
        statement = delete(_model(table)).where(where)
        gone = _rows(self.sess, statement.execution_options(synchronize_session="fetch"))
        self.tables[table.name] += gone
        return gone

    def remove(self, table: Table, ids: Sequence[int], *, whole: bool = False) -> int:
        """Delete these rows and what depends on them: a row that must refer to one of them
        (NOT NULL) goes too, and so, when ``whole`` (everything about a customer), does every
        row that refers to them; otherwise an optional reference is cleared. Returns how many
        of ``table``'s rows went."""
        if not ids:
            return 0
        for other, column in _referrers(table):
            for chunk in _chunks(ids):
                if whole or not column.nullable:
                    if "id" in other.c:
                        self.remove(other, self.ids(select(other.c.id).where(column.in_(chunk))))
                    else:
                        self.delete(other, column.in_(chunk))
                else:
                    self.sess.execute(
                        update(_model(other))
                        .where(column.in_(chunk))
                        .values({column: None})
                        .execution_options(synchronize_session="fetch")
                    )
        return sum(self.delete(table, table.c.id.in_(chunk)) for chunk in _chunks(ids))


def _held_restrictions() -> Any:
    """Restrictions still held: in force, or awaiting their notice."""
    return select(Restriction.id).where(Restriction.ended_at.is_(None))


def _customer_protected() -> Any:
    """Customers with a restriction still held, an open alert or an undecided appeal."""
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


def purge(
    sess: Session,
    rules: Retention,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    recordings_deleted: Sequence[int] = (),
) -> Purged:
    """Apply the rules; the caller commits. ``recordings_deleted``: the voicemails whose copy
    at Twilio the caller deleted (or, dry, would delete) first: counted, and taken as deleted
    (so a dry run's counts are a real run's)."""
    now = now or datetime.now(UTC)
    if not dry_run:
        counts = _apply(sess, rules, now, recordings_deleted, refresh_cache=True)
        audit(
            sess, SYSTEM, "retention.purged", "retention", 0, customer_id=None, after=asdict(counts)
        )
        return counts
    savepoint = sess.begin_nested()
    try:
        return _apply(sess, rules, now, recordings_deleted, refresh_cache=False)
    finally:
        savepoint.rollback()


def _apply(
    sess: Session,
    rules: Retention,
    now: datetime,
    recordings: Sequence[int],
    *,
    refresh_cache: bool,
) -> Purged:
    run = _Run(sess)
    for chunk in _chunks(recordings):  # marked already, unless this is a dry run
        sess.execute(
            update(Voicemail)
            .where(Voicemail.id.in_(chunk), Voicemail.twilio_deleted_at.is_(None))
            .values(twilio_deleted_at=now)
        )
    events_before = now - timedelta(days=rules.callback_payload_days)
    calls_before = now - timedelta(days=rules.call_days)
    closed_before = now - _years(rules.closed_years)
    alerts_before = now - _years(rules.alert_years)
    customers_before = now - _years(rules.customer_years)
    protected = _customer_protected()
    tables = Base.metadata.tables

    # raw callback payloads already summarised on their calls
    old_events = run.ids(
        select(CallEvent.id).where(
            CallEvent.received_at < events_before, CallEvent.processed_at.is_not(None)
        )
    )
    callback_events = run.remove(tables["call_events"], old_events)

    # agents' incidents past the limitation period
    incidents = run.remove(
        tables["agent_actions"],
        run.ids(select(AgentAction.id).where(AgentAction.created_at < closed_before)),
    )

    # calls: anonymised while an incident refers to them, otherwise deleted (with their
    # voicemails, once Twilio's copy of the audio is gone)
    old_calls = select(Call.id).where(
        Call.started_at < calls_before,
        or_(Call.customer_id.is_(None), Call.customer_id.not_in(protected)),
    )
    referenced = exists().where(AgentAction.call_id == Call.id)
    at_twilio = exists().where(Voicemail.call_id == Call.id, Voicemail.twilio_deleted_at.is_(None))
    anonymisable = run.ids(old_calls.where(referenced, Call.from_number != ""))
    for chunk in _chunks(anonymisable):
        sess.execute(
            update(Call)
            .where(Call.id.in_(chunk))
            .values(from_number="", from_e164=None, caller_name=None, voicemail_url=None, flags={})
        )
    calls_deleted = run.remove(tables["calls"], run.ids(old_calls.where(~referenced, ~at_twilio)))

    # ended restrictions past the limitation period, with what is theirs
    restrictions = run.remove(
        tables["restrictions"],
        run.ids(
            select(Restriction.id).where(
                Restriction.ended_at.is_not(None), Restriction.ended_at < closed_before
            )
        ),
    )

    # closed alerts
    alerts = run.remove(
        tables["contact_alerts"],
        run.ids(
            select(ContactAlert.id).where(
                ContactAlert.status != "open",
                ContactAlert.closed_at.is_not(None),
                ContactAlert.closed_at < alerts_before,
                or_(
                    ContactAlert.customer_id.is_(None),
                    ContactAlert.customer_id.not_in(protected),
                ),
            )
        ),
    )

    # the audit trail past the limitation period, but for what is still live
    live_appeals = (
        select(Appeal.id)
        .join(Restriction, Restriction.id == Appeal.restriction_id)
        .where(or_(Appeal.outcome.is_(None), Restriction.ended_at.is_(None)))
    )
    open_alerts = select(ContactAlert.id).where(ContactAlert.status == "open")
    about_live = or_(
        and_(AuditEntry.entity == "restriction", AuditEntry.entity_id.in_(_held_restrictions())),
        and_(AuditEntry.entity == "appeal", AuditEntry.entity_id.in_(live_appeals)),
        and_(AuditEntry.entity == "alert", AuditEntry.entity_id.in_(open_alerts)),
    )
    audit_entries = run.remove(
        tables["audit_entries"],
        run.ids(select(AuditEntry.id).where(AuditEntry.at < closed_before, ~about_live)),
    )

    # customers with no activity, and nothing another rule still keeps (each "since" below is
    # the earlier of the two moments: kept while either rule keeps it), with everything about
    # them
    mine = Customer.id
    active = or_(
        exists().where(
            Call.customer_id == mine, Call.started_at >= min(customers_before, calls_before)
        ),
        exists().where(AuditEntry.customer_id == mine, AuditEntry.at >= customers_before),
        exists().where(
            ContactAlert.customer_id == mine,
            or_(
                ContactAlert.opened_at >= customers_before,
                ContactAlert.closed_at >= min(customers_before, alerts_before),
            ),
        ),
        exists().where(
            Restriction.customer_id == mine,
            or_(
                Restriction.decided_at >= customers_before,
                Restriction.ended_at >= min(customers_before, closed_before),
            ),
        ),
        exists().where(
            AgentAction.customer_id == mine,
            AgentAction.created_at >= min(customers_before, closed_before),
        ),
        exists().where(
            Voicemail.customer_id == mine,
            or_(Voicemail.created_at >= customers_before, Voicemail.twilio_deleted_at.is_(None)),
        ),
    )
    doomed = run.ids(
        select(Customer.id).where(
            Customer.updated_at < customers_before,
            Customer.created_at < customers_before,
            Customer.id.not_in(protected),
            ~active,
        )
    )
    for chunk in _chunks(doomed):
        numbers = sess.execute(
            select(PhoneNumber.customer_id, PhoneNumber.e164).where(
                PhoneNumber.customer_id.in_(chunk)
            )
        ).all()
        sids = list(sess.scalars(select(Call.call_sid).where(Call.customer_id.in_(chunk))))
        for sid_chunk in range(0, len(sids), CHUNK):
            run.tables["call_events"] += _rows(
                sess,
                delete(CallEvent).where(
                    CallEvent.call_sid.in_(sids[sid_chunk : sid_chunk + CHUNK])
                ),
            )
        if refresh_cache:  # their numbers no longer name anyone on the phone line
            for customer_id in chunk:
                cache.refresh_after_commit(
                    sess, customer_id, [e164 for cid, e164 in numbers if cid == customer_id]
                )
    customers = run.remove(tables["customers"], doomed, whole=True)

    return Purged(
        callback_events=callback_events,
        calls_deleted=calls_deleted,
        calls_anonymised=len(anonymisable),
        incidents=incidents,
        restrictions=restrictions,
        alerts=alerts,
        audit_entries=audit_entries,
        customers=customers,
        recordings_deleted=len(recordings),
        tables=run.tables,
    )
