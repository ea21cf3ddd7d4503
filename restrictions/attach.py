"""Attaching an unidentified caller's calls to a customer (policy section 6 counts a customer's
contact across all their numbers).

A call from a number not on file is counted under its number (``number:<E.164>``), and any alert
it trips is the number's. When a person decides the call was a customer's (``attach_call``), or
that a number is theirs with its past calls (``attach_number``, ``attach_past_calls``), the calls
become the customer's: their rows, their agents' incidents and voicemails, and their contact
counts in Redis move to ``customer:<id>``; the number's open alerts close as ``merged``; and the
customer's alerts are evaluated again over all their calls, so an excess across their numbers
opens an alert with those calls as evidence. One entry on the audit trail says who did it, why,
and what moved.

Every function takes the session, Redis and the settings, changes rows and Redis, and leaves the
commit to its caller (as ``handlers.contact`` counts a call: Redis first, then the commit; the
counters are keyed on the CallSid and can be rebuilt from PostgreSQL at any time).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from redis import Redis
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from restrictions import alerts, counting
from restrictions.errors import Conflict, Invalid, NotFound
from restrictions.lifecycle import Actor, audit, update_customer
from restrictions.models import (
    AgentAction,
    AlertStatus,
    Call,
    ContactAlert,
    Customer,
    Voicemail,
)
from restrictions.phone import to_e164
from restrictions.settings import Settings
from restrictions.validation import required_text

MAX_REASON = 5000


@dataclass(frozen=True)
class Attached:
    """What an attach did: the calls now the customer's, the number added to their record (if
    this attach added one), the number's alerts closed as merged, the customer's alerts opened."""

    customer: Customer
    number: str | None
    calls: tuple[Call, ...]
    merged: tuple[ContactAlert, ...]
    opened: tuple[ContactAlert, ...]


def reason_of(value: Any, *, required: bool) -> str | None:
    """The reason given, or None when it may be left out and was."""
    if value is None and not required:
        return None
    return required_text(value, "reason", max_length=MAX_REASON) or None


def attach_call(
    sess: Session,
    redis: Redis,
    settings: Settings,
    actor: Actor,
    call_sid: str,
    customer: Customer,
    *,
    reason: Any,
    with_number: bool = False,
) -> Attached:
    """The call was the customer's (a reason is required). ``with_number``: its number is
    theirs as well, and every past call from it that is not yet anyone's becomes theirs."""
    text = reason_of(reason, required=True)
    call = sess.scalar(select(Call).where(Call.call_sid == call_sid).with_for_update())
    if call is None:
        raise NotFound(f"no call with CallSid {call_sid}")
    if call.customer_id is not None:
        owner = sess.get(Customer, call.customer_id)
        whose = owner.reference if owner is not None else str(call.customer_id)
        raise Conflict(f"call {call_sid} is already customer {whose}'s")
    if with_number:
        if not call.from_e164:
            raise Invalid(
                "the call's number was withheld or is not a phone number: attach the call alone"
            )
        return attach_number(sess, redis, settings, actor, customer, call.from_e164, reason=text)
    return _attach(sess, redis, settings, actor, customer, [call], numbers=(), reason=text)


def attach_number(
    sess: Session,
    redis: Redis,
    settings: Settings,
    actor: Actor,
    customer: Customer,
    number: Any,
    *,
    reason: Any = None,
) -> Attached:
    """The number is the customer's (added to their record when it is not there yet, which the
    routing cache follows once committed), and so is every past call from it that is not yet
    anyone's. Another customer's number is a Conflict."""
    if not isinstance(number, str):
        raise Invalid("number must be text: a phone number")
    e164 = to_e164(number)
    text = reason_of(reason, required=False)
    added = None
    if e164 not in {n.e164 for n in customer.numbers}:
        update_customer(
            sess, actor, customer, phone_numbers=[*(n.e164 for n in customer.numbers), e164]
        )
        added = e164
    calls = _unattached(sess, [e164])
    done = _attach(sess, redis, settings, actor, customer, calls, numbers=[e164], reason=text)
    return Attached(customer, added, done.calls, done.merged, done.opened)


def attach_past_calls(
    sess: Session,
    redis: Redis,
    settings: Settings,
    actor: Actor,
    customer: Customer,
    *,
    reason: Any = None,
) -> Attached:
    """Every past call from any of the customer's numbers that is not yet anyone's becomes
    theirs (a number added without its past calls, then ``attach_past_calls``)."""
    text = reason_of(reason, required=False)
    numbers = [n.e164 for n in customer.numbers]
    calls = _unattached(sess, numbers)
    return _attach(sess, redis, settings, actor, customer, calls, numbers=numbers, reason=text)


def unattached_calls(sess: Session, *, limit: int = 20) -> list[Call]:
    """The newest calls nobody is attached to (a number not on file, or withheld), for a
    supervisor to attach."""
    return list(
        sess.scalars(
            select(Call)
            .where(Call.customer_id.is_(None))
            .order_by(Call.started_at.desc(), Call.id.desc())
            .limit(limit)
        )
    )


# --- the moving ----------------------------------------------------------------------------------


def _unattached(sess: Session, numbers: Sequence[str]) -> list[Call]:
    if not numbers:
        return []
    return list(
        sess.scalars(
            select(Call)
            .where(Call.from_e164.in_(list(numbers)), Call.customer_id.is_(None))
            .order_by(Call.started_at, Call.id)
            .with_for_update()
        )
    )


def _counts(call: Call, settings: Settings, since: datetime) -> bool:
    """Whether the call is counted under its customer, as ``handlers.contact`` counts one: once
    finished, unless it was an emergency repair (by the settings), within what Redis keeps."""
    if call.counted_at is None or call.started_at < since:
        return False
    return call.emergency_selected_at is None or settings.count_emergency_calls


def _merge(
    sess: Session, actor: Actor, alert: ContactAlert, customer: Customer, now: datetime
) -> None:
    alert.status = AlertStatus.MERGED.value
    alert.closed_at = now
    alert.closed_by_id = actor.user_id
    alert.close_reason = (
        f"merged: the calls from {alert.phone_e164 or 'this number'} are customer "
        f"{customer.reference}'s, whose own alerts count them"
    )
    audit(
        sess,
        actor,
        "alert.merged",
        "alert",
        alert.id,
        customer_id=customer.id,
        before={"status": AlertStatus.OPEN.value, "subject": alert.subject},
        after={"status": alert.status, "customer": customer.reference},
    )


def _number_alerts(sess: Session, subjects: Iterable[str]) -> list[ContactAlert]:
    wanted = sorted(set(subjects))
    if not wanted:
        return []
    return list(
        sess.scalars(
            select(ContactAlert)
            .where(ContactAlert.subject.in_(wanted), ContactAlert.customer_id.is_(None))
            .order_by(ContactAlert.id)
            .with_for_update()
        )
    )


def _attach(
    sess: Session,
    redis: Redis,
    settings: Settings,
    actor: Actor,
    customer: Customer,
    calls: Sequence[Call],
    *,
    numbers: Sequence[str],
    reason: str | None,
) -> Attached:
    """Make ``calls`` the customer's. ``numbers`` are theirs whole, so all those numbers' alerts
    are too (open ones close as merged); a call from another number (one call attached alone)
    takes only that number's open alerts holding it, and the number's remaining calls are
    evaluated again."""
    now = datetime.now(UTC)
    cid = customer.id
    moved = [c for c in calls if c.customer_id is None]
    sids = {c.call_sid for c in moved}
    for call in moved:
        call.customer_id = cid
    ids = [c.id for c in moved]
    if ids:  # the calls' incidents and voicemails are the customer's as well
        for model in (AgentAction, Voicemail):
            sess.execute(
                update(model)
                .where(model.call_id.in_(ids), model.customer_id.is_(None))
                .values(customer_id=cid)
                .execution_options(synchronize_session="fetch")
            )
    sess.flush()

    whole = {f"number:{n}" for n in numbers}
    from_subjects = {s for c in moved if (s := counting.subject_of(None, c.from_e164))}
    merged: list[ContactAlert] = []
    for alert in _number_alerts(sess, from_subjects | whole):
        calls_of = {str(c.get("call_sid")) for c in (alert.evidence or {}).get("calls", [])}
        if alert.subject not in whole and not calls_of & sids:
            continue  # one call attached: the number's alerts about its other calls stay
        alert.customer_id = cid
        if alert.status == AlertStatus.OPEN.value:
            _merge(sess, actor, alert, customer, now)
            merged.append(alert)

    to_subject = counting.subject_of(cid, None)
    assert to_subject is not None
    since = now - timedelta(seconds=counting.KEEP_SECONDS)
    counting.move_calls(
        redis,
        to_subject,
        [
            counting.Move(
                counting.subject_of(None, c.from_e164),
                c.call_sid,
                c.started_at,
                (c.duration_seconds or 0) if _counts(c, settings, since) else None,
            )
            for c in moved
        ],
    )
    for call in moved:  # a call that reached a person uses the customer's weekly allowance
        if call.answered_at is not None and call.started_at >= since:
            counting.note_allowance(redis, cid, call.call_sid, call.started_at)

    opened: list[ContactAlert] = []
    if moved:
        opened = alerts.evaluate_subject(sess, redis, settings.contact_rules, to_subject)
        for subject in sorted(from_subjects - whole):  # what is left of a number attached in
            alerts.evaluate_subject(sess, redis, settings.contact_rules, subject)  # part
    if moved or merged:
        single = not numbers and len(moved) == 1
        audit(
            sess,
            actor,
            "call.attached" if single else "calls.attached",
            "call" if single else "customer",
            moved[0].id if single else cid,
            customer_id=cid,
            after={
                "customer": customer.reference,
                "numbers": list(numbers),
                "calls": [c.call_sid for c in moved],
                "alerts_merged": [a.id for a in merged],
                "alerts_opened": [a.id for a in opened],
            },
            note=reason,
        )
    return Attached(customer, None, tuple(moved), tuple(merged), tuple(opened))
