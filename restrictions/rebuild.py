"""Everything in Redis can be rebuilt from PostgreSQL: the routing cache, the contact counters and
allowances, and the alerts the counted calls call for. A marker key says Redis holds a rebuild,
and which Redis it was made in: the server's run id (new at every start) and replication id (new
when a replica is promoted to master). When Redis restarts empty the marker is gone; after a
restart that kept its data, or a failover to a replica (which has the marker too, copied from the
old master, but may lack the old master's last writes), the marker names another Redis. Either
way the worker's sweep rebuilds."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from redis import Redis
from redis.exceptions import ResponseError
from sqlalchemy.orm import Session

from restrictions import alerts, cache, counting, redis_keys
from restrictions.settings import ContactRule

MARKER = redis_keys.REBUILT.key


@dataclass(frozen=True)
class Rebuilt:
    numbers: int
    calls: int
    alerts_opened: int


@dataclass(frozen=True)
class Identity:
    """Which Redis this is: ``run_id`` is new each time the server starts, ``replid`` (its
    ``master_replid``) each time a replica is promoted to master."""

    run_id: str
    replid: str

    def __str__(self) -> str:
        return f"run id {self.run_id[:12]}, replication id {self.replid[:12]}"


def identity(redis: Redis) -> Identity | None:
    """The Redis server's identity (INFO server and replication), or None where INFO is not
    served (the in-process Redis of the zero-setup mode)."""
    try:
        server = redis.info("server")
        replication = redis.info("replication")
    except ResponseError:
        return None
    run_id, replid = server.get("run_id"), replication.get("master_replid")
    if not run_id or not replid:
        return None
    return Identity(str(run_id), str(replid))


def why_lost(redis: Redis) -> str | None:
    """Why what was built in Redis must be built again, or None when it need not be."""
    raw = redis.get(MARKER)
    if raw is None:
        return "redis holds no rebuild (it restarted empty, or was never built)"
    now = identity(redis)
    if now is None:
        return None
    try:
        marked = json.loads(raw)
        then = Identity(str(marked["run_id"]), str(marked["replid"]))
    except (ValueError, TypeError, KeyError):
        return f"redis holds a rebuild from a Redis it cannot name (now {now})"
    if then == now:
        return None
    if then.run_id == now.run_id:
        return f"redis was promoted from a replica ({then} -> {now}): a failover"
    return f"redis is another server or restarted ({then} -> {now}): a failover or a restart"


def lost(redis: Redis) -> bool:
    """Whether Redis has lost what was built in it (restarted empty or with data, failed over
    to another server, or never built)."""
    return why_lost(redis) is not None


def rebuild(sess: Session, redis: Redis, rules: tuple[ContactRule, ...]) -> Rebuilt:
    """Rebuild it all; the caller commits (the alerts opened are rows). The marker names the
    Redis as it was before the rebuild began: one that fails over meanwhile is rebuilt again."""
    built_in = identity(redis)
    numbers = cache.rebuild(sess, redis)
    calls = counting.rebuild(sess, redis)
    opened = alerts.reconcile(sess, redis, rules)
    marker: dict[str, str] = {"at": datetime.now(UTC).isoformat()}
    if built_in is not None:
        marker |= {"run_id": built_in.run_id, "replid": built_in.replid}
    redis.set(MARKER, json.dumps(marker))
    return Rebuilt(numbers, calls, opened)
