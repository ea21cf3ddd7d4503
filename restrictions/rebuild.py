"""Everything in Redis can be rebuilt from PostgreSQL: the routing cache, the contact counters and
allowances, and the alerts the counted calls call for. A marker key says Redis holds a rebuild;
when Redis restarts empty the marker is gone, and the worker's sweep rebuilds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from redis import Redis
from sqlalchemy.orm import Session

from restrictions import alerts, cache, counting
from restrictions.settings import ContactRule

MARKER = "cg:rebuilt"


@dataclass(frozen=True)
class Rebuilt:
    numbers: int
    calls: int
    alerts_opened: int


def lost(redis: Redis) -> bool:
    """Whether Redis has lost what was built in it (restarted empty, or never built)."""
    return not redis.exists(MARKER)


def rebuild(sess: Session, redis: Redis, rules: tuple[ContactRule, ...]) -> Rebuilt:
    """Rebuild it all; the caller commits (the alerts opened are rows)."""
    numbers = cache.rebuild(sess, redis)
    calls = counting.rebuild(sess, redis)
    opened = alerts.reconcile(sess, redis, rules)
    redis.set(MARKER, datetime.now(UTC).isoformat())
    return Rebuilt(numbers, calls, opened)
