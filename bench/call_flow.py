"""A thousand calls through the whole flow, driven the way Twilio drives it.

Each call: the inbound webhook; the dial-out job (a real rq worker) against a fake Twilio REST API
on a real HTTP server; then one of what happens in production, on a timeline with the hold
heartbeat (the conference's waitUrl) fetched while the caller waits alone:

- answered: the person rung hears the whisper and presses 1; either side may join first; Warns
  (some played, some failed); then the caller or the person hangs up;
- early answer and leave: the person accepts and joins, and leaves, a first conference while the
  caller still hears the greeting; the caller then waits in a fresh one;
- a machine answers (no key), the person declines (another key), nobody answers (or busy);
- the caller leaves during the greeting, while waiting, or while the person hears the whisper;
- the worker loses the dial-out (the hold heartbeat, at its deadline, must move the caller on);
- the caller hears a message that ends the call.

A model of Twilio follows the TwiML callguard returns and the REST requests it makes (who is in
each conference; ``endConferenceOnExit`` ends it for everyone; a call update takes the caller out
of their conference; a leg stopped stops ringing) and sends the conference events and status
callbacks Twilio would: some twice, some out of order, some late. Status callbacks of the callers
come in shuffled order across calls at the end (those of a caller who hangs up early, mostly at
once).

Prints four figures that must be 0 (callers left waiting with nobody, legs left in a conference
alone, allowances used by calls that reached no person, Warns recorded as played that did not),
contacts and talk time counted against what the callbacks said, allowances counted against the
calls put together, and duplicate dial-outs; for a figure that is not 0, the log of its first call
(every request Twilio sent for it, every REST request callguard made). Exit 1 on any mismatch.
Needs PostgreSQL and Redis (`make bench`).
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree

import time_machine
from sqlalchemy import select
from twilio.request_validator import RequestValidator
from werkzeug.serving import make_server

from bench import servers
from bench.inbound import BASE, TOKEN, app_for, fresh_database
from restrictions import counting
from restrictions.lifecycle import Actor, add_restriction, create_customer
from restrictions.models import AgentAction, Call
from restrictions.staff import create_user
from telephony import handover
from telephony.database import database
from telephony.redis_store import queue, queues
from telephony.worker import BurstWorker, take_calls
from tests.fake_twilio import FakeTwilio

CALLS = int(os.environ.get("BENCH_CALLS", "1000"))
CUSTOMERS = 200
SEED = int(os.environ.get("BENCH_SEED", "7"))
START = datetime(2026, 6, 2, 9, 0, tzinfo=UTC)  # a Tuesday, 10:00 BST
ACCOUNT = "AC" + "0" * 32
LINE = "+441332000000"
EVERY_DAY = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

# What happens to a call put through to a conference (a message is what the inbound TwiML says).
FATES = {
    "answered": 36,
    "early-answer": 9,
    "machine": 6,
    "declines": 6,
    "no-answer": 8,
    "leaves-greeting": 8,
    "leaves-waiting": 8,
    "leaves-whisper": 8,
    "worker-lost": 6,
}
LEAVES = ("leaves-greeting", "leaves-waiting", "leaves-whisper")
REORDER = 0.2  # a burst of conference events delivered in another order
HOLD = 0.04  # a conference event delivered after the next ones
DUPLICATE = 0.1  # a conference event or status callback delivered twice
MAX_BEATS = 40  # hold heartbeats for one wait before the model gives up on callguard


@dataclass
class Conference:
    """One Twilio conference (a ConferenceSid) named after the caller, as the model sees it."""

    sid: str
    caller: str
    members: set[str] = field(default_factory=set)
    enders: set[str] = field(default_factory=set)  # joined with endConferenceOnExit="true"
    had: set[str] = field(default_factory=set)  # everyone who was ever in it
    started: bool = False
    ended: bool = False
    sequence: int = 0


@dataclass
class Plan:
    sid: str
    caller: str
    fate: str
    seconds: int
    events: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    # the model of the caller's side
    phase: str = "greeting"  # greeting, conference, after (its Dial ended), moved, gone
    twiml: str = ""  # what the inbound webhook answered
    wait_url: str = ""
    after_url: str = ""
    conferences: list[Conference] = field(default_factory=list)
    caller_conference: Conference | None = None
    moved: bool = False  # callguard updated the caller's call with new TwiML
    hung_up: bool = False
    late_status: bool = False  # the caller's status callbacks all come late
    beat_at: float | None = None  # when Twilio next fetches the waitUrl
    beat_url: str = ""
    beats: int = 0
    # the model of the leg rung for the caller
    leg: str | None = None
    leg_state: str = "none"  # ringing, whisper, in, ended
    leg_conference: Conference | None = None
    leg_stopped: bool = False  # callguard asked Twilio to stop it
    late_leg: bool = False  # the leg's final status callback comes late
    whisper_url: str = ""
    accept_url: str = ""
    status_url: str = ""
    kind: str = "agent"
    ring: int = 30
    together: bool = False  # the caller and a person who accepted were in at once
    warns: list[bool] = field(default_factory=list)  # each Warn callguard took: played?
    announced: int = 0  # announcements callguard asked Twilio for
    settled: int = 0  # announcement outcomes Twilio has sent
    start: float = 0.0
    log: list[str] = field(default_factory=list)  # what Twilio sent and did, for a report

    def running(self) -> Conference | None:
        """The conference named ``cg-<caller>`` in progress (a join creates one otherwise)."""
        if self.conferences and not self.conferences[-1].ended:
            return self.conferences[-1]
        return None

    def waiting(self) -> bool:
        """The caller is in a conference nobody has started: Twilio plays them the waitUrl."""
        conf = self.caller_conference
        return self.phase == "conference" and conf is not None and not conf.started


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


def seed(app: Any) -> tuple[dict[str, int], str]:
    """The customers (a sixth of them on a weekly allowance that never runs out) and a
    supervisor, the day before the calls (each restriction's notice sent then, so it is in
    force); returns the limited customers (number → id) and the supervisor's API token."""
    notice = {"notice_sent_on": (START - timedelta(days=1)).date().isoformat()}
    kinds = [None, None, "limited_contact", "warning", "spoc", "written_only"]
    limited: dict[str, int] = {}
    with app.app_context(), database(app).sessions() as sess:
        for i in range(CUSTOMERS):
            number = f"+4474003{i:05d}"
            c = create_customer(
                sess,
                Actor(None, "bench"),
                reference=f"F-{i}",
                name=f"P {i}",
                phone_numbers=[number],
            )
            kind = kinds[i % len(kinds)]
            if kind == "limited_contact":
                body: dict[str, Any] = {
                    **notice,
                    "kind": kind,
                    "reason": "r",
                    "windows": [{"days": EVERY_DAY, "start": "00:00", "end": "23:59"}],
                    "max_calls_per_week": 1000,
                }
                add_restriction(sess, Actor(None, "bench"), c, body)
                limited[number] = c.id
            elif kind:
                body = {**notice, "kind": kind, "reason": "r", "spoc": "+441332000555"}
                add_restriction(sess, Actor(None, "bench"), c, body)
        _, token = create_user(sess, "bench.supervisor", "supervisor")
        sess.commit()
    return limited, token


def run_jobs(app: Any) -> None:
    with app.app_context():
        both = queues(app)
        take_calls(app, both[0].connection, burst=True)
        BurstWorker(both, connection=both[0].connection).work(burst=True, logging_level="WARNING")


def xml_of(response: Any) -> ElementTree.Element:
    return ElementTree.fromstring(response.get_data(as_text=True))


def path_of(url: str) -> str:
    return url.removeprefix(BASE)


class Twilio:
    """Twilio's side of every call: the model, the webhooks it sends, and what it does with the
    REST requests callguard makes (read from the fake as they arrive)."""

    def __init__(
        self, app: Any, client: Any, fake: FakeTwilio, clock: Any, rng: random.Random, token: str
    ) -> None:
        self.app, self.client, self.fake, self.clock, self.rng = app, client, fake, clock, rng
        self.auth = {"Authorization": f"Bearer {token}"}
        self.calls: dict[str, Plan] = {}
        self.legs: dict[str, Plan] = {}
        self.conferences: dict[str, Conference] = {}
        self.seen = 0  # REST requests already acted on
        self.outbox: list[dict[str, str]] = []  # conference events to send
        self.held: list[dict[str, str]] = []  # conference events that come later
        self.due: list[Callable[[], None]] = []  # other requests Twilio makes now
        self.late: list[tuple[Plan, str, dict[str, str]]] = []  # callbacks that come at the end
        self.stats: Counter[str] = Counter()

    # --- requests to callguard, each noted on the call's log ------------------------------------

    def note(self, m: Plan, text: str) -> None:
        m.log.append(f"{time.time() - m.start:+8.2f}s {text}")

    def send(self, m: Plan, path: str, form: dict[str, str]) -> Any:
        """A signed webhook request as Twilio makes it."""
        response = signed(self.client, path, form)
        keys = ("CallSid", "CallStatus", "Digits", "StatusCallbackEvent", "SequenceNumber")
        shown = " ".join(f"{k}={form[k]}" for k in keys if k in form)
        if "ConferenceSid" in form:
            shown = f"{form['ConferenceSid'][:8]}… {shown} Timestamp={form.get('Timestamp')}"
        answer = str(response.status_code)
        if response.mimetype == "text/xml":
            root = ElementTree.fromstring(response.get_data(as_text=True))
            answer += " " + ",".join(
                child.tag + ("/Conference" if child.find("Conference") is not None else "")
                for child in root
            )
        self.note(m, f"POST {path.split('?')[0]} {shown} -> {answer}")
        return response

    # --- time and the hold heartbeat ----------------------------------------------------------

    def shift_to(self, at: float) -> None:
        ahead = at - time.time()
        if ahead > 0:
            self.clock.shift(timedelta(seconds=ahead))

    def advance(self, m: Plan, at: float) -> None:
        """Move the clock to ``at``, fetching the waitUrl whenever Twilio would on the way."""
        while m.beat_at is not None and m.beat_at <= at and m.waiting():
            if m.beats >= MAX_BEATS:
                m.beat_at = None
                break
            self.shift_to(m.beat_at)
            self.beat(m)
            self.pump()
        self.shift_to(at)

    def beat(self, m: Plan) -> None:
        form = self.caller_form(m, "in-progress")
        root = xml_of(self.send(m, path_of(m.beat_url), form))
        m.beats += 1
        self.stats["hold heartbeats"] += 1
        pause = root.find("Pause")
        redirect = root.find("Redirect")
        if redirect is None or not redirect.text:
            m.beat_at = None
            return
        m.beat_url = redirect.text
        m.beat_at = time.time() + float(pause.get("length", "1") if pause is not None else 1)

    def settle(self, m: Plan) -> None:
        """The caller waits on (if they do): heartbeats until callguard moves them on."""
        while m.waiting() and m.beat_at is not None:
            self.advance(m, m.beat_at)

    # --- what Twilio sends --------------------------------------------------------------------

    def caller_form(self, m: Plan, status: str, **extra: str) -> dict[str, str]:
        return {
            "AccountSid": ACCOUNT,
            "CallSid": m.sid,
            "From": m.caller,
            "To": LINE,
            "CallStatus": status,
            "Direction": "inbound",
            **extra,
        }

    def leg_form(self, m: Plan, status: str, **extra: str) -> dict[str, str]:
        assert m.leg is not None
        return {
            "AccountSid": ACCOUNT,
            "CallSid": m.leg,
            "From": LINE,
            "To": "+441332000100",
            "CallStatus": status,
            "Direction": "outbound-api",
            **extra,
        }

    def event(self, conf: Conference, kind: str, who: str | None = None, **extra: str) -> None:
        conf.sequence += 1
        form = {
            "AccountSid": ACCOUNT,
            "ConferenceSid": conf.sid,
            "FriendlyName": f"cg-{conf.caller}",
            "StatusCallbackEvent": kind,
            "SequenceNumber": str(conf.sequence),
            "Timestamp": format_datetime(datetime.now(UTC)),
            **extra,
        }
        if who:
            form["CallSid"] = who
        self.outbox.append(form)

    def deliver(self, form: dict[str, str]) -> None:
        m = self.calls[form["FriendlyName"].removeprefix("cg-")]
        response = self.send(m, "/twilio/conference/events", form)
        self.stats["conference events"] += 1
        if response.status_code != 204:
            self.stats["conference events refused"] += 1

    def flush(self, final: bool = False) -> None:
        """Send the conference events: some in another order, some twice, some later."""
        batch = self.held + self.outbox
        self.held, self.outbox = [], []
        if len(batch) > 1 and self.rng.random() < REORDER:
            self.rng.shuffle(batch)
            self.stats["bursts reordered"] += 1
        for form in batch:
            if not final and self.rng.random() < HOLD:
                self.held.append(form)
                self.stats["events held back"] += 1
                continue
            self.deliver(form)
            if self.rng.random() < DUPLICATE:
                self.stats["events sent twice"] += 1
                if final or self.rng.random() < 0.5:
                    self.deliver(form)
                else:
                    self.held.append(form)

    def status(self, m: Plan, path: str, form: dict[str, str]) -> None:
        """A status callback (the caller's or a leg's), sometimes twice; then the jobs run."""
        self.send(m, path, form)
        if self.rng.random() < DUPLICATE:
            self.send(m, path, form)
        run_jobs(self.app)

    def pump(self, final: bool = False) -> None:
        """Act on callguard's REST requests and send what follows, until nothing does."""
        for _ in range(200):
            self.react()
            if not self.outbox and not self.due and not (final and self.held):
                return
            self.flush(final)
            due, self.due = self.due, []
            for request in due:
                request()
        raise RuntimeError("the simulation did not settle")

    # --- the model: conferences --------------------------------------------------------------

    def enter(self, m: Plan, who: str, dial: ElementTree.Element) -> None:
        """``who`` joins the conference named in ``dial`` (a <Conference>), as its TwiML says."""
        conf = m.running()
        if conf is None:
            conf = Conference(f"CF{self.rng.getrandbits(128):032x}", m.sid)
            m.conferences.append(conf)
            self.conferences[conf.sid] = conf
        conf.members.add(who)
        conf.had.add(who)
        if dial.get("endConferenceOnExit") == "true":
            conf.enders.add(who)
        self.event(conf, "participant-join", who)
        if dial.get("startConferenceOnEnter", "true") == "true" and not conf.started:
            conf.started = True
            self.event(conf, "conference-start")
        if who == m.sid:
            m.phase, m.caller_conference = "conference", conf
            if not conf.started:  # Twilio fetches the waitUrl as the caller starts waiting
                m.beat_at, m.beat_url = time.time(), m.wait_url
        else:
            m.leg_state, m.leg_conference = "in", conf
        if conf.started:
            m.beat_at = None
        if m.sid in conf.members and m.leg in conf.members:
            m.together = True

    def leave(self, m: Plan, conf: Conference, who: str) -> None:
        """``who`` leaves; one who joined with endConferenceOnExit ends it for everyone."""
        if who not in conf.members:
            return
        conf.members.discard(who)
        self.event(conf, "participant-leave", who)
        if who == m.sid:
            m.beat_at = None
        if who in conf.enders or not conf.members:
            self.end_conference(m, conf)

    def end_conference(self, m: Plan, conf: Conference) -> None:
        for other in sorted(conf.members):
            conf.members.discard(other)
            self.event(conf, "participant-leave", other)
            self.dial_ended(m, other)
        conf.ended = True
        self.event(conf, "conference-end")

    def dial_ended(self, m: Plan, who: str) -> None:
        """The conference ended for ``who``: their <Dial> is over and their TwiML goes on."""
        if who == m.sid:
            m.phase, m.beat_at = "after", None
            self.due.append(lambda: self.after_conference(m))
        else:
            self.leg_ended(m, "completed")  # join_caller: <Hangup/> after the conference

    def after_conference(self, m: Plan) -> None:
        if m.phase != "after" or not m.after_url:
            return
        form = self.caller_form(m, "in-progress", DialCallStatus="completed")
        root = xml_of(self.send(m, path_of(m.after_url), form))
        dial = root.find("./Dial/Conference")
        if dial is not None:  # back into a conference (not what callguard does today)
            self.stats["after-conference into a conference"] += 1
            self.enter(m, m.sid, dial)

    # --- the model: the leg rung for the caller ---------------------------------------------------

    def leg_ended(self, m: Plan, status: str) -> None:
        if m.leg is None or m.leg_state == "ended":
            return
        m.leg_state = "ended"
        extra = {"CallDuration": str(self.rng.randrange(1, 300))} if status == "completed" else {}
        form = self.leg_form(m, status, **extra)
        if m.late_leg:
            self.late.append((m, path_of(m.status_url), form))
        else:
            self.due.append(lambda: self.status(m, path_of(m.status_url), form))

    # --- callguard's REST requests -----------------------------------------------------------

    def react(self) -> None:
        while self.seen < len(self.fake.requests):
            r = self.fake.requests[self.seen]
            self.seen += 1
            if r.method != "POST":
                continue
            parts = r.path.rstrip("/").split("/")
            sid = parts[-1].removesuffix(".json")
            self.note_rest(r, parts, sid)
            if parts[-1] == "Calls.json":
                self.dialled(r.param("Url") or "", r)
            elif len(parts) >= 2 and parts[-2] == "Calls" and sid in self.calls:
                self.caller_updated(self.calls[sid], r.param("Twiml"), r.param("Status"))
            elif len(parts) >= 2 and parts[-2] == "Calls" and sid in self.legs:
                self.leg_updated(self.legs[sid], sid, r.param("Status"))
            elif len(parts) >= 2 and parts[-2] == "Conferences" and sid in self.conferences:
                conf = self.conferences[sid]
                m = self.calls[conf.caller]
                if r.param("AnnounceUrl"):
                    m.announced += 1
                elif r.param("Status") == "completed" and not conf.ended:
                    self.end_conference(m, conf)

    def note_rest(self, r: Any, parts: list[str], sid: str) -> None:
        m: Plan | None = None
        if parts[-1] == "Calls.json":
            query = parse_qs(urlsplit(r.param("Url") or "").query)
            m = self.calls.get(query.get("call_sid", [""])[0])
        elif sid in self.calls or sid in self.legs:
            m = self.calls.get(sid) or self.legs[sid]
        elif sid in self.conferences:
            m = self.calls[self.conferences[sid].caller]
        if m is not None:
            params = ", ".join(
                f"{k}" if k == "Twiml" else f"{k}={v[0][:60]}" for k, v in r.form.items()
            )
            self.note(m, f"  REST {'/'.join(parts[-2:])} ({params})")

    def dialled(self, url: str, r: Any) -> None:
        query = parse_qs(urlsplit(url).query)
        m = self.calls.get(query.get("call_sid", [""])[0])
        if m is None or r.answer is None:
            return
        leg = str(r.answer["sid"])
        self.legs[leg] = m
        if m.leg is not None:
            return  # a second dial-out for one caller: counted below
        m.leg, m.leg_state = leg, "ringing"
        m.kind = query.get("kind", ["agent"])[0]
        m.whisper_url, m.status_url = url, r.param("StatusCallback") or ""
        m.ring = int(r.param("Timeout") or 30)

    def caller_updated(self, m: Plan, twiml: str | None, status: str | None) -> None:
        if twiml is not None:  # moved on: out of the conference, or the greeting replaced
            m.moved = True
            if m.phase == "conference" and m.caller_conference is not None:
                m.phase = "moved"
                self.leave(m, m.caller_conference, m.sid)
            elif m.phase in ("greeting", "after"):
                m.phase = "moved"
        elif status in ("completed", "canceled") and m.phase != "gone":
            was, m.phase = m.phase, "gone"
            if was == "conference" and m.caller_conference is not None:
                self.leave(m, m.caller_conference, m.sid)

    def leg_updated(self, m: Plan, leg: str, status: str | None) -> None:
        if leg != m.leg:
            return
        m.leg_stopped = True
        if status == "canceled" and m.leg_state == "ringing":
            self.leg_ended(m, "canceled")
        elif status == "completed" and m.leg_state == "in" and m.leg_conference is not None:
            self.leave(m, m.leg_conference, leg)
            self.leg_ended(m, "completed")
        elif status == "completed" and m.leg_state in ("ringing", "whisper"):
            self.leg_ended(m, "completed" if m.leg_state == "whisper" else "canceled")

    # --- what the people on the call do ------------------------------------------------------

    def caller_join(self, m: Plan, _: Any) -> None:
        """The greeting ends: the caller's <Dial><Conference> begins."""
        if m.phase != "greeting":
            return
        root = ElementTree.fromstring(m.twiml)
        dial = root.find("./Dial/Conference")
        assert dial is not None
        self.enter(m, m.sid, dial)

    def caller_hangup(self, m: Plan, _: Any) -> None:
        if m.phase == "gone":
            return
        was, m.phase, m.hung_up, m.beat_at = m.phase, "gone", True, None
        if was == "conference" and m.caller_conference is not None:
            self.leave(m, m.caller_conference, m.sid)
        if m.fate in LEAVES and not m.late_status:  # Twilio says so at once
            final = [form for status, form in m.events if status == "completed"][0]
            self.due.append(lambda: self.status(m, "/twilio/voice/status", final))

    def leg_answer(self, m: Plan, _: Any) -> None:
        """The person (or a machine) answers: Twilio fetches the whisper."""
        if m.leg_state != "ringing":
            return
        self.send(m, path_of(m.status_url), self.leg_form(m, "in-progress"))
        root = xml_of(self.send(m, path_of(m.whisper_url), self.leg_form(m, "in-progress")))
        gather = root.find("Gather")
        if gather is not None and gather.get("action"):
            m.leg_state, m.accept_url = "whisper", gather.get("action", "")
        else:
            self.leg_ended(m, "completed")  # told the caller has gone: hangs up

    def leg_key(self, m: Plan, digits: str | None) -> None:
        """A key (or none: the <Gather> times out, the words after it, then <Hangup/>)."""
        if m.leg_state != "whisper":
            return
        if digits is None:
            self.leg_ended(m, "completed")
            return
        form = self.leg_form(m, "in-progress", Digits=digits)
        root = xml_of(self.send(m, path_of(m.accept_url), form))
        dial = root.find("./Dial/Conference")
        if dial is None:
            self.leg_ended(m, "completed")
            return
        assert m.leg is not None
        self.enter(m, m.leg, dial)

    def leg_hangup(self, m: Plan, _: Any) -> None:
        if m.leg_state == "in" and m.leg_conference is not None and m.leg is not None:
            self.leave(m, m.leg_conference, m.leg)
            self.leg_ended(m, "completed")
        elif m.leg_state == "whisper":
            self.leg_ended(m, "completed")

    def leg_unanswered(self, m: Plan, status: str) -> None:
        if m.leg_state == "ringing":
            self.leg_ended(m, status)

    def warn(self, m: Plan, plays: bool) -> None:
        """A supervisor presses Warn on the connected call (Twilio will play it, or not)."""
        conf = m.caller_conference
        if m.phase != "conference" or conf is None or conf.ended or m.leg not in conf.members:
            return
        asked = m.announced
        response = self.client.post(f"/api/v1/calls/{m.sid}/warn", headers=self.auth)
        self.react()
        if response.status_code == 200 and m.announced > asked:
            m.warns.append(plays)
        else:
            self.stats[f"Warns refused ({response.status_code})"] += 1

    def announced(self, m: Plan, _: Any) -> None:
        """Twilio says how the oldest Warn it was asked to play went."""
        conf = m.caller_conference
        if m.settled >= len(m.warns) or conf is None or conf.ended:
            return
        plays = m.warns[m.settled]
        m.settled += 1
        if plays:
            self.event(conf, "announcement-end")
        else:
            reason = "Failed to retrieve the announcement"
            self.event(conf, "announcement-fail", ReasonAnnouncementFailed=reason)

    # --- one call ----------------------------------------------------------------------------

    def script(self, m: Plan) -> list[tuple[float, Callable[[Plan, Any], None], Any]]:
        """What happens when (seconds after the inbound webhook), by the call's fate."""
        r = self.rng
        greet = r.uniform(3, 10)
        ops: list[tuple[float, Callable[[Plan, Any], None], Any]] = []
        if m.fate == "answered":
            answer = r.uniform(1, 15)
            accept = answer + r.uniform(2, 8)
            ops += [(answer, self.leg_answer, None), (accept, self.leg_key, "1")]
            at = max(greet, accept)
            talk = r.uniform(10, 240)
            if r.random() < 0.4:
                for _ in range(1 if r.random() < 0.8 else 2):
                    at += r.uniform(2, 20)
                    ops.append((at, self.warn, r.random() < 0.6))
                    at += r.uniform(1, 6)
                    ops.append((at, self.announced, None))
            end = max(at + 1, max(greet, accept) + talk)
            ops.append((end, self.caller_hangup if r.random() < 0.5 else self.leg_hangup, None))
        elif m.fate == "early-answer":
            answer = r.uniform(0.5, 4)
            accept = answer + r.uniform(0.3, 5)
            if r.random() < 0.3:  # 1 pressed by mistake and hung up at once: all in a moment
                left = accept + r.uniform(0.1, 0.8)
                greet = left + r.uniform(0.05, 1)
            else:
                left = accept + r.uniform(0.2, 4)
                greet = left + r.uniform(0.05, 3)
            ops += [
                (answer, self.leg_answer, None),
                (accept, self.leg_key, "1"),
                (left, self.leg_hangup, None),
            ]
            m.late_leg = r.random() < 0.5  # then only the hold heartbeat can move them on
        elif m.fate in ("machine", "declines"):
            answer = r.uniform(1, 20)
            key = r.choice([None, ""]) if m.fate == "machine" else r.choice(["2", "2", "9", "*"])
            ops += [(answer, self.leg_answer, None), (answer + r.uniform(3, 12), self.leg_key, key)]
            m.late_leg = r.random() < 0.2
        elif m.fate == "no-answer":
            status = r.choices(["no-answer", "busy", "failed"], [8, 1, 1])[0]
            at = float(m.ring) if status == "no-answer" else r.uniform(1, 5)
            ops.append((at, self.leg_unanswered, status))
            m.late_leg = r.random() < 0.15
        elif m.fate == "leaves-greeting":
            left = r.uniform(0.5, greet - 0.1)
            variant = r.choice(["ringing", "whisper", "joined"])
            if variant != "ringing":
                answer = r.uniform(0.1, left * 0.5)
                ops.append((answer, self.leg_answer, None))
                if variant == "joined":  # accepted at once, alone in the conference
                    ops.append((r.uniform(answer, left), self.leg_key, "1"))
            ops.append((left, self.caller_hangup, None))
            m.late_status = r.random() < 0.15
        elif m.fate == "leaves-waiting":
            ops.append((greet + r.uniform(0.5, 15), self.caller_hangup, None))
            m.late_status = r.random() < 0.15
        elif m.fate == "leaves-whisper":
            answer = greet + r.uniform(0.5, 10)
            left = answer + r.uniform(0.5, 6)
            ops += [(answer, self.leg_answer, None), (left, self.caller_hangup, None)]
            ops.append((left + r.uniform(0.2, 3), self.leg_key, "1"))  # if it still can
            m.late_status = r.random() < 0.15
        ops.append((greet, self.caller_join, None))
        return sorted(ops, key=lambda op: op[0])

    def play(self, m: Plan) -> None:
        for at, action, arg in self.script(m):
            self.advance(m, m.start + at)
            action(m, arg)
            self.pump()
        self.settle(m)
        self.pump(final=True)
        self.settle(m)


def main() -> None:
    for name in ("twilio.http_client", "werkzeug"):
        logging.getLogger(name).setLevel(logging.WARNING)
    rng = random.Random(SEED)
    fresh_database()
    fakes = fake_twilio()
    fake = next(fakes)
    app = app_for(TWILIO_API_BASE_URL=fake.url, TWILIO_REST_TIMEOUT_SECONDS=2)
    servers.empty_redis(app.extensions["callguard.redis"])
    with time_machine.travel(START - timedelta(days=1)):
        limited, token = seed(app)
    client = app.test_client()
    plans: list[Plan] = []
    for n in range(CALLS):
        i = rng.randrange(CUSTOMERS + 50)  # some callers are not customers
        caller = f"+4474003{i:05d}" if i < CUSTOMERS else f"+4479003{i:05d}"
        fate = rng.choices(list(FATES), list(FATES.values()))[0]
        plans.append(Plan(f"CA{n:032x}", caller, fate, rng.randrange(5, 900)))

    started = time.perf_counter()
    conference_calls: set[str] = set()
    with time_machine.travel(START, tick=True) as clock:
        twilio = Twilio(app, client, fake, clock, rng, token)
        for plan in plans:
            twilio.calls[plan.sid] = plan
            plan.start = time.time()
            params = twilio.caller_form(plan, "ringing")
            response = twilio.send(plan, "/twilio/voice/incoming", params)
            xml = response.get_data(as_text=True)
            root = ElementTree.fromstring(xml)
            dial = root.find("./Dial")
            conference = root.find("./Dial/Conference")
            if dial is None or conference is None:
                plan.fate = "message"
            else:
                conference_calls.add(plan.sid)
                plan.after_url = dial.get("action", "")
                plan.wait_url = conference.get("waitUrl", "")
            plan.twiml = xml
            if plan.fate == "worker-lost":
                with app.app_context():  # the worker died with the call
                    redis = queue(app).connection
                    ((newest, _),) = cast(
                        list[tuple[bytes, Any]], redis.xrevrange(handover.CALLS, count=1)
                    )
                    redis.xdel(handover.CALLS, newest)
            else:
                run_jobs(app)
            seconds = plan.seconds if plan.fate != "message" else rng.randrange(20, 60)
            plan.seconds = seconds
            statuses: list[tuple[str, int, dict[str, str]]] = [
                ("ringing", 1, {}),
                ("in-progress", 2, {}),
                ("completed", 3, {"CallDuration": str(seconds)}),
            ]
            if rng.random() < 0.3:
                statuses.append(("completed", 3, {"CallDuration": str(seconds)}))  # a retry
            for status, seq, extra in statuses:
                form = twilio.caller_form(plan, status, SequenceNumber=str(seq), **extra)
                plan.events.append((status, form))
            twilio.pump()
            if plan.fate != "message":
                twilio.play(plan)
            clock.shift(timedelta(seconds=rng.randrange(1, 30)))
        # status callbacks arrive late, shuffled across calls (and the legs' that came late)
        late = [(p, "/twilio/voice/status", form) for p in plans for _, form in p.events]
        late += twilio.late
        rng.shuffle(late)
        for plan, path, form in late:
            twilio.send(plan, path, form)
        run_jobs(app)
        twilio.pump(final=True)
        for plan in plans:
            twilio.settle(plan)
    elapsed = time.perf_counter() - started

    # 1. callers waiting in a conference with nobody, never moved on, still on the line
    waiting = sorted(
        p.sid
        for p in plans
        if p.phase == "conference"
        and p.caller_conference is not None
        and not p.caller_conference.ended
        and p.caller_conference.members == {p.sid}
        and not p.moved
        and not p.hung_up
    )
    # 2. one side gone and the other still in; a leg still ringing for a caller who has gone
    alone: list[str] = []
    for p in plans:
        for conf in p.conferences:
            if conf.ended or not conf.members:
                continue
            if p.sid not in conf.members or (p.leg in conf.had and p.leg not in conf.members):
                alone.append(f"{p.sid} in {conf.sid}")
        if p.leg_state in ("ringing", "whisper") and p.phase != "conference":
            alone.append(f"{p.sid}'s leg {p.leg} ({p.leg_state}, never stopped)")
    # 3. allowances used (Redis, and PostgreSQL's backstop) by calls that reached nobody
    redis = app.extensions["callguard.redis"]
    by_sid = {p.sid: p for p in plans}
    with app.app_context(), database(app).sessions() as sess:
        answered_rows = set(
            sess.scalars(select(Call.call_sid).where(Call.answered_at.is_not(None)))
        )
        warn_rows = sess.execute(
            select(Call.call_sid, AgentAction.outcome)
            .join(Call, AgentAction.call_id == Call.id)
            .where(AgentAction.kind == "warn")
            .order_by(AgentAction.id)
        ).all()
    limited_calls = {p.sid for p in plans if p.caller in limited}
    used: set[str] = set()
    for customer_id in set(limited.values()):
        for member in redis.zrange(counting.allowance_key(customer_id), 0, -1):
            used.add(member.decode() if isinstance(member, bytes) else str(member))
    used |= answered_rows & limited_calls
    no_person = sorted(sid for sid in used if not by_sid[sid].together)
    expected_allowances = {sid for sid in limited_calls if by_sid[sid].together}
    # 4. Warns recorded as played whose announcement failed
    outcomes: dict[str, list[str]] = {}
    for sid, outcome in warn_rows:
        outcomes.setdefault(sid, []).append(outcome)
    false_plays = sorted(
        sid
        for sid, recorded in outcomes.items()
        for outcome, plays in zip(recorded, by_sid[sid].warns, strict=False)
        if outcome == "ok" and not plays
    )
    taken = sum(len(p.warns) for p in plans)
    played = sum(sum(p.warns) for p in plans)
    recorded = Counter(outcome for _, outcome in warn_rows)

    counted_calls: set[str] = set()
    counted_seconds = 0
    for key in redis.scan_iter(match=counting.TALK + "*"):
        for sid, seconds in redis.hgetall(key).items():
            counted_calls.add(sid.decode())
            counted_seconds += int(seconds)
    expected = {p.sid for p in plans}
    sent_seconds = sum(p.seconds for p in plans)
    dialled = []
    for r in fake.dial_outs():
        query = parse_qs(urlsplit(r.param("Url") or "").query)
        dialled.append(query.get("call_sid", [""])[0])
    dials = len(dialled)
    duplicates = dials - len(set(dialled))

    def show(label: str, value: Any, examples: list[str] | None = None) -> None:
        extra = f" {examples[:3]}" if examples else ""
        print(f"{label + ':':<58} {value}{extra}")

    fates = Counter(p.fate for p in plans)
    show("calls simulated", f"{CALLS} in {elapsed:.1f} s ({CALLS / elapsed:.0f} calls/s)")
    show("fates", ", ".join(f"{k} {v}" for k, v in sorted(fates.items())))
    show("Twilio", ", ".join(f"{k} {v}" for k, v in sorted(twilio.stats.items())))
    show("callers left waiting with nobody", f"{len(waiting)} (must be 0)", waiting)
    show(
        "legs left in a conference alone after the other side left",
        f"{len(alone)} (must be 0)",
        alone,
    )
    show(
        "allowances used by calls that reached no person",
        f"{len(no_person)} (must be 0)",
        no_person,
    )
    show("Warns recorded as played that did not", f"{len(false_plays)} (must be 0)", false_plays)
    show("allowances used", f"{len(used)} of {len(expected_allowances)} expected")
    show(
        "Warns",
        f"{taken} taken, {played} played, {taken - played} failed; recorded: "
        + ", ".join(f"{k} {v}" for k, v in sorted(recorded.items())),
    )
    show("contacts counted", f"{len(counted_calls)} of {len(expected)} expected")
    show("talk time counted", f"{counted_seconds} s of {sent_seconds} s sent")
    show("dial-outs", f"{dials} for {len(conference_calls)} calls put through")
    show("duplicate dial-outs", f"{duplicates} (must be 0)")
    ok = (
        not waiting
        and not alone
        and not no_person
        and not false_plays
        and used == expected_allowances
        and counted_calls == expected
        and counted_seconds == sent_seconds
        and duplicates == 0
    )
    show("result", "OK" if ok else "MISMATCH")
    figures = [waiting, [a.split()[0].removesuffix("'s") for a in alone], no_person, false_plays]
    for sid in dict.fromkeys(found[0] for found in figures if found):  # each figure's first
        plan = by_sid[sid]
        print(f"\n{sid} ({plan.fate}, {plan.caller}, leg {plan.leg}): what Twilio sent and did")
        for line in plan.log:
            print("  " + line)
    next(fakes, None)
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
