"""Fault drills: the Procfile's processes on real PostgreSQL and Redis, behind TCP proxies this
script controls, under a steady load of inbound calls with their callbacks.

Phases: a steady baseline; Redis killed and restarted empty; PostgreSQL refusing connections;
PostgreSQL hung (connections accepted, never answered); PostgreSQL back; the worker killed with
``kill -9`` and restarted; then recovery (load stops, the worker's sweeps catch up).

Per phase it prints the inbound webhooks answered with valid TwiML within 1 s (must be 100%),
their p50/p99, and at the end, after recovery: callbacks sent/stored/counted (must be equal),
alerts expected/opened/duplicated (equal/equal/0), callers left waiting with nobody dialled
(must be 0) and duplicate dial-outs (must be 0). Twilio's REST API is the fake one the tests use,
on loopback; so is everything else. Run with ``make drills`` (about three minutes).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import requests
from redis import Redis
from sqlalchemy import create_engine, make_url, select
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator
from werkzeug.serving import make_server

from bench.inbound import fresh_database
from restrictions import alerts, counting
from restrictions.models import Call, CallEvent, ContactAlert
from restrictions.settings import ContactRule
from tests.fake_twilio import FakeTwilio

ROOT = Path(__file__).resolve().parent.parent
DB = os.environ.get(
    "CALLGUARD_DRILLS_DATABASE_URL",
    "postgresql+psycopg://postgres@127.0.0.1:5432/callguard_drills",
)
REDIS_DB = int(os.environ.get("CALLGUARD_DRILLS_REDIS_DB", "9"))
RATE = float(os.environ.get("DRILLS_CALLS_PER_SECOND", "20"))
PHASE_SECONDS = float(os.environ.get("DRILLS_PHASE_SECONDS", "12"))
TOKEN = "drills-auth-token"
BASE = "https://calls.example.org"
RING, GRACE, TALK = 5, 2, 12  # seconds: agents ring 5 s; callers stay on the line 12 s
PHASES = (
    "baseline",
    "redis killed, empty",
    "redis back",
    "postgresql refusing",
    "postgresql hung",
    "postgresql back",
    "worker kill -9",
)
RULES = (ContactRule("calls-per-hour", window_minutes=60, max_calls=5),)
CONFIG = f"""
[routes]
agent_ring_seconds = {RING}
spoc_ring_seconds = {RING}
hold_grace_seconds = {GRACE}
[[contact_rules]]
name = "calls-per-hour"
window_minutes = 60
max_calls = 5
"""


# --- a TCP proxy this script controls --------------------------------------------------------


class Proxy:
    """Forwards a local port to a server; can refuse connections or hang them instead."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.mode = "forward"
        self.loop = asyncio.new_event_loop()
        self.writers: set[asyncio.StreamWriter] = set()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        threading.Thread(target=self._run, daemon=True).start()
        time.sleep(0.2)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = asyncio.start_server(self._client, "127.0.0.1", self.port)
        self.loop.run_until_complete(server)
        self.loop.run_forever()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "refuse":
            writer.close()
            return
        self.writers.add(writer)
        if self.mode == "hang":
            return  # accepted, never answered
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self.writers.add(up_writer)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    if self.mode != "forward":
                        break
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def set(self, mode: str) -> None:
        """``forward``, ``refuse`` (new connections closed at once) or ``hang``; open
        connections are cut, as when the server dies."""

        def apply() -> None:
            self.mode = mode
            if mode != "forward":
                for w in list(self.writers):
                    w.close()
                self.writers.clear()

        self.loop.call_soon_threadsafe(apply)
        time.sleep(0.1)


# --- the Procfile's processes ----------------------------------------------------------------


def procfile() -> dict[str, str]:
    processes = {}
    for line in (ROOT / "Procfile").read_text(encoding="utf-8").splitlines():
        name, sep, command = line.partition(":")
        if sep and command.strip():
            processes[name.strip()] = command.strip()
    return processes


def start(command: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    bin_dir = Path(sys.executable).parent
    argv = shlex.split(command)
    argv[0] = str(bin_dir / argv[0]) if (bin_dir / argv[0]).exists() else argv[0]
    return subprocess.Popen(
        argv, env=env, cwd=ROOT, stdout=log.open("ab"), stderr=subprocess.STDOUT
    )


# --- the load ----------------------------------------------------------------------------------


@dataclass
class Placed:
    sid: str
    number: str
    phase: str
    started: float
    latency: float
    valid: bool
    conference: bool
    hold_url: str | None
    seconds: int


@dataclass
class Drill:
    web: str
    fake: FakeTwilio
    phase: str = "baseline"
    placed: list[Placed] = field(default_factory=list)
    completed_sent: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(48))
    rng: random.Random = field(default_factory=lambda: random.Random(11))
    session: threading.local = field(default_factory=threading.local)

    def post(self, path: str, params: dict[str, str], timeout: float = 5.0) -> Any:
        if not hasattr(self.session, "http"):
            self.session.http = requests.Session()
        signature = RequestValidator(TOKEN).compute_signature(BASE + path, params)
        return self.session.http.post(
            self.web + path,
            data=params,
            headers={"X-Twilio-Signature": signature},
            timeout=timeout,
        )

    def call(self, n: int) -> None:
        sid = f"CA{n:032x}"
        number = f"+4479009{self.rng.randrange(300):05d}"
        params = {
            "AccountSid": "AC" + "0" * 32,
            "CallSid": sid,
            "From": number,
            "To": "+441332000000",
            "CallStatus": "ringing",
            "Direction": "inbound",
        }
        began, sent_at = time.monotonic(), time.time()
        try:
            response = self.post("/twilio/voice/incoming", params, timeout=5)
            latency = time.monotonic() - began
            root = ElementTree.fromstring(response.content)
            valid = response.status_code == 200 and root.tag == "Response" and len(root) > 0
        except Exception:
            latency, valid, root = time.monotonic() - began, False, ElementTree.Element("x")
        conference = root.find("./Dial/Conference")
        hold = conference.get("waitUrl") if conference is not None else None
        placed = Placed(
            sid,
            number,
            self.phase,
            sent_at,
            latency,
            valid,
            conference is not None,
            hold,
            self.rng.randrange(20, 400),
        )
        with self.lock:
            self.placed.append(placed)
        for delay, status, seq in ((0.3, "ringing", 1), (1.0, "in-progress", 2)):
            threading.Timer(delay, self.status, (placed, status, seq)).start()
        if hold:
            threading.Timer(RING + GRACE + 1, self.heartbeat, (placed,)).start()
        threading.Timer(TALK, self.status, (placed, "completed", 3)).start()

    def status(self, placed: Placed, status: str, seq: int) -> None:
        params = {
            "AccountSid": "AC" + "0" * 32,
            "CallSid": placed.sid,
            "CallStatus": status,
            "Direction": "inbound",
            "From": placed.number,
            "To": "+441332000000",
            "SequenceNumber": str(seq),
        }
        if status == "completed":
            params["CallDuration"] = str(placed.seconds)
            with self.lock:
                self.completed_sent.add(placed.sid)
        for attempt in range(4):  # Twilio's connection overrides: retried on 5xx or timeout
            try:
                if self.post("/twilio/voice/status", params, timeout=5).status_code < 500:
                    return
            except requests.RequestException:
                pass
            time.sleep(2 * (attempt + 1))

    def heartbeat(self, placed: Placed) -> None:
        """Twilio fetches the waitUrl again each time its TwiML ends, for as long as the caller
        waits: here from the deadline on, every 3 s, until someone is rung or the caller is
        moved on or hangs up."""
        if placed.hold_url is None or self.dialled(placed.sid) or self.moved(placed.sid):
            return
        if time.time() - placed.started > TALK:
            return  # the caller has hung up
        try:
            self.post(placed.hold_url.removeprefix(BASE), {"CallSid": placed.sid}, timeout=5)
        except requests.RequestException:
            pass
        threading.Timer(3, self.heartbeat, (placed,)).start()

    def dialled(self, sid: str) -> bool:
        return any(f"cg-{sid}/" in r.path for r in self.fake.posts("/Participants"))

    def moved(self, sid: str) -> bool:
        return bool(self.fake.posts(f"/Calls/{sid}.json"))

    def load(self, seconds: float, start_n: int) -> int:
        n = start_n
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.pool.submit(self.call, n)
            n += 1
            time.sleep(1 / RATE)
        return n


def report_phase(drill: Drill, phase: str) -> None:
    with drill.lock:
        placed = [p for p in drill.placed if p.phase == phase]
    if not placed:
        return
    within = [p for p in placed if p.valid and p.latency < 1.0]
    ms = sorted(p.latency * 1000 for p in placed)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    print(
        f"{phase:<22} calls {len(placed):>4}  answered with TwiML within 1 s "
        f"{100 * len(within) / len(placed):6.2f}%  p50 {statistics.median(ms):7.1f} ms  "
        f"p99 {p99:7.1f} ms"
    )


def dial_out_delays(drill: Drill) -> None:
    """Per phase: from the inbound webhook to the dial-out request Twilio received, for the
    callers put on hold for a person."""
    first_dial: dict[str, float] = {}
    for request in drill.fake.posts("/Participants"):
        sid = request.path.split("/Conferences/cg-", 1)[-1].split("/", 1)[0]
        first_dial.setdefault(sid, request.at)
    for phase in PHASES:
        waiting = [p for p in drill.placed if p.phase == phase and p.conference]
        delays = sorted(first_dial[p.sid] - p.started for p in waiting if p.sid in first_dial)
        if not delays:
            continue
        p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
        print(
            f"dial-out after the webhook, {phase:<20} p50 {statistics.median(delays):6.2f} s  "
            f"p99 {p99:6.2f} s  max {delays[-1]:6.2f} s  ({len(delays)} of {len(waiting)} dialled)"
        )


def final_report(drill: Drill, engine: Any) -> bool:
    with Session(engine) as sess:
        stored = set(
            sess.scalars(
                select(CallEvent.call_sid).where(
                    CallEvent.source == "status", CallEvent.event == "completed"
                )
            )
        )
        counted_rows = list(
            sess.execute(
                select(Call.call_sid, Call.from_e164, Call.started_at).where(
                    Call.counted_at.is_not(None)
                )
            )
        )
        counted = {sid for sid, _, _ in counted_rows}
        open_alerts = list(
            sess.execute(
                select(ContactAlert.subject, ContactAlert.rule_name).where(
                    ContactAlert.status == "open"
                )
            )
        )
    by_subject: dict[str, list[counting.CountedCall]] = defaultdict(list)
    for sid, e164, started in counted_rows:
        by_subject[f"number:{e164}"].append(counting.CountedCall(sid, started.timestamp(), 0))
    expected = {
        (subject, rule.name)
        for subject, calls in by_subject.items()
        for rule in RULES
        if alerts.tripping_window(rule, calls, [c.at for c in calls]) is not None
    }
    opened = {(s, r) for s, r in open_alerts}
    duplicated = len(open_alerts) - len(opened)
    conference_calls = [p for p in drill.placed if p.conference]
    left_waiting = [
        p for p in conference_calls if not drill.dialled(p.sid) and not drill.moved(p.sid)
    ]
    dials: dict[str, int] = defaultdict(int)
    for r in drill.fake.posts("/Participants"):
        dials[r.path.split("/Conferences/")[1].split("/")[0]] += 1
    duplicate_dials = sum(count - 1 for count in dials.values() if count > 1)
    sent = drill.completed_sent
    print(
        f"callbacks sent/stored/counted   {len(sent)} / {len(stored & sent)} / "
        f"{len(counted & sent)}"
    )
    print(
        f"alerts expected/opened/duplicated  {len(expected)} / {len(opened & expected)} "
        f"(+{len(opened - expected)} unexpected) / {duplicated}"
    )
    phases = sorted({p.phase for p in left_waiting})
    print(
        f"callers left waiting with nobody dialled  {len(left_waiting)}"
        + (f" (in: {', '.join(phases)})" if phases else "")
    )
    print(f"duplicate dial-outs             {duplicate_dials}")
    return (
        len(sent) == len(stored & sent) == len(counted & sent)
        and expected == opened
        and duplicated == 0
        and not left_waiting
        and duplicate_dials == 0
    )


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    fresh_database(DB)
    real_redis = Redis(port=6379, db=REDIS_DB)
    real_redis.flushdb()
    pg = Proxy(make_url(DB).port or 5432)
    rds = Proxy(6379)
    fake = FakeTwilio()
    server = make_server("127.0.0.1", 0, fake.wsgi, threaded=True)
    fake.url = f"http://127.0.0.1:{server.server_port}"
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    config = Path(tempfile.mkstemp(suffix=".toml")[1])
    config.write_text(CONFIG, encoding="utf-8")
    proxied = make_url(DB).set(port=pg.port).render_as_string(hide_password=False)
    env = {
        **os.environ,
        "PORT": str(port),
        "DATABASE_URL": proxied,
        "REDIS_URL": f"redis://127.0.0.1:{rds.port}/{REDIS_DB}",
        "PUBLIC_BASE_URL": BASE,
        "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_API_BASE_URL": fake.url,
        "SECRET_KEY": "drills",
        "CALLGUARD_CONFIG": str(config),
    }
    processes = procfile()
    log = Path(tempfile.gettempdir()) / "callguard-drills.log"
    log.write_text("", encoding="utf-8")
    web = start(processes["web"].replace("$PORT", str(port)), env, log)
    worker = start(processes["worker"], env, log)
    dialler = start(processes["dialler"], env, log) if "dialler" in processes else None
    drill = Drill(web=f"http://127.0.0.1:{port}", fake=fake)
    for _ in range(100):
        try:
            if requests.get(drill.web + "/healthz", timeout=1).ok:
                break
        except requests.RequestException:
            time.sleep(0.1)
    print(f"web: {processes['web']}\nworker: {processes['worker']}\nload: {RATE:.0f} calls/s")
    engine = create_engine(DB)
    n = 0
    try:
        for phase in PHASES:
            drill.phase = phase
            if phase == "redis killed, empty":
                rds.set("refuse")
                real_redis.flushdb()
            elif phase == "redis back":
                rds.set("forward")
            elif phase == "postgresql refusing":
                pg.set("refuse")
            elif phase == "postgresql hung":
                pg.set("hang")
            elif phase == "postgresql back":
                pg.set("forward")
            if phase == "worker kill -9":
                worker.send_signal(signal.SIGKILL)
                n = drill.load(3, n)
                worker = start(processes["worker"], env, log)
                n = drill.load(PHASE_SECONDS - 3, n)
            else:
                n = drill.load(PHASE_SECONDS, n)
            report_phase(drill, phase)
        drill.phase = "recovery"
        time.sleep(TALK + RING + GRACE + 5)  # the last calls end; their callbacks arrive
        drill.pool.shutdown(wait=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # the worker's sweeps catch up
            time.sleep(5)
            with Session(engine) as sess:
                pending = sess.scalar(
                    select(CallEvent.id).where(CallEvent.processed_at.is_(None)).limit(1)
                )
            if pending is None and real_redis.xlen("cg:events:buffered") == 0:
                break
        time.sleep(5)
        dial_out_delays(drill)
        ok = final_report(drill, engine)
    finally:
        for process in (web, worker, dialler):
            if process is not None:
                process.send_signal(signal.SIGTERM)
        for process in (web, worker, dialler):
            if process is not None:
                process.wait(20)
        server.shutdown()
        engine.dispose()
    print("result: " + ("OK" if ok else f"MISMATCH (processes' log: {log})"))
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
