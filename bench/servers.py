"""The benchmarks' own PostgreSQL and Redis: started on free loopback ports the first time a
benchmark asks, stopped when it exits, so a benchmark never flushes or drops anything on the
machine's shared servers. ``CALLGUARD_BENCH_POSTGRES`` (a server's URL, e.g.
``postgresql+psycopg://postgres@127.0.0.1:5432``) and ``CALLGUARD_BENCH_REDIS_URL`` point a run
at servers of your choosing instead: a run then drops and makes only its own named database, and
empties only callguard's and rq's keys in that Redis db (``empty_redis``), never all of it."""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from redis import Redis

from bench.infra import Postgres, accepts, free_port, postgres_bin, wait_for


@functools.cache
def _folder() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="callguard-bench-"))
    folder.chmod(0o755)  # PostgreSQL runs as its own user
    atexit.register(shutil.rmtree, folder, True)
    return folder


@functools.cache
def _postgres() -> str:
    given = os.environ.get("CALLGUARD_BENCH_POSTGRES")
    if given:
        return given.rstrip("/")
    bindir = postgres_bin()
    if bindir is None:
        raise SystemExit("the benchmarks need PostgreSQL's server binaries (initdb, pg_ctl)")
    server = Postgres(_folder(), bindir)
    server.init()
    atexit.register(server.cleanup)
    return f"postgresql+psycopg://postgres@127.0.0.1:{server.port}"


def database_url(name: str) -> str:
    """A database on the benchmarks' own PostgreSQL (created by ``fresh_database``)."""
    return f"{_postgres()}/{name}"


@functools.cache
def redis_url() -> str:
    """The benchmarks' own Redis (nothing persisted)."""
    given = os.environ.get("CALLGUARD_BENCH_REDIS_URL")
    if given:
        return given
    port = free_port()
    server = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(_folder()),
        ],  # fmt: skip
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    atexit.register(server.terminate)
    wait_for("the benchmarks' Redis", lambda: accepts(port))
    return f"redis://127.0.0.1:{port}/0"


OURS = ("cg:*", "rq:*", "LIMITS*")  # callguard's keys, rq's, and the sign-in limiter's


def empty_redis(redis: Redis) -> None:
    """Start a run on an empty Redis: the benchmarks' own is flushed; one given with
    CALLGUARD_BENCH_REDIS_URL loses only the keys a run writes, whatever else it holds."""
    if not os.environ.get("CALLGUARD_BENCH_REDIS_URL"):
        redis.flushdb()
        return
    for pattern in OURS:
        batch: list[bytes] = []
        for key in redis.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) == 1000:
                redis.delete(*batch)
                batch.clear()
        if batch:
            redis.delete(*batch)
