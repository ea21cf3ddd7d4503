"""The routing cache: each known number's caller profile, so the inbound look-up is one Redis GET.

PostgreSQL is the truth; an entry is rewritten after every committed change to a customer or a
restriction and can be rebuilt at any time (``callguard counters rebuild``). Numbers nobody owns
are cached as ``null`` so the usual unknown caller costs one round trip too.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

from redis import Redis
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from restrictions.models import Customer, PhoneNumber, Restriction
from restrictions.routing import ActiveRestriction, CallerProfile, RestrictionKind
from telephony.resilience import fail_open

log = logging.getLogger("callguard.cache")

PREFIX = "cg:caller:"
TTL_SECONDS = 3600
_MISS = object()


def key(e164: str) -> str:
    return PREFIX + e164


def profile_of(customer: Customer) -> CallerProfile:
    """What routing needs to know about a customer: who they are and what is in force."""
    active = tuple(
        ActiveRestriction(
            id=r.id,
            kind=RestrictionKind(r.kind),
            details=dict(r.details or {}),
            decided_at=r.decided_at,
            under_appeal=r.appeal_lodged_on is not None and r.appeal_outcome is None,
        )
        for r in customer.restrictions
        if r.ended_at is None
    )
    adjustments = customer.adjustments or {}
    return CallerProfile(
        customer_id=customer.id,
        reference=customer.reference,
        name=customer.name,
        language=customer.language,
        slow_speech=bool(adjustments.get("slow_speech", False)),
        restrictions=active,
    )


def load_profile(sess: Session, e164: str) -> CallerProfile | None:
    """Read a caller's profile from PostgreSQL (the cache-miss path)."""
    customer = sess.scalar(
        select(Customer)
        .join(PhoneNumber)
        .where(PhoneNumber.e164 == e164)
        .options(selectinload(Customer.restrictions.and_(Restriction.ended_at.is_(None))))
    )
    return profile_of(customer) if customer is not None else None


def encode(profile: CallerProfile | None) -> str:
    return json.dumps(profile.to_json() if profile is not None else None)


def decode(raw: bytes | str | None) -> Any:
    """The cached profile, None for a known-unknown number, or _MISS when there is no entry."""
    if raw is None:
        return _MISS
    data = json.loads(raw)
    return CallerProfile.from_json(data) if data is not None else None


def read(redis: Redis, e164: str) -> tuple[bool, CallerProfile | None]:
    """(hit, profile) with one GET; raises RedisError for the caller to apply its policy."""
    value = decode(redis.get(key(e164)))
    if value is _MISS:
        return False, None
    return True, value


def write(redis: Redis, e164: str, profile: CallerProfile | None) -> None:
    redis.set(key(e164), encode(profile), ex=TTL_SECONDS)


@fail_open(default=None)
def refresh_customer(customer_id: int, stale_numbers: Iterable[str] = ()) -> None:
    """Rewrite the cache entries of a customer's numbers (called after commit)."""
    from restrictions.db import database
    from telephony.redis_store import redis_client

    redis = redis_client()
    with database().sessions() as sess:
        customer = sess.scalar(
            select(Customer)
            .where(Customer.id == customer_id)
            .options(selectinload(Customer.numbers), selectinload(Customer.restrictions))
        )
        pipe = redis.pipeline(transaction=False)
        for number in stale_numbers:
            pipe.delete(key(number))
        if customer is not None:
            encoded = encode(profile_of(customer))
            for n in customer.numbers:
                pipe.set(key(n.e164), encoded, ex=TTL_SECONDS)
        pipe.execute()


def rebuild(sess: Session, redis: Redis) -> int:
    """Drop every cached profile and write one per known number; returns how many numbers."""
    for k in redis.scan_iter(match=PREFIX + "*", count=1000):
        redis.delete(k)
    count = 0
    pipe = redis.pipeline(transaction=False)
    customers = sess.scalars(
        select(Customer).options(
            selectinload(Customer.numbers), selectinload(Customer.restrictions)
        )
    )
    for customer in customers:
        encoded = encode(profile_of(customer))
        for n in customer.numbers:
            pipe.set(key(n.e164), encoded, ex=TTL_SECONDS)
            count += 1
        if count % 1000 == 0:
            pipe.execute()
    pipe.execute()
    return count
