"""Redis high availability, against real processes: the app reaches Redis through Sentinel and
follows a failover within seconds, and whenever Redis is another server than the one the last
rebuild was made in (a failover, a restart, a replica promoted) or has lost everything, the sweep
rebuilds the routing cache, counters and alerts from PostgreSQL, although a promoted replica or a
restarted server still holds the ``cg:rebuilt`` marker.

Each test starts redis-server (and redis-sentinel) processes of its own, on free ports, with no
persistence, in its tmp dir, and kills them when it ends; the shared Redis is not touched.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from flask import Flask
from redis import Redis
from redis.exceptions import RedisError, ResponseError
from redis.sentinel import SentinelConnectionPool

from restrictions import cache, counting, rebuild, redis_keys
from telephony.config import ConfigurationError
from telephony.handover import CALLS
from telephony.redis_store import (
    SentinelSettings,
    queues,
    redis_client,
    sentinel_client,
    sentinel_settings,
)
from telephony.worker import BurstWorker, take_calls
from tests.calls import parse, spoken, status_event

MASTER_NAME = "cg"
NUMBER = "+447400100001"
CONTACT_LOG = "callguard.handover.contact"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(what: str, check: Callable[[], bool], seconds: float = 5.0) -> None:
    """Poll ``check`` (RedisError counts as not yet) until true, or fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if check():
                return
        except RedisError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"not within {seconds} s: {what}")
        time.sleep(0.05)


@dataclass
class Processes:
    """redis-server and redis-sentinel processes of a test's own, killed when it ends."""

    dir: Path
    running: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    def redis(self, port: int | None = None, *args: str) -> int:
        port = port or free_port()
        self.running[port] = subprocess.Popen(
            [
                "redis-server",
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.dir),
                "--dbfilename", f"dump-{port}.rdb",
                "--logfile", str(self.dir / f"redis-{port}.log"),
                "--repl-diskless-sync-delay", "0",
                *args,
            ],
        )  # fmt: skip
        wait_for(f"redis on {port} answers", lambda: bool(self.client(port).ping()))
        return port

    def replica(self, of: int) -> int:
        port = self.redis(None, "--replicaof", "127.0.0.1", str(of))
        wait_for(f"redis on {port} replicates {of}", lambda: link_up(self.client(port)))
        return port

    def sentinel(self, master: int) -> int:
        port = free_port()
        conf = self.dir / f"sentinel-{port}.conf"
        conf.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {self.dir}\n"
            f"logfile {self.dir / f'sentinel-{port}.log'}\n"
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {master} 1\n"
            f"sentinel down-after-milliseconds {MASTER_NAME} 500\n"
            f"sentinel failover-timeout {MASTER_NAME} 2000\n",
            encoding="utf-8",
        )
        self.running[port] = subprocess.Popen(["redis-sentinel", str(conf)])
        wait_for(f"sentinel on {port} answers", lambda: bool(self.client(port).ping()))
        return port

    def stop(self, port: int) -> None:
        process = self.running.pop(port)
        process.kill()
        process.wait(timeout=10)

    @staticmethod
    def client(port: int) -> Redis:
        return Redis(port=port, socket_timeout=2, socket_connect_timeout=2)

    def stop_all(self) -> None:
        for port in list(self.running):
            self.stop(port)


def link_up(replica: Redis) -> bool:
    info = replica.info("replication")
    return bool(info["role"] == "slave" and info.get("master_link_status") == "up")


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    for program in ("redis-server", "redis-sentinel"):
        if shutil.which(program) is None:
            pytest.fail(f"{program} is not installed: run scripts/sentinel.sh (make test does)")
    running = Processes(tmp_path)
    yield running
    running.stop_all()


@dataclass
class Pair:
    """A master, its replica and one Sentinel watching them."""

    master: int
    replica: int
    sentinel: int


@pytest.fixture
def pair(processes: Processes) -> Pair:
    master = processes.redis()
    replica = processes.replica(master)
    sentinel = processes.sentinel(master)

    def knows_replica() -> bool:
        replicas = processes.client(sentinel).sentinel_slaves(MASTER_NAME)
        return any(
            r["port"] == replica and r["is_slave"] and not r["is_sdown"] and not r["is_odown"]
            for r in replicas
        )

    wait_for("the sentinel knows the replica", knows_replica)
    return Pair(master, replica, sentinel)


def fail_over(processes: Processes, pair: Pair) -> None:
    """SENTINEL FAILOVER, and wait until the Sentinel names the replica as master."""
    sentinel = processes.client(pair.sentinel)

    def started() -> bool:
        try:
            sentinel.sentinel_failover(MASTER_NAME)
        except ResponseError as exc:  # NOGOODSLAVE: the replica not yet seen as good enough
            if "INPROG" in str(exc):
                return True
            return False
        return True

    wait_for("the sentinel starts a failover", started)
    wait_for(
        "the sentinel names the replica as master",
        lambda: master_port(sentinel) == pair.replica,
    )


def master_port(sentinel: Redis) -> int:
    address = cast(tuple[str, int], sentinel.sentinel_get_master_addr_by_name(MASTER_NAME))
    return address[1]


def master_address(client: Redis) -> tuple[str, int] | None:
    """Where a Sentinel client's pool last found the master."""
    pool = cast(SentinelConnectionPool, client.connection_pool)
    return cast(tuple[str, int] | None, pool.master_address)


def run_jobs_of(app: Flask) -> int:
    """``run_jobs`` for a second app: its calls, then its queues, in its own app context."""
    both = queues(app)
    calls = take_calls(app, both[0].connection, burst=True)
    with app.app_context():
        BurstWorker(both, connection=both[0].connection).work(burst=True)
    return calls


def handed_over_to(redis: Redis, call_sid: str) -> bool:
    entries = cast(list[tuple[bytes, dict[bytes, bytes]]], redis.xrange(CALLS))
    return any(
        call_sid.encode() in (fields.get(b"call") or fields.get(b"record") or b"")
        for _, fields in entries
    )


def counted(redis: Redis, customer_id: int) -> int:
    subject = counting.subject_of(customer_id, NUMBER)
    assert subject is not None
    return counting.window(redis, subject, datetime.now(UTC), 60).calls


def sweep(app: Flask) -> None:
    from handlers.contact import sweep_call_events

    with app.app_context():
        sweep_call_events()


def rebuild_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == CONTACT_LOG and r.levelno == logging.WARNING and "rebuilt" in r.getMessage()
    ]


# --- the settings --------------------------------------------------------------------------------


def test_sentinel_settings_from_the_two_variables_or_one_url() -> None:
    assert sentinel_settings({"REDIS_URL": "redis://127.0.0.1:6379/3"}) is None
    assert sentinel_settings({}) is None
    assert sentinel_settings(
        {
            "REDIS_SENTINELS": "10.0.0.1:26379, sentinel-2:26380",
            "REDIS_SENTINEL_MASTER": "callguard",
            "REDIS_SENTINEL_PASSWORD": "s3cret",
            "REDIS_PASSWORD": "p4ss",
            "REDIS_SENTINEL_DB": "2",
        }
    ) == SentinelSettings(
        (("10.0.0.1", 26379), ("sentinel-2", 26380)), "callguard", "p4ss", "s3cret", 2
    )
    from_url = sentinel_settings({"REDIS_URL": "redis+sentinel://:p%40ss@h1:26379,h2:26379/cg/4"})
    assert from_url == SentinelSettings((("h1", 26379), ("h2", 26379)), "cg", "p@ss", "p@ss", 4)
    assert from_url.limiter_uri() == "redis+sentinel://:p%40ss@h1:26379,h2:26379/cg"


@pytest.mark.parametrize(
    "config",
    [
        {"REDIS_SENTINELS": "127.0.0.1:26379"},  # no master named
        {"REDIS_SENTINEL_MASTER": "cg"},  # no Sentinels
        {"REDIS_SENTINELS": "127.0.0.1", "REDIS_SENTINEL_MASTER": "cg"},  # no port
        {"REDIS_SENTINELS": "127.0.0.1:1", "REDIS_SENTINEL_MASTER": "cg", "REDIS_URL": "redis://x"},
        {"REDIS_URL": "redis+sentinel://127.0.0.1:26379"},  # no master named
    ],
)
def test_sentinel_settings_that_do_not_make_sense_stop_the_app(
    config: dict[str, Any], app_with: Callable[..., Flask]
) -> None:
    with pytest.raises(ConfigurationError):
        app_with(**{"REDIS_URL": None, **config})


def test_a_redis_sentinel_url_starts_the_app_on_the_master_the_sentinels_name(
    app_with: Callable[..., Flask], processes: Processes, pair: Pair
) -> None:
    app = app_with(REDIS_URL=f"redis+sentinel://127.0.0.1:{pair.sentinel}/{MASTER_NAME}")
    redis_client(app).set("cg:test:url", "fast")
    queues(app)[0].connection.set("cg:test:url:rq", "patient")
    master = processes.client(pair.master)
    assert master.get("cg:test:url") == b"fast" and master.get("cg:test:url:rq") == b"patient"


# --- a failover ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_app_follows_a_sentinel_failover_and_the_sweep_rebuilds_the_new_master(
    app_with: Callable[..., Flask],
    twilio: Any,
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
    processes: Processes,
    pair: Pair,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    ha = app_with(
        REDIS_URL=None,
        REDIS_SENTINELS=f"127.0.0.1:{pair.sentinel}",
        REDIS_SENTINEL_MASTER=MASTER_NAME,
    )
    twilio.client = ha.test_client()
    customer = make_customer(numbers=(NUMBER,))
    restrict(customer, kind="written_only")
    old, new = processes.client(pair.master), processes.client(pair.replica)
    # a READONLY answer alone must bring a client to the new master: this one never asks the
    # Sentinels of its own accord
    stale = sentinel_client(
        sentinel_settings(ha.config) or pytest.fail("no Sentinel settings"),
        timeout=1,
        connect_timeout=1,
        retries=3,
        check_every=float("inf"),
    )
    stale.set("cg:test:stale", "before")

    sweep(ha)  # the first sweep builds Redis (the routing cache, counters) on the master
    assert rebuild_warnings(caplog) and old.exists(rebuild.MARKER)
    sid = twilio.new_call_sid()
    parse(twilio.incoming(NUMBER, CallSid=sid))
    assert status_event(twilio, sid, "completed", 5, CallDuration="60").status_code == 204
    run_jobs_of(ha)
    assert counted(old, customer.id) == 1
    old.wait(1, 2000)  # the replica has everything, the marker too
    assert new.exists(rebuild.MARKER) and counted(new, customer.id) == 1

    fail_over(processes, pair)
    # the next inbound call is answered, and within seconds the app writes to the new master
    # (the old one still takes writes until Sentinel demotes it, some ten seconds later)
    deadline = time.monotonic() + 5
    while True:
        probe = twilio.new_call_sid()
        assert spoken(parse(twilio.incoming(NUMBER, CallSid=probe)))  # answered, in words
        if handed_over_to(new, probe):
            break
        assert time.monotonic() < deadline, "the app's writes never reached the new master"
        time.sleep(0.2)
    # the app's other client (not the call path's) finds it too, at its next use after its next
    # check (every MASTER_CHECK_SECONDS): it may not have been used since the failover
    client = redis_client(ha)
    wait_for(
        "the app's client finds the new master",
        lambda: client.ping() and master_address(client) == ("127.0.0.1", pair.replica),
    )

    # what the old master took after the replica stopped copying it is lost with it: here,
    # the counters and the routing cache; the marker was copied, so it alone decides nothing
    lost = (
        redis_keys.COUNT_CALLS.key,
        redis_keys.COUNT_TALK.key,
        redis_keys.COUNT_DECIDED.key,
        cache.PREFIX,
    )
    for key in [k for prefix in lost for k in new.scan_iter(prefix + "*")]:
        new.delete(key)
    assert new.exists(rebuild.MARKER) and counted(new, customer.id) == 0
    caplog.clear()
    sweep(ha)
    (warning,) = rebuild_warnings(caplog)
    assert "another server" in warning and "failover" in warning
    assert counted(new, customer.id) == 1
    hit, profile = cache.read(new, NUMBER)
    assert hit and profile is not None and profile.restrictions[0].kind == "written_only"
    assert run_jobs_of(ha) >= 1  # the calls handed over since: the worker takes them there
    assert master_address(queues(ha)[0].connection) == ("127.0.0.1", pair.replica)

    # the old master comes back as a replica of the new one (what Sentinel does to it)
    old.replicaof("127.0.0.1", pair.replica)
    wait_for("the old master replicates the new one", lambda: link_up(old))
    assert stale.set("cg:test:stale", "after")  # READONLY from the old master: reconnected
    assert new.get("cg:test:stale") == b"after"
    later = twilio.new_call_sid()
    parse(twilio.incoming(NUMBER, CallSid=later))
    assert status_event(twilio, later, "completed", 5, CallDuration="30").status_code == 204
    run_jobs_of(ha)
    assert counted(new, customer.id) == 2
    new.wait(1, 2000)
    assert counted(old, customer.id) == 2  # the old master now copies the new one
    caplog.clear()
    sweep(ha)
    assert rebuild_warnings(caplog) == []  # the same master as at the last rebuild


# --- a restart, empty or not, and a replica promoted: the marker alone decides nothing ------------


@pytest.fixture
def own_redis(processes: Processes, app_with: Callable[..., Flask]) -> tuple[int, Flask]:
    port = processes.redis()
    return port, app_with(REDIS_URL=f"redis://127.0.0.1:{port}/0")


def restore(app: Flask) -> bool:
    from handlers.contact import restore_redis_if_lost

    with app.app_context():
        return restore_redis_if_lost()


def test_a_redis_flushed_empty_is_rebuilt(
    own_redis: tuple[int, Flask],
    make_customer: Callable[..., Any],
    processes: Processes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    port, app = own_redis
    make_customer(numbers=(NUMBER,))
    assert restore(app)  # never built
    assert not restore(app)  # built here, and still here
    redis = processes.client(port)
    redis.flushall()
    caplog.clear()
    assert restore(app)
    (warning,) = rebuild_warnings(caplog)
    assert "holds no rebuild" in warning
    assert cache.read(redis, NUMBER)[0]


def test_a_redis_restarted_with_its_data_is_rebuilt_though_it_holds_the_marker(
    own_redis: tuple[int, Flask],
    make_customer: Callable[..., Any],
    processes: Processes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    port, app = own_redis
    make_customer(numbers=(NUMBER,))
    assert restore(app)
    redis = processes.client(port)
    run_id = redis.info("server")["run_id"]
    redis.delete(cache.key(NUMBER))  # lost: say, written after the last fsync
    redis.save()
    processes.stop(port)
    processes.redis(port)  # the same server, restarted: its data loaded from its dump
    assert redis.info("server")["run_id"] != run_id and redis.exists(rebuild.MARKER)
    caplog.clear()
    assert restore(app)
    (warning,) = rebuild_warnings(caplog)
    assert "restarted" in warning
    assert cache.read(redis, NUMBER)[0]
    assert not restore(app)


def test_a_promoted_replica_is_rebuilt_though_the_marker_was_copied_to_it(
    own_redis: tuple[int, Flask],
    make_customer: Callable[..., Any],
    processes: Processes,
    app_with: Callable[..., Flask],
    caplog: pytest.LogCaptureFixture,
) -> None:
    port, app = own_redis
    make_customer(numbers=(NUMBER,))
    assert restore(app)
    replica_port = processes.replica(port)
    replica = processes.client(replica_port)
    processes.client(port).wait(1, 2000)
    assert replica.exists(rebuild.MARKER)
    processes.stop(port)
    replica.replicaof("NO", "ONE")  # promoted, as Sentinel does
    replica.delete(cache.key(NUMBER))  # a write the old master never passed on
    promoted = app_with(REDIS_URL=f"redis://127.0.0.1:{replica_port}/0")
    caplog.clear()
    assert restore(promoted)
    (warning,) = rebuild_warnings(caplog)
    assert "failover" in warning
    assert cache.read(replica, NUMBER)[0]
    assert not restore(promoted)
