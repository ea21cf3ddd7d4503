"""waiting.py: a waiting caller hears hold words in their language and pace on a heartbeat,
and is moved on once: at once if the person rung came and went, else at ring time plus grace (a
SPOC's caller to voicemail, others to team-busy or the default route), whatever else is down."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree

import pytest
import time_machine
from flask import Flask

from restrictions.settings import Settings
from telephony import waiting
from telephony.config import SETTINGS
from telephony.redis_store import redis_client
from tests.calls import call_row, conference_event, conference_of, parse, spoken, status_event
from tests.fake_twilio import FakeTwilio

CUSTOMER = "+447400100001"
DEFAULT_LINE = "+441332000100"
SPOC_LINE = "+441332000555"
TUESDAY = datetime(2026, 6, 2, 9, 30, tzinfo=UTC)  # 10:30 BST; the caller starts waiting here
FIRST = "CF" + "1" * 32  # the conference the person rung joins
DATABASE_DOWN = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"
REDIS_DOWN = "redis://127.0.0.1:1/0"
HOLD_WORDS = "Thank you for holding"
TEAM_BUSY = "nobody from our team is free"
SPOC_VOICEMAIL = "Your named contact cannot take your call just now"


@contextmanager
def at(seconds: float) -> Iterator[None]:
    """``seconds`` after the caller started waiting, the clock standing still."""
    with time_machine.travel(TUESDAY + timedelta(seconds=seconds), tick=False):
        yield


def path_of(url: str | None) -> str:
    parts = urlsplit(url or "")
    assert parts.scheme == "https" and parts.netloc == "calls.example.org"
    return f"{parts.path}?{parts.query}"


def query_of(path: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(path).query).items()}


def pause_of(heard: ElementTree.Element) -> int:
    pause = heard.find("Pause")
    assert pause is not None, "a heartbeat always pauses before the next one"
    return int(pause.get("length") or 0)


class Waiting:
    """One inbound call put in its conference at TUESDAY, driven as Twilio drives it."""

    def __init__(self, twilio: Any, run_jobs: Callable[[], int], fake: FakeTwilio) -> None:
        self.twilio, self.run_jobs, self.fake = twilio, run_jobs, fake
        self.params = twilio.call_params(CUSTOMER)
        self.sid = self.params["CallSid"]
        with at(0):
            self.root = parse(twilio.post("/twilio/voice/incoming", self.params))
        conference = conference_of(self.root)
        assert conference is not None, "the caller was not put in a conference to wait"
        self.hold = path_of(conference.get("waitUrl"))

    def beat(self, seconds: float, path: str | None = None) -> ElementTree.Element:
        """Twilio fetches the waitUrl (or the heartbeat ``path`` a Redirect named)."""
        with at(seconds):
            return parse(self.twilio.post(path or self.hold, {"CallSid": self.sid}))

    def ring(self) -> str:
        """The worker rings the person for the caller; their leg's CallSid."""
        with at(0):
            self.run_jobs()
        (dial,) = self.fake.dial_outs(self.sid)
        assert dial.answer is not None
        self.whisper = path_of(dial.param("Url"))
        self.leg_status = path_of(dial.param("StatusCallback"))
        return str(dial.answer["sid"])

    def moves(self) -> list[ElementTree.Element]:
        """What the caller was moved on to: the REST updates of their call Twilio accepted."""
        updates = self.fake.posts(f"/Calls/{self.sid}.json")
        return [ElementTree.fromstring(r.param("Twiml") or "") for r in updates if r.answer]

    def stops(self, leg: str) -> list[str | None]:
        return [r.param("Status") for r in self.fake.posts(f"/Calls/{leg}.json")]


@pytest.fixture
def call(
    twilio: Any, run_jobs: Callable[[], int], fake_twilio: FakeTwilio
) -> Callable[[], Waiting]:
    return lambda: Waiting(twilio, run_jobs, fake_twilio)


def deadline(settings: Settings, *, spoc: bool = False) -> int:
    ring = settings.spoc_ring_seconds if spoc else settings.agent_ring_seconds
    return ring + settings.hold_grace_seconds


# --- 1. what a waiting caller hears, and when --------------------------------------------------


def test_the_caller_hears_hold_words_in_their_language_and_pace_every_third_heartbeat(
    call: Callable[[], Waiting],
    fake_twilio: FakeTwilio,
    make_customer: Callable[..., Any],
) -> None:
    make_customer(language="cy-GB", adjustments={"slow_speech": True})
    c = call()
    first = query_of(c.hold)
    assert (first["kind"], first["lang"], first["slow"], first["n"]) == ("agent", "cy-GB", "1", "0")
    path, words = c.hold, []
    for n in range(4):
        heard = c.beat(10 * n, path)
        assert [e.tag for e in heard][-2:] == ["Pause", "Redirect"]
        path = path_of(heard.findtext("Redirect"))
        # the next heartbeat: the same caller, route, start and listener, one beat on
        assert query_of(path) == first | {"n": str(n + 1)}
        says = heard.findall("Say")
        words.append(bool(says))
        for say in says:
            assert say.get("language") == "cy-GB"
            prosody = say.find("prosody")
            assert prosody is not None and prosody.get("rate") == "slow"
            assert (prosody.text or "").startswith("Diolch am aros")  # "thank you for holding"
    assert words == [True, False, False, True]  # words now and then, not over and over
    assert fake_twilio.posts() == []  # waiting in time: nobody is moved


def test_each_pause_ends_by_the_deadline_so_the_caller_is_never_kept_past_it(
    call: Callable[[], Waiting], fake_twilio: FakeTwilio, settings: Settings
) -> None:
    c = call()
    due = deadline(settings)
    assert pause_of(c.beat(0)) == waiting.HEARTBEAT_SECONDS
    assert pause_of(c.beat(due - 4)) == 4  # the next heartbeat lands on the deadline
    assert pause_of(c.beat(due - 0.5)) == 1  # never a pause of nothing
    assert fake_twilio.posts() == []


# --- 2. when the wait runs out -------------------------------------------------------------------


def test_with_nobody_rung_the_caller_is_put_through_to_the_default_route_at_the_deadline(
    call: Callable[[], Waiting], fake_twilio: FakeTwilio, settings: Settings
) -> None:
    c = call()  # the worker is down: nobody is rung
    due = deadline(settings)
    c.beat(due - 1)
    assert fake_twilio.posts() == []
    heard = c.beat(due)
    assert [e.tag for e in heard] == ["Pause", "Redirect"]  # no words over the move
    assert pause_of(heard) == waiting.HEARTBEAT_SECONDS
    (moved,) = c.moves()
    dial = moved.find("Dial")
    assert dial is not None and dial.findtext("Number") == DEFAULT_LINE
    assert dial.get("timeout") == str(settings.agent_ring_seconds)
    result = path_of(dial.get("action"))  # nobody answering there is not the end of the call
    assert result.startswith("/twilio/voice/dial-result?")
    assert query_of(result)["call_sid"] == c.sid
    gather = moved.find("Gather")
    assert gather is not None and "press 1" in spoken(moved)  # emergency repairs offered
    assert query_of(path_of(gather.get("action")))["msg"] == "team_busy"


def test_an_agent_rung_and_not_answered_by_the_deadline_leaves_the_caller_the_team_busy_message(
    app: Flask,
    call: Callable[[], Waiting],
    make_customer: Callable[..., Any],
    settings: Settings,
) -> None:
    make_customer(language="pl-PL")
    c = call()
    leg = c.ring()
    due = deadline(settings)
    c.beat(due - 1)
    assert c.moves() == [] and c.stops(leg) == []
    c.beat(due)
    (busy,) = c.moves()
    assert "nikt z naszego zespołu" in spoken(busy)  # the team-busy message, in Polish
    assert {s.get("language") for s in busy.iter("Say")} == {"pl-PL"}
    assert "999" in spoken(busy) and busy.find("Dial") is None
    assert c.stops(leg) == ["canceled", "completed"]  # nobody is left ringing for nobody
    assert call_row(app, c.sid).moved_on_at is not None


def test_a_spoc_caller_goes_to_voicemail_at_the_spocs_own_deadline_never_to_the_team(
    call: Callable[[], Waiting],
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
    settings: Settings,
) -> None:
    restrict(make_customer(), kind="spoc", spoc=SPOC_LINE)
    c = call()
    assert query_of(c.hold)["ring"] == str(settings.spoc_ring_seconds)
    leg = c.ring()
    due = deadline(settings, spoc=True)
    c.beat(due - 1)
    assert c.moves() == []
    c.beat(due)
    (voicemail,) = c.moves()
    assert voicemail.find("Record") is not None and voicemail.find("Dial") is None
    assert SPOC_VOICEMAIL in spoken(voicemail) and TEAM_BUSY not in spoken(voicemail)
    assert c.stops(leg) == ["canceled", "completed"]


def test_the_grace_after_the_ring_time_is_the_organisations_setting(
    app: Flask, call: Callable[[], Waiting], settings: Settings
) -> None:
    app.extensions[SETTINGS] = replace(settings, hold_grace_seconds=5)  # put back by `app`
    c = call()
    c.beat(settings.agent_ring_seconds + 4)
    assert c.moves() == []
    c.beat(settings.agent_ring_seconds + 5)
    assert len(c.moves()) == 1


# --- 3. what the conference says about the person rung -------------------------------------------


def test_a_spoc_who_joined_and_left_sends_the_caller_to_voicemail_at_once_without_the_worker(
    call: Callable[[], Waiting],
    twilio: Any,
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
) -> None:
    restrict(make_customer(), kind="spoc", spoc=SPOC_LINE)
    c = call()
    leg = c.ring()
    with at(5):  # they answered during the greeting, joined, and hung up
        for seq, event in enumerate(("participant-join", "participant-leave"), 1):
            sent = conference_event(twilio, c.sid, event, leg, sequence=seq, conference_sid=FIRST)
            assert sent.status_code == 204
    heard = c.beat(6)  # long before the deadline; no worker runs
    assert heard.find("Say") is None
    (voicemail,) = c.moves()
    assert voicemail.find("Record") is not None and voicemail.find("Dial") is None
    assert c.stops(leg) == []  # their leg has ended already: nothing to stop


def test_a_person_shown_joining_gets_one_heartbeat_before_the_caller_is_believed_alone(
    call: Callable[[], Waiting], twilio: Any
) -> None:
    c = call()
    leg = c.ring()
    with at(5):  # the person joins (the caller not yet seen in that conference)
        sent = conference_event(twilio, c.sid, "participant-join", leg, conference_sid=FIRST)
        assert sent.status_code == 204
    held = c.beat(5 + waiting.HEARTBEAT_SECONDS - 1)  # fetched as they joined: wait a beat
    assert [e.tag for e in held] == ["Pause", "Redirect"]
    assert pause_of(held) == waiting.HEARTBEAT_SECONDS
    assert c.moves() == [] and c.stops(leg) == []
    c.beat(5 + waiting.HEARTBEAT_SECONDS)  # still hearing the waitUrl: they are not together
    (busy,) = c.moves()
    assert TEAM_BUSY in spoken(busy)
    assert c.stops(leg) == ["canceled", "completed"]


# --- 4. once per call, however Twilio calls --------------------------------------------------


def test_the_same_heartbeat_fetched_twice_or_late_moves_the_caller_once(
    call: Callable[[], Waiting], settings: Settings
) -> None:
    c = call()
    leg = c.ring()
    due = deadline(settings)
    heard = c.beat(due)
    c.beat(due)  # Twilio's retry of the same URL
    c.beat(due + 10, path_of(heard.findtext("Redirect")))  # and the next one, late
    assert len(c.moves()) == 1
    assert c.stops(leg) == ["canceled", "completed"]  # stopped once
    # the person answering after all is told the caller has gone, and joins nobody
    with at(due + 11):
        late = parse(c.twilio.post(c.whisper, {"CallSid": leg}))
    assert late.find("Gather") is None and "no longer waiting" in spoken(late)


@pytest.mark.parametrize("first", ["job", "heartbeat"])
def test_the_unanswered_job_and_the_heartbeat_move_the_caller_once_between_them(
    call: Callable[[], Waiting], settings: Settings, first: str
) -> None:
    c = call()
    leg = c.ring()
    due = deadline(settings)

    def rang_out(seconds: int) -> None:
        with at(seconds):
            sent = c.twilio.post(c.leg_status, {"CallSid": leg, "CallStatus": "no-answer"})
            assert sent.status_code == 204
            c.run_jobs()

    if first == "job":
        rang_out(settings.agent_ring_seconds)
        assert len(c.moves()) == 1  # moved on by the job, at the ring time
        c.beat(due)
    else:
        c.beat(due)
        assert len(c.moves()) == 1
        rang_out(due + 1)
    (busy,) = c.moves()
    assert TEAM_BUSY in spoken(busy)


def test_a_caller_who_chose_emergency_repairs_is_never_moved_off_that_line(
    app: Flask,
    call: Callable[[], Waiting],
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
    settings: Settings,
) -> None:
    restrict(make_customer(), kind="spoc", spoc=SPOC_LINE)
    c = call()
    gather = c.root.find("Gather")
    assert gather is not None
    with at(2):
        chose = parse(c.twilio.post(path_of(gather.get("action")), {**c.params, "Digits": "1"}))
    assert chose.findtext("Dial") == settings.emergency_line
    due = deadline(settings, spoc=True)
    c.beat(due)  # a late heartbeat: Redis holds the choice, the worker has not run
    assert c.moves() == []
    redis_client(app).delete(waiting.CLAIM_PREFIX + c.sid)  # Redis lost it: the row says it too
    with at(due):
        c.run_jobs()
    assert call_row(app, c.sid).emergency_selected_at is not None
    c.beat(due + 10)
    assert c.moves() == []


def test_a_caller_who_hung_up_is_not_moved_on(
    app: Flask, call: Callable[[], Waiting], settings: Settings
) -> None:
    c = call()
    c.ring()
    with at(10):
        status_event(c.twilio, c.sid, "completed", 3, CallDuration="10")
        c.run_jobs()
    assert call_row(app, c.sid).ended_at is not None
    c.beat(deadline(settings))  # a heartbeat Twilio sent as they hung up, arriving late
    assert c.moves() == []


# --- 5. whatever is down --------------------------------------------------------------------------


def test_when_twilio_cannot_be_reached_the_caller_hears_words_and_the_next_heartbeat_tries_again(
    app: Flask, call: Callable[[], Waiting], fake_twilio: FakeTwilio, settings: Settings
) -> None:
    c = call()
    c.ring()
    second = path_of(c.beat(0).findtext("Redirect"))  # n=1: a beat without words in time
    fake_twilio.fail(f"/Calls/{c.sid}.json", 500)
    due = deadline(settings)
    heard = c.beat(due, second)
    assert HOLD_WORDS in spoken(heard)  # past the deadline and not moved: never silence
    assert c.moves() == [] and call_row(app, c.sid).moved_on_at is None
    fake_twilio.failures.clear()
    c.beat(due + 10, path_of(heard.findtext("Redirect")))  # the claim was let go: tried again
    (busy,) = c.moves()
    assert TEAM_BUSY in spoken(busy)
    assert len(fake_twilio.posts(f"/Calls/{c.sid}.json")) == 2
    assert call_row(app, c.sid).moved_on_at is not None


@pytest.mark.parametrize("kind", ["agent", "spoc"])
def test_with_the_database_down_the_deadline_alone_decides(
    app_with: Callable[..., Flask],
    call: Callable[[], Waiting],
    twilio: Any,
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
    settings: Settings,
    kind: str,
) -> None:
    if kind == "spoc":
        restrict(make_customer(), kind="spoc", spoc=SPOC_LINE)
    c = call()
    twilio.client = app_with(DATABASE_URL=DATABASE_DOWN).test_client()
    due = deadline(settings, spoc=kind == "spoc")
    assert HOLD_WORDS in spoken(c.beat(0))
    c.beat(due - 1)
    assert c.moves() == []
    c.beat(due)
    c.beat(due)  # Redis still holds the claim: once
    (moved,) = c.moves()
    if kind == "spoc":  # still never the general line
        assert moved.find("Record") is not None and moved.find("Dial") is None
    else:
        assert moved.findtext("./Dial/Number") == DEFAULT_LINE


def test_with_redis_down_the_caller_is_moved_on_all_the_same(
    app_with: Callable[..., Flask], call: Callable[[], Waiting], twilio: Any, settings: Settings
) -> None:
    c = call()
    leg = c.ring()
    twilio.client = app_with(REDIS_URL=REDIS_DOWN).test_client()
    c.beat(deadline(settings))
    (busy,) = c.moves()
    assert TEAM_BUSY in spoken(busy)
    assert c.stops(leg) == ["canceled", "completed"]


def test_with_redis_down_the_row_still_moves_the_caller_once(
    app: Flask,
    app_with: Callable[..., Flask],
    call: Callable[[], Waiting],
    twilio: Any,
    settings: Settings,
) -> None:
    c = call()
    c.ring()
    twilio.client = app_with(REDIS_URL=REDIS_DOWN).test_client()
    c.beat(deadline(settings))
    assert call_row(app, c.sid).moved_on_at is not None  # the backstop knows
    c.beat(deadline(settings))  # Twilio's retry of the same URL
    assert len(c.moves()) == 1
