"""Webhook throughput: callguard's inbound and status-callback webhooks beside a bare endpoint.

Both run under the Procfile's ``web`` command (same gunicorn worker class, workers, threads and
keep-alive); the baseline is ``bench.bare``, a Flask app that answers fixed TwiML and checks
nothing, and beside it ``bench.bare:floor``, the least a correct answer must do (the signature
check, then one Redis GET or one PostgreSQL INSERT). wrk (Debian's package) loads each on
loopback with 20 connections for BENCH_SECONDS (default 10) with signed requests, a new CallSid
each. Then a fixed 200 requests/s, open loop,
gives callguard's p50/p99 at that rate.

Per size of customer base (BENCH_CUSTOMERS, default ``1000,100000,1000000``; imported with the
``import customers`` command into callguard_bench_webhooks on the benchmarks' own PostgreSQL
and Redis, bench/servers.py) it prints:

- inbound, unknown caller: req/s, p50, p99, and the ratio to the bare endpoint;
- inbound, a caller who may only write (a restriction in force): the same;
- status callbacks (``completed`` events of the calls just placed): the same;
- inbound with a ``taskrouter:`` default route (the same unknown callers queued as tasks);
- for each, the floor's req/s and its own ratio to the bare endpoint.

Needs PostgreSQL, Redis and wrk on localhost (``make bench``).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import requests
from redis import Redis
from twilio.request_validator import RequestValidator

from bench import servers
from bench.drills import procfile, start
from bench.inbound import fresh_database
from restrictions.lifecycle import Actor, add_restriction
from restrictions.models import Customer
from telephony.cli import main as cli
from telephony.database import database

ROOT = Path(__file__).resolve().parent.parent
DB = servers.database_url("callguard_bench_webhooks")
REDIS = servers.redis_url()
SIZES = [int(s) for s in os.environ.get("BENCH_CUSTOMERS", "1000,100000,1000000").split(",")]
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
CONNECTIONS = 20
FIXED_RATE = 200
TOKEN = "bench-webhooks-token"
BASE = "https://calls.example.org"
ACCOUNT = "AC" + "0" * 32
LANDLORD = "+441332000000"
WRITERS = 100  # customers with a writing-only restriction in force
WORKFLOW = "WW" + "0" * 32  # a TaskRouter Workflow, for the taskrouter: route
REQUESTS = 60_000  # distinct signed requests per scenario (more than wrk sends in the time)


def number(i: int) -> str:
    return f"+4474{i:08d}"


# --- the customer base -------------------------------------------------------------------------


def seed(size: int, env: dict[str, str], tmp: Path) -> None:
    """``size`` customers through the import command; the first WRITERS may only write."""
    from telephony import create_app

    csv = tmp / f"customers-{size}.csv"
    with csv.open("w", encoding="utf-8") as out:
        out.write("reference,name,phone_numbers,language\n")
        for i in range(size):
            out.write(f"B-{i},Customer {i},{number(i)},en-GB\n")
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "bench",
            "DATABASE_URL": DB,
            "REDIS_URL": env["REDIS_URL"],
            "PUBLIC_BASE_URL": BASE,
        }
    )
    with app.app_context():
        result = app.test_cli_runner().invoke(cli, ["import", "customers", str(csv)])
        assert result.exit_code == 0, result.output
        today = datetime.now(UTC).date().isoformat()
        with database(app).sessions() as sess:
            for i in range(min(WRITERS, size)):
                customer = sess.query(Customer).filter_by(reference=f"B-{i}").one()
                add_restriction(
                    sess,
                    Actor(None, "bench"),
                    customer,
                    {"kind": "written_only", "reason": "bench", "notice_sent_on": today},
                )
            sess.commit()
    database(app).dispose()
    csv.unlink()


# --- the servers -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def served(app_spec: str, env: dict[str, str], log: Path) -> Iterator[str]:
    """The Procfile's web command, serving ``app_spec`` on a free port."""
    port = free_port()
    web = os.environ.get("BENCH_WEB", procfile()["web"]).replace("$PORT", str(port))
    web = re.sub(r'"telephony:create_app\(\)"', f'"{app_spec}"', web)
    process = start(web, env, log)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if requests.get(url + "/healthz", timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.05)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


# --- the requests --------------------------------------------------------------------------------


def signed(path: str, params: dict[str, str]) -> tuple[str, str]:
    return urlencode(params), RequestValidator(TOKEN).compute_signature(BASE + path, params)


def webhook_requests(
    path: str, callers: list[str], tag: int, fields: Callable[[int, str], dict[str, str]]
) -> list[tuple[str, str, str]]:
    """REQUESTS signed requests to ``path``, each with a new CallSid, callers in turn."""
    out = []
    for n in range(REQUESTS):
        caller = callers[n % len(callers)]
        params = {
            "AccountSid": ACCOUNT,
            "ApiVersion": "2010-04-01",
            "CallSid": f"CA{tag:04x}{n:028x}",
            "Direction": "inbound",
            "From": caller,
            "To": LANDLORD,
            **fields(n, caller),
        }
        out.append((path, *signed(path, params)))
    return out


def inbound_requests(callers: list[str], tag: int) -> list[tuple[str, str, str]]:
    return webhook_requests(
        "/twilio/voice/incoming",
        callers,
        tag,
        lambda n, caller: {"CallStatus": "ringing", "Caller": caller, "Called": LANDLORD},
    )


def status_requests(callers: list[str], tag: int) -> list[tuple[str, str, str]]:
    return webhook_requests(
        "/twilio/voice/status",
        callers,
        tag,
        lambda n, caller: {
            "CallStatus": "completed",
            "CallDuration": str(30 + n % 300),
            "SequenceNumber": "0",
            "Timestamp": "Thu, 26 Nov 2026 10:00:00 +0000",
        },
    )


def lua(requests_: list[tuple[str, str, str]], folder: Path) -> Path:
    """A wrk script that sends each request once, in turn."""
    lines = ["local r = {"]
    for path, body, signature in requests_:
        lines.append(f'{{"{path}", "{body}", "{signature}"}},')
    lines.append("}")
    lines.append(
        """
local i = 0
request = function()
  i = i + 1
  local one = r[((i - 1) % #r) + 1]
  return wrk.format("POST", one[1], {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["X-Twilio-Signature"] = one[3],
    ["X-Forwarded-Proto"] = "https",
  }, one[2])
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""
    )
    script = folder / f"requests-{id(requests_)}.lua"
    script.write_text("\n".join(lines), encoding="utf-8")
    return script


def wrk(url: str, script: Path, seconds: int = SECONDS) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t", "2", "-c", str(CONNECTIONS), "-d", f"{seconds}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)", out)
    assert found, out
    sent, micros, p50, p99, bad_status, socket_errors = (int(g) for g in found.groups())
    return {
        "rps": sent / (micros / 1e6),
        "p50": p50 / 1000,
        "p99": p99 / 1000,
        "errors": bad_status + socket_errors,
    }


def fixed_rate(url: str, requests_: list[tuple[str, str, str]], rate: int) -> dict[str, float]:
    """Open loop: ``rate`` requests a second for SECONDS, each on schedule whatever came back."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    local = threading.local()
    start_at = time.perf_counter() + 0.2
    total = rate * SECONDS

    def one(n: int) -> None:
        path, body, signature = requests_[n]
        if not hasattr(local, "s"):
            local.s = requests.Session()
        delay = start_at + n / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        began = time.perf_counter()
        try:
            answer = local.s.post(
                url + path,
                data=body,
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Twilio-Signature": signature,
                    "X-Forwarded-Proto": "https",
                },
                timeout=5,
            )
            ok = answer.status_code == 200
        except requests.RequestException:
            ok = False
        with lock:
            latencies.append((time.perf_counter() - began) * 1000)
            errors[0] += not ok

    def share(first: int, step: int) -> None:
        for n in range(first, total, step):
            one(n)

    threads = 16
    workers = [threading.Thread(target=share, args=(k, threads)) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    latencies.sort()
    return {
        "p50": latencies[len(latencies) // 2],
        "p99": latencies[int(len(latencies) * 0.99) - 1],
        "errors": errors[0],
    }


def row(name: str, ours: dict[str, float], floor: dict[str, float], bare: dict[str, float]) -> str:
    return (
        f"  {name:<31} {ours['rps']:>6,.0f} req/s  p50 {ours['p50']:5.1f} ms  "
        f"p99 {ours['p99']:5.1f} ms  errors {ours['errors']:.0f}  "
        f"floor {floor['rps']:>6,.0f} ({floor['rps'] / bare['rps']:.2f}x)  "
        f"bare {bare['rps']:>6,.0f}  ratio {ours['rps'] / bare['rps']:.2f}x"
    )


def main() -> None:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")
    redis = Redis.from_url(REDIS)
    config = Path(tempfile.mkstemp(suffix=".toml")[1])
    config.write_text('[routes]\ndefault = "dial:+441332000100"\n', encoding="utf-8")
    env = {
        **os.environ,
        "DATABASE_URL": DB,
        "REDIS_URL": REDIS,
        "PUBLIC_BASE_URL": BASE,
        "TWILIO_ACCOUNT_SID": ACCOUNT,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_API_BASE_URL": "http://127.0.0.1:9",
        "SECRET_KEY": "bench",
        "CALLGUARD_CONFIG": str(config),
    }
    log = Path(tempfile.gettempdir()) / "callguard-bench-webhooks.log"
    log.write_text("", encoding="utf-8")
    web = os.environ.get("BENCH_WEB", procfile()["web"])
    print(f"web: {web}\nwrk: {CONNECTIONS} connections, {SECONDS} s per run")
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        for size in SIZES:
            servers.empty_redis(redis)
            fresh_database(DB)
            began = time.perf_counter()
            seed(size, env, tmp)
            print(f"\n{size:,} customers (imported in {time.perf_counter() - began:.0f} s)")
            unknown = [f"+4479{i:08d}" for i in range(200)]  # cached after their first call
            writers = [number(i) for i in range(min(WRITERS, size))]
            scenarios = {
                "inbound, unknown caller": inbound_requests(unknown, 1),
                "inbound, writing-only customer": inbound_requests(writers, 2),
                "status callback (completed)": status_requests(unknown, 1),
            }
            only = os.environ.get("BENCH_ONLY", "")  # e.g. "status": the scenarios named so
            scripts = {name: lua(reqs, tmp) for name, reqs in scenarios.items() if only in name}
            warm_up = lua(inbound_requests(unknown + writers, 9), tmp)
            with served("bench.bare:app", env, log) as bare_url:
                wrk(bare_url, warm_up, 2)
                bare = {name: wrk(bare_url, script) for name, script in scripts.items()}
            with served("bench.bare:floor", env, log) as floor_url:
                wrk(floor_url, warm_up, 2)
                floor = {name: wrk(floor_url, script) for name, script in scripts.items()}
            with served("telephony:create_app()", env, log) as url:
                wrk(url, warm_up, 2)  # the workers' pools and the routing cache filled
                for name, script in scripts.items():
                    print(row(name, wrk(url, script), floor[name], bare[name]), flush=True)
                paced = inbound_requests(unknown, 3)
                steady = fixed_rate(url, paced, FIXED_RATE)
                print(
                    f"  inbound at a steady {FIXED_RATE} req/s:     p50 {steady['p50']:6.1f} ms  "
                    f"p99 {steady['p99']:6.1f} ms  errors {steady['errors']:.0f}",
                    flush=True,
                )
            # the same callers with a taskrouter: default route: the decision rendered per call
            # as an <Enqueue workflowSid> with the task's attributes
            name = "inbound, unknown caller"
            if name in scripts:
                routed = tmp / "taskrouter.toml"
                routed.write_text(f'[routes]\ndefault = "taskrouter:{WORKFLOW}"\n', "utf-8")
                with served(
                    "telephony:create_app()", {**env, "CALLGUARD_CONFIG": str(routed)}, log
                ) as url:
                    wrk(url, warm_up, 2)
                    enqueued = inbound_requests(unknown, 4)
                    print(
                        row(
                            "inbound, taskrouter: route",
                            wrk(url, lua(enqueued, tmp)),
                            floor[name],
                            bare[name],
                        ),
                        flush=True,
                    )
            servers.empty_redis(redis)


if __name__ == "__main__":
    main()
