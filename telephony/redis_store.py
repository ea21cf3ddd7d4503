"""Redis and the rq queue, built once per app from REDIS_URL, or from Redis Sentinel.

With REDIS_URL unset (the zero-setup default) an in-process Redis stands in and jobs run inline.
Two clients: a fast one for the call path (short timeouts, so a sick Redis cannot hold a caller),
and a patient one for rq.

High availability (``REDIS_SENTINELS`` and ``REDIS_SENTINEL_MASTER``, or a
``redis+sentinel://`` REDIS_URL): both clients are redis-py's Sentinel clients
(``Sentinel.master_for``). Their pool asks the Sentinels which server is the master before each
new connection and, here, at most once a second while connections are reused, so a failover is
followed within a second or two even while the old master still accepts writes. A ``READONLY``
answer (the old master demoted to a replica) closes the connection and the command is retried
on the master the Sentinels name: redis-py's ``SentinelManagedConnection`` turns it into a
ConnectionError (ReadOnlyError is one of the errors the clients retry on besides), and
``MasterFollowingConnection`` makes the retry's reconnection ask the Sentinels, which redis-py's
own does not.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import fakeredis
from flask import Flask, current_app
from redis import Redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError, ReadOnlyError, RedisError, TimeoutError
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelConnectionPool, SentinelManagedConnection
from rq import Queue

from restrictions.resilience import Breaker
from telephony.config import ConfigurationError

log = logging.getLogger("callguard.redis")

REDIS = "callguard.redis"
QUEUE = "callguard.queue"
BREAKER = "callguard.redis.breaker"
QUEUE_NAME = "callguard"
URGENT_QUEUE_NAME = "callguard-calls"
MASTER_CHECK_SECONDS = 1.0  # how stale a Sentinel-managed pool's idea of the master may be
SENTINEL_SCHEME = "redis+sentinel"


@dataclass(frozen=True)
class SentinelSettings:
    """Where the Sentinels are and which master they watch (``REDIS_SENTINELS`` etc.)."""

    sentinels: tuple[tuple[str, int], ...]
    master: str
    password: str | None = None  # the Redis servers' (requirepass)
    sentinel_password: str | None = None  # the Sentinels' own
    db: int = 0

    def limiter_uri(self) -> str:
        """The same Sentinels as a storage URI for the rate limiter (the ``limits`` library,
        which takes one password for the Sentinels and the servers, and db 0)."""
        hosts = ",".join(f"{host}:{port}" for host, port in self.sentinels)
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        return f"{SENTINEL_SCHEME}://{auth}{hosts}/{quote(self.master, safe='')}"


def _host_port(item: str, setting: str) -> tuple[str, int]:
    host, sep, port = item.strip().rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigurationError(f"{setting} must be host:port,host:port; {item.strip()!r} is not")
    return host.strip("[]"), int(port)


def _sentinels_from_url(url: str) -> SentinelSettings:
    """``redis+sentinel://[:password@]host:port[,host:port]/master[/db]``: the password is the
    Redis servers' (and the Sentinels', unless REDIS_SENTINEL_PASSWORD says otherwise)."""
    parts = urlsplit(url)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    password = unquote(userinfo.partition(":")[2]) if userinfo else None
    path = [p for p in parts.path.split("/") if p]
    if not hosts or not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
        raise ConfigurationError(
            "REDIS_URL with redis+sentinel:// must be "
            "redis+sentinel://[:password@]host:port[,host:port]/master_name[/db]"
        )
    return SentinelSettings(
        sentinels=tuple(_host_port(h, "REDIS_URL") for h in hosts.split(",") if h.strip()),
        master=unquote(path[0]),
        password=password or None,
        sentinel_password=password or None,
        db=int(path[1]) if len(path) == 2 else 0,
    )


def sentinel_settings(config: Any) -> SentinelSettings | None:
    """The Sentinel settings in ``config`` (the app's), or None for a plain REDIS_URL or none."""
    url = str(config.get("REDIS_URL") or "")
    raw = str(config.get("REDIS_SENTINELS") or "").strip()
    master = str(config.get("REDIS_SENTINEL_MASTER") or "").strip()
    sentinel_password = config.get("REDIS_SENTINEL_PASSWORD") or None
    db_raw = str(config.get("REDIS_SENTINEL_DB") or "").strip()
    if db_raw and not db_raw.isdigit():
        raise ConfigurationError(f"REDIS_SENTINEL_DB must be a number, not {db_raw!r}")
    if url.startswith(SENTINEL_SCHEME + "://"):
        if raw or master:
            raise ConfigurationError(
                "set REDIS_URL=redis+sentinel://… or REDIS_SENTINELS, not both"
            )
        found = _sentinels_from_url(url)
        return SentinelSettings(
            found.sentinels,
            found.master,
            found.password,
            sentinel_password or found.sentinel_password,
            int(db_raw) if db_raw else found.db,
        )
    if not raw and not master:
        return None
    if not raw or not master:
        raise ConfigurationError("REDIS_SENTINELS and REDIS_SENTINEL_MASTER go together: set both")
    if url:
        raise ConfigurationError("set REDIS_URL or REDIS_SENTINELS, not both")
    return SentinelSettings(
        sentinels=tuple(_host_port(item, "REDIS_SENTINELS") for item in raw.split(",") if item),
        master=master,
        password=config.get("REDIS_PASSWORD") or None,
        sentinel_password=sentinel_password,
        db=int(db_raw) if db_raw else 0,
    )


class MasterFollowingConnection(SentinelManagedConnection):
    """redis-py's Sentinel connection turns a READONLY answer into a ConnectionError and drops
    the socket, but the retry then reconnects through ``connect_check_health``, to the address
    it had: the old master, READONLY again until the retries run out (redis-py issue #3874).
    This one asks the Sentinels for the master whenever it reconnects."""

    def __init__(self, **kwargs: Any) -> None:
        self._address_fresh = False
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]

    def connect_to(self, address: tuple[str, int]) -> None:
        self._address_fresh = True  # just asked the Sentinels (SentinelManagedConnection)
        try:
            super().connect_to(address)  # type: ignore[no-untyped-call]
        finally:
            self._address_fresh = False

    def connect_check_health(
        self, check_health: bool = True, retry_socket_connect: bool = True
    ) -> None:
        if not self._sock and not self._address_fresh and self.connection_pool.is_master:
            self.host, self.port = self.connection_pool.get_master_address()
        super().connect_check_health(check_health, retry_socket_connect)


class CheckedSentinelPool(SentinelConnectionPool):
    """redis-py's Sentinel pool, which asks the Sentinels for the master only when it opens a
    connection, so a pool whose connections stay open keeps writing to an old master that has
    not been told yet (Sentinel demotes it some ten seconds after a failover: a split brain).
    This one asks again at most once every MASTER_CHECK_SECONDS as connections are taken; on a
    new address redis-py closes the idle connections and those in use as they come back."""

    def __init__(self, *args: Any, check_every: float | None = None, **kwargs: Any):
        self.check_every = MASTER_CHECK_SECONDS if check_every is None else check_every
        self._checked_at = 0.0
        self._check_lock = threading.Lock()
        self._check_pid = os.getpid()
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]

    def _check_master(self) -> None:
        if self._check_pid != os.getpid():  # forked: a lock held at the fork is never released
            self._check_lock, self._check_pid = threading.Lock(), os.getpid()
        now = time.monotonic()
        if now - self._checked_at < self.check_every or not self._check_lock.acquire(False):
            return
        try:
            self._checked_at = now
            before = self.master_address
            after = self.get_master_address()  # type: ignore[no-untyped-call]
            if before is not None and after != before:
                log.warning(
                    "redis master %r moved from %s:%s to %s:%s (failover): reconnecting",
                    self.service_name,
                    *before,
                    *after,
                )
        except RedisError as exc:  # no Sentinel answered: keep the master we have, and do not
            # make every second's caller wait for Sentinels that time out
            self._checked_at = now + 4 * self.check_every
            log.debug("sentinels unavailable for %r: %s", self.service_name, exc)
        finally:
            self._check_lock.release()

    def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        if self.is_master:
            self._check_master()
        return super().get_connection(*args, **kwargs)


def sentinel_client(
    settings: SentinelSettings,
    *,
    timeout: float,
    connect_timeout: float,
    retries: int,
    check_every: float | None = None,
) -> Redis:
    """A client of the master ``settings`` names, through the Sentinels: it follows failovers
    (a READONLY answer or a lost connection makes it ask the Sentinels and try again, and it
    asks them anyway every ``check_every`` seconds, MASTER_CHECK_SECONDS unless given)."""
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        list(settings.sentinels),
        sentinel_kwargs={
            "socket_timeout": timeout,
            "socket_connect_timeout": connect_timeout,
            "password": settings.sentinel_password,
        },
    )
    client: Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
        settings.master,
        connection_pool_class=CheckedSentinelPool,
        connection_class=MasterFollowingConnection,
        check_every=check_every,
        socket_timeout=timeout,
        socket_connect_timeout=connect_timeout,
        password=settings.password,
        db=settings.db,
        retry=Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.5), retries),
        retry_on_error=[ReadOnlyError, ConnectionError, TimeoutError],
    )
    return client


def init_app(app: Flask) -> None:
    url: str | None = app.config.get("REDIS_URL")
    sentinel = sentinel_settings(app.config)
    fast: Redis
    patient: Redis
    timeout = float(app.config["REDIS_TIMEOUT_SECONDS"])
    if sentinel is not None:
        # the call path: one retry is enough to follow a failover, and the breaker does the rest
        fast = sentinel_client(sentinel, timeout=timeout, connect_timeout=timeout, retries=2)
        patient = sentinel_client(sentinel, timeout=5, connect_timeout=2, retries=10)
        is_async = not app.config["JOBS_INLINE"]
        # (not RATELIMIT_STORAGE_OPTIONS: Flask-Limiter keeps those across the apps it serves)
        app.config.setdefault("RATELIMIT_STORAGE_URI", sentinel.limiter_uri())
    elif url:
        fast = Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        patient = Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
        is_async = not app.config["JOBS_INLINE"]
    else:
        server = fakeredis.FakeServer()
        fast = fakeredis.FakeRedis(server=server)
        patient = fakeredis.FakeRedis(server=server)
        is_async = False
    app.extensions[REDIS] = fast
    app.extensions[BREAKER] = Breaker("redis (call path)")
    # Two queues by urgency: ringing a person for a waiting caller never waits behind counting.
    # Each is also seen through the fast client: enqueueing on a call's path must fail fast.
    app.extensions[QUEUE] = {
        (name, call_path): Queue(name, connection=fast if call_path else patient, is_async=is_async)
        for name in (URGENT_QUEUE_NAME, QUEUE_NAME)
        for call_path in (False, True)
    }


def call_path_breaker(app: Flask | None = None) -> Breaker:
    """After a Redis failure on a call's path, skip Redis there for 3 s (each use would cost its
    0.25 s timeout otherwise, and a call has 1 s in all)."""
    breaker: Breaker = (app or current_app).extensions[BREAKER]
    return breaker


def redis_client(app: Flask | None = None) -> Redis:
    client: Redis = (app or current_app).extensions[REDIS]
    return client


def queue(app: Flask | None = None, *, call_path: bool = False, urgent: bool = False) -> Queue:
    name = URGENT_QUEUE_NAME if urgent else QUEUE_NAME
    q: Queue = (app or current_app).extensions[QUEUE][(name, call_path)]
    return q


def queues(app: Flask | None = None, *, urgent_only: bool = False) -> list[Queue]:
    """What a worker listens on, the urgent queue first (rq takes jobs in queue order)."""
    urgent = queue(app, urgent=True)
    return [urgent] if urgent_only else [urgent, queue(app)]
