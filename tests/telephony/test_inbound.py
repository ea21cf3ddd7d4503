"""Inbound calls are routed by the customer's restrictions, the same way every time.

Every test posts the webhook Twilio posts, signed as Twilio signs it, and reads the TwiML back.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from xml.etree import ElementTree

import pytest
import time_machine
from flask import Flask
from redis import Redis
from redis.client import Pipeline
from sqlalchemy import event, select

from restrictions import cache
from restrictions.appeals import lodge_appeal
from restrictions.lifecycle import Actor
from restrictions.models import Call, Restriction
from telephony.database import database
from telephony.redis_store import redis_client
from tests.calls import (
    call_row,
    conference_of,
    handed_over,
    parse,
    put_together,
    spoken,
)

DEFAULT_LINE = "+441332000100"
CUSTOMER_NUMBER = "+447400100001"

# A Tuesday at 10:30 in British Summer Time, and the same wall-clock time in winter (GMT).
TUESDAY_BST = datetime(2026, 6, 2, 9, 30, tzinfo=UTC)
TUESDAY_GMT = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)


def ends_with_emergency_offer_first(root: ElementTree.Element, action_contains: str) -> None:
    first = list(root)[0]
    assert first.tag == "Gather", "emergency repairs must be offered before anything else"
    assert first.get("numDigits") == "1"
    assert action_contains in (first.get("action") or "")
    assert "press 1" in "".join(first.itertext())
    assert list(root)[-1].tag == "Hangup"


# --- the default route ------------------------------------------------------------------------


def test_caller_with_no_restrictions_waits_in_their_own_conference_while_an_agent_is_dialled(
    app: Flask,
    twilio: Any,
    make_customer: Callable[..., Any],
    run_jobs: Callable[[], int],
    fake_twilio: Any,
) -> None:
    make_customer()
    params = twilio.call_params(CUSTOMER_NUMBER)
    root = parse(twilio.post("/twilio/voice/incoming", params))
    conference = conference_of(root)
    assert conference is not None
    assert conference.text == f"cg-{params['CallSid']}"
    # the caller leaving ends it for everyone: nobody is left in it alone
    assert conference.get("endConferenceOnExit") == "true"
    assert conference.get("statusCallback") == "https://calls.example.org/twilio/conference/events"
    assert fake_twilio.posts() == [], "the dial-out must not happen inside the webhook"

    run_jobs()
    (dial,) = fake_twilio.dial_outs(params["CallSid"])
    assert dial.path.endswith("/Calls.json")
    assert dial.param("To") == DEFAULT_LINE
    assert dial.param("From") == "+441332000000"
    assert dial.param("Url") == (
        f"https://calls.example.org/twilio/voice/whisper?call_sid={params['CallSid']}&kind=agent"
    )
    call = call_row(app, params["CallSid"])
    assert call.route == "default" and call.identified and call.customer_id is not None
    assert call.agent_call_sid is not None


def test_the_call_row_is_written_by_a_job_not_the_webhook(
    app: Flask, twilio: Any, run_jobs: Callable[[], int]
) -> None:
    params = twilio.call_params(CUSTOMER_NUMBER)
    twilio.post("/twilio/voice/incoming", params)
    with database(app).sessions() as sess:
        assert sess.scalar(select(Call).where(Call.call_sid == params["CallSid"])) is None
    assert run_jobs() >= 1
    assert call_row(app, params["CallSid"]).from_e164 == CUSTOMER_NUMBER


@pytest.mark.parametrize(
    "from_", ["anonymous", "+266696687", "Restricted", "Unknown", "", "abc#12"]
)
def test_withheld_or_unknown_numbers_take_the_default_route_marked_unidentified(
    app: Flask, twilio: Any, run_jobs: Callable[[], int], from_: str
) -> None:
    params = twilio.call_params(from_)
    root = parse(twilio.post("/twilio/voice/incoming", params))
    assert conference_of(root) is not None
    run_jobs()
    call = call_row(app, params["CallSid"])
    assert call.identified is False
    assert call.from_e164 is None
    assert call.flags["unidentified"] is True
    assert call.customer_id is None


def test_a_number_given_in_national_format_is_matched(
    app: Flask, twilio: Any, make_customer: Callable[..., Any], restrict: Callable[..., Any]
) -> None:
    customer = make_customer(numbers=("07400 100001",))
    restrict(customer, kind="written_only")
    root = parse(twilio.incoming(CUSTOMER_NUMBER))
    assert "in writing only" in spoken(root)


def test_enqueue_default_route(app: Flask, twilio: Any, settings: Any) -> None:
    from dataclasses import replace

    app.extensions["callguard.settings"] = replace(settings, default_route="enqueue:support")
    root = parse(twilio.incoming(CUSTOMER_NUMBER))
    assert root.findtext("Enqueue") == "support"


# --- one test per restriction kind --------------------------------------------------------------


def test_warning_on_file_takes_the_default_route_with_the_warning_flagged(
    app: Flask,
    twilio: Any,
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
    run_jobs: Callable[[], int],
) -> None:
    customer = make_customer()
    with time_machine.travel(datetime(2026, 3, 1, 12, tzinfo=UTC), tick=False):
        restrict(customer, kind="warning")
    params = twilio.call_params(CUSTOMER_NUMBER)
    root = parse(twilio.post("/twilio/voice/incoming", params))
    assert conference_of(root) is not None
    run_jobs()
    assert "warning:2026-03-01" in call_row(app, params["CallSid"]).flags["flags"]


def test_spoc_is_dialled_instead_of_the_general_line(
    app: Flask,
    twilio: Any,
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
    run_jobs: Callable[[], int],
    fake_twilio: Any,
) -> None:
    customer = make_customer()
    restrict(customer, kind="spoc", spoc="01332 000 555")
    params = twilio.call_params(CUSTOMER_NUMBER)
    root = parse(twilio.post("/twilio/voice/incoming", params))
    assert "named contact" in spoken(root)
    assert conference_of(root) is not None
    run_jobs()
    (dial,) = fake_twilio.dial_outs()
    assert dial.param("To") == "+441332000555"
    assert "kind=spoc" in (dial.param("StatusCallback") or "")
    assert call_row(app, params["CallSid"]).route == "spoc"


@pytest.mark.parametrize("status", ["no-answer", "busy"])
def test_spoc_who_does_not_answer_means_a_message_and_voicemail_never_the_general_line(
    app: Flask,
    twilio: Any,
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
    run_jobs: Callable[[], int],
    fake_twilio: Any,
    status: str,
) -> None:
    customer = make_customer()
    restrict(customer, kind="spoc", spoc="+441332000555")
    params = twilio.call_params(CUSTOMER_NUMBER)
    twilio.post("/twilio/voice/incoming", params)
    run_jobs()
    callback = {
        "CallSid": "CA" + "f" * 32,
        "CallStatus": status,
        "AccountSid": params["AccountSid"],
    }
    path = f"/twilio/voice/participant?call_sid={params['CallSid']}&kind=spoc"
    assert twilio.post(path, callback).status_code == 204
    run_jobs()
    (update,) = fake_twilio.posts(f"/Calls/{params['CallSid']}.json")
    xml = ElementTree.fromstring(update.param("Twiml") or "")
    record = xml.find("Record")
    assert record is not None
    assert record.get("action", "").startswith("https://calls.example.org/twilio/voice/voicemail")
    assert "leave a message" in spoken(xml)
    assert DEFAULT_LINE not in (update.param("Twiml") or "")


def test_a_voicemail_for_the_spoc_is_kept_on_the_call(
    app: Flask, twilio: Any, run_jobs: Callable[[], int]
) -> None:
    sid = "CA" + "1" * 32
    path = f"/twilio/voice/voicemail?call_sid={sid}"
    root = parse(
        twilio.post(
            path,
            {
                "CallSid": sid,
                "RecordingUrl": "https://api.twilio.com/rec/RE1",
                "RecordingDuration": "14",
            },
        )
    )
    assert list(root)[-1].tag == "Hangup"
    run_jobs()
    assert call_row(app, sid).voicemail_url == "https://api.twilio.com/rec/RE1"


def test_written_only_hears_how_to_write_after_the_emergency_offer_then_the_call_ends(
    app: Flask,
    twilio: Any,
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
    fake_twilio: Any,
    run_jobs: Callable[[], int],
) -> None:
    customer = make_customer()
    restrict(customer, kind="written_only")
    params = twilio.call_params(CUSTOMER_NUMBER)
    root = parse(twilio.post("/twilio/voice/incoming", params))
    ends_with_emergency_offer_first(root, "/twilio/voice/emergency")
    words = spoken(root)
    assert "1 Example Street, Derby DE1 1AA" in words
    assert "customer dot services at example dot org" in words  # read out, not spelt
    assert conference_of(root) is None
    run_jobs()
    assert fake_twilio.posts() == [], "nobody is dialled for a call that ends with a message"
    assert call_row(app, params["CallSid"]).route == "written_only"


def test_representative_only_is_told_to_go_through_their_representative(
    twilio: Any, make_customer: Callable[..., Any], restrict: Callable[..., Any]
) -> None:
    customer = make_customer()
    restrict(customer, kind="representative_only", representative="Derby Advocacy Service")
    root = parse(twilio.incoming(CUSTOMER_NUMBER))
    ends_with_emergency_offer_first(root, "/twilio/voice/emergency")
    assert "Derby Advocacy Service" in spoken(root)


def test_not_engaging_on_an_issue_takes_the_default_route_with_the_issue_flagged(
    app: Flask,
    twilio: Any,
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
    run_jobs: Callable[[], int],
) -> None:
    customer = make_customer()
    restrict(customer, kind="no_engagement", issue="the boundary fence")
    params = twilio.call_params(CUSTOMER_NUMBER)
    root = parse(twilio.post("/twilio/voice/incoming", params))
    assert conference_of(root) is not None
    run_jobs()
    assert "no_engagement:the boundary fence" in call_row(app, params["CallSid"]).flags["flags"]


# --- limited contact (Europe/London windows, weekly allowance) -----------------------------------

WINDOWS = [{"days": ["tue", "thu"], "start": "10:00", "end": "12:00"}]


@pytest.mark.parametrize("moment", [TUESDAY_BST, TUESDAY_GMT], ids=["summer", "winter"])
def test_limited_contact_inside_a_window_is_routed(
    twilio: Any,
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
    moment: datetime,
) -> None:
    customer = make_customer()
    restrict(customer, kind="limited_contact", windows=WINDOWS)
    with time_machine.travel(moment, tick=False):
        root = parse(twilio.incoming(CUSTOMER_NUMBER))
    assert conference_of(root) is not None


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 6, 2, 8, 59, 59, tzinfo=UTC),  # Tuesday 09:59:59 BST: one second early
        datetime(2026, 6, 2, 11, 0, 0, tzinfo=UTC),  # Tuesday 12:00 BST: the window has closed
        datetime(2026, 6, 3, 9, 30, tzinfo=UTC),  # Wednesday: not a permitted day
    ],
    ids=["before", "at-end", "other-day"],
)
def test_limited_contact_outside_the_windows_hears_when_they_may_call(
    twilio: Any,
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
    moment: datetime,
) -> None:
    customer = make_customer()
    restrict(customer, kind="limited_contact", windows=WINDOWS)
    with time_machine.travel(moment, tick=False):
        root = parse(twilio.incoming(CUSTOMER_NUMBER))
    ends_with_emergency_offer_first(root, "/twilio/voice/emergency")
    assert "on Tuesdays and Thursdays from 10:00 to 12:00" in spoken(root)


def test_limited_contact_with_a_spoc_is_routed_to_the_spoc_inside_the_window(
    twilio: Any,
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
    run_jobs: Callable[[], int],
    fake_twilio: Any,
) -> None:
    customer = make_customer()
    restrict(customer, kind="limited_contact", windows=WINDOWS)
    restrict(customer, kind="spoc", spoc="+441332000555")
    with time_machine.travel(TUESDAY_BST, tick=False):
        parse(twilio.incoming(CUSTOMER_NUMBER))
        run_jobs()
    (dial,) = fake_twilio.dial_outs()
    assert dial.param("To") == "+441332000555"


def test_weekly_allowance_routes_until_it_is_used_then_says_so(
    twilio: Any,
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
) -> None:
    customer = make_customer()
    restrict(customer, kind="limited_contact", windows=WINDOWS, max_calls_per_week=2)

    def answered_call() -> None:
        params = twilio.call_params(CUSTOMER_NUMBER)
        assert conference_of(parse(twilio.post("/twilio/voice/incoming", params))) is not None
        agent_leg = "CA" + "a" * 30 + params["CallSid"][-2:]
        put_together(twilio, params["CallSid"], agent_leg)

    with time_machine.travel(TUESDAY_BST, tick=False):
        answered_call()
        # put through, but the caller hung up before anyone answered: no allowance used
        assert conference_of(parse(twilio.incoming(CUSTOMER_NUMBER))) is not None
        answered_call()
        third = parse(twilio.incoming(CUSTOMER_NUMBER))
    assert conference_of(third) is None
    assert "You have made all the calls allowed this week, which is 2." in spoken(third)
    assert "agreed" not in spoken(third)
    # next Tuesday is a new week
    with time_machine.travel(datetime(2026, 6, 9, 9, 30, tzinfo=UTC), tick=False):
        assert conference_of(parse(twilio.incoming(CUSTOMER_NUMBER))) is not None


# --- precedence, appeals, language ------------------------------------------------------------


def test_the_most_restrictive_restriction_wins(
    twilio: Any, make_customer: Callable[..., Any], restrict: Callable[..., Any]
) -> None:
    customer = make_customer()
    restrict(customer, kind="spoc", spoc="+441332000555")
    restrict(customer, kind="written_only")
    root = parse(twilio.incoming(CUSTOMER_NUMBER))
    assert conference_of(root) is None
    assert "in writing only" in spoken(root)


def test_a_restriction_under_appeal_still_applies(
    app: Flask, twilio: Any, make_customer: Callable[..., Any], restrict: Callable[..., Any]
) -> None:
    customer = make_customer()
    restriction = restrict(customer, kind="written_only")
    with database(app).sessions() as sess:
        row = sess.get(Restriction, restriction.id)
        assert row is not None
        today = datetime.now(UTC).date()
        lodge_appeal(sess, Actor(None, "test"), row, {"grounds": "Unfair"}, today=today)
        sess.commit()
    root = parse(twilio.incoming(CUSTOMER_NUMBER))
    assert "in writing only" in spoken(root)


def test_welsh_speaker_with_slower_speech_hears_welsh_slowly(
    twilio: Any, make_customer: Callable[..., Any], restrict: Callable[..., Any]
) -> None:
    customer = make_customer(language="cy-GB", adjustments={"slow_speech": True})
    restrict(customer, kind="written_only")
    root = parse(twilio.incoming(CUSTOMER_NUMBER))
    says = list(root.iter("Say"))
    assert says and all(s.get("language") == "cy-GB" for s in says)
    assert all(s.get("voice") == "Polly.Gwyneth" for s in says)
    assert all(s.find("prosody") is not None for s in says)
    assert all(s.find("prosody").get("rate") == "slow" for s in says)  # type: ignore[union-attr]
    assert "ysgrifenedig" in spoken(root)


def test_polish_speaker_hears_polish(
    twilio: Any, make_customer: Callable[..., Any], restrict: Callable[..., Any]
) -> None:
    customer = make_customer(language="pl-PL")
    restrict(customer, kind="representative_only", representative="Pani Nowak")
    root = parse(twilio.incoming(CUSTOMER_NUMBER))
    assert {s.get("language") for s in root.iter("Say")} == {"pl-PL"}
    assert "przedstawiciela" in spoken(root)


# --- emergency repairs ---------------------------------------------------------------------------


def test_pressing_1_connects_the_emergency_line_and_is_recorded(
    app: Flask, twilio: Any, run_jobs: Callable[[], int]
) -> None:
    sid = "CA" + "2" * 32
    root = parse(
        twilio.post(f"/twilio/voice/emergency?call_sid={sid}", {"CallSid": sid, "Digits": "1"})
    )
    assert root.findtext("Dial") == "+441332000999"
    run_jobs()
    assert call_row(app, sid).emergency_selected_at is not None


# --- the look-up: one Redis round trip, no SQL ---------------------------------------------


def test_the_usual_caller_costs_one_redis_round_trip_and_no_sql(
    app: Flask,
    twilio: Any,
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    customer = make_customer()
    restrict(customer, kind="warning")
    hit, profile = cache.read(redis_client(app), CUSTOMER_NUMBER)
    assert hit and profile is not None, "the cache is filled when the customer changes"

    statements: list[str] = []
    engine = database(app).engine
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    # this process's Redis commands, one by one and inside pipelines (the server's own command
    # counts would include the other test worker's)
    sent: list[str] = []
    one, batch = Redis.execute_command, Pipeline.execute

    def command(self: Redis, *args: Any, **options: Any) -> Any:
        sent.append(str(args[0]).upper())
        return one(self, *args, **options)  # type: ignore[no-untyped-call]

    def pipeline(self: Pipeline, raise_on_error: bool = True) -> Any:
        sent.extend(str(args[0]).upper() for args, _ in self.command_stack)
        return batch(self, raise_on_error)

    monkeypatch.setattr(Redis, "execute_command", command)
    monkeypatch.setattr(Pipeline, "execute", pipeline)
    try:
        parse(twilio.incoming(CUSTOMER_NUMBER))
    finally:
        event.remove(engine, "before_cursor_execute", listener)
        monkeypatch.undo()
    assert statements == []
    # the look-up and the hand-over to the workers are one script
    assert sent == ["EVALSHA"], sent


def test_a_call_handed_over_with_its_cache_entry_is_recorded_as_the_caller_heard_it(
    app: Flask,
    twilio: Any,
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
    run_jobs: Callable[[], int],
    fake_twilio: Any,
) -> None:
    customer = make_customer()
    spoc = restrict(customer, kind="spoc", spoc="+441332000555")
    params = twilio.call_params(CUSTOMER_NUMBER)
    heard = parse(twilio.post("/twilio/voice/incoming", params))
    (entry,) = handed_over(app)
    assert set(entry) == {b"call", b"entry"}  # the worker decides from what the webhook read
    assert run_jobs() == 1
    call = call_row(app, params["CallSid"])
    assert (call.route, call.route_destination, call.restriction_id) == (
        "spoc",
        "dial:+441332000555",
        spoc.id,
    )
    assert call.customer_id == customer.id and call.flags["flags"] == ["spoc"]
    assert heard.find(".//Conference") is not None
    (dial,) = fake_twilio.dial_outs()
    assert dial.param("To") == "+441332000555"


def test_a_caller_with_a_weekly_allowance_is_handed_over_after_the_count(
    app: Flask,
    twilio: Any,
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
    run_jobs: Callable[[], int],
) -> None:
    customer = make_customer()
    restrict(customer, kind="limited_contact", windows=WINDOWS, max_calls_per_week=2)
    params = twilio.call_params(CUSTOMER_NUMBER)
    twilio.post("/twilio/voice/incoming", params)
    (entry,) = handed_over(app)
    assert set(entry) == {b"record"}  # decided with the count, so handed over decided
    assert run_jobs() == 1
    assert call_row(app, params["CallSid"]).customer_id == customer.id


def test_a_cache_miss_is_filled_from_postgresql(
    app: Flask,
    twilio: Any,
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
    redis_conn: Any,
) -> None:
    customer = make_customer()
    restrict(customer, kind="written_only")
    redis_conn.flushdb()
    root = parse(twilio.incoming(CUSTOMER_NUMBER))
    assert "in writing only" in spoken(root)
    hit, profile = cache.read(redis_client(app), CUSTOMER_NUMBER)
    assert hit and profile is not None and profile.restrictions[0].kind == "written_only"


def test_ending_a_restriction_changes_the_route_at_once(
    app: Flask, twilio: Any, make_customer: Callable[..., Any], restrict: Callable[..., Any]
) -> None:
    from restrictions.lifecycle import end_restriction

    customer = make_customer()
    restriction = restrict(customer, kind="written_only")
    assert conference_of(parse(twilio.incoming(CUSTOMER_NUMBER))) is None
    with database(app).sessions() as sess:
        row = sess.get(Restriction, restriction.id)
        assert row is not None
        end_restriction(sess, Actor(None, "test"), row, "Reviewed at 12 months")
        sess.commit()
    assert conference_of(parse(twilio.incoming(CUSTOMER_NUMBER))) is not None


def test_each_caller_hears_their_own_language_and_pace_whoever_called_first(
    twilio: Any, make_customer: Callable[..., Any]
) -> None:
    """The TwiML of a route is rendered once and reused: the caller's language and pace are
    part of what it is reused for, so a Welsh caller after an English one (and a caller at the
    usual pace after one who asked for slower speech) hears their own."""
    make_customer("HMS-1", numbers=("+447400100001",), language="cy-GB")
    make_customer("HMS-2", numbers=("+447400100002",), language="en-GB")
    make_customer(
        "HMS-3", numbers=("+447400100003",), language="en-GB", adjustments={"slow_speech": True}
    )

    def heard(number: str) -> tuple[set[str], bool]:
        answer = twilio.incoming(number)
        assert answer.status_code == 200
        root = ElementTree.fromstring(answer.data)
        says = root.iter("Say")
        languages = {s.get("language", "") for s in says}
        return languages, root.find(".//prosody") is not None

    for _ in range(2):  # the second round is served from what the first rendered
        assert heard("+447400100001") == ({"cy-GB"}, False)
        assert heard("+447400100002") == ({"en-GB"}, False)
        assert heard("+447400100003") == ({"en-GB"}, True)
