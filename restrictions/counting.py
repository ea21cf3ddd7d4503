"""Contact counting (policy section 6): sliding-window counters in Redis, rebuilt from PostgreSQL.

Per subject, ``customer:<id>`` across all their numbers, or ``number:<E.164>`` when the caller is
not a customer (a withheld number has nothing to count against). Two keys per subject: a sorted
set of CallSids scored by when the call started, and a hash of CallSid → talk seconds. Both are
keyed on the CallSid, so counting a call again changes nothing. A third, per subject, remembers
when a person last decided an alert of each rule (dismissed or escalated it): the windows count
only calls that started after that, so a decided alert never re-opens for the calls it covered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import cast

from redis import Redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from restrictions import redis_keys
from restrictions.models import AlertStatus, Call, ContactAlert
from restrictions.resilience import fail_open

CALLS = redis_keys.COUNT_CALLS.key
TALK = redis_keys.COUNT_TALK.key
ALLOWANCE = redis_keys.ALLOWANCE.key
DECIDED = redis_keys.COUNT_DECIDED.key
KEEP_SECONDS = 8 * 24 * 3600  # longer than the longest default window (7 days)


def subject_of(customer_id: int | None, e164: str | None) -> str | None:
    if customer_id is not None:
        return f"customer:{customer_id}"
    if e164:
        return f"number:{e164}"
    return None


def parse_subject(subject: str) -> tuple[int | None, str | None]:
    """(customer id, number) back from a subject."""
    kind, _, value = subject.partition(":")
    if kind == "customer" and value.isdigit():
        return int(value), None
    return None, value or None


@dataclass(frozen=True)
class WindowStats:
    calls: int
    seconds: int
    call_sids: tuple[str, ...]


def count_call(
    redis: Redis,
    subject: str,
    call_sid: str,
    started_at: datetime,
    seconds: int,
    keep_seconds: int = KEEP_SECONDS,
) -> None:
    """Add one call to its subject's counters (idempotent on the CallSid)."""
    pipe = redis.pipeline(transaction=True)
    pipe.zadd(CALLS + subject, {call_sid: started_at.timestamp()})
    pipe.hset(TALK + subject, call_sid, seconds)
    pipe.expire(CALLS + subject, keep_seconds)
    pipe.expire(TALK + subject, keep_seconds)
    pipe.execute()


@dataclass(frozen=True)
class Move:
    """One call to move from the subject it was counted under (None: it was counted under
    none) to another: ``seconds`` None when it is not to be counted there (not yet finished, an
    emergency repair, older than the counters keep)."""

    from_subject: str | None
    call_sid: str
    started_at: datetime
    seconds: int | None


def move_calls(
    redis: Redis, to_subject: str, moves: list[Move], keep_seconds: int = KEEP_SECONDS
) -> None:
    """Move calls between subjects (a caller's calls attached to a customer) in one
    transaction: gone from the old subject's counters, counted under the new one (idempotent on
    the CallSid, like ``count_call``)."""
    if not moves:
        return
    pipe = redis.pipeline(transaction=True)
    for move in moves:
        if move.from_subject is not None and move.from_subject != to_subject:
            pipe.zrem(CALLS + move.from_subject, move.call_sid)
            pipe.hdel(TALK + move.from_subject, move.call_sid)
        if move.seconds is not None:
            pipe.zadd(CALLS + to_subject, {move.call_sid: move.started_at.timestamp()})
            pipe.hset(TALK + to_subject, move.call_sid, move.seconds)
    pipe.expire(CALLS + to_subject, keep_seconds)
    pipe.expire(TALK + to_subject, keep_seconds)
    pipe.execute()


def window(redis: Redis, subject: str, end: datetime, minutes: int) -> WindowStats:
    """Calls that started in (end - minutes, end], and their talk time."""
    low = (end - timedelta(minutes=minutes)).timestamp()
    raw = redis.zrangebyscore(CALLS + subject, f"({low}", end.timestamp())
    sids = tuple(s.decode() if isinstance(s, bytes) else str(s) for s in raw)
    seconds = 0
    if sids:
        values = redis.hmget(TALK + subject, list(sids))
        seconds = sum(int(v) for v in values if v is not None)
    return WindowStats(len(sids), seconds, sids)


@dataclass(frozen=True)
class CountedCall:
    call_sid: str
    at: float  # when it started, as a Unix timestamp
    seconds: int


def calls_between(redis: Redis, subject: str, after: float, until: float) -> list[CountedCall]:
    """The subject's counted calls that started in (after, until], oldest first (two round
    trips: the sorted set, then the talk times)."""
    raw = cast(
        list[tuple[bytes | str, float]],
        redis.zrangebyscore(
            CALLS + subject,
            f"({after}",
            "+inf" if until == float("inf") else until,
            withscores=True,
        ),
    )
    sids = [s.decode() if isinstance(s, bytes) else str(s) for s, _ in raw]
    seconds = redis.hmget(TALK + subject, sids) if sids else []
    return [
        CountedCall(sid, float(score), int(talk) if talk is not None else 0)
        for sid, (_, score), talk in zip(sids, raw, seconds, strict=True)
    ]


# --- alerts decided once ----------------------------------------------------------------------


@fail_open(default=None)
def note_decided(redis: Redis, subject: str, rule_name: str, at: datetime) -> None:
    """A person decided the subject's alert of this rule at ``at``: from now on its windows count
    only the calls that started after that (run after the decision commits; PostgreSQL's
    ``closed_at`` stays the truth, and a rebuild writes this again from it)."""
    key = DECIDED + subject
    before = redis.hget(key, rule_name)
    if before is not None and float(before) >= at.timestamp():
        return
    pipe = redis.pipeline(transaction=False)
    pipe.hset(key, rule_name, at.timestamp())
    pipe.expire(key, KEEP_SECONDS)  # no counted call is older than that
    pipe.execute()


def decided_marks(redis: Redis, subject: str) -> dict[str, float]:
    """Rule name -> when the subject's alert of that rule was last decided (Unix time)."""
    raw: dict[bytes | str, bytes | str] = redis.hgetall(DECIDED + subject)
    return {(k.decode() if isinstance(k, bytes) else k): float(v) for k, v in raw.items() if v}


def rebuild_decided(sess: Session, redis: Redis) -> int:
    """Write every subject's decided marks again from PostgreSQL's decided alerts."""
    since = datetime.now(UTC) - timedelta(seconds=KEEP_SECONDS)
    rows = sess.execute(
        select(ContactAlert.subject, ContactAlert.rule_name, func.max(ContactAlert.closed_at))
        .where(
            # a person's decision (a merged alert was nobody's: see alerts._decided_until)
            ContactAlert.status.in_((AlertStatus.DISMISSED.value, AlertStatus.ESCALATED.value)),
            ContactAlert.closed_at.is_not(None),
            ContactAlert.closed_at >= since,
        )
        .group_by(ContactAlert.subject, ContactAlert.rule_name)
    )
    done = 0
    for subject, rule_name, closed_at in rows:
        if closed_at is not None:
            note_decided(redis, subject, rule_name, closed_at)
            done += 1
    return done


def subjects(redis: Redis) -> list[str]:
    """Every subject with counted calls in Redis."""
    found = []
    for key in redis.scan_iter(match=CALLS + "*", count=1000):
        name = key.decode() if isinstance(key, bytes) else str(key)
        found.append(name.removeprefix(CALLS))
    return found


# --- the weekly allowance (limited contact, policy 10.1) ------------------------------------------


def allowance_key(customer_id: int) -> str:
    """A customer's calls that used the allowance, scored by when they started."""
    return f"{ALLOWANCE}{customer_id}"


def note_allowance(redis: Redis, customer_id: int, call_sid: str, started_at: datetime) -> None:
    """Count this call against the customer's weekly allowance once it reached a person (only
    those use it); idempotent on the CallSid."""
    pipe = redis.pipeline(transaction=False)
    pipe.zadd(allowance_key(customer_id), {call_sid: started_at.timestamp()})
    pipe.expire(allowance_key(customer_id), KEEP_SECONDS)
    pipe.execute()


PENDING = redis_keys.ALLOWANCE_PENDING.key


def expect_allowance(redis: Redis, call_sid: str, customer_id: int) -> None:
    """A call under a weekly allowance was put through: remember whose it is, so the moment a
    person answers (a conference event, which names only the call) it is counted."""
    redis.set(PENDING + call_sid, customer_id, ex=3600)


def use_allowance(redis: Redis, call_sid: str, started_at: datetime) -> bool:
    """A person answered ``call_sid``: if it was under an allowance, count it now."""
    customer_id = redis.get(PENDING + call_sid)
    if customer_id is None:
        return False
    note_allowance(redis, int(customer_id), call_sid, started_at)
    return True


def allowance_used(redis: Redis, customer_id: int, since: datetime) -> int:
    """Calls since ``since`` that used the allowance (one round trip)."""
    return int(redis.zcount(allowance_key(customer_id), since.timestamp(), "+inf"))


def allowance_used_from_calls(sess: Session, customer_id: int, since: datetime) -> int:
    """The same count from PostgreSQL's call rows: the backstop when Redis is unavailable."""
    return int(
        sess.scalar(
            select(func.count(Call.id)).where(
                Call.customer_id == customer_id,
                Call.started_at >= since,
                Call.answered_at.is_not(None),
            )
        )
        or 0
    )


def rebuild(sess: Session, redis: Redis) -> int:
    """Rebuild every counter and allowance from PostgreSQL; returns how many counted calls."""
    for prefix in (CALLS, TALK, ALLOWANCE, DECIDED):
        for key in redis.scan_iter(match=prefix + "*", count=1000):
            redis.delete(key)
    rebuild_decided(sess, redis)
    since = datetime.now(UTC) - timedelta(seconds=KEEP_SECONDS)
    count = 0
    rows = sess.execute(
        select(
            Call.call_sid, Call.customer_id, Call.from_e164, Call.started_at, Call.duration_seconds
        ).where(Call.counted_at.is_not(None), Call.started_at >= since)
    )
    for call_sid, customer_id, e164, started_at, seconds in rows:
        subject = subject_of(customer_id, e164)
        if subject is not None:
            count_call(redis, subject, call_sid, started_at, seconds or 0)
            count += 1
    allowance = sess.execute(
        select(Call.call_sid, Call.customer_id, Call.started_at).where(
            Call.customer_id.is_not(None), Call.started_at >= since, Call.answered_at.is_not(None)
        )
    )
    for call_sid, customer_id, started_at in allowance:
        if customer_id is not None:
            note_allowance(redis, customer_id, call_sid, started_at)
    return count
