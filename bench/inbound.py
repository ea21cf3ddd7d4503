"""How long the inbound webhook takes to answer, in the usual case and when things fail.

Prints p50 / p95 / max per scenario (server-side, through the WSGI app with signed requests).
Starts PostgreSQL and Redis of its own (bench/servers.py; `make bench`). The budget is
Twilio's patience and our rule: valid TwiML within 1 s whatever fails.
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import create_engine, make_url, text
from twilio.request_validator import RequestValidator

from bench import servers
from restrictions.lifecycle import Actor, add_restriction, create_customer
from telephony import create_app
from telephony.cli import alembic_config
from telephony.database import database
from tests.faults import hung_server

DATABASE = "callguard_bench"
TOKEN = "bench-token"
BASE = "https://calls.example.org"
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "200"))


def fresh_database(database_url: str | None = None) -> None:
    """Drop and recreate the benchmark's database, then migrate it (quietly)."""
    from alembic import command

    logging.getLogger("alembic").setLevel(logging.WARNING)
    database_url = database_url or servers.database_url(DATABASE)
    url = make_url(database_url)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{url.database}"'))
    admin.dispose()
    command.upgrade(alembic_config(database_url), "head")  # type: ignore[arg-type]


def app_for(**overrides: Any) -> Any:
    config = {
        "TESTING": True,
        "SECRET_KEY": "bench",
        "DATABASE_URL": servers.database_url(DATABASE),
        "REDIS_URL": servers.redis_url(),
        "PUBLIC_BASE_URL": BASE,
        "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_API_BASE_URL": "http://127.0.0.1:9",
    }
    config.update(overrides)
    return create_app(config)


def seed(app: Any, customers: int = 1000) -> None:
    with app.app_context(), database(app).sessions() as sess:
        for i in range(customers):
            c = create_customer(
                sess,
                Actor(None, "bench"),
                reference=f"B-{i}",
                name=f"P {i}",
                phone_numbers=[f"+4474001{i:05d}"],
            )
            if i % 3 == 0:
                add_restriction(sess, Actor(None, "bench"), c, {"kind": "warning", "reason": "r"})
        sess.commit()


def post(client: Any, n: int, from_: str) -> None:
    params = {
        "AccountSid": "AC" + "0" * 32,
        "CallSid": f"CA{n:032x}",
        "From": from_,
        "To": "+441332000000",
        "CallStatus": "ringing",
        "Direction": "inbound",
    }
    url = BASE + "/twilio/voice/incoming"
    sig = RequestValidator(TOKEN).compute_signature(url, params)
    response = client.post(
        "/twilio/voice/incoming", data=params, headers={"X-Twilio-Signature": sig}
    )
    assert response.status_code == 200 and b"<Response>" in response.data


def measure(
    name: str,
    app: Any,
    number: Callable[[int], str],
    rounds: int = ROUNDS,
    before: Callable[[], None] | None = None,
) -> None:
    client = app.test_client()
    timings = []
    with app.app_context():
        for i in range(rounds):
            if before:
                before()
            start = time.perf_counter()
            post(client, i + hash(name) % 10**6 * 1000, number(i))
            timings.append((time.perf_counter() - start) * 1000)
    timings.sort()
    p95 = timings[int(len(timings) * 0.95) - 1]
    print(
        f"{name:<34} n={rounds:<4} p50={statistics.median(timings):7.2f} ms  "
        f"p95={p95:7.2f} ms  max={timings[-1]:7.2f} ms"
    )


def main() -> None:
    fresh_database()
    app = app_for()
    seed(app)
    redis = app.extensions["callguard.redis"]
    servers.empty_redis(redis)
    measure("unknown caller, cache miss", app, lambda i: f"+4479{i:08d}")
    measure("customer, cache hit", app, lambda i: f"+4474001{i % 1000:05d}")
    measure(
        "customer, cache miss (PostgreSQL)",
        app,
        lambda i: f"+4474001{i % 1000:05d}",
        before=lambda: servers.empty_redis(redis),
    )
    measure(
        "Redis down (PostgreSQL read)",
        app_for(REDIS_URL="redis://127.0.0.1:1/0"),
        lambda i: f"+4474001{i % 1000:05d}",
        rounds=50,
    )
    measure(
        "PostgreSQL down, cache miss",
        app_for(DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:1/x"),
        lambda i: f"+4479{i:08d}",
        rounds=50,
        before=lambda: servers.empty_redis(redis),
    )
    port = hung_server()
    measure(
        "PostgreSQL hung, cache miss",
        app_for(DATABASE_URL=f"postgresql+psycopg://postgres@127.0.0.1:{port}/x"),
        lambda i: f"+4478{i:08d}",
        rounds=10,
        before=lambda: servers.empty_redis(redis),
    )


if __name__ == "__main__":
    main()
