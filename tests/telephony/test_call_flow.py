"""The call flow holds on Twilio's real timing: the person rung may join first, the worker may be
down, the caller may hang up while an agent rings, callbacks come late and twice, and every path
that does not reach a person offers emergency repairs and ends with the danger line."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree

import pytest
import time_machine
from flask import Flask
from sqlalchemy import select

from restrictions import counting
from restrictions.models import Call, ContactAlert
from telephony.database import database
from telephony.redis_store import redis_client
from tests.calls import (
    call_row,
    conference_event,
    conference_of,
    handed_over,
    parse,
    spoken,
    status_event,
)
from tests.fake_twilio import FakeTwilio

CUSTOMER = "+447400100001"
DEFAULT_LINE = "+441332000100"
EVENTS = "https://calls.example.org/twilio/conference/events"
AGENT_LEG = "CA" + "a" * 32
TUESDAY = datetime(2026, 6, 2, 9, 30, tzinfo=UTC)  # 10:30 BST


def hold_path(root: ElementTree.Element) -> str:
    conference = conference_of(root)
    assert conference is not None
    url = urlsplit(conference.get("waitUrl") or "")
    assert url.scheme == "https" and url.netloc == "calls.example.org"
    return f"{url.path}?{url.query}"


def twiml_of(request: Any) -> ElementTree.Element:
    return ElementTree.fromstring(request.param("Twiml") or "")


# --- 1. conference events arrive whoever joins first -------------------------------------------


def test_the_person_rung_hears_who_is_calling_and_joins_only_by_pressing_1(
    twilio: Any,
    run_jobs: Callable[[], int],
    fake_twilio: FakeTwilio,
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
) -> None:
    restrict(make_customer(name="Jo Bloggs"), kind="warning")
    params = twilio.call_params(CUSTOMER)
    twilio.post("/twilio/voice/incoming", params)
    run_jobs()
    caller = params["CallSid"]
    (dial,) = fake_twilio.dial_outs(caller)
    assert dial.param("Timeout") == "30" and dial.param("Method") == "POST"
    assert dial.param("StatusCallback") == (
        f"https://calls.example.org/twilio/voice/participant?call_sid={caller}&kind=agent"
    )
    assert dial.form["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    # they answer: who is calling, their restriction in words, press 1
    whisper_path = urlsplit(dial.param("Url") or "")
    heard = parse(twilio.post(f"{whisper_path.path}?{whisper_path.query}", {"CallSid": AGENT_LEG}))
    gather = heard.find("Gather")
    assert gather is not None and gather.get("numDigits") == "1"
    words = spoken(heard)
    assert "Jo Bloggs" in words and "HMS-0001" in words and "Press 1" in words
    assert "warning" in words.lower()
    assert [e.tag for e in heard][-1] == "Hangup"  # no key: they never reach the caller
    accept = urlsplit(gather.get("action") or "")
    accept_path = f"{accept.path}?{accept.query}"
    # a machine (or a person) pressing nothing, or another key, hangs up
    declined = parse(twilio.post(accept_path, {"CallSid": AGENT_LEG, "Digits": "2"}))
    assert declined.find("Dial") is None and declined.find("Hangup") is not None
    joined = parse(twilio.post(accept_path, {"CallSid": AGENT_LEG, "Digits": "1"}))
    conference = conference_of(joined)
    assert conference is not None and conference.text == f"cg-{caller}"
    # whoever joins first carries the conference callback, announcements included
    assert conference.get("statusCallback") == EVENTS
    assert conference.get("statusCallbackEvent") == "start end join leave announcement"
    assert conference.get("beep") == "false"
    assert conference.get("startConferenceOnEnter") == "true"
    assert conference.get("endConferenceOnExit") == "true"


def test_a_person_who_accepts_after_the_caller_was_moved_on_joins_nobody(
    twilio: Any, run_jobs: Callable[[], int], fake_twilio: FakeTwilio
) -> None:
    params = twilio.call_params(CUSTOMER)
    twilio.post("/twilio/voice/incoming", params)
    run_jobs()
    caller = params["CallSid"]
    status_event(twilio, caller, "completed", 5, CallDuration="20")
    run_jobs()
    accept = f"/twilio/voice/whisper/accept?call_sid={caller}&kind=agent"
    late = parse(twilio.post(accept, {"CallSid": AGENT_LEG, "Digits": "1"}))
    assert late.find("Dial") is None and "no longer waiting" in spoken(late)


@pytest.mark.parametrize("agent_first", [True, False], ids=["agent-first", "caller-first"])
def test_the_call_is_live_whoever_joins_first(
    twilio: Any,
    client: Any,
    make_staff: Callable[..., Any],
    run_jobs: Callable[[], int],
    fake_twilio: FakeTwilio,
    agent_first: bool,
) -> None:
    agent = make_staff("agent", "alex")
    params = twilio.call_params(CUSTOMER)
    twilio.post("/twilio/voice/incoming", params)
    run_jobs()
    caller = params["CallSid"]
    joins = [(AGENT_LEG, 1), (caller, 2)] if agent_first else [(caller, 1), (AGENT_LEG, 2)]
    for participant, sequence in joins:
        joined = conference_event(
            twilio, caller, "participant-join", participant, sequence=sequence
        )
        assert joined.status_code == 204
    live = client.get("/api/v1/calls/active", headers=agent.headers).get_json()["calls"]
    assert [c["call_sid"] for c in live] == [caller]
    warned = client.post(f"/api/v1/calls/{caller}/warn", headers=agent.headers)
    assert warned.status_code == 200, warned.get_json()


# --- 2. a waiting caller is never left alone -------------------------------------------------


def test_a_waiting_caller_hears_hold_words_in_their_language_and_a_heartbeat(
    twilio: Any, make_customer: Callable[..., Any]
) -> None:
    make_customer(language="cy-GB")
    root = parse(twilio.incoming(CUSTOMER))
    path = hold_path(root)
    assert "lang=cy-GB" in path and "kind=agent" in path
    held = parse(twilio.post(path, {"CallSid": "CA1", "ConferenceSid": "CF1"}))
    assert [e.tag for e in held] == ["Say", "Pause", "Redirect"]
    say = held.find("Say")
    assert say is not None and say.get("language") == "cy-GB"
    assert "n=1" in (held.findtext("Redirect") or "")


def test_with_the_worker_down_the_heartbeat_connects_the_caller_directly_in_time(
    twilio: Any, fake_twilio: FakeTwilio, settings: Any
) -> None:
    params = twilio.call_params("+447400100077")
    with time_machine.travel(TUESDAY, tick=False):
        path = hold_path(parse(twilio.post("/twilio/voice/incoming", params)))
        # no worker runs: nobody is dialled; the caller waits
        assert fake_twilio.posts() == []
    late = TUESDAY + timedelta(seconds=settings.agent_ring_seconds + 14)
    with time_machine.travel(late, tick=False):
        early = parse(twilio.post(path, {"CallSid": params["CallSid"]}))
    assert fake_twilio.posts() == [] and early.find("Pause") is not None
    deadline = TUESDAY + timedelta(seconds=settings.agent_ring_seconds + 15)
    with time_machine.travel(deadline, tick=False):
        twilio.post(path, {"CallSid": params["CallSid"]})
        twilio.post(path, {"CallSid": params["CallSid"]})  # the next heartbeat moves nobody twice
    (update,) = fake_twilio.posts(f"/Calls/{params['CallSid']}.json")
    moved = twiml_of(update)
    assert moved.findtext("./Dial/Number") == DEFAULT_LINE  # straight to a person
    gather = moved.find("Gather")
    assert gather is not None and "press 1" in "".join(gather.itertext())


def test_a_spoc_caller_nobody_answers_goes_to_voicemail_with_the_worker_down(
    app: Flask,
    twilio: Any,
    fake_twilio: FakeTwilio,
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
    settings: Any,
) -> None:
    restrict(make_customer(), kind="spoc", spoc="+441332000555")
    params = twilio.call_params(CUSTOMER)
    with time_machine.travel(TUESDAY, tick=False):
        root = parse(twilio.post("/twilio/voice/incoming", params))
    assert "kind=spoc" in hold_path(root)
    after = TUESDAY + timedelta(seconds=settings.spoc_ring_seconds + 15)
    with time_machine.travel(after, tick=False):
        twilio.post(hold_path(root), {"CallSid": params["CallSid"]})
    (update,) = fake_twilio.posts(f"/Calls/{params['CallSid']}.json")
    moved = twiml_of(update)
    assert moved.find("Record") is not None and moved.find("Dial") is None
    assert "press 1" in spoken(moved) and "999" in spoken(moved)


def test_after_the_agent_rang_out_the_caller_hears_the_team_is_busy(
    twilio: Any, run_jobs: Callable[[], int], fake_twilio: FakeTwilio
) -> None:
    params = twilio.call_params(CUSTOMER)
    twilio.post("/twilio/voice/incoming", params)
    run_jobs()
    leg = fake_twilio.dial_outs()[0]
    assert leg.param("To") == DEFAULT_LINE
    path = f"/twilio/voice/participant?call_sid={params['CallSid']}&kind=agent"
    twilio.post(path, {"CallSid": AGENT_LEG, "CallStatus": "no-answer"})
    run_jobs()
    (update,) = fake_twilio.posts(f"/Calls/{params['CallSid']}.json")
    busy = twiml_of(update)
    assert "nobody from our team is free" in spoken(busy)
    assert "press 1" in spoken(busy) and "dial 999" in spoken(busy)
    assert busy.find("Dial") is None


# --- 3. the dial-out: once, in time, and cancelled when the caller goes -------------------------


def test_a_dial_out_happens_once_however_often_the_job_runs(
    app: Flask, twilio: Any, run_jobs: Callable[[], int], fake_twilio: FakeTwilio
) -> None:
    from handlers.calls import start_inbound_call
    from telephony.handover import CALLS
    from telephony.redis_store import queue

    twilio.incoming(CUSTOMER)
    (fields,) = handed_over(app)
    queue(app).connection.xadd(CALLS, {b"record": fields[b"record"]})  # handed over twice
    assert run_jobs() == 2
    start_inbound_call(json.loads(fields[b"record"]))  # and its job run once more by hand
    assert len(fake_twilio.dial_outs()) == 1


def test_a_late_dial_out_rings_nobody(
    app: Flask, twilio: Any, run_jobs: Callable[[], int], fake_twilio: FakeTwilio, settings: Any
) -> None:
    with time_machine.travel(TUESDAY, tick=False):
        twilio.incoming(CUSTOMER)
    # the worker comes back after the ring time: the caller has been moved on by then
    with time_machine.travel(TUESDAY + timedelta(seconds=settings.agent_ring_seconds + 1)):
        run_jobs()
    assert fake_twilio.dial_outs() == []


def test_a_dial_out_for_a_caller_who_hung_up_rings_nobody(
    twilio: Any, run_jobs: Callable[[], int], fake_twilio: FakeTwilio
) -> None:
    params = twilio.call_params(CUSTOMER)
    twilio.post("/twilio/voice/incoming", params)
    status_event(twilio, params["CallSid"], "completed", 3, CallDuration="4")
    run_jobs()  # the status job runs first? either way: nobody is rung for a call that is over
    posts = fake_twilio.dial_outs()
    cancels = [p for p in fake_twilio.posts("/Calls/") if p.param("Status") == "canceled"]
    assert len(posts) == len(cancels), "a leg rung for a caller who had gone is cancelled"


def test_when_the_caller_hangs_up_while_the_agent_rings_the_agent_leg_is_cancelled(
    twilio: Any, run_jobs: Callable[[], int], fake_twilio: FakeTwilio
) -> None:
    params = twilio.call_params(CUSTOMER)
    twilio.post("/twilio/voice/incoming", params)
    run_jobs()
    (dial,) = fake_twilio.dial_outs()
    leg = call_leg_of(dial, fake_twilio)
    conference_event(twilio, params["CallSid"], "participant-join", params["CallSid"])
    conference_event(twilio, params["CallSid"], "participant-leave", params["CallSid"], sequence=2)
    status_event(twilio, params["CallSid"], "completed", 3, CallDuration="12")
    run_jobs()
    # stopped whatever state it is in: canceled while ringing, completed if hearing the whisper
    cancel, hang_up = fake_twilio.posts(f"/Calls/{leg}.json")
    assert (cancel.param("Status"), hang_up.param("Status")) == ("canceled", "completed")


def call_leg_of(dial: Any, fake_twilio: FakeTwilio) -> str:
    """The CallSid the fake Twilio gave the call it created."""
    assert dial.answer is not None
    return str(dial.answer["sid"])


# --- 4. keys during a message -------------------------------------------------------------------


def test_another_key_replays_the_message_once_then_says_goodbye(
    twilio: Any, make_customer: Callable[..., Any], restrict: Callable[..., Any]
) -> None:
    restrict(make_customer(language="pl-PL"), kind="written_only")
    params = twilio.call_params(CUSTOMER)
    first = parse(twilio.post("/twilio/voice/incoming", params))
    gather = first.find("Gather")
    assert gather is not None and int(gather.get("timeout") or 0) >= 5
    assert "nacisnąć 2" in spoken(first)  # "press 2 to hear this again"
    action = urlsplit(gather.get("action") or "")
    again = parse(twilio.post(f"{action.path}?{action.query}", {**params, "Digits": "2"}))
    assert "wyłącznie w formie pisemnej" in spoken(again)  # the message, once more
    assert "nacisnąć 2" not in spoken(again)
    replayed = again.find("Gather")
    assert replayed is not None
    action = urlsplit(replayed.get("action") or "")
    done = parse(twilio.post(f"{action.path}?{action.query}", {**params, "Digits": "7"}))
    assert [e.tag for e in done] == ["Say", "Say", "Hangup"]
    assert "999" in spoken(done) and done.find("Say") is not None
    assert all(s.get("language") == "pl-PL" for s in done.iter("Say"))


def test_pressing_1_connects_emergency_repairs_in_the_callers_language(
    twilio: Any, make_customer: Callable[..., Any], restrict: Callable[..., Any]
) -> None:
    restrict(
        make_customer(language="cy-GB", adjustments={"slow_speech": True}), kind="written_only"
    )
    params = twilio.call_params(CUSTOMER)
    gather = parse(twilio.post("/twilio/voice/incoming", params)).find("Gather")
    assert gather is not None
    action = urlsplit(gather.get("action") or "")
    emergency = parse(twilio.post(f"{action.path}?{action.query}", {**params, "Digits": "1"}))
    say = emergency.find("Say")
    assert say is not None and say.get("language") == "cy-GB" and say.find("prosody") is not None
    assert emergency.findtext("Dial") == "+441332000999"


def test_a_spoc_caller_may_choose_emergency_repairs_before_the_spoc_rings(
    twilio: Any,
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
    run_jobs: Callable[[], int],
    fake_twilio: FakeTwilio,
) -> None:
    restrict(make_customer(), kind="spoc", spoc="+441332000555")
    params = twilio.call_params(CUSTOMER)
    root = parse(twilio.post("/twilio/voice/incoming", params))
    assert [e.tag for e in root] == ["Gather", "Dial"]
    gather = root.find("Gather")
    assert gather is not None and "press 1" in spoken(root)
    action = urlsplit(gather.get("action") or "")
    # another key goes on to the SPOC's conference
    onward = parse(twilio.post(f"{action.path}?{action.query}", {**params, "Digits": "5"}))
    assert conference_of(onward) is not None
    assert "kind=spoc" in (onward.find("./Dial/Conference").get("waitUrl") or "")  # type: ignore[union-attr]
    # 1: emergency repairs; the SPOC being rung is stopped
    run_jobs()
    emergency = parse(twilio.post(f"{action.path}?{action.query}", {**params, "Digits": "1"}))
    assert emergency.findtext("Dial") == "+441332000999"
    run_jobs()
    leg = call_leg_of(fake_twilio.dial_outs()[0], fake_twilio)
    stopped = [r.param("Status") for r in fake_twilio.posts(f"/Calls/{leg}.json")]
    assert stopped == ["canceled", "completed"]


# --- 5. status callbacks: only the customer's call counts, and completed is final --------------


def test_child_and_outbound_legs_are_stored_but_never_counted(
    app: Flask, twilio: Any, run_jobs: Callable[[], int], make_customer: Callable[..., Any]
) -> None:
    make_customer()
    child = "CA" + "c" * 32
    status_event(
        twilio,
        child,
        "completed",
        3,
        CallDuration="60",
        ParentCallSid="CA" + "p" * 32,
        Direction="outbound-dial",
    )
    status_event(
        twilio,
        "CA" + "d" * 32,
        "completed",
        3,
        CallDuration="60",
        Direction="outbound-api",
        From="+441332000000",
        To=CUSTOMER,
    )
    run_jobs()
    with database(app).sessions() as sess:
        assert sess.scalar(select(Call).where(Call.call_sid == child)) is None
    assert redis_client(app).keys(counting.CALLS + "*") == []


def test_talk_time_ends_exact_whatever_order_the_callbacks_come_in(
    app: Flask,
    twilio: Any,
    run_jobs: Callable[[], int],
    make_customer: Callable[..., Any],
) -> None:
    customer = make_customer()
    sid = "CA" + "e" * 32
    # completed first, then a late in-progress, then completed again (a retry), then ringing
    for status, seq, extra in [
        ("completed", 4, {"CallDuration": "95"}),
        ("in-progress", 2, {}),
        ("completed", 4, {"CallDuration": "95"}),
        ("ringing", 1, {}),
    ]:
        assert status_event(twilio, sid, status, seq, **extra).status_code == 204
        run_jobs()
    stats = counting.window(redis_client(app), f"customer:{customer.id}", datetime.now(UTC), 60)
    assert (stats.calls, stats.seconds) == (1, 95)
    assert call_row(app, sid).duration_seconds == 95


def test_a_late_in_progress_after_end_does_not_cost_the_talk_time(
    app: Flask, twilio: Any, run_jobs: Callable[[], int], make_customer: Callable[..., Any]
) -> None:
    customer = make_customer()
    sid = "CA" + "f" * 32
    with database(app).sessions() as sess:
        sess.add(
            Call(
                call_sid=sid,
                from_e164=CUSTOMER,
                customer_id=customer.id,
                ended_at=datetime.now(UTC),
                status="completed",
            )
        )  # an agent pressed End
        sess.commit()
    status_event(twilio, sid, "in-progress", 2)
    run_jobs()
    status_event(twilio, sid, "completed", 3, CallDuration="300")
    run_jobs()
    stats = counting.window(redis_client(app), f"customer:{customer.id}", datetime.now(UTC), 60)
    assert stats.seconds == 300


@pytest.mark.parametrize(
    ("caller", "matched"),
    [
        ("client:+447400100001", False),
        ("client:alex", False),
        ("sip:+447400100001@pbx.example.org", True),
        ("sip:alex@pbx.example.org", False),
        ("+7378742833", False),
        ("Anonymous", False),
    ],
)
def test_only_a_real_number_is_matched_to_a_customer(
    app: Flask,
    twilio: Any,
    run_jobs: Callable[[], int],
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
    caller: str,
    matched: bool,
) -> None:
    restrict(make_customer(), kind="written_only")
    params = twilio.call_params(caller)
    root = parse(twilio.post("/twilio/voice/incoming", params))
    assert ("in writing only" in spoken(root)) is matched
    run_jobs()
    assert (call_row(app, params["CallSid"]).customer_id is not None) is matched


# --- 6. emergencies are marked, and not held against the caller ------------------------------


def test_emergency_calls_do_not_count_towards_contact_rules(
    app: Flask, twilio: Any, run_jobs: Callable[[], int], make_customer: Callable[..., Any]
) -> None:
    make_customer()
    for n in range(5):
        sid = f"CA{n:032x}"
        key = f"/twilio/voice/emergency?call_sid={sid}&msg=route&replay=0"
        twilio.post(key, {"CallSid": sid, "Digits": "1", "From": CUSTOMER})
        run_jobs()
        status_event(twilio, sid, "completed", 3, CallDuration="30")
        run_jobs()
    with database(app).sessions() as sess:
        assert sess.scalars(select(ContactAlert)).all() == []
        calls = sess.scalars(select(Call)).all()
    assert len(calls) == 5 and all(c.emergency_selected_at and c.counted_at for c in calls)


def test_counted_emergency_calls_are_marked_in_the_evidence(
    app: Flask,
    app_config: dict[str, Any],
    twilio: Any,
    run_jobs: Callable[[], int],
    make_customer: Callable[..., Any],
) -> None:
    from dataclasses import replace

    from telephony.config import SETTINGS

    app.extensions[SETTINGS] = replace(app.extensions[SETTINGS], count_emergency_calls=True)
    make_customer()
    for n in range(5):
        sid = f"CA{n:032x}"
        with time_machine.travel(TUESDAY + timedelta(minutes=n), tick=False):
            if n == 2:
                key = f"/twilio/voice/emergency?call_sid={sid}&msg=route&replay=0"
                twilio.post(key, {"CallSid": sid, "Digits": "1", "From": CUSTOMER})
                run_jobs()
            status_event(twilio, sid, "completed", 3, CallDuration="30")
            run_jobs()
    with database(app).sessions() as sess:
        (alert,) = sess.scalars(select(ContactAlert)).all()
    marks = [c["emergency"] for c in alert.evidence["calls"]]
    assert marks == [False, False, True, False, False]


def test_twilio_answering_the_callers_leg_is_not_a_person_answering(
    app: Flask, twilio: Any, fake_twilio: FakeTwilio, settings: Any
) -> None:
    """``in-progress`` on the caller's leg means our TwiML runs: the caller still waits, and is
    moved on at the deadline even after that callback was processed."""
    from handlers.contact import sweep_call_events

    params = twilio.call_params("+447400100088")
    with time_machine.travel(TUESDAY, tick=False):
        path = hold_path(parse(twilio.post("/twilio/voice/incoming", params)))
        status_event(twilio, params["CallSid"], "in-progress", 2, From="+447400100088")
        with app.app_context():
            sweep_call_events()  # processes the event (the dial job stays lost with the queue)
    assert call_row(app, params["CallSid"]).answered_at is None
    with time_machine.travel(TUESDAY + timedelta(seconds=settings.agent_ring_seconds + 15)):
        twilio.post(path, {"CallSid": params["CallSid"]})
    assert fake_twilio.posts(f"/Calls/{params['CallSid']}.json")


def test_a_caller_on_the_emergency_line_is_never_moved_off_it(
    twilio: Any,
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
    run_jobs: Callable[[], int],
    fake_twilio: FakeTwilio,
) -> None:
    restrict(make_customer(), kind="spoc", spoc="+441332000555")
    params = twilio.call_params(CUSTOMER)
    gather = parse(twilio.post("/twilio/voice/incoming", params)).find("Gather")
    assert gather is not None
    run_jobs()  # the SPOC is being rung
    action = urlsplit(gather.get("action") or "")
    twilio.post(f"{action.path}?{action.query}", {**params, "Digits": "1"})
    run_jobs()
    # the SPOC's leg reports it was cancelled (or rang out): the caller stays where they are
    path = f"/twilio/voice/participant?call_sid={params['CallSid']}&kind=spoc"
    twilio.post(path, {"CallSid": AGENT_LEG, "CallStatus": "canceled"})
    run_jobs()
    assert fake_twilio.posts(f"/Calls/{params['CallSid']}.json") == []


def test_the_emergency_choice_is_recorded_even_with_redis_down(
    app: Flask, app_with: Callable[..., Flask], twilio: Any
) -> None:
    twilio.client = app_with(REDIS_URL="redis://127.0.0.1:1/0").test_client()
    sid = "CA" + "e1" * 16
    response = twilio.post(
        f"/twilio/voice/emergency?call_sid={sid}&msg=route&replay=0",
        {"CallSid": sid, "Digits": "1"},
    )
    assert parse(response).findtext("Dial") == "+441332000999"
    assert call_row(app, sid).emergency_selected_at is not None


def test_when_twilio_does_not_answer_a_dial_out_nobody_is_rung_a_second_time(
    twilio: Any, run_jobs: Callable[[], int], fake_twilio: FakeTwilio, twilio_too_slow: None
) -> None:
    params = twilio.call_params(CUSTOMER)
    twilio.post("/twilio/voice/incoming", params)
    run_jobs()  # the dial-out times out: Twilio may have rung them
    fake_twilio.delay = 0
    assert len(fake_twilio.dial_outs()) == 1
    assert fake_twilio.posts(f"/Calls/{params['CallSid']}.json") == []  # no direct dial too


def test_a_stray_key_before_a_direct_dial_goes_on_to_the_same_dial(
    app_with: Callable[..., Flask],
    twilio: Any,
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
    app: Flask,
) -> None:
    restrict(make_customer(), kind="spoc", spoc="+441332000555")
    no_queue = app_with(REDIS_URL="redis://127.0.0.1:1/0")
    twilio.client = no_queue.test_client()
    params = twilio.call_params(CUSTOMER)
    root = parse(twilio.post("/twilio/voice/incoming", params))
    assert root.findtext("./Dial/Number") == "+441332000555"  # connected directly
    gather = root.find("Gather")
    assert gather is not None
    action = urlsplit(gather.get("action") or "")
    onward = parse(twilio.post(f"{action.path}?{action.query}", {**params, "Digits": "7"}))
    assert onward.findtext("./Dial/Number") == "+441332000555"
