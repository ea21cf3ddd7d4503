"""Fault drills: the Procfile's processes on real PostgreSQL and Redis, behind TCP proxies this
script controls, under a steady load of inbound calls with their callbacks.

Phases: a steady baseline; Redis killed and restarted empty; PostgreSQL refusing connections;
PostgreSQL hung (connections accepted, never answered; open ones cut); PostgreSQL back;
PostgreSQL stalled for ``DRILLS_STALL_SECONDS`` (30 s: open connections kept, new ones accepted,
every byte held until it comes back) and back again; the worker killed with ``kill -9`` and
restarted; then recovery (load stops, the worker's sweeps catch up).

The people rung answer as Twilio's would: a dial-out is a call created with a whisper URL
(``POST …/Calls.json``); two seconds later the person hears the whisper, presses 1, and joins
the caller's conference (the caller joined it a second after the call began; both joins are
sent as conference events, and only then is the call answered).

Per phase it prints the inbound webhooks answered with valid TwiML within 1 s (must be 100%),
their p50/p99, and at the end, after recovery: callbacks sent/stored/counted (must be equal),
alerts expected/opened/duplicated (equal/equal/0), callers left waiting with nobody dialled
(must be 0), duplicate dial-outs (must be 0) and calls whose route was never recorded (a row in
``calls`` with a route for every inbound call placed, whatever the phase: must be 0). Twilio's
REST API is the fake one the tests use, on loopback; so is everything else. Run with
``make drills`` (about four minutes).
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
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
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
from tests.fake_twilio import FakeTwilio, TwilioRequest

ROOT = Path(__file__).resolve().parent.parent
DB = os.environ.get(
    "CALLGUARD_DRILLS_DATABASE_URL",
    "postgresql+psycopg://postgres@127.0.0.1:5432/callguard_drills",
)
REDIS_DB = int(os.environ.get("CALLGUARD_DRILLS_REDIS_DB", "9"))
RATE = float(os.environ.get("DRILLS_CALLS_PER_SECOND", "20"))
PHASE_SECONDS = float(os.environ.get("DRILLS_PHASE_SECONDS", "12"))
STALL_SECONDS = float(os.environ.get("DRILLS_STALL_SECONDS", "30"))
TOKEN = "drills-auth-token"
BASE = "https://calls.example.org"
RING, GRACE, TALK = 5, 2, 12  # seconds: agents ring 5 s; callers stay on the line 12 s
ANSWER_AFTER, PRESS_AFTER = 2.0, 1.0  # the person rung answers after 2 s, presses 1 a second on
STALLED = f"postgresql stalled {STALL_SECONDS:.0f} s"
PHASES = (
    "baseline",
    "redis killed, empty",
    "redis back",
    "postgresql refusing",
    "postgresql hung",
    "postgresql back",
    STALLED,
    "postgresql back again",
    "worker kill -9",
)
WIDTH = max(len(phase) for phase in PHASES)
ROUTES_WAIT_SECONDS = 90  # at most, after recovery, for the worker to record every call's route
ROUTES_SETTLED_SECONDS = 25  # the count unchanged this long (RECLAIM_MS is 10 s): it is final
SENTINEL = "cg:drills:sentinel"  # gone when something else empties the drills' Redis db
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
    """Forwards a local port to a server; can refuse connections, hang them, or stall."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.mode = "forward"
        self.loop = asyncio.new_event_loop()
        self.flowing = asyncio.Event()  # cleared while stalled: every byte is held
        self.flowing.set()
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
        if not self.flowing.is_set():  # stalled: accepted, answered only once it flows again
            await self.flowing.wait()
            if self.mode != "forward":
                writer.close()
                return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self.writers.add(up_writer)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    await self.flowing.wait()  # stalled: held, then passed on when it flows
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
        """``forward``; ``refuse`` (new connections closed at once) or ``hang`` (accepted, never
        answered), where open connections are cut, as when the server dies; or ``stall``: open
        connections stay open and new ones are accepted, but nothing is answered (every byte
        either way is held) until ``forward``, as when the server freezes."""

        def apply() -> None:
            self.mode = mode
            if mode == "stall":
                self.flowing.clear()
                return
            self.flowing.set()
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
    answered: set[str] = field(default_factory=set)  # callers a person pressed 1 for
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
        if conference is not None:  # after the greeting the caller is in their conference
            threading.Timer(1.0, self.conference_event, (sid, sid, 1)).start()
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
        self.deliver("/twilio/voice/status", params)

    def deliver(self, path: str, params: dict[str, str]) -> None:
        """A callback as Twilio sends it with connection overrides: retried on 5xx or timeout."""
        for attempt in range(4):
            try:
                if self.post(path, params, timeout=5).status_code < 500:
                    return
            except requests.RequestException:
                pass
            time.sleep(2 * (attempt + 1))

    def conference_event(self, caller: str, participant: str, seq: int) -> None:
        """Twilio's ``participant-join`` for the caller's conference (``cg-<caller>``)."""
        params = {
            "AccountSid": "AC" + "0" * 32,
            "ConferenceSid": "CF" + caller[2:],
            "FriendlyName": f"cg-{caller}",
            "StatusCallbackEvent": "participant-join",
            "CallSid": participant,
            "SequenceNumber": str(seq),
            "Timestamp": formatdate(usegmt=True),
        }
        self.deliver("/twilio/conference/events", params)

    def answer_people(self, stop: threading.Event) -> None:
        """Each person rung answers ANSWER_AFTER seconds after the dial-out reached Twilio."""
        seen = 0
        while not stop.is_set():
            rung = self.fake.dial_outs()
            for request in rung[seen:]:
                threading.Timer(ANSWER_AFTER, self.answer, (request,)).start()
            seen = len(rung)
            stop.wait(0.2)

    def answer(self, request: TwilioRequest) -> None:
        """The person rung hears the whisper (the dial-out's ``Url``), presses 1 and joins the
        caller's conference; a whisper without a key window (the caller gone or moved on) is
        hung up on."""
        url, leg = request.param("Url") or "", (request.answer or {}).get("sid")
        caller = caller_of(request)
        if not url.startswith(BASE) or not leg or not caller:
            return
        params = {
            "AccountSid": "AC" + "0" * 32,
            "CallSid": leg,
            "CallStatus": "in-progress",
            "Direction": "outbound-api",
            "From": request.param("From") or "",
            "To": request.param("To") or "",
        }
        try:
            whisper = ElementTree.fromstring(self.post(url.removeprefix(BASE), params).content)
            gather = whisper.find("./Gather")
            if gather is None or not gather.get("action", "").startswith(BASE):
                return
            time.sleep(PRESS_AFTER)
            accept = str(gather.get("action")).removeprefix(BASE)
            joined = ElementTree.fromstring(self.post(accept, {**params, "Digits": "1"}).content)
        except (requests.RequestException, ElementTree.ParseError):
            return
        if joined.find("./Dial/Conference") is None:
            return  # the caller went while the whisper played
        with self.lock:
            self.answered.add(caller)
        self.conference_event(caller, leg, 2)

    def heartbeat(self, placed: Placed) -> None:
        """Twilio fetches the waitUrl again each time its TwiML ends, for as long as the caller
        waits alone: here from the deadline on, every 3 s, until the person rung has pressed 1
        (the conference starts) or the caller is moved on or hangs up."""
        if placed.hold_url is None or placed.sid in self.answered or self.moved(placed.sid):
            return
        if time.time() - placed.started > TALK:
            return  # the caller has hung up
        try:
            self.post(placed.hold_url.removeprefix(BASE), {"CallSid": placed.sid}, timeout=5)
        except requests.RequestException:
            pass
        threading.Timer(3, self.heartbeat, (placed,)).start()

    def dialled(self, sid: str) -> bool:
        return bool(self.fake.dial_outs(sid))

    def dial_outs(self) -> dict[str, list[TwilioRequest]]:
        """The people rung (calls created with a whisper URL), by the caller rung for."""
        by_caller: dict[str, list[TwilioRequest]] = defaultdict(list)
        for request in self.fake.dial_outs():
            by_caller[caller_of(request)].append(request)
        return by_caller

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


def caller_of(dial_out: TwilioRequest) -> str:
    """The caller a person was rung for: ``call_sid`` in the whisper URL of the call created."""
    query = parse_qs(urlsplit(dial_out.param("Url") or "").query)
    return query.get("call_sid", [""])[0]


def report_phase(drill: Drill, phase: str) -> None:
    with drill.lock:
        placed = [p for p in drill.placed if p.phase == phase]
    if not placed:
        return
    within = [p for p in placed if p.valid and p.latency < 1.0]
    ms = sorted(p.latency * 1000 for p in placed)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    print(
        f"{phase:<{WIDTH}} calls {len(placed):>4}  answered with TwiML within 1 s "
        f"{100 * len(within) / len(placed):6.2f}%  p50 {statistics.median(ms):7.1f} ms  "
        f"p99 {p99:7.1f} ms"
    )


def dial_out_delays(drill: Drill) -> None:
    """Per phase: from the inbound webhook to the dial-out request Twilio received, for the
    callers put on hold for a person."""
    first_dial = {sid: rung[0].at for sid, rung in drill.dial_outs().items()}
    for phase in PHASES:
        waiting = [p for p in drill.placed if p.phase == phase and p.conference]
        delays = sorted(first_dial[p.sid] - p.started for p in waiting if p.sid in first_dial)
        if not delays:
            continue
        p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
        print(
            f"dial-out after the webhook, {phase:<{WIDTH}} p50 {statistics.median(delays):6.2f} s  "
            f"p99 {p99:6.2f} s  max {delays[-1]:6.2f} s  ({len(delays)} of {len(waiting)} dialled)"
        )


def unrecorded(drill: Drill, engine: Any) -> list[Placed]:
    """The calls placed whose row in ``calls`` has no route (or that have no row at all)."""
    with Session(engine) as sess:
        routed = set(sess.scalars(select(Call.call_sid).where(Call.route.is_not(None))))
    return [p for p in drill.placed if p.sid not in routed]


def wait_for_routes(drill: Drill, engine: Any) -> list[Placed]:
    """Give the worker time to record the route of every call PostgreSQL refused (it tries
    again every RECLAIM_MS): until none is missing, the count has settled, or the time is up."""
    missing = unrecorded(drill, engine)
    deadline = time.monotonic() + ROUTES_WAIT_SECONDS
    settled_since = time.monotonic()
    while missing and time.monotonic() < deadline:
        time.sleep(5)
        now_missing = unrecorded(drill, engine)
        if len(now_missing) != len(missing):
            settled_since = time.monotonic()
        missing = now_missing
        if time.monotonic() - settled_since >= ROUTES_SETTLED_SECONDS:
            break
    return missing


def final_report(drill: Drill, engine: Any, missing: list[Placed]) -> bool:
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
    duplicate_dials = sum(len(rung) - 1 for rung in drill.dial_outs().values())
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
    by_phase: dict[str, int] = defaultdict(int)
    for p in missing:
        by_phase[p.phase] += 1
    print(
        f"calls whose route was never recorded: {len(missing)} (must be 0)"
        + (" (" + ", ".join(f"{ph}: {k}" for ph, k in by_phase.items()) + ")" if missing else "")
    )
    if missing:
        print("  for example: " + ", ".join(p.sid for p in missing[:5]))
    return (
        not missing
        and len(sent) == len(stored & sent) == len(counted & sent)
        and expected == opened
        and duplicated == 0
        and not left_waiting
        and duplicate_dials == 0
    )


def emptied_by_another(redis: Redis, when: str, emptied: list[str]) -> None:
    """Note ``when`` if the drills' Redis db lost its sentinel (another process, say a test run
    given the same db, emptied it: the figures then say nothing about callguard), and set it
    again."""
    if not redis.exists(SENTINEL):
        emptied.append(when)
    redis.set(SENTINEL, "1")


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    fresh_database(DB)
    real_redis = Redis(port=6379, db=REDIS_DB)
    real_redis.flushdb()
    real_redis.set(SENTINEL, "1")
    emptied: list[str] = []
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
    stop_answering = threading.Event()
    threading.Thread(target=drill.answer_people, args=(stop_answering,), daemon=True).start()
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
                emptied_by_another(real_redis, "baseline", emptied)
                real_redis.flushdb()
                real_redis.set(SENTINEL, "1")
            elif phase == "redis back":
                rds.set("forward")
            elif phase == "postgresql refusing":
                pg.set("refuse")
            elif phase == "postgresql hung":
                pg.set("hang")
            elif phase == "postgresql back":
                pg.set("forward")
            if phase == STALLED:
                pg.set("stall")
                n = drill.load(STALL_SECONDS, n)
                pg.set("forward")  # back: what was held goes through
            elif phase == "worker kill -9":
                worker.send_signal(signal.SIGKILL)
                n = drill.load(3, n)
                worker = start(processes["worker"], env, log)
                n = drill.load(PHASE_SECONDS - 3, n)
            else:
                n = drill.load(PHASE_SECONDS, n)
            report_phase(drill, phase)
            if phase != "baseline":
                emptied_by_another(real_redis, phase, emptied)
        drill.phase = "recovery"
        time.sleep(TALK + RING + GRACE + 5)  # the last calls end; their callbacks arrive
        drill.pool.shutdown(wait=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # the worker's sweeps catch up
            time.sleep(5)
            with Session(engine) as sess:
                pending = sess.scalar(
                    select(CallEvent.id)
                    .where(CallEvent.processed_at.is_(None), CallEvent.parked_reason.is_(None))
                    .limit(1)
                )
            if pending is None and real_redis.xlen("cg:events:buffered") == 0:
                break
        time.sleep(5)
        stop_answering.set()
        missing = wait_for_routes(drill, engine)
        dial_out_delays(drill)
        ok = final_report(drill, engine, missing)
        emptied_by_another(real_redis, "recovery", emptied)
        if emptied:
            ok = False
            print(
                f"redis db {REDIS_DB} was emptied by another process during: "
                f"{', '.join(emptied)} (the figures are not callguard's; set "
                "CALLGUARD_DRILLS_REDIS_DB to a db nothing else uses)"
            )
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
