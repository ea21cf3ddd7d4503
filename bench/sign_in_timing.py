"""Whether the time a sign-in takes tells an attacker that a user name exists.

A wrong password for a real user and any password for a name nobody has must cost the same: one
password hash each (the real user's, or a dummy made once per process). With production's
hashing (werkzeug's scrypt), this makes 50 sign-ins (``POST /sign-in`` through the whole app:
throttling in Redis, the user looked up in PostgreSQL, the hash) for a known user name and 50 for
an unknown one, each with a wrong password, interleaved, and prints each one's median and their
difference in % (it must stay under 10%), beside a baseline measured in the same run: one bare
``check_password_hash`` of the same scrypt hash. The throttle's counters are cleared between
sign-ins (outside the timing), so every attempt reaches its password check.

It runs on the benchmarks' own PostgreSQL and Redis (bench/servers.py), whose rate-limit keys
it clears. Exits 1 when the difference is 10% or more.
"""

from __future__ import annotations

import logging
import os
import statistics
import sys
import time
from collections.abc import Callable

from werkzeug.security import check_password_hash

from bench import servers
from bench.inbound import app_for, fresh_database
from restrictions import staff
from restrictions.models import User
from telephony.auth import limiter
from telephony.database import database

DB = servers.database_url("callguard_bench_sign_in")
TRIES = int(os.environ.get("BENCH_SIGN_IN_TRIES", "50"))
KNOWN, UNKNOWN = "known.person", "nobody.at.all"
PASSWORD = "velvet lantern orbit"
LIMIT_PERCENT = 10.0


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> int:
    assert staff.PASSWORD_METHOD == "scrypt", "the benchmark measures production's hashing"
    fresh_database(DB)
    logging.getLogger("flask-limiter").setLevel(logging.WARNING)
    logging.getLogger("callguard.access").setLevel(logging.WARNING)
    app = app_for(DATABASE_URL=DB, WTF_CSRF_ENABLED=False)
    with app.app_context():
        with database(app).sessions() as sess:
            staff.create_user(sess, KNOWN, "agent", PASSWORD)
            sess.commit()
            stored = sess.get(User, 1)
            assert stored is not None and stored.password_hash is not None
            stored_hash = stored.password_hash
        client = app.test_client()

        def sign_in(name: str) -> None:
            response = client.post("/sign-in", data={"name": name, "password": "wrong guess 42"})
            assert response.status_code == 401, response.status_code

        for name in (KNOWN, UNKNOWN):  # warm up: connections, templates
            limiter.reset()
            sign_in(name)
        baseline: list[float] = []
        known: list[float] = []
        unknown: list[float] = []
        for _ in range(TRIES):
            baseline.append(timed(lambda: check_password_hash(stored_hash, "wrong guess 42")))
            for name, times in ((KNOWN, known), (UNKNOWN, unknown)):
                limiter.reset()
                times.append(timed(lambda n=name: sign_in(n)))  # type: ignore[misc]
        limiter.reset()
    database(app).dispose()

    ms = {
        k: statistics.median(v) * 1000
        for k, v in (("baseline", baseline), ("known", known), ("unknown", unknown))
    }
    difference = abs(ms["known"] - ms["unknown"]) / ms["known"] * 100
    print(f"sign-in timing, {TRIES} tries each, wrong passwords, {staff.PASSWORD_METHOD}:")
    print(f"  baseline: one bare check_password_hash  median {ms['baseline']:.1f} ms")
    print(f"  known user name ({KNOWN})        median {ms['known']:.1f} ms")
    print(f"  unknown user name ({UNKNOWN})   median {ms['unknown']:.1f} ms")
    verdict = "under" if difference < LIMIT_PERCENT else "NOT under"
    print(f"  difference: {difference:.1f}% ({verdict} {LIMIT_PERCENT:.0f}%)")
    return 0 if difference < LIMIT_PERCENT else 1


if __name__ == "__main__":
    sys.exit(main())
