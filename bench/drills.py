"""Fault drills: the Procfile's processes on real PostgreSQL and Redis, under a steady load of
inbound calls with their callbacks, through failures this script causes.

Everything runs on infrastructure the drill starts for itself (bench/infra.py), on free loopback
ports, and stops when it ends, however it ends (process groups, try/finally): a PostgreSQL cluster
of its own (reached through a TCP proxy the drill controls), a redis-server of its own (later with
a replica and three Sentinels), two ``web`` instances behind haproxy (the load goes through
haproxy), a ``worker`` and a ``dialler``, and PgBouncer. The shared PostgreSQL and Redis are not
touched (``CALLGUARD_DRILLS_DATABASE_URL`` puts the database on another server instead; the real
PostgreSQL restart is then skipped).

Phases, each with callers of its own (unknown numbers and restricted customers used in that phase
only, so each phase's figures are its own):

- the previous release serving (``PREVIOUS_RELEASE`` of tests/test_rolling_deploys.py, its code and
  Procfile read from git with ``git archive``, on the schema its own ``release`` made), then this
  tree's ``release`` run against the live database while it serves (tried up to three times); then
  its processes replaced one by one by this tree's (without that helper: ``release`` is run while
  this release serves, after the real restart);
- a baseline; Redis killed (``kill -9``, no persistence) and started again empty; PostgreSQL
  refusing connections; hung (connections accepted, never answered; open ones cut); back; stalled
  for ``DRILLS_STALL_SECONDS`` (open connections kept, new ones accepted, every byte held) and back
  again; the worker killed (``kill -9``) and restarted; one of the two web instances killed
  (``kill -9``, the whole process group) and started again; PostgreSQL "restarted in 0.3 s" (the
  proxy refuses and cuts every connection for 0.3 s); PostgreSQL restarted for real (``pg_ctl stop
  -m fast`` then ``start`` on the drill's own cluster);
- the processes restarted one by one onto Redis Sentinel (``REDIS_SENTINELS``): a failover (the
  master killed, then ``SENTINEL FAILOVER``) and the old master back (empty; the Sentinels make it
  a replica);
- where the tree supports PgBouncer (``scripts/pgbouncer.sh``), the processes restarted one by one
  onto PgBouncer in transaction pooling (``DATABASE_PGBOUNCER=1``) for one phase;
- then recovery (load stops, the worker's sweeps catch up).

The people rung answer as Twilio's would: a dial-out is a call created with a whisper URL
(``POST …/Calls.json``; the previous release added a conference participant instead); two seconds
later the person hears the whisper, presses 1, and joins the caller's conference (the caller joined
it a second after the call began; both joins are sent as conference events).

During the run each phase prints the inbound webhooks answered with valid TwiML within 1 s, their
p50/p99 and what the drill did; after recovery, a table with a row per phase (the calls placed in
it): answered within 1 s (must be 100%), callers put on hold dialled once, left waiting with nobody
dialled (must be 0), dialled twice (must be 0), callbacks sent/stored/counted (must be equal),
alerts expected/opened/duplicated (equal/equal/0), restricted callers routed by their restriction
(all: one answered with the default route is a failure) and calls whose route was never recorded
(no row, or only the row callbacks made: must be 0); then examples of each failure, by CallSid
(the inbound webhook carries ``X-Request-Id: drill-<CallSid>``, in callguard's and haproxy's logs).
Twilio's REST API is the fake one the tests use, on loopback. Run with ``make drills`` (about ten
minutes). Knobs: ``DRILLS_CALLS_PER_SECOND`` (20), ``DRILLS_PHASE_SECONDS`` (12),
``DRILLS_STALL_SECONDS`` (30), ``DRILLS_SENTINELS`` (3), ``DRILLS_PGBOUNCER`` (``auto``: when
``scripts/pgbouncer.sh`` exists; ``1`` always, ``0`` never) and ``DRILLS_PGBOUNCER_ENV``
(``NAME=value,…``: more of the app's variables for that phase).
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import formatdate
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

import requests
from redis import Redis
from sqlalchemy import Engine, create_engine, make_url, select, text
from sqlalchemy.orm import Session
from twilio.request_validator import RequestValidator
from werkzeug.serving import make_server

from bench import infra
from restrictions import alerts, counting, redis_keys
from restrictions.models import Call, CallEvent, ContactAlert
from restrictions.settings import ContactRule
from tests.fake_twilio import FakeTwilio, TwilioRequest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DB = os.environ.get("CALLGUARD_DRILLS_DATABASE_URL")  # else a cluster of the drill's own
DATABASE = "callguard_drills"
RATE = float(os.environ.get("DRILLS_CALLS_PER_SECOND", "20"))
PHASE_SECONDS = float(os.environ.get("DRILLS_PHASE_SECONDS", "12"))
STALL_SECONDS = float(os.environ.get("DRILLS_STALL_SECONDS", "30"))
SENTINELS = int(os.environ.get("DRILLS_SENTINELS", "3"))
PGBOUNCER = os.environ.get("DRILLS_PGBOUNCER", "auto")
PGBOUNCER_ENV = os.environ.get("DRILLS_PGBOUNCER_ENV", "")
TOKEN = "drills-auth-token"
BASE = "https://calls.example.org"
RING, GRACE, TALK = 5, 2, 12  # seconds: agents ring 5 s; callers stay on the line 12 s
ANSWER_AFTER, PRESS_AFTER = 2.0, 1.0  # the person rung answers after 2 s, presses 1 a second on
DEFAULT_LINE = "+441332000100"  # the default route: the contact centre
SPOC_LINE = "+441332000555"  # the restricted callers' single point of contact
ROUTES_WAIT_SECONDS = 90  # at most, after recovery, for the worker to record every call's route
ROUTES_SETTLED_SECONDS = 25  # the count unchanged this long (RECLAIM_MS is 10 s): it is final
RULES = (ContactRule("calls-per-hour", window_minutes=60, max_calls=5),)
CONFIG = f"""
[routes]
default = "dial:{DEFAULT_LINE}"
agent_ring_seconds = {RING}
spoc_ring_seconds = {RING}
hold_grace_seconds = {GRACE}
[[contact_rules]]
name = "calls-per-hour"
window_minutes = 60
max_calls = 5
"""
# Each phase's callers: UNKNOWN numbers nobody knows, and a restricted customer per entry of
# RESTRICTED, who make up RESTRICTED_SHARE of its calls.
UNKNOWN = 40
RESTRICTED = (
    "written_only",
    "written_only",
    "representative_only",
    "representative_only",
    "spoc",
    "spoc",
)
RESTRICTED_SHARE = 0.15
UNKNOWN_PREFIX, RESTRICTED_PREFIX = "+4479009", "+4479008"  # then the phase (2), the caller (3)


# --- the phases ---------------------------------------------------------------------------------

Action = Callable[[], str | None]  # a fault; what it says about itself


@dataclass
class Phase:
    name: str
    segment: str  # which processes serve it: "direct" (Redis URL), "sentinel", "pgbouncer"
    seconds: float = PHASE_SECONDS
    before: Action | None = None  # at its start
    during: list[tuple[float, Action]] = field(default_factory=list)  # this far into it
    after: Action | None = None  # when its load ends


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
    heard: str  # "conference", "dial:<number>", "message" (no <Dial>) or "other"


@dataclass(frozen=True)
class Restricted:
    kind: str
    customer_id: int
    phase: str


@dataclass
class Drill:
    web: str
    fake: FakeTwilio
    phases: list[str]
    phase: str = ""
    placed: list[Placed] = field(default_factory=list)
    completed_sent: set[str] = field(default_factory=set)
    answered: set[str] = field(default_factory=set)  # callers a person pressed 1 for
    restricted: dict[str, Restricted] = field(default_factory=dict)  # by number
    lock: threading.Lock = field(default_factory=threading.Lock)
    pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(48))
    rng: random.Random = field(default_factory=lambda: random.Random(11))
    session: threading.local = field(default_factory=threading.local)

    def post(
        self, path: str, params: dict[str, str], timeout: float = 5.0, request_id: str = ""
    ) -> Any:
        if not hasattr(self.session, "http"):
            self.session.http = requests.Session()
        signature = RequestValidator(TOKEN).compute_signature(BASE + path, params)
        headers = {"X-Twilio-Signature": signature}
        if request_id:  # in callguard's log lines and haproxy's (its httplog captures it)
            headers["X-Request-Id"] = request_id
        return self.session.http.post(
            self.web + path, data=params, headers=headers, timeout=timeout
        )

    def number(self, phase: str) -> str:
        """A caller of ``phase``'s own: a restricted customer or an unknown number."""
        index = self.phases.index(phase)
        if self.rng.random() < RESTRICTED_SHARE:
            return f"{RESTRICTED_PREFIX}{index:02d}{self.rng.randrange(len(RESTRICTED)):03d}"
        return f"{UNKNOWN_PREFIX}{index:02d}{self.rng.randrange(UNKNOWN):03d}"

    def call(self, n: int, phase: str) -> None:
        sid = f"CA{n:032x}"
        number = self.number(phase)
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
            response = self.post(
                "/twilio/voice/incoming", params, timeout=5, request_id=f"drill-{sid}"
            )
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
            phase,
            sent_at,
            latency,
            valid,
            conference is not None,
            hold,
            self.rng.randrange(20, 400),
            heard(root) if valid else "other",
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

    def dial_outs(self) -> dict[str, list[TwilioRequest]]:
        """The people rung (calls created with a whisper URL; or, by the previous release,
        participants added to the caller's conference ``cg-<caller>``), by the caller rung
        for, oldest first."""
        by_caller: dict[str, list[TwilioRequest]] = defaultdict(list)
        for request in self.fake.dial_outs():
            by_caller[caller_of(request)].append(request)
        for request in self.fake.posts("/Participants.json"):
            conference = request.path.split("/Conferences/")[-1].split("/")[0]
            by_caller[conference.removeprefix("cg-")].append(request)
        for rung in by_caller.values():
            rung.sort(key=lambda r: r.at)
        return by_caller

    def moved(self, sid: str) -> bool:
        return bool(self.fake.posts(f"/Calls/{sid}.json"))

    def moved_calls(self) -> set[str]:
        """Every call callguard updated through Twilio's REST API (moved on, or ended)."""
        return {
            r.path.rsplit("/", 1)[-1].removesuffix(".json")
            for r in self.fake.posts("/Calls/")
            if not r.path.endswith("/Calls.json")
        }

    def load(self, seconds: float, start_n: int) -> int:
        n = start_n
        phase = self.phase
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.pool.submit(self.call, n, phase)
            n += 1
            time.sleep(1 / RATE)
        return n


def heard(root: ElementTree.Element) -> str:
    """What the caller was answered with: their conference, a number dialled directly, or a
    message and no <Dial> at all."""
    if root.find("./Dial/Conference") is not None:
        return "conference"
    number = root.find("./Dial/Number")
    if number is not None:
        return f"dial:{(number.text or '').strip()}"
    if next(root.iter("Dial"), None) is None and next(root.iter("Enqueue"), None) is None:
        return "message"
    return "other"


def caller_of(dial_out: TwilioRequest) -> str:
    """The caller a person was rung for: ``call_sid`` in the whisper URL of the call created."""
    query = parse_qs(urlsplit(dial_out.param("Url") or "").query)
    return query.get("call_sid", [""])[0]


# Run by the first release's Python, with its own code (its models fit the schema its own
# `release` made): each phase's restricted customers, in force from today (the notice recorded
# today). Prints their ids by number.
SEED_SCRIPT = r"""
import json, sys
from sqlalchemy import create_engine
from sqlalchemy.orm import Session
from restrictions.lifecycle import Actor, add_restriction, create_customer

url, wanted = sys.argv[1], json.loads(sys.argv[2])
actor, ids = Actor(None, "drills"), {}
engine = create_engine(url)
with Session(engine) as sess:
    for number, reference, body in wanted:
        customer = create_customer(
            sess, actor, reference=reference, name="Drill " + reference, phone_numbers=[number]
        )
        add_restriction(sess, actor, customer, body)
        ids[number] = customer.id
    sess.commit()
engine.dispose()
print(json.dumps(ids))
"""


def seed(database_url: str, phases: list[str], release: Release) -> dict[str, Restricted]:
    """Each phase's restricted customers (RESTRICTED: their kinds), made by ``release``'s own
    code; by number."""
    today = datetime.now(ZoneInfo("Europe/London")).date().isoformat()
    wanted: list[tuple[str, str, dict[str, Any]]] = []
    phase_of: dict[str, tuple[str, str]] = {}
    for j, phase in enumerate(phases):
        for k, kind in enumerate(RESTRICTED):
            number = f"{RESTRICTED_PREFIX}{j:02d}{k:03d}"
            body: dict[str, Any] = {"kind": kind, "reason": "drill", "notice_sent_on": today}
            if kind == "spoc":
                body["spoc"] = SPOC_LINE
            if kind == "representative_only":
                body["representative"] = "Derby Advocacy Service"
            wanted.append((number, f"DRILL-{j}-{k}", body))
            phase_of[number] = (kind, phase)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = str(release.cwd)
    done = subprocess.run(
        [sys.executable, "-c", SEED_SCRIPT, database_url, json.dumps(wanted)],
        cwd=release.cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise SystemExit(f"seeding the restricted customers failed:\n{done.stderr[-3000:]}")
    ids: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        number: Restricted(phase_of[number][0], customer_id, phase_of[number][1])
        for number, customer_id in ids.items()
    }


def empty_database(database_url: str) -> None:
    """The drill's database dropped and made again, empty (no schema: ``release`` makes it)."""
    url = make_url(database_url)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{url.database}"'))
    admin.dispose()


def failure(log: Path) -> str:
    """What a failed command's log says went wrong: its exception, PostgreSQL's detail and the
    statement."""
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    said = [line for line in lines if re.match(r"^[\w.]+(Error|Exception|Detected)\b", line)]
    detail = [line for line in lines if line.startswith(("DETAIL:", "Process ", "[SQL: "))]
    picked = list(dict.fromkeys([*said[-1:], *detail[-3:]]))
    return " / ".join(picked) or (lines[-1] if lines else "no output")


# --- the Procfile's processes ------------------------------------------------------------------


def procfile(text: str | None = None) -> dict[str, str]:
    """The Procfile's processes by name: this tree's, or those of ``text``."""
    if text is None:
        text = (ROOT / "Procfile").read_text(encoding="utf-8")
    processes = {}
    for line in text.splitlines():
        name, sep, command = line.partition(":")
        if sep and command.strip():
            processes[name.strip()] = command.strip()
    return processes


def argv_of(command: str) -> list[str]:
    bin_dir = Path(sys.executable).parent
    argv = shlex.split(command)
    argv[0] = str(bin_dir / argv[0]) if (bin_dir / argv[0]).exists() else argv[0]
    return argv


def start(command: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A Procfile command run from this tree, its output appended to ``log`` (bench/webhooks.py
    uses it too)."""
    return subprocess.Popen(
        argv_of(command), env=env, cwd=ROOT, stdout=log.open("ab"), stderr=subprocess.STDOUT
    )


def healthy(port: int) -> bool:
    return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok


@dataclass(frozen=True)
class Release:
    """Code to run: this tree, or the previous release's (its Procfile and packages, read from
    git into ``tree``, run with the same virtualenv)."""

    name: str
    commands: dict[str, str]
    tree: Path | None = None  # None: this tree

    @property
    def cwd(self) -> Path:
        return self.tree or ROOT


THIS_RELEASE = Release("this release", procfile((ROOT / "Procfile").read_text(encoding="utf-8")))


def previous_release(root: Path) -> Release | str:
    """The previous release as tests/test_rolling_deploys.py names it (PREVIOUS_RELEASE), its
    code from this clone's history (``git archive``: no checkout, nothing in the working tree);
    else why not."""
    test = ROOT / "tests" / "test_rolling_deploys.py"
    if not test.exists():
        return "no helper for the previous release in this tree"
    found = re.search(r'^PREVIOUS_RELEASE = "([0-9a-f]{7,40})"', test.read_text("utf-8"), re.M)
    if not found:
        return "tests/test_rolling_deploys.py names no PREVIOUS_RELEASE"
    commit = found[1]
    git = ["git", "-c", f"safe.directory={ROOT}", "-C", str(ROOT)]
    if subprocess.run([*git, "cat-file", "-e", f"{commit}^{{commit}}"]).returncode != 0:
        return f"commit {commit} (the previous release) is not in this clone"
    tree = root / f"release-{commit}"
    tree.mkdir()
    archive = root / f"release-{commit}.tar"
    subprocess.run(
        [*git, "archive", "--format=tar", "-o", str(archive), commit, "Procfile",
         "telephony", "restrictions", "handlers", "prompts", "migrations"],
        check=True,
    )  # fmt: skip
    subprocess.run(["tar", "-xf", str(archive), "-C", str(tree)], check=True)
    archive.unlink()
    return Release(commit, procfile((tree / "Procfile").read_text(encoding="utf-8")), tree)


class App:
    """The Procfile's processes: two ``web`` instances (each the Procfile's gunicorn, on a port
    of its own, behind haproxy), a ``worker`` and a ``dialler``, of one release."""

    def __init__(
        self, processes: infra.Processes, env: dict[str, str], log: Path, release: Release
    ) -> None:
        self.processes = processes
        self.release = release
        self.env = env
        self.log = log
        self.web_ports = [infra.free_port(), infra.free_port()]
        self.webs: dict[int, subprocess.Popen[bytes]] = {}
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self.haproxy_config: Path | None = None
        self.steps: list[str] = []  # the last roll's, with their seconds

    @property
    def commands(self) -> dict[str, str]:
        return self.release.commands

    def start(
        self, name: str, release: Release | None = None, log: Path | None = None, **extra: str
    ) -> subprocess.Popen[bytes]:
        release = release or self.release
        command = release.commands[name]
        for key, value in extra.items():
            command = command.replace(f"${key}", value)
        env = {**self.env, **extra}
        if release.tree is not None:  # its packages, not this tree's
            env["PYTHONPATH"] = str(release.tree)
        return self.processes.start(argv_of(command), log or self.log, env=env, cwd=release.cwd)

    def start_web(self, port: int) -> None:
        self.webs[port] = self.start("web", PORT=str(port))
        infra.wait_for(f"web on {port} answers /healthz", lambda: healthy(port), 60)
        if self.haproxy_config is not None:
            name = f"web-{self.web_ports.index(port) + 1}"
            config = self.haproxy_config
            infra.wait_for(
                f"haproxy sees {name} up", lambda: infra.haproxy_servers_up(config)[name], 20
            )

    def start_worker(self, name: str) -> None:
        if name in self.commands:
            self.workers[name] = self.start(name)

    def start_all(self) -> None:
        for port in self.web_ports:
            self.start_web(port)
        for name in ("worker", "dialler"):
            self.start_worker(name)

    def kill_web(self, port: int) -> None:
        self.processes.kill(self.webs.pop(port))

    def roll(self, changes: dict[str, str | None], release: Release | None = None) -> float:
        """Every process restarted with ``changes`` to the environment (and as ``release``),
        one at a time, as a deploy does: each web instance stopped (SIGTERM: it finishes what it
        serves) and started again (haproxy sends the other everything meanwhile); each worker's
        successor started before it is stopped. The seconds it took."""
        began = time.monotonic()
        for key, value in changes.items():
            if value is None:
                self.env.pop(key, None)
            else:
                self.env[key] = value
        self.release = release or self.release
        steps: list[str] = []
        old_workers = dict(self.workers)
        for name in old_workers:  # each successor first, then the old one stopped meanwhile
            self.start_worker(name)
        stopping = threading.Thread(target=self.stop_workers, args=(old_workers, steps))
        stopping.start()
        for port in self.web_ports:
            step = time.monotonic()
            self.processes.stop(self.webs.pop(port))
            stopped = time.monotonic()
            self.start_web(port)
            steps.append(
                f"web :{port} stopped in {stopped - step:.1f} s, up in "
                f"{time.monotonic() - stopped:.1f} s"
            )
        stopping.join()
        self.steps = steps
        return time.monotonic() - began

    def stop_workers(self, old: dict[str, subprocess.Popen[bytes]], steps: list[str]) -> None:
        time.sleep(2)  # the successors are up
        began = time.monotonic()
        stoppers = [
            threading.Thread(target=self.processes.stop, args=(process,))
            for process in old.values()
        ]
        for stopper in stoppers:
            stopper.start()
        for name, stopper in zip(old, stoppers, strict=True):
            stopper.join()
            steps.append(f"old {name} stopped in {time.monotonic() - began:.1f} s")


# --- the report --------------------------------------------------------------------------------


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def report_phase(drill: Drill, phase: str, began: float, notes: list[str]) -> None:
    with drill.lock:
        placed = [p for p in drill.placed if p.phase == phase]
    if placed:
        within = [p for p in placed if p.valid and p.latency < 1.0]
        ms = [p.latency * 1000 for p in placed]
        print(
            f"{phase:<{width(drill)}} calls {len(placed):>4}  answered with TwiML within 1 s "
            f"{100 * len(within) / len(placed):6.2f}%  p50 {statistics.median(ms):7.1f} ms  "
            f"p99 {p99(ms):7.1f} ms  (from {time.strftime('%H:%M:%S', time.gmtime(began))} UTC)",
            flush=True,
        )
    for note in notes:
        print(f"{'':<{width(drill)}}   {note}", flush=True)


def width(drill: Drill) -> int:
    return max(len(phase) for phase in drill.phases)


def dial_out_delays(drill: Drill, by_caller: dict[str, list[TwilioRequest]]) -> None:
    """Per phase: from the inbound webhook to the dial-out request Twilio received, for the
    callers put on hold for a person."""
    first_dial = {sid: rung[0].at for sid, rung in by_caller.items()}
    for phase in drill.phases:
        waiting = [p for p in drill.placed if p.phase == phase and p.conference]
        delays = sorted(first_dial[p.sid] - p.started for p in waiting if p.sid in first_dial)
        if not delays:
            continue
        print(
            f"dial-out after the webhook, {phase:<{width(drill)}} "
            f"p50 {statistics.median(delays):6.2f} s  p99 {p99(delays):6.2f} s  "
            f"max {delays[-1]:6.2f} s  ({len(delays)} of {len(waiting)} dialled)"
        )


def recorded_routes(engine: Engine) -> dict[str, tuple[str, bool]]:
    """The route (and whether the fallback answered) of every call whose route was recorded.
    A row a callback made before (or without) the inbound record has ``route`` at its column
    default, "default": only a recorded route writes ``flags`` (``{"flags": …, "unidentified":
    …}``), so that is what says the route was recorded."""
    with Session(engine) as sess:
        rows = sess.execute(select(Call.call_sid, Call.route, Call.fallback, Call.flags))
        return {
            sid: (route, bool(fallback))
            for sid, route, fallback, flags in rows
            if isinstance(flags, dict) and "unidentified" in flags
        }


def unrecorded(drill: Drill, engine: Engine) -> list[Placed]:
    """The calls placed whose route was never recorded (no row, or a row callbacks made)."""
    routed = recorded_routes(engine)
    return [p for p in drill.placed if p.sid not in routed]


def wait_for_routes(drill: Drill, engine: Engine) -> list[Placed]:
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


def routed_by_restriction(
    placed: Placed,
    restricted: Restricted,
    recorded: tuple[str, bool] | None,
    rung: list[TwilioRequest],
) -> bool:
    """Whether a restricted caller got what their restriction says: a message and no <Dial> for
    writing only and representative only; their SPOC (their conference, with the SPOC the only
    person rung, or the SPOC's number dialled directly) for a SPOC. The call's row, where there
    is one, must say the same route and not the fallback."""
    if recorded is not None and (recorded[0] != restricted.kind or recorded[1]):
        return False
    if restricted.kind == "spoc":
        if placed.heard == "conference":
            return all(r.param("To") == SPOC_LINE for r in rung)
        return placed.heard == f"dial:{SPOC_LINE}"
    return placed.heard == "message"


@dataclass
class Row:
    phase: str
    calls: int = 0
    within: int = 0
    p99_ms: float = 0.0
    on_hold: int = 0
    dialled_once: int = 0
    waiting: int = 0
    duplicate_dials: int = 0
    sent: int = 0
    stored: int = 0
    counted: int = 0
    expected: int = 0
    opened: int = 0
    unexpected: int = 0
    duplicated: int = 0
    restricted: int = 0
    by_restriction: int = 0
    unrecorded: int = 0
    misrouted: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return (
            self.within == self.calls
            and self.sent == self.stored == self.counted
            and self.expected == self.opened
            and self.unexpected == 0
            and self.duplicated == 0
            and self.duplicate_dials == 0
            and self.waiting == 0
            and self.by_restriction == self.restricted
            and self.unrecorded == 0
        )


def phase_of_subject(drill: Drill, subject: str, customers: dict[int, str]) -> str | None:
    customer_id, number = counting.parse_subject(subject)
    if customer_id is not None:
        return customers.get(customer_id)
    if number and number.startswith((UNKNOWN_PREFIX, RESTRICTED_PREFIX)) and len(number) == 13:
        index = int(number[8:10])
        return drill.phases[index] if index < len(drill.phases) else None
    return None


def final_report(drill: Drill, engine: Engine, missing: list[Placed]) -> bool:
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
                select(Call.call_sid, Call.customer_id, Call.from_e164, Call.started_at).where(
                    Call.counted_at.is_not(None)
                )
            )
        )
        open_alerts = list(
            sess.execute(
                select(ContactAlert.subject, ContactAlert.rule_name).where(
                    ContactAlert.status == "open"
                )
            )
        )
    routes = recorded_routes(engine)
    customers = {r.customer_id: r.phase for r in drill.restricted.values()}
    counted = {sid for sid, _, _, _ in counted_rows}
    by_subject: dict[str, list[counting.CountedCall]] = defaultdict(list)
    for sid, customer_id, e164, started in counted_rows:
        subject = counting.subject_of(customer_id, e164)
        if subject is not None:
            by_subject[subject].append(counting.CountedCall(sid, started.timestamp(), 0))
    expected = {
        (subject, rule.name)
        for subject, calls in by_subject.items()
        for rule in RULES
        if alerts.tripping_window(rule, calls, [c.at for c in calls]) is not None
    }
    by_caller = drill.dial_outs()
    moved = drill.moved_calls()
    missing_sids = {p.sid for p in missing}
    rows = {phase: Row(phase) for phase in drill.phases}
    latencies: dict[str, list[float]] = defaultdict(list)
    for p in drill.placed:
        row = rows[p.phase]
        row.calls += 1
        row.within += p.valid and p.latency < 1.0
        latencies[p.phase].append(p.latency * 1000)
        rung = by_caller.get(p.sid, [])
        if p.conference:
            row.on_hold += 1
            row.dialled_once += len(rung) == 1
            row.waiting += not rung and p.sid not in moved
        row.duplicate_dials += max(len(rung) - 1, 0)
        if p.sid in drill.completed_sent:
            row.sent += 1
            row.stored += p.sid in stored
            row.counted += p.sid in counted
        if p.number in drill.restricted:
            row.restricted += 1
            ok = routed_by_restriction(p, drill.restricted[p.number], routes.get(p.sid), rung)
            row.by_restriction += ok
            if not ok:
                recorded = routes.get(p.sid)
                row.misrouted.append(
                    f"{p.sid} ({drill.restricted[p.number].kind}): heard {p.heard}, recorded "
                    + (f"{recorded[0]}{' (fallback)' if recorded[1] else ''}" if recorded else "-")
                )
        row.unrecorded += p.sid in missing_sids
    for phase, values in latencies.items():
        rows[phase].p99_ms = p99(values)
    for subject, _ in expected:
        of = phase_of_subject(drill, subject, customers)
        if of is not None:
            rows[of].expected += 1
    seen: set[tuple[str, str]] = set()
    for subject, rule_name in open_alerts:
        of = phase_of_subject(drill, subject, customers)
        if of is None:
            continue
        phase = of
        if (subject, rule_name) in seen:
            rows[phase].duplicated += 1
            continue
        seen.add((subject, rule_name))
        if (subject, rule_name) in expected:
            rows[phase].opened += 1
        else:
            rows[phase].unexpected += 1

    dial_out_delays(drill, by_caller)
    print()
    w = width(drill)
    print(
        f"{'phase (its own callers)':<{w}}  calls  within 1 s  p99 ms  dialled once  waiting  "
        "dup dials  callbacks sent/stored/counted  alerts exp/opened/dup  "
        "restricted routed  unrecorded"
    )
    total = Row("all phases")
    for row in [*rows.values(), total]:
        if row is not total:
            for name in (
                "calls", "within", "on_hold", "dialled_once", "waiting", "duplicate_dials",
                "sent", "stored", "counted", "expected", "opened", "unexpected", "duplicated",
                "restricted", "by_restriction", "unrecorded",
            ):  # fmt: skip
                setattr(total, name, getattr(total, name) + getattr(row, name))
            total.p99_ms = max(total.p99_ms, row.p99_ms)
        share = 100 * row.within / row.calls if row.calls else 0.0
        alerts_text = f"{row.expected}/{row.opened}/{row.duplicated}" + (
            f" (+{row.unexpected})" if row.unexpected else ""
        )
        print(
            f"{row.phase:<{w}}  {row.calls:>5}  {share:9.2f}%  {row.p99_ms:6.1f}  "
            f"{f'{row.dialled_once}/{row.on_hold}':>12}  {row.waiting:>7}  "
            f"{row.duplicate_dials:>9}  {f'{row.sent}/{row.stored}/{row.counted}':>29}  "
            f"{alerts_text:>21}  {f'{row.by_restriction}/{row.restricted}':>17}  "
            f"{row.unrecorded:>10}  {'ok' if row.clean else 'NOT CLEAN'}"
        )
    for phase in drill.phases:
        late = [p for p in drill.placed if p.phase == phase and not (p.valid and p.latency < 1)]
        if late:
            print(
                f"  {phase}: not answered with TwiML within 1 s: "
                + ", ".join(
                    f"{p.sid} ({p.latency:.2f} s{'' if p.valid else ', no valid TwiML'})"
                    for p in late[:4]
                )
                + (f" and {len(late) - 4} more" if len(late) > 4 else "")
            )
    for phase in drill.phases:
        alone = [
            p.sid
            for p in drill.placed
            if p.phase == phase and p.conference and not by_caller.get(p.sid) and p.sid not in moved
        ]
        if alone:
            print(f"  {phase}: left waiting with nobody dialled: " + ", ".join(alone[:5]))
    for row in rows.values():
        for line in row.misrouted[:5]:
            print(f"  {row.phase}: restricted caller not routed by their restriction: {line}")
    if missing:
        print("  calls whose route was never recorded, for example: " + ", ".join(
            p.sid for p in missing[:5]))  # fmt: skip
    return all(row.clean for row in rows.values())


# --- the run -----------------------------------------------------------------------------------


class Run:
    """The drill's infrastructure, its processes and its phases."""

    def __init__(self) -> None:
        self.began = time.monotonic()
        self.processes = infra.Processes()
        self.root = Path(tempfile.mkdtemp(prefix="callguard-drills-"))
        self.root.chmod(0o755)  # PostgreSQL's and PgBouncer's users reach their own dirs
        self.log = Path(tempfile.gettempdir()) / "callguard-drills.log"
        self.log.write_text("", encoding="utf-8")
        self.postgres: infra.Postgres | None = None
        self.farm = infra.RedisFarm(self.root, self.processes)
        self.master = 0  # the Redis master's port, while no Sentinel watches it
        self.replica = 0
        self.sentinels: list[int] = []
        self.server: Any = None
        self.engine: Engine | None = None
        self.app: App | None = None
        self.pgbouncer: str | None = None  # why not, when it is not run
        self.killed_at = 0.0
        self.n = 0
        self.previous: Release | str = "not looked for"
        self.released = True  # False once `release` failed for good

    # -- the infrastructure --

    def database(self) -> str:
        if SHARED_DB:
            print(f"postgresql: {make_url(SHARED_DB).render_as_string()} (the real restart: "
                  "skipped, not the drill's own server)")  # fmt: skip
            return SHARED_DB
        bindir = infra.postgres_bin()
        if bindir is None:
            raise SystemExit("PostgreSQL's server programs (initdb, pg_ctl) are not installed")
        self.postgres = infra.Postgres(self.root, bindir)
        self.postgres.init()
        print(f"postgresql: a cluster of the drill's own (PostgreSQL {self.postgres.version}, "
              f"{self.postgres.dir}) on :{self.postgres.port}")  # fmt: skip
        return self.postgres.url(DATABASE)

    def pgbouncer_support(self) -> str | None:
        """None when the PgBouncer phase runs; else why it does not."""
        script = ROOT / "scripts" / "pgbouncer.sh"
        if PGBOUNCER == "0":
            return "DRILLS_PGBOUNCER=0"
        if PGBOUNCER != "1" and not script.exists():
            return "no support in this tree"
        if script.exists():
            done = subprocess.run(["bash", str(script)], capture_output=True, text=True)
            if done.returncode != 0:
                return f"scripts/pgbouncer.sh failed: {done.stderr.strip()[-200:]}"
        if infra.pgbouncer_binary() is None:
            return "pgbouncer is not installed"
        return None

    def phases(self) -> list[Phase]:
        assert self.app is not None
        app = self.app
        stall = f"postgresql stalled {STALL_SECONDS:.0f} s"
        phases = []
        if isinstance(self.previous, Release):
            phases += [
                Phase(f"{self.previous.name} serving", "previous"),
                Phase(
                    f"release while {self.previous.name} serves",
                    "previous",
                    during=[(3, self.release)],
                ),
            ]
        phases += [
            Phase("baseline", "direct"),
            Phase("redis killed, empty", "direct", before=self.kill_redis),
            Phase("redis back", "direct", before=self.redis_back),
            Phase("postgresql refusing", "direct", before=lambda: self.pg_proxy.set("refuse")),
            Phase("postgresql hung", "direct", before=lambda: self.pg_proxy.set("hang")),
            Phase("postgresql back", "direct", before=lambda: self.pg_proxy.set("forward")),
            Phase(
                stall,
                "direct",
                seconds=STALL_SECONDS,
                before=lambda: self.pg_proxy.set("stall"),
                after=lambda: self.pg_proxy.set("forward"),  # back: what was held goes through
            ),
            Phase("postgresql back again", "direct"),
            Phase(
                "worker kill -9",
                "direct",
                before=lambda: self.kill("worker"),
                during=[(3, lambda: self.restart("worker"))],
            ),
            Phase(
                "web kill -9 (1 of 2)",
                "direct",
                during=[
                    (3, lambda: self.kill_web(app.web_ports[0])),
                    (6, lambda: self.web_back(app.web_ports[0])),
                ],
            ),  # fmt: skip
            Phase("postgresql restart 0.3 s", "direct", during=[(3, self.pg_blip)]),
        ]
        if self.postgres is not None:
            phases.append(Phase("postgresql real restart", "direct", during=[(3, self.pg_restart)]))
        if not isinstance(self.previous, Release):
            phases.append(Phase("release while serving", "direct", during=[(3, self.release)]))
        phases += [
            Phase("sentinel failover", "sentinel", during=[(3, self.fail_over)]),
            Phase("old master back", "sentinel", during=[(1, self.old_master_back)]),
        ]
        if self.pgbouncer is None:
            phases.append(Phase("pgbouncer transaction mode", "pgbouncer"))
        return phases

    # -- the faults --

    def kill_redis(self) -> str:
        self.farm.kill(self.master)
        return f"redis-server :{self.master} killed (kill -9; no persistence: empty when back)"

    def redis_back(self) -> str:
        self.farm.server(self.master)
        return f"redis-server :{self.master} started again, empty"

    def kill(self, name: str) -> str:
        assert self.app is not None
        self.processes.kill(self.app.workers.pop(name))
        return f"{name} killed (kill -9)"

    def restart(self, name: str) -> str:
        assert self.app is not None
        self.app.start_worker(name)
        return f"{name} started again"

    def kill_web(self, port: int) -> str:
        assert self.app is not None
        self.app.kill_web(port)
        self.killed_at = time.monotonic()
        return f"web instance :{port} killed (kill -9, gunicorn and its workers)"

    def web_back(self, port: int) -> str:
        assert self.app is not None
        self.app.start_web(port)
        return (
            f"web instance :{port} started again; haproxy sends it calls "
            f"{time.monotonic() - self.killed_at:.1f} s after the kill"
        )

    def pg_blip(self) -> str:
        self.pg_proxy.set("refuse")
        began = time.monotonic()
        time.sleep(0.3)
        self.pg_proxy.set("forward")
        return (
            f"the proxy refused and cut every PostgreSQL connection for "
            f"{time.monotonic() - began:.2f} s (a restart as the app sees it; the server ran on)"
        )

    def pg_restart(self) -> str:
        assert self.postgres is not None
        away = self.postgres.restart()
        return (
            "the drill's PostgreSQL restarted for real (pg_ctl stop -m fast, then start): "
            f"away {away:.2f} s"
        )

    def release(self) -> str:
        """This tree's ``release`` (the Procfile's) against the live database, through the
        PostgreSQL proxy as the app reaches it, while the load goes on; tried again (up to three
        times, as an operator would) when it fails."""
        assert self.app is not None and self.engine is not None
        before = self.schema()
        serving = (
            f"{self.app.release.name}'s processes serve"
            if self.app.release.tree is not None
            else f"this release serves ({self.previous})"
        )
        attempts: list[str] = []
        for attempt in range(1, 4):
            log = self.root / f"release-{attempt}.log"
            began = time.monotonic()
            code = self.app.start("release", THIS_RELEASE, log=log).wait(180)
            attempts.append(
                f"attempt {attempt}: exit {code} in {time.monotonic() - began:.1f} s"
                + (f": {failure(log)}" if code else "")
            )
            if code == 0:
                break
        self.released = code == 0
        return (
            f"`release` ({THIS_RELEASE.commands['release']}) of this tree against the live "
            f"database while {serving}; schema {before} -> {self.schema()}; " + "; ".join(attempts)
        )

    def schema(self) -> str:
        assert self.engine is not None
        with self.engine.connect() as conn:
            return str(conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar())

    def fail_over(self) -> str:
        old, new = self.master, self.replica
        began = time.monotonic()
        self.farm.kill(old)
        self.farm.fail_over()
        infra.wait_for("the sentinels name the replica", lambda: self.farm.master_port() == new)
        return (
            f"master :{old} killed (kill -9), SENTINEL FAILOVER: the sentinels name :{new} "
            f"after {time.monotonic() - began:.2f} s"
        )

    def old_master_back(self) -> str:
        old, new = self.master, self.replica
        began = time.monotonic()
        self.farm.server(old)  # as it would restart: on its own, empty, a master
        infra.wait_for(
            f"the old master :{old} replicates :{new}",
            lambda: (
                infra.link_up(infra.redis_at(old))
                and int(infra.redis_at(old).info("replication")["master_port"]) == new
            ),
            60,
        )
        return (
            f"old master :{old} started again (empty); the sentinels made it a replica of :{new} "
            f"(link up) after {time.monotonic() - began:.1f} s"
        )

    # -- the segments --

    def switch(self, segment: str) -> None:
        assert self.app is not None
        if segment == "direct":
            if not self.released:
                raise SystemExit("`release` failed three times: a deploy stops here")
            old = self.app.release.name
            seconds = self.app.roll({}, THIS_RELEASE)
            print(
                f"-- onto this release: web, worker and dialler of {old} replaced one by one "
                f"by this tree's, no load meanwhile ({seconds:.1f} s: "
                + "; ".join(self.app.steps)
                + ")",
                flush=True,
            )
        elif segment == "sentinel":
            self.replica = self.farm.server(replica_of=self.master)
            self.sentinels = self.farm.watch(self.master, self.replica, SENTINELS)
            seconds = self.app.roll(
                {
                    "REDIS_URL": None,
                    "REDIS_SENTINELS": ",".join(f"127.0.0.1:{p}" for p in self.sentinels),
                    "REDIS_SENTINEL_MASTER": infra.RedisFarm.MASTER,
                }
            )
            print(
                f"-- onto Redis Sentinel: master :{self.master}, replica :{self.replica}, "
                f"{len(self.sentinels)} sentinels (:"
                + ", :".join(map(str, self.sentinels))
                + f"); web, worker and dialler restarted one by one with REDIS_SENTINELS, "
                f"no load meanwhile ({seconds:.1f} s: " + "; ".join(self.app.steps) + ")",
                flush=True,
            )
        elif segment == "pgbouncer":
            assert self.engine is not None
            port, _ = infra.pgbouncer(self.root, self.processes, self.pg_proxy.port, DATABASE)
            url = make_url(self.db).set(port=port).render_as_string(hide_password=False)
            extra = dict(item.split("=", 1) for item in PGBOUNCER_ENV.split(",") if "=" in item)
            changes: dict[str, str | None] = {"DATABASE_URL": url, "DATABASE_PGBOUNCER": "1"}
            seconds = self.app.roll({**changes, **extra})
            print(
                f"-- onto PgBouncer (pool_mode = transaction) on :{port}, in front of the "
                f"PostgreSQL proxy; processes restarted one by one with DATABASE_PGBOUNCER=1 "
                f"({seconds:.1f} s: " + "; ".join(self.app.steps) + ")",
                flush=True,
            )

    # -- the run --

    def setup(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        logging.getLogger("alembic").setLevel(logging.WARNING)
        for program in ("redis-server", "redis-sentinel", "haproxy"):
            if shutil.which(program) is None:
                raise SystemExit(
                    f"{program} is not installed: bash scripts/sentinel.sh and "
                    "bash bench/haproxy.sh (make drills runs both)"
                )
        self.db = self.database()
        self.previous = previous_release(self.root)
        first = self.previous if isinstance(self.previous, Release) else THIS_RELEASE
        self.pgbouncer = self.pgbouncer_support()
        self.pg_proxy = infra.Proxy(make_url(self.db).port or 5432)
        self.master = self.farm.server()
        print(f"redis: a redis-server of the drill's own on :{self.master} (db 0)")
        fake = FakeTwilio()
        self.server = make_server("127.0.0.1", 0, fake.wsgi, threaded=True)
        fake.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        config = self.root / "callguard.toml"
        config.write_text(CONFIG, encoding="utf-8")
        proxied = make_url(self.db).set(port=self.pg_proxy.port)
        env = {
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("REDIS_", "DATABASE_", "CALLGUARD_", "PYTHON"))
            },
            "DATABASE_URL": proxied.render_as_string(hide_password=False),
            "REDIS_URL": f"redis://127.0.0.1:{self.master}/0",
            "PUBLIC_BASE_URL": BASE,
            "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
            "TWILIO_AUTH_TOKEN": TOKEN,
            "TWILIO_API_BASE_URL": fake.url,
            "SECRET_KEY": "drills",
            "CALLGUARD_CONFIG": str(config),
        }
        self.app = App(self.processes, env, self.log, first)
        # the database as the first release to serve made it: its own `release`
        empty_database(self.db)
        if self.app.start("release").wait(180) != 0:
            raise SystemExit(f"{first.name}'s `release` failed: see {self.log}")
        self.engine = create_engine(self.db, pool_pre_ping=True)
        phases = [p.name for p in self.phases()]
        self.drill = Drill(web="", fake=fake, phases=phases)
        self.drill.restricted = seed(self.db, phases, first)
        self.app.start_all()
        port, self.app.haproxy_config = infra.haproxy(self.root, self.processes, self.app.web_ports)
        self.drill.web = f"http://127.0.0.1:{port}"
        haproxy_config = self.app.haproxy_config
        infra.wait_for(
            "haproxy sees both web instances up",
            lambda: all(infra.haproxy_servers_up(haproxy_config).values()),
        )
        redis = infra.redis_at(self.master)
        infra.wait_for(
            "the worker's first sweep builds Redis",
            lambda: bool(redis.exists(redis_keys.REBUILT.key)),
            60,
        )
        c = THIS_RELEASE.commands
        print(f"machine: {os.cpu_count()} cores, load average {load_average()} at the start")
        print(
            f"web: 2 instances of `{c['web']}` (:{self.app.web_ports[0]}, "
            f":{self.app.web_ports[1]}) behind haproxy :{port} (GET /healthz every 0.5 s, "
            f"retries 2, option redispatch)\nworker: {c['worker']}\n"
            + (f"dialler: {c['dialler']}\n" if "dialler" in c else "")
            + (
                f"first: the previous release, {first.name} (its Procfile and code from git, "
                f"{first.tree}), on the schema its own `release` made ({self.schema()})\n"
                if first.tree is not None
                else f"previous release: not run ({self.previous})\n"
            )
            + f"load: {RATE:.0f} calls/s through haproxy; {len(self.drill.restricted)} "
            f"restricted customers ({', '.join(sorted(set(RESTRICTED)))}), "
            f"{RESTRICTED_SHARE:.0%} of each phase's calls, each phase its own callers"
        )
        if self.pgbouncer is not None:
            print(f"pgbouncer phase: skipped ({self.pgbouncer})")
        print(flush=True)

    def drive(self) -> bool:
        assert self.engine is not None and self.app is not None
        drill = self.drill
        stop_answering = threading.Event()
        threading.Thread(target=drill.answer_people, args=(stop_answering,), daemon=True).start()
        phases = self.phases()
        segment = phases[0].segment
        for phase in phases:
            if phase.segment != segment:
                segment = phase.segment
                self.switch(segment)
            drill.phase = phase.name
            began = time.time()
            notes: list[str] = []
            if phase.before:
                notes.append(phase.before() or "")
            faults = threading.Thread(target=self.faults, args=(phase.during, notes))
            faults.start()
            self.n = drill.load(phase.seconds, self.n)
            faults.join()
            if phase.after:
                notes.append(phase.after() or "")
            report_phase(drill, phase.name, began, [note for note in notes if note])
        drill.phase = "recovery"
        time.sleep(TALK + RING + GRACE + 5)  # the last calls end; their callbacks arrive
        drill.pool.shutdown(wait=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # the worker's sweeps catch up
            time.sleep(5)
            with Session(self.engine) as sess:
                pending = sess.scalar(
                    select(CallEvent.id)
                    .where(CallEvent.processed_at.is_(None), CallEvent.parked_reason.is_(None))
                    .limit(1)
                )
            if pending is None and self.redis().xlen(redis_keys.EVENTS_BUFFERED.key) == 0:
                break
        time.sleep(5)
        stop_answering.set()
        missing = wait_for_routes(drill, self.engine)
        return final_report(drill, self.engine, missing)

    def faults(self, during: list[tuple[float, Action]], notes: list[str]) -> None:
        began = time.monotonic()
        for offset, action in during:
            time.sleep(max(began + offset - time.monotonic(), 0))
            try:
                notes.append(action() or "")
            except Exception as exc:  # said in the phase's line; the figures show the rest
                notes.append(f"FAULT FAILED: {type(exc).__name__}: {exc}")

    def redis(self) -> Redis:
        return infra.redis_at(self.farm.master_port() if self.sentinels else self.master)

    def teardown(self) -> None:
        self.processes.stop_all()
        if self.server is not None:
            self.server.shutdown()
        if self.engine is not None:
            self.engine.dispose()
        if self.postgres is not None:
            self.postgres.cleanup()
            shutil.rmtree(self.postgres.data, ignore_errors=True)  # its log stays


def load_average() -> str:
    """The 1, 5 and 15 minute load averages (other work on the machine moves every figure)."""
    return " / ".join(f"{value:.1f}" for value in os.getloadavg())


def interrupted(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(f"stopped by signal {signum}")


def main() -> None:
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupted)
    run = Run()
    ok = False
    try:
        run.setup()
        ok = run.drive()
    finally:
        run.teardown()
    print(f"machine: load average {load_average()} at the end")
    minutes = (time.monotonic() - run.began) / 60
    print(
        f"result: {'OK' if ok else 'NOT CLEAN'} in {minutes:.1f} min "
        f"(processes' log: {run.log}; infrastructure's logs: {run.root})"
    )
    if ok:
        shutil.rmtree(run.root, ignore_errors=True)
    else:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
