"""Contact counting (policy section 6): sliding-window counters in Redis, rebuilt from PostgreSQL.

Placeholder until the excessive-contact work lands.
"""

from __future__ import annotations

from redis import Redis
from sqlalchemy.orm import Session


def rebuild(sess: Session, redis: Redis) -> int:
    """Rebuild every counter from the calls in PostgreSQL; returns how many calls were counted."""
    return 0
