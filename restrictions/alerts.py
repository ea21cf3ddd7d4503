"""Excessive-contact alerts (policy section 6): a rule that trips opens one alert per subject and
rule, with its evidence, for a person to decide on. Nothing is restricted automatically. An alert
is decided once: after a person dismissed (or escalated) it, only calls that started after that
count towards the next alert of its rule for that subject."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from redis import Redis
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from restrictions import counting
from restrictions.db import CACHE_REDIS, after_commit
from restrictions.errors import Conflict, Invalid, NotFound
from restrictions.lifecycle import (
    SYSTEM,
    Actor,
    add_restriction,
    audit,
    get_customer,
)
from restrictions.models import AlertStatus, Call, ContactAlert, Customer, Restriction
from restrictions.settings import ContactRule
from restrictions.validation import required_text

log = logging.getLogger("callguard.alerts")


def tripped(rule: ContactRule, stats: counting.WindowStats) -> bool:
    """A limit is reached when the count or the talk time gets to it."""
    if rule.max_calls is not None:
        return stats.calls >= rule.max_calls
    assert rule.max_minutes is not None
    return stats.seconds >= rule.max_minutes * 60


def describe_rule(rule: ContactRule) -> dict[str, Any]:
    return {
        "name": rule.name,
        "window_minutes": rule.window_minutes,
        "max_calls": rule.max_calls,
        "max_minutes": rule.max_minutes,
    }


def evidence(
    sess: Session,
    call_sids: tuple[str, ...],
    stats: counting.WindowStats,
    start: datetime,
    end: datetime,
) -> dict[str, Any]:
    calls: list[Call] = (
        list(
            sess.scalars(select(Call).where(Call.call_sid.in_(call_sids)).order_by(Call.started_at))
        )
        if call_sids
        else []
    )
    return {
        "window_start": start.isoformat(),
        "window_end": end.isoformat(),
        "calls_in_window": stats.calls,
        "talk_seconds": stats.seconds,
        "calls": [
            {
                "call_sid": c.call_sid,
                "started_at": c.started_at.isoformat(),
                "number": c.from_e164 or c.from_number,
                "duration_seconds": c.duration_seconds or 0,
                "route": c.route,
                "emergency": c.emergency_selected_at is not None,
            }
            for c in calls
        ],
    }


def tripping_window(
    rule: ContactRule, calls: Sequence[counting.CountedCall], ends: Iterable[float]
) -> tuple[float, list[counting.CountedCall]] | None:
    """The first window (end - rule's minutes, end], for an end among ``ends``, in which the rule
    trips, with the calls in it. Pure, so the same calls give the same answer in any order."""
    width = rule.window_minutes * 60
    for end in sorted(set(ends)):
        inside = [c for c in calls if end - width < c.at <= end]
        stats = counting.WindowStats(
            len(inside), sum(c.seconds for c in inside), tuple(c.call_sid for c in inside)
        )
        if tripped(rule, stats):
            return end, inside
    return None


def _decided_until(sess: Session, subject: str, rule: ContactRule) -> float:
    """When a person last decided on this subject's alert of this rule (dismissed or escalated
    it; at the least the end of its window): calls that started until then are not counted
    towards another, whichever order they are counted in. PostgreSQL is the truth here; the
    counters' mark in Redis (``counting.note_decided``) only narrows what is read."""
    latest = 0.0
    for evidence_of, closed_at in sess.execute(
        select(ContactAlert.evidence, ContactAlert.closed_at).where(
            ContactAlert.subject == subject,
            ContactAlert.rule_name == rule.name,
            # a merged alert (its calls attached to a customer) was no one's decision
            ContactAlert.status.in_((AlertStatus.DISMISSED.value, AlertStatus.ESCALATED.value)),
        )
    ):
        end = (evidence_of or {}).get("window_end")
        if end:
            latest = max(latest, datetime.fromisoformat(end).timestamp())
        if closed_at is not None:
            latest = max(latest, closed_at.timestamp())
    return latest


def _decided_elsewhere(
    sess: Session, subject: str, customer_id: int | None, rule: ContactRule
) -> set[str]:
    """The calls a person already decided on under another subject: a number's dismissed or
    escalated alert whose calls were then attached to this customer. Those calls moved here
    (and count towards the customer's windows), but the decision about them stands."""
    if customer_id is None:
        return set()
    covered: set[str] = set()
    for (evidence_of,) in sess.execute(
        select(ContactAlert.evidence).where(
            ContactAlert.customer_id == customer_id,
            ContactAlert.subject != subject,
            ContactAlert.rule_name == rule.name,
            ContactAlert.status.in_((AlertStatus.DISMISSED.value, AlertStatus.ESCALATED.value)),
        )
    ):
        for call in (evidence_of or {}).get("calls", []):
            if call.get("call_sid"):
                covered.add(str(call["call_sid"]))
    return covered


def evaluate(
    sess: Session,
    redis: Redis,
    rules: tuple[ContactRule, ...],
    subject: str,
    customer_id: int | None,
    e164: str | None,
    at: datetime,
) -> list[ContactAlert]:
    """A call that started at ``at`` was counted: check every window it can complete (those
    ending at a counted call within a window's width after it), so alerts depend on the calls,
    not on the order their callbacks were processed in."""
    opened = []
    t = at.timestamp()
    decided = counting.decided_marks(redis, subject)
    for rule in rules:
        width = rule.window_minutes * 60
        since = max(t - width, decided.get(rule.name, 0.0))
        calls = counting.calls_between(redis, subject, since, t + width)
        ends = [c.at for c in calls if t <= c.at < t + width]
        alert = _open(sess, rule, subject, customer_id, e164, calls, ends)
        if alert is not None:
            opened.append(alert)
    return opened


def evaluate_subject(
    sess: Session,
    redis: Redis,
    rules: tuple[ContactRule, ...],
    subject: str,
) -> list[ContactAlert]:
    """Every window of every counted call of this subject (after ``counters rebuild``)."""
    customer_id, e164 = counting.parse_subject(subject)
    calls = counting.calls_between(redis, subject, 0, float("inf"))
    decided = counting.decided_marks(redis, subject)
    opened = []
    for rule in rules:
        since = decided.get(rule.name, 0.0)
        counted = [c for c in calls if c.at > since]
        alert = _open(sess, rule, subject, customer_id, e164, counted, [c.at for c in counted])
        if alert is not None:
            opened.append(alert)
    return opened


def reconcile(sess: Session, redis: Redis, rules: tuple[ContactRule, ...]) -> int:
    """Open every alert the counted calls call for (one per subject and rule, as ever)."""
    return sum(len(evaluate_subject(sess, redis, rules, s)) for s in counting.subjects(redis))


def _open(
    sess: Session,
    rule: ContactRule,
    subject: str,
    customer_id: int | None,
    e164: str | None,
    calls: Sequence[counting.CountedCall],
    ends: Iterable[float],
) -> ContactAlert | None:
    decided = _decided_until(sess, subject, rule)
    covered = _decided_elsewhere(sess, subject, customer_id, rule)
    # only calls after the last decision count, and none a decided alert of a number since
    # attached to this customer covered
    calls = [c for c in calls if c.at > decided and c.call_sid not in covered]
    found = tripping_window(rule, calls, [e for e in ends if e > decided])
    if found is None:
        return None
    already = sess.scalar(
        select(ContactAlert.id).where(
            ContactAlert.subject == subject,
            ContactAlert.rule_name == rule.name,
            ContactAlert.status == AlertStatus.OPEN.value,
        )
    )
    if already is not None:
        return None
    end_ts, inside = found
    end = datetime.fromtimestamp(end_ts, UTC)
    start = end - timedelta(minutes=rule.window_minutes)
    stats = counting.WindowStats(
        len(inside), sum(c.seconds for c in inside), tuple(c.call_sid for c in inside)
    )
    alert = ContactAlert(
        subject=subject,
        customer_id=customer_id,
        phone_e164=e164 if customer_id is None else None,
        rule_name=rule.name,
        rule=describe_rule(rule),
        evidence=evidence(sess, stats.call_sids, stats, start, end),
    )
    try:
        with sess.begin_nested():
            sess.add(alert)
            sess.flush()
    except IntegrityError:  # another worker opened it a moment ago
        log.info("alert for %s %s already open", subject, rule.name)
        return None
    audit(
        sess,
        SYSTEM,
        "alert.opened",
        "alert",
        alert.id,
        customer_id=customer_id,
        after={"rule": rule.name, "calls": stats.calls, "talk_seconds": stats.seconds},
    )
    return alert


def get_alert(sess: Session, alert_id: int, *, for_decision: bool = False) -> ContactAlert:
    """The alert; ``for_decision`` locks its row until the transaction ends, so of two people
    deciding at once the second sees what the first decided (409), never a second decision."""
    alert = sess.get(ContactAlert, alert_id, with_for_update=for_decision or None)
    if alert is None:
        raise NotFound(f"no alert with id {alert_id}")
    return alert


def _must_be_open(alert: ContactAlert) -> None:
    if alert.status != AlertStatus.OPEN.value:
        raise Conflict(f"alert {alert.id} is already {alert.status}")


def _note_decided(sess: Session, alert: ContactAlert) -> None:
    """Once the decision commits, the subject's counters count only calls after it."""
    redis = sess.info.get(CACHE_REDIS)
    if redis is not None and alert.closed_at is not None:
        after_commit(
            sess, counting.note_decided, redis, alert.subject, alert.rule_name, alert.closed_at
        )


def dismiss(sess: Session, actor: Actor, alert: ContactAlert, reason: Any) -> ContactAlert:
    """A person looked at the evidence and decided no action is needed, and says why."""
    _must_be_open(alert)
    text = required_text(reason, "reason", max_length=5000)
    alert.status = AlertStatus.DISMISSED.value
    alert.closed_at = datetime.now(UTC)
    alert.closed_by_id = actor.user_id
    alert.close_reason = text
    _note_decided(sess, alert)
    audit(
        sess,
        actor,
        "alert.dismissed",
        "alert",
        alert.id,
        customer_id=alert.customer_id,
        before={"status": "open"},
        after={"status": alert.status, "reason": text},
    )
    return alert


def escalate(sess: Session, actor: Actor, alert: ContactAlert, body: dict[str, Any]) -> Restriction:
    """A person chose a restriction from the alert's evidence: it is recorded like any other."""
    _must_be_open(alert)
    if alert.customer_id is None:
        raise Invalid("this caller is not a known customer: formal action is not possible (11.4)")
    customer = sess.get(Customer, alert.customer_id)
    assert customer is not None
    restriction = add_restriction(sess, actor, customer, body, source_alert_id=alert.id)
    alert.status = AlertStatus.ESCALATED.value
    alert.closed_at = datetime.now(UTC)
    alert.closed_by_id = actor.user_id
    alert.close_reason = f"escalated to restriction {restriction.id} ({restriction.kind})"
    _note_decided(sess, alert)
    alert.restriction_id = restriction.id
    audit(
        sess,
        actor,
        "alert.escalated",
        "alert",
        alert.id,
        customer_id=alert.customer_id,
        before={"status": "open"},
        after={"status": alert.status, "restriction_id": restriction.id},
    )
    return restriction


def list_alerts(
    sess: Session,
    status: str | None = None,
    rule: str | None = None,
    customer: str | None = None,
    limit: int = 200,
) -> list[ContactAlert]:
    """Open first, then newest first."""
    query = select(ContactAlert)
    if status is not None:  # given empty is as wrong as given misspelt
        if status not in {s.value for s in AlertStatus}:
            raise Invalid(
                f"status must be open, dismissed or escalated (or merged), not {status!r}"
            )
        query = query.where(ContactAlert.status == status)
    if rule:
        query = query.where(ContactAlert.rule_name == rule)
    if customer:
        c = get_customer(sess, customer)
        query = query.where(or_(ContactAlert.customer_id == c.id))
    query = query.order_by(
        (ContactAlert.status == AlertStatus.OPEN.value).desc(),
        ContactAlert.opened_at.desc(),
        ContactAlert.id.desc(),
    ).limit(limit)
    return list(sess.scalars(query))


def daily_calls(
    sess: Session,
    *,
    customer_id: int | None,
    e164: str | None,
    today: datetime,
    days: int = 30,
    tz: str = "Europe/London",
) -> list[tuple[str, int]]:
    """Calls per local day over the last ``days`` days, oldest first (for the alert's chart)."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(tz)
    last = today.astimezone(zone).date()
    first = last - timedelta(days=days - 1)
    since = datetime.combine(first, datetime.min.time(), tzinfo=zone)
    query = select(Call.started_at).where(Call.started_at >= since)
    if customer_id is not None:
        query = query.where(Call.customer_id == customer_id)
    elif e164:
        query = query.where(Call.from_e164 == e164)
    else:
        return []
    counts: dict[str, int] = {}
    for (started,) in sess.execute(query):
        key = started.astimezone(zone).date().isoformat()
        counts[key] = counts.get(key, 0) + 1
    return [
        (
            (first + timedelta(days=i)).isoformat(),
            counts.get((first + timedelta(days=i)).isoformat(), 0),
        )
        for i in range(days)
    ]
