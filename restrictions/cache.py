"""The routing cache: each known number's caller profile, so the inbound look-up is one Redis read.

PostgreSQL is the truth; an entry is rewritten after every committed change to a customer or a
restriction and can be rebuilt at any time (``callguard counters rebuild``). Numbers nobody owns
are cached as ``null`` so the usual unknown caller costs one round trip too. ``write_profiles`` is
the one writer: refresh, rebuild and import all go through it.

An entry is the profile's JSON behind one mark: ``=`` when the entry alone decides the caller's
route, ``+`` when a weekly allowance must be counted too. The inbound webhook's Redis script reads
the mark to hand the call over in the same round trip as the look-up (telephony.handover).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from redis import Redis
from sqlalchemy import Connection, Engine, or_, select
from sqlalchemy.orm import Session, aliased, selectinload

from restrictions import adjustments, redis_keys
from restrictions.db import CACHE_REDIS, after_commit
from restrictions.models import AuditEntry, Customer, PhoneNumber, Restriction
from restrictions.resilience import fail_open
from restrictions.routing import ActiveRestriction, CallerProfile, needs_weekly_count

log = logging.getLogger("callguard.cache")

PREFIX = redis_keys.CALLER.key  # v2: entries carry their mark
DECIDES_ALONE = "="
NEEDS_COUNT = "+"
TTL_SECONDS = 3600  # an entry that only saves a PostgreSQL read: the usual caller
# An entry that protects the line (a restriction in force) must be there when PostgreSQL is
# not: ``keep_restricted_warm`` rewrites every such entry each WARM_SECONDS, well inside this.
RESTRICTED_TTL_SECONDS = 6 * 3600
WARM_SECONDS = 3600
WARM_KEY = redis_keys.CALLER_WARM.key
SYNCED_KEY = redis_keys.CALLER_SYNCED.key
SYNC_OVERLAP_SECONDS = 60  # a change committed just before the watermark moved is read again
CHUNK = 1000
_MISS = object()


def key(e164: str) -> str:
    return PREFIX + e164


def in_force(restrictions: Iterable[Restriction]) -> list[Restriction]:
    """Those of a customer's restrictions that apply to calls: each ``active`` one, and one that
    was varied while its successor awaits its notice (the old terms keep the line protected until
    the new ones take effect), unless an appeal overturned it."""
    every = list(restrictions)
    waiting = {r.replaces_id for r in every if r.replaces_id and r.state == "awaiting_notice"}
    return [
        r
        for r in every
        if r.state == "active"
        or (
            r.id in waiting
            and (r.notice_sent_on is not None or r.apply_now)
            and not any(a.outcome == "overturned" for a in r.appeals)
        )
    ]


def profile_of(customer: Customer) -> CallerProfile:
    """What routing needs to know about a customer: who they are and what is in force."""
    active = tuple(
        ActiveRestriction(
            id=r.id,
            kind=r.kind,
            details=dict(r.details or {}),
            decided_at=r.decided_at,
            under_appeal=r.under_appeal,
            notice_sent=r.notice_sent_on is not None,
        )
        # a decision awaiting its notice does not apply yet (what it varies still does)
        for r in in_force(customer.restrictions)
    )
    return CallerProfile(
        customer_id=customer.id,
        reference=customer.reference,
        name=customer.name,
        language=customer.language,
        slow_speech=adjustments.slow_speech(customer.adjustments),
        restrictions=active,
    )


def load_profile(sess: Session, e164: str) -> CallerProfile | None:
    """Read a caller's profile from PostgreSQL (the cache-miss path)."""
    customer = sess.scalar(
        select(Customer)
        .join(PhoneNumber)
        .where(PhoneNumber.e164 == e164)
        # every restriction, filtered in profile_of: a filtered load would leave the caller's
        # session believing the customer has no ended restrictions
        .options(selectinload(Customer.restrictions).selectinload(Restriction.appeals))
    )
    return profile_of(customer) if customer is not None else None


def profiles(
    sess: Session, customer_ids: Sequence[int] | None = None
) -> Iterator[tuple[str, CallerProfile]]:
    """(number, profile) for each number of the given customers (all customers when None)."""
    chunks: Iterable[Sequence[int] | None] = (
        [None]
        if customer_ids is None
        else (customer_ids[i : i + CHUNK] for i in range(0, len(customer_ids), CHUNK))
    )
    successor = aliased(Restriction)
    varied = select(successor.replaces_id).where(  # still in force: see in_force
        successor.ended_at.is_(None), successor.replaces_id.is_not(None)
    )
    for chunk in chunks:
        query = select(Customer).options(
            selectinload(Customer.numbers),
            selectinload(
                Customer.restrictions.and_(
                    or_(Restriction.ended_at.is_(None), Restriction.id.in_(varied))
                )
            ).selectinload(Restriction.appeals),
        )
        if chunk is not None:
            query = query.where(Customer.id.in_(list(chunk)))
        for customer in sess.scalars(query.execution_options(yield_per=CHUNK)):
            profile = profile_of(customer)
            for n in customer.numbers:
                yield n.e164, profile


def encode(profile: CallerProfile | None) -> str:
    mark = NEEDS_COUNT if needs_weekly_count(profile) else DECIDES_ALONE
    return mark + json.dumps(profile.to_json() if profile is not None else None)


def decides_alone(raw: bytes | str) -> bool:
    """Whether a cached entry is all the caller's route depends on (no weekly count)."""
    mark = raw[:1]
    return mark in (b"=", "=")


def decode(raw: bytes | str | None) -> Any:
    """The cached profile, None for a known-unknown number, or _MISS when there is no entry."""
    if raw is None:
        return _MISS
    if raw[:1] in (b"=", b"+", "=", "+"):
        raw = raw[1:]
    data = json.loads(raw)
    return CallerProfile.from_json(data) if data is not None else None


def read(redis: Redis, e164: str) -> tuple[bool, CallerProfile | None]:
    """(hit, profile) with one GET; raises RedisError for the caller to apply its policy."""
    value = decode(redis.get(key(e164)))
    if value is _MISS:
        return False, None
    return True, value


def write_profiles(
    redis: Redis,
    entries: Iterable[tuple[str, CallerProfile | None]],
    stale_numbers: Iterable[str] = (),
) -> int:
    """Write entries (pipelined, in chunks) and drop numbers that no longer belong to anyone
    we wrote; returns how many numbers were written. Raises RedisError to its caller."""
    pipe = redis.pipeline(transaction=False)
    for number in stale_numbers:
        pipe.delete(key(number))
    written = 0
    for e164, profile in entries:
        protects = profile is not None and bool(profile.restrictions)
        ttl = RESTRICTED_TTL_SECONDS if protects else TTL_SECONDS
        pipe.set(key(e164), encode(profile), ex=ttl)
        written += 1
        if written % CHUNK == 0:
            pipe.execute()
    pipe.execute()
    return written


@fail_open(default=0)
def refresh_customers(
    bind: Engine | Connection,
    redis: Redis,
    customer_ids: Sequence[int],
    stale_numbers: Sequence[str] = (),
) -> int:
    """Rewrite the cache entries of these customers' numbers (run after a commit)."""
    with Session(bind) as sess:
        return write_profiles(redis, profiles(sess, customer_ids), stale_numbers)


def refresh_after_commit(sess: Session, customer_id: int, stale: Iterable[str] = ()) -> None:
    """Once ``sess`` commits, rewrite this customer's entries (where a cache is attached)."""
    redis = sess.info.get(CACHE_REDIS)
    if redis is None:
        return
    after_commit(sess, refresh_customers, sess.get_bind(), redis, [customer_id], tuple(stale))


def rebuild(sess: Session, redis: Redis) -> int:
    """Drop every cached profile and write one per known number; returns how many numbers."""
    for k in redis.scan_iter(match=PREFIX + "*", count=CHUNK):
        redis.delete(k)
    return write_profiles(redis, profiles(sess))


# --- kept warm: a restricted caller is routed by their restriction while PostgreSQL is away ------


def restricted_customers(sess: Session) -> list[int]:
    """Customers with a restriction that may be in force (see ``in_force``)."""
    successor = aliased(Restriction)
    varied = select(successor.replaces_id).where(
        successor.ended_at.is_(None), successor.replaces_id.is_not(None)
    )
    return list(
        sess.scalars(
            select(Restriction.customer_id)
            .where(or_(Restriction.ended_at.is_(None), Restriction.id.in_(varied)))
            .distinct()
        )
    )


def keep_restricted_warm(sess: Session, redis: Redis, *, force: bool = False) -> int | None:
    """Once per WARM_SECONDS (whichever worker asks first), rewrite the entry of every number
    of every restricted customer, so none expires and a restricted caller never depends on
    PostgreSQL answering; returns how many numbers, or None when it was done this period."""
    if not redis.set(WARM_KEY, "1", nx=True, ex=WARM_SECONDS) and not force:
        return None
    return write_profiles(redis, profiles(sess, restricted_customers(sess)))


def catch_up(sess: Session, redis: Redis, now: datetime) -> int:
    """Rewrite the entries of every customer changed (on the audit trail) since the last catch
    up: a change whose after-commit refresh failed (Redis away for a moment) is in the cache
    within a sweep of Redis answering again. Returns how many customers."""
    raw = redis.get(SYNCED_KEY)
    since = (
        datetime.fromtimestamp(float(raw), UTC) - timedelta(seconds=SYNC_OVERLAP_SECONDS)
        if raw
        else now - timedelta(seconds=WARM_SECONDS)
    )
    changed = list(
        sess.scalars(
            select(AuditEntry.customer_id)
            .where(AuditEntry.at >= since, AuditEntry.customer_id.is_not(None))
            .distinct()
        )
    )
    ids = [int(c) for c in changed if c is not None]
    if ids:
        write_profiles(redis, profiles(sess, ids))
    redis.set(SYNCED_KEY, str(now.timestamp()))
    return len(ids)
