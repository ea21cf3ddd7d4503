"""The call's edges on Twilio's real timing: the person rung may answer during the greeting and
leave, a voicemail greeting may answer, the caller may hang up at every stage, and Twilio's
events come late, twice and out of order. Nobody waits alone, no machine counts as a person,
no leg is left behind. Every request below is a signed webhook with Twilio's parameters; the
REST API is the fake Twilio, whose requests are asserted exactly."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree

import pytest
import time_machine
from flask import Flask

from restrictions import counting
from telephony.redis_store import redis_client
from tests.calls import (
    call_row,
    conference_event,
    conference_of,
    parse,
    put_together,
    spoken,
    status_event,
)
from tests.fake_twilio import FakeTwilio

CUSTOMER = "+447400100001"
SPOC_LINE = "+441332000555"
TUESDAY = datetime(2026, 6, 2, 9, 30, tzinfo=UTC)  # 10:30 BST
FIRST, SECOND = "CF" + "1" * 32, "CF" + "2" * 32
EVERY_DAY = [
    {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "00:00", "end": "23:59"}
]


def path_of(url: str | None) -> str:
    parts = urlsplit(url or "")
    assert parts.scheme == "https" and parts.netloc == "calls.example.org"
    return f"{parts.path}?{parts.query}"


def twiml_of(request: Any) -> ElementTree.Element:
    return ElementTree.fromstring(request.param("Twiml") or "")


class Call:
    """One inbound call, driven as Twilio drives it."""

    def __init__(self, twilio: Any, run_jobs: Callable[[], int], fake: FakeTwilio) -> None:
        self.twilio, self.run_jobs, self.fake = twilio, run_jobs, fake
        self.params = twilio.call_params(CUSTOMER)
        self.sid = self.params["CallSid"]
        self.root = parse(twilio.post("/twilio/voice/incoming", self.params))

    @property
    def hold(self) -> str:
        conference = conference_of(self.root)
        assert conference is not None, "the caller was not put in a conference"
        return path_of(conference.get("waitUrl"))

    def ring(self) -> str:
        """The worker rings the person; returns their leg's CallSid."""
        self.run_jobs()
        (dial,) = self.fake.dial_outs(self.sid)
        assert dial.answer is not None
        self.whisper_url = path_of(dial.param("Url"))
        self.leg_status = path_of(dial.param("StatusCallback"))
        return str(dial.answer["sid"])

    def answers(self, leg: str, digits: str | None) -> ElementTree.Element:
        """The person rung (or their voicemail) answers, hears the whisper, presses ``digits``
        (None: nothing at all, as a voicemail greeting does)."""
        whisper = parse(self.twilio.post(self.whisper_url, {"CallSid": leg, "AnsweredBy": ""}))
        gather = whisper.find("Gather")
        assert gather is not None
        form = {"CallSid": leg} | ({"Digits": digits} if digits is not None else {})
        return parse(self.twilio.post(path_of(gather.get("action")), form))

    def conference(self, event: str, who: str | None, seq: int, sid: str = FIRST) -> None:
        sent = conference_event(self.twilio, self.sid, event, who, sequence=seq, conference_sid=sid)
        assert sent.status_code == 204, sent.data

    def leg_ended(self, leg: str, status: str = "completed", **extra: str) -> None:
        sent = self.twilio.post(self.leg_status, {"CallSid": leg, "CallStatus": status, **extra})
        assert sent.status_code == 204

    def heartbeat(self) -> ElementTree.Element:
        return parse(self.twilio.post(self.hold, {"CallSid": self.sid, "ConferenceSid": SECOND}))

    def moves(self) -> list[ElementTree.Element]:
        """What callguard moved the caller on to (REST updates of the caller's call)."""
        return [twiml_of(r) for r in self.fake.posts(f"/Calls/{self.sid}.json") if r.param("Twiml")]

    def stops(self, leg: str) -> list[str | None]:
        return [r.param("Status") for r in self.fake.posts(f"/Calls/{leg}.json")]


@pytest.fixture
def call(twilio: Any, run_jobs: Callable[[], int], fake_twilio: FakeTwilio) -> Callable[[], Call]:
    return lambda: Call(twilio, run_jobs, fake_twilio)


def limited(make_customer: Callable[..., Any], restrict: Callable[..., Any]) -> Any:
    customer = make_customer()
    restrict(customer, kind="limited_contact", windows=EVERY_DAY, max_calls_per_week=5)
    return customer


def allowance_used(app: Flask, customer: Any) -> int:
    return counting.allowance_used(redis_client(app), customer.id, TUESDAY - timedelta(days=1))


# --- 1. nobody waits alone, whatever the order -----------------------------------------------


@pytest.mark.parametrize("order", ["as-sent", "shuffled", "twice"])
def test_a_person_who_answers_during_the_greeting_and_leaves_moves_the_caller_on(
    app: Flask,
    call: Callable[[], Call],
    client: Any,
    make_staff: Callable[..., Any],
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
    order: str,
) -> None:
    customer = limited(make_customer, restrict)
    supervisor = make_staff("supervisor")
    with time_machine.travel(TUESDAY, tick=False):
        c = call()
        leg = c.ring()
        assert conference_of(c.answers(leg, "1")) is not None  # accepted: joins the first one
        events = [
            ("participant-join", leg, 1, FIRST),
            ("participant-leave", leg, 2, FIRST),
            ("conference-end", None, 3, FIRST),
            ("participant-join", c.sid, 1, SECOND),  # the caller meets a fresh conference
        ]
        if order == "shuffled":
            events = [events[3], events[1], events[2], events[0]]
        for event in events * (2 if order == "twice" else 1):
            c.conference(*event)
        listed = client.get("/api/v1/calls/active", headers=supervisor.headers).get_json()
        assert [(x["call_sid"], x["state"]) for x in listed["calls"]] == [(c.sid, "waiting")]
        # long before the deadline: the first heartbeat says the caller is alone
        c.heartbeat()
    (busy,) = c.moves()
    assert "nobody from our team is free" in spoken(busy)
    assert "press 1" in spoken(busy) and "999" in spoken(busy)
    assert c.stops(leg) == []  # the person had gone already
    row = call_row(app, c.sid)
    assert row.answered_at is None and row.person_left_at is not None
    assert allowance_used(app, customer) == 0  # they were never put together


def test_a_spoc_who_answers_during_the_greeting_and_leaves_sends_the_caller_to_voicemail(
    call: Callable[[], Call], make_customer: Callable[..., Any], restrict: Callable[..., Any]
) -> None:
    restrict(make_customer(), kind="spoc", spoc=SPOC_LINE)
    with time_machine.travel(TUESDAY, tick=False):
        c = call()
        leg = c.ring()
        c.answers(leg, "1")
        c.conference("participant-join", leg, 1)
        c.conference("participant-leave", leg, 2)
        c.conference("conference-end", None, 3)
        c.leg_ended(leg)  # the leg's own callback: the job moves the caller on at once
        c.run_jobs()
    (moved,) = c.moves()
    assert moved.find("Record") is not None and moved.find("Dial") is None  # never the queue


def test_with_the_worker_stopped_the_heartbeat_alone_moves_a_caller_whose_person_left(
    call: Callable[[], Call], fake_twilio: FakeTwilio
) -> None:
    with time_machine.travel(TUESDAY, tick=False):
        c = call()
        leg = c.ring()
        c.answers(leg, "1")
    fake_twilio.reset()
    with time_machine.travel(TUESDAY + timedelta(seconds=8), tick=False):
        c.conference("participant-join", leg, 1)
        c.conference("participant-leave", leg, 2)
        c.conference("participant-join", c.sid, 1, SECOND)
        c.leg_ended(leg)  # queued for a worker that is not running
        c.heartbeat()
    (busy,) = c.moves()
    assert "nobody from our team is free" in spoken(busy)


def test_a_caller_still_waiting_hears_words_every_few_heartbeats_even_when_twilio_fails(
    call: Callable[[], Call], fake_twilio: FakeTwilio, settings: Any
) -> None:
    with time_machine.travel(TUESDAY, tick=False):
        c = call()
    fake_twilio.fail(f"/Calls/{c.sid}.json", 500)
    late = TUESDAY + timedelta(seconds=settings.agent_ring_seconds + settings.hold_grace_seconds)
    heard = []
    for n in range(3):
        with time_machine.travel(late + timedelta(seconds=10 * n), tick=False):
            heard.append(spoken(c.heartbeat()))
    assert all("Thank you for holding" in words for words in heard)  # never silence
    assert len(c.fake.posts(f"/Calls/{c.sid}.json")) == 3  # and each beat tries again


def test_a_person_with_the_caller_keeps_them_there(
    app: Flask, call: Callable[[], Call], twilio: Any
) -> None:
    with time_machine.travel(TUESDAY, tick=False):
        c = call()
        leg = c.ring()
        c.answers(leg, "1")
        put_together(twilio, c.sid, leg)
    # a heartbeat fetched as the person joined changes nothing
    with time_machine.travel(TUESDAY + timedelta(seconds=2), tick=False):
        c.heartbeat()
    assert c.moves() == []
    assert call_row(app, c.sid).answered_at is not None


# --- 2. a person, not a machine ------------------------------------------------------------------


@pytest.mark.parametrize("digits", [None, "2"], ids=["voicemail-greeting", "declined"])
def test_a_voicemail_greeting_or_a_person_who_does_not_accept_is_no_answer(
    app: Flask,
    call: Callable[[], Call],
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
    digits: str | None,
) -> None:
    customer = limited(make_customer, restrict)
    with time_machine.travel(TUESDAY, tick=False):
        c = call()
        leg = c.ring()
        answered = c.answers(leg, digits)
        assert answered.find("Dial") is None and answered.find("Hangup") is not None
        c.leg_ended(leg, "completed", CallDuration="14")  # the whisper, then it hung up
        c.run_jobs()
    (busy,) = c.moves()
    assert "nobody from our team is free" in spoken(busy)
    assert call_row(app, c.sid).answered_at is None
    assert allowance_used(app, customer) == 0


def test_only_a_caller_and_an_accepting_person_together_use_the_allowance(
    app: Flask,
    call: Callable[[], Call],
    twilio: Any,
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
) -> None:
    customer = limited(make_customer, restrict)
    with time_machine.travel(TUESDAY, tick=False):
        c = call()
        leg = c.ring()
        c.answers(leg, "1")
        c.conference("participant-join", leg, 1)
        assert allowance_used(app, customer) == 0  # the person alone: not yet
        c.conference("participant-join", c.sid, 2)
        c.conference("participant-join", c.sid, 2)  # a retry uses nothing more
    assert allowance_used(app, customer) == 1


# --- 3. no leg left behind -------------------------------------------------------------------


def test_the_caller_leaving_while_the_person_rings_stops_the_leg_at_once(
    call: Callable[[], Call],
) -> None:
    with time_machine.travel(TUESDAY, tick=False):
        c = call()
        leg = c.ring()
        c.conference("participant-join", c.sid, 1)
        c.conference("participant-leave", c.sid, 2)  # no worker needed, nor the status callback
        assert c.stops(leg) == ["canceled", "completed"]
        status_event(c.twilio, c.sid, "completed", 4, CallDuration="9")
        c.run_jobs()
    assert c.stops(leg) == ["canceled", "completed"]  # once, however many events say so


def test_the_caller_hanging_up_in_the_greeting_stops_the_leg_and_a_late_accept_joins_nobody(
    call: Callable[[], Call],
) -> None:
    with time_machine.travel(TUESDAY, tick=False):
        c = call()
        leg = c.ring()
        status_event(c.twilio, c.sid, "completed", 3, CallDuration="3")
        c.run_jobs()
        assert c.stops(leg) == ["canceled", "completed"]
        # had the person answered all the same, they would hear the caller has gone ...
        gone = parse(c.twilio.post(c.whisper_url, {"CallSid": leg}))
        assert gone.find("Gather") is None and "no longer waiting" in spoken(gone)
        # ... and a key pressed just before that joins nobody
        accept = c.whisper_url.replace("/whisper?", "/whisper/accept?")
        late = parse(c.twilio.post(accept, {"CallSid": leg, "Digits": "1"}))
    assert late.find("Dial") is None and "no longer waiting" in spoken(late)


def test_the_caller_leaving_after_the_person_joined_ends_the_conference_for_both(
    call: Callable[[], Call], twilio: Any
) -> None:
    c = call()
    caller_side = conference_of(c.root)
    assert caller_side is not None and caller_side.get("endConferenceOnExit") == "true"
    leg = c.ring()
    person_side = conference_of(c.answers(leg, "1"))
    assert person_side is not None and person_side.get("endConferenceOnExit") == "true"
    put_together(twilio, c.sid, leg)
    c.conference("participant-leave", c.sid, 3)
    assert c.stops(leg) == []  # nothing to cancel: Twilio ends the conference for the person


@pytest.mark.parametrize("answered", [True, False], ids=["after-talking", "before-anyone"])
def test_when_the_conference_ends_the_caller_hears_goodbye_or_is_moved_on(
    call: Callable[[], Call], twilio: Any, answered: bool
) -> None:
    c = call()
    dial = c.root.find("Dial")
    assert dial is not None
    after = path_of(dial.get("action"))
    leg = c.ring()
    if answered:
        put_together(twilio, c.sid, leg)
    heard = parse(twilio.post(after, {"CallSid": c.sid, "DialCallStatus": "completed"}))
    if answered:
        assert "Goodbye" in spoken(heard) and heard.find("Hangup") is not None
    else:
        assert "nobody from our team is free" in spoken(heard)


# --- 7. Twilio's clock ---------------------------------------------------------------------


def test_times_are_twilios_and_events_apply_in_sequence_whatever_order_they_arrive(
    app: Flask, call: Callable[[], Call]
) -> None:
    with time_machine.travel(TUESDAY, tick=False):
        c = call()
        leg = c.ring()
    with time_machine.travel(TUESDAY + timedelta(seconds=12), tick=False):
        c.conference("participant-join", c.sid, 1)
    with time_machine.travel(TUESDAY + timedelta(seconds=20), tick=False):
        c.conference("participant-join", leg, 2)
    # the leave is sent at 95 s but arrives first, a minute later, with the join re-sent after it
    with time_machine.travel(TUESDAY + timedelta(seconds=95), tick=False):
        from tests.calls import twilio_now

        stamp = twilio_now()
    with time_machine.travel(TUESDAY + timedelta(seconds=160), tick=False):
        params = {
            "AccountSid": "AC" + "0" * 31 + "1",
            "ConferenceSid": FIRST,
            "FriendlyName": f"cg-{c.sid}",
            "StatusCallbackEvent": "participant-leave",
            "SequenceNumber": "3",
            "Timestamp": stamp,
            "CallSid": c.sid,
        }
        assert c.twilio.post("/twilio/conference/events", params).status_code == 204
        c.conference("participant-join", leg, 2)
        status_event(c.twilio, c.sid, "completed", 5, CallDuration="95")
        c.run_jobs()
    row = call_row(app, c.sid)
    assert row.answered_at == TUESDAY + timedelta(seconds=20)  # when Twilio said they met
    assert row.ended_at == TUESDAY + timedelta(seconds=95)  # when Twilio said the caller left
    assert row.duration_seconds == 95


def test_a_leg_whose_worker_died_before_storing_it_is_learnt_from_twilio_and_stopped(
    app: Flask, call: Callable[[], Call], monkeypatch: pytest.MonkeyPatch
) -> None:
    from telephony import twilio_gateway

    def killed_after_twilio_answered(*args: Any, **kwargs: Any) -> str:
        real(*args, **kwargs)
        raise SystemExit("kill -9")  # the leg's SID never reaches PostgreSQL

    real = twilio_gateway.ring_person
    monkeypatch.setattr(twilio_gateway, "ring_person", killed_after_twilio_answered)
    with time_machine.travel(TUESDAY, tick=False):
        c = call()
        with pytest.raises(SystemExit):
            c.run_jobs()
        (dial,) = c.fake.dial_outs(c.sid)
        assert dial.answer is not None
        leg = str(dial.answer["sid"])
        assert call_row(app, c.sid).agent_call_sid is None
        # Twilio's first callback for the leg names it
        sent = c.twilio.post(
            path_of(dial.param("StatusCallback")), {"CallSid": leg, "CallStatus": "initiated"}
        )
        assert sent.status_code == 204
        assert call_row(app, c.sid).agent_call_sid == leg
        c.conference("participant-join", c.sid, 1)
        c.conference("participant-leave", c.sid, 2)
    assert c.stops(leg) == ["canceled", "completed"]


def test_a_caller_and_a_person_in_two_conferences_in_the_same_second_were_never_together(
    app: Flask,
    call: Callable[[], Call],
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
) -> None:
    customer = limited(make_customer, restrict)
    first, second = "CF6b" + "0" * 30, "CF3f" + "0" * 30  # the later one's SID sorts first
    with time_machine.travel(TUESDAY, tick=False):  # every Timestamp in one second
        c = call()
        leg = c.ring()
        c.answers(leg, "1")
        c.conference("participant-join", leg, 1, first)
        c.conference("participant-leave", leg, 3, first)
        c.conference("conference-end", None, 4, first)
        c.conference("participant-join", c.sid, 1, second)
    row = call_row(app, c.sid)
    assert row.answered_at is None and row.person_present_since is None
    assert allowance_used(app, customer) == 0


def test_warns_are_settled_in_twilios_order_whatever_order_the_announcements_arrive(
    app: Flask, call: Callable[[], Call], twilio: Any, client: Any, make_staff: Callable[..., Any]
) -> None:
    from sqlalchemy import select

    from restrictions.models import AgentAction
    from telephony.database import database

    supervisor = make_staff("supervisor")
    with time_machine.travel(TUESDAY, tick=False):  # both announcements in the same second
        c = call()
        leg = c.ring()
        put_together(twilio, c.sid, leg)
        for _ in range(2):
            assert (
                client.post(f"/api/v1/calls/{c.sid}/warn", headers=supervisor.headers).status_code
                == 200
            )
        c.conference("announcement-end", None, 6)  # the second Warn's word comes first
        c.conference("announcement-fail", None, 5)
    with database(app).sessions() as sess:
        outcomes = [a.outcome for a in sess.scalars(select(AgentAction).order_by(AgentAction.id))]
    assert outcomes == ["failed", "ok"]
