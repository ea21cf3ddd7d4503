"""A thousand calls through the whole flow, driven the way Twilio drives it.

Each call: the inbound webhook; the dial-out job (a real rq worker) against a fake Twilio REST API
on a real HTTP server; then one of what happens in production: the agent answers (conference
events in a random valid order: either side may join first), nobody answers (the leg's
``no-answer``), the caller hangs up while the agent rings, the worker loses the dial-out (the hold
heartbeat, at its deadline, must move the caller on), or the caller hears a message that ends the
call. Status callbacks follow with duplicates, in shuffled order across calls, some late.

Prints: callers left alone (must be 0), contacts counted against expected, and talk time counted
against what the callbacks said (both must be equal). Needs PostgreSQL and Redis (`make bench`).
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import time_machine
from twilio.request_validator import RequestValidator
from werkzeug.serving import make_server

from bench.inbound import BASE, TOKEN, app_for, fresh_database
from restrictions import counting
from restrictions.lifecycle import Actor, add_restriction, create_customer
from telephony import jobs
from telephony.database import database
from telephony.redis_store import queue, queues
from telephony.worker import BurstWorker, take_calls
from tests.fake_twilio import FakeTwilio

CALLS = int(os.environ.get("BENCH_CALLS", "1000"))
CUSTOMERS = 200
SEED = int(os.environ.get("BENCH_SEED", "7"))
START = datetime(2026, 6, 2, 9, 0, tzinfo=UTC)  # a Tuesday, 10:00 BST


@dataclass
class Plan:
    sid: str
    caller: str
    fate: str  # answered, no-answer, hangs-up, worker-lost, message
    seconds: int
    events: list[tuple[str, dict[str, str]]] = field(default_factory=list)


def signed(client: Any, path: str, params: dict[str, str]) -> Any:
    signature = RequestValidator(TOKEN).compute_signature(BASE + path, params)
    return client.post(path, data=params, headers={"X-Twilio-Signature": signature})


def fake_twilio() -> Iterator[FakeTwilio]:
    fake = FakeTwilio()
    server = make_server("127.0.0.1", 0, fake.wsgi, threaded=True)
    fake.url = f"http://127.0.0.1:{server.server_port}"
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield fake
    server.shutdown()


def seed(app: Any) -> None:
    kinds = [None, None, None, "warning", "spoc", "written_only"]
    with app.app_context(), database(app).sessions() as sess:
        for i in range(CUSTOMERS):
            c = create_customer(
                sess,
                Actor(None, "bench"),
                reference=f"F-{i}",
                name=f"P {i}",
                phone_numbers=[f"+4474003{i:05d}"],
            )
            kind = kinds[i % len(kinds)]
            if kind:
                body = {"kind": kind, "reason": "r", "spoc": "+441332000555"}
                add_restriction(sess, Actor(None, "bench"), c, body)
        sess.commit()


def run_jobs(app: Any) -> None:
    with app.app_context():
        both = queues(app)
        take_calls(app, both[0].connection, burst=True)
        BurstWorker(both, connection=both[0].connection).work(burst=True, logging_level="WARNING")


def main() -> None:
    rng = random.Random(SEED)
    fresh_database()
    fakes = fake_twilio()
    fake = next(fakes)
    app = app_for(TWILIO_API_BASE_URL=fake.url, TWILIO_REST_TIMEOUT_SECONDS=2)
    app.extensions["callguard.redis"].flushdb()
    seed(app)
    client = app.test_client()
    plans: list[Plan] = []
    for n in range(CALLS):
        i = rng.randrange(CUSTOMERS + 50)  # some callers are not customers
        caller = f"+4474003{i:05d}" if i < CUSTOMERS else f"+4479003{i:05d}"
        fate = rng.choices(["answered", "no-answer", "hangs-up", "worker-lost"], [70, 10, 10, 10])[
            0
        ]
        plans.append(Plan(f"CA{n:032x}", caller, fate, rng.randrange(5, 900)))

    started = time.perf_counter()
    moved_or_gone: set[str] = set()
    answered: set[str] = set()
    conference_calls: set[str] = set()
    with time_machine.travel(START, tick=True) as clock:
        for plan in plans:
            params = {
                "AccountSid": "AC" + "0" * 32,
                "CallSid": plan.sid,
                "From": plan.caller,
                "To": "+441332000000",
                "CallStatus": "ringing",
                "Direction": "inbound",
            }
            xml = signed(client, "/twilio/voice/incoming", params).get_data(as_text=True)
            if "<Conference" not in xml:
                plan.fate = "message"
            else:
                conference_calls.add(plan.sid)
            if plan.fate == "worker-lost":
                with app.app_context():  # the worker died with the call
                    redis = queue(app).connection
                    ((newest, _),) = cast(
                        list[tuple[bytes, Any]], redis.xrevrange(jobs.CALLS, count=1)
                    )
                    redis.xdel(jobs.CALLS, newest)
            else:
                run_jobs(app)
            name = f"cg-{plan.sid}"
            conference = {"FriendlyName": name, "ConferenceSid": "CF" + plan.sid[2:]}
            agent = "CB" + plan.sid[2:]
            if plan.fate == "answered":
                joins = [plan.sid, agent]
                rng.shuffle(joins)  # Twilio takes the callback from whoever joins first
                for seq, who in enumerate(joins, start=1):
                    event = {**conference, "StatusCallbackEvent": "participant-join"}
                    signed(
                        client,
                        "/twilio/conference/events",
                        {**event, "CallSid": who, "SequenceNumber": str(seq)},
                    )
                answered.add(plan.sid)
            elif plan.fate == "no-answer":
                path = f"/twilio/voice/participant?call_sid={plan.sid}&kind=agent"
                signed(client, path, {"CallSid": agent, "CallStatus": "no-answer"})
                run_jobs(app)
            elif plan.fate == "worker-lost":
                wait = xml.split('waitUrl="')[1].split('"')[0].replace("&amp;", "&")
                clock.shift(timedelta(seconds=50))  # past the ring time and the grace
                signed(client, wait.removeprefix(BASE), {"CallSid": plan.sid})
            if plan.fate in ("hangs-up",):
                moved_or_gone.add(plan.sid)
            statuses: list[tuple[str, int, dict[str, str]]] = [
                ("ringing", 1, {}),
                ("in-progress", 2, {}),
            ]
            seconds = plan.seconds if plan.fate != "message" else rng.randrange(20, 60)
            plan.seconds = seconds
            statuses.append(("completed", 3, {"CallDuration": str(seconds)}))
            if rng.random() < 0.3:
                statuses.append(("completed", 3, {"CallDuration": str(seconds)}))  # a retry
            for status, seq, extra in statuses:
                plan.events.append(
                    (status, {**params, "CallStatus": status, "SequenceNumber": str(seq), **extra})
                )
            clock.shift(timedelta(seconds=rng.randrange(1, 30)))
        updated = {r.path.rsplit("/", 1)[-1].removesuffix(".json") for r in fake.posts("/Calls/")}
        moved_or_gone |= updated
        # status callbacks arrive late, shuffled across calls
        events = [e for plan in plans for e in plan.events]
        rng.shuffle(events)
        for _, form in events:
            signed(client, "/twilio/voice/status", form)
        run_jobs(app)
    elapsed = time.perf_counter() - started

    alone = sorted(conference_calls - answered - moved_or_gone)
    redis = app.extensions["callguard.redis"]
    counted_calls: set[str] = set()
    counted_seconds = 0
    for key in redis.scan_iter(match=counting.TALK + "*"):
        for sid, seconds in redis.hgetall(key).items():
            counted_calls.add(sid.decode())
            counted_seconds += int(seconds)
    expected = {p.sid for p in plans}
    sent_seconds = sum(p.seconds for p in plans)
    dialled = [r.path.split("/Conferences/")[1].split("/")[0] for r in fake.posts("/Participants")]
    dials = len(dialled)
    duplicates = dials - len(set(dialled))
    print(f"calls simulated:        {CALLS} in {elapsed:.1f} s ({CALLS / elapsed:.0f} calls/s)")
    print(
        f"callers left alone:     {len(alone)} (must be 0){' ' + str(alone[:5]) if alone else ''}"
    )
    print(f"contacts counted:       {len(counted_calls)} of {len(expected)} expected")
    print(f"talk time counted:      {counted_seconds} s of {sent_seconds} s sent")
    print(f"dial-outs:              {dials} for {len(conference_calls)} calls put through")
    print(f"duplicate dial-outs:    {duplicates} (must be 0)")
    ok = (
        not alone
        and counted_calls == expected
        and counted_seconds == sent_seconds
        and duplicates == 0
    )
    print("result:                 " + ("OK" if ok else "MISMATCH"))
    next(fakes, None)
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
