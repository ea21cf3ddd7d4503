"""No dead ends: every <Dial> callguard answers rings for a set time and has an action, and that
action goes somewhere in the caller's language: the emergency line's backup, how else to report
an emergency repair, the team-busy message, voicemail. Driven as Twilio drives it, with the
parameters Twilio sends a <Dial>'s action (DialCallStatus, DialCallSid, DialCallDuration)."""

from __future__ import annotations

import logging
import re
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree
from xml.etree.ElementTree import Element

import pytest
from flask import Flask

from restrictions import cache
from restrictions.settings import Settings, SettingsError, parse_settings
from restrictions.speech import Listener
from telephony import inbound, twiml
from telephony.config import SETTINGS
from telephony.redis_store import call_path_breaker, redis_client
from tests.calls import parse, spoken
from tests.fake_twilio import FakeTwilio

CUSTOMER = "+447400100001"
DEFAULT_LINE = "+441332000100"
EMERGENCY_LINE = "+441332000999"
BACKUP_LINE = "+441332000998"
SPOC_LINE = "+441332000555"
NO_QUEUE = "redis://127.0.0.1:1/0"  # Redis refusing: no queue, so callers are put straight through
README = Path(__file__).resolve().parents[2] / "README.md"


# --- helpers -------------------------------------------------------------------------------------


def path_of(url: str | None) -> str:
    """An absolute callback URL of ours as the path and query Twilio would request."""
    parts = urlsplit(url or "")
    assert (parts.scheme, parts.netloc) == ("https", "calls.example.org"), url
    return f"{parts.path}?{parts.query}"


def query_of(url: str | None) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url or "").query).items()}


def the_dial(root: Element) -> Element:
    (dial,) = root.findall("Dial")
    return dial


def dead_dials(xml: str | bytes) -> list[str]:
    """Each <Dial> (not a waiting caller's conference) without a timeout or an action."""
    root = ElementTree.fromstring(xml)
    return [
        ElementTree.tostring(dial, encoding="unicode")
        for dial in root.iter("Dial")
        if dial.find("Conference") is None
        and not (dial.get("timeout", "").isdigit() and dial.get("action"))
    ]


def dial_ended(
    twilio: Any, dial: Element, call: dict[str, str], status: str, *, seconds: int = 0
) -> Any:
    """Twilio requesting a <Dial>'s action when the dialled leg ends (or never started)."""
    assert (dial.get("method") or "POST") == "POST"
    params = {
        **call,
        "CallStatus": "in-progress",
        "DialCallStatus": status,
        "DialCallSid": "CA" + "d" * 32,
    }
    if status in ("completed", "answered"):
        params["DialCallDuration"] = str(seconds)
    return twilio.post(path_of(dial.get("action")), params)


def press(twilio: Any, gather: Element | None, call: dict[str, str], digits: str) -> Element:
    assert gather is not None and gather.get("numDigits") == "1"
    return parse(twilio.post(path_of(gather.get("action")), {**call, "Digits": digits}))


@pytest.fixture
def with_settings(app: Flask) -> Callable[..., Settings]:
    """Change the running app's settings (put back after the test by the ``app`` fixture)."""

    def change(**values: Any) -> Settings:
        changed: Settings = replace(app.extensions[SETTINGS], **values)
        app.extensions[SETTINGS] = changed
        return changed

    return change


@pytest.fixture
def written_only(
    twilio: Any, make_customer: Callable[..., Any], restrict: Callable[..., Any]
) -> Callable[..., tuple[dict[str, str], Element]]:
    """A call from a customer who may only write: (Twilio's call parameters, what they hear)."""

    def call(**customer: Any) -> tuple[dict[str, str], Element]:
        restrict(make_customer(**customer), kind="written_only")
        params = twilio.call_params(CUSTOMER)
        return params, parse(twilio.post("/twilio/voice/incoming", params))

    return call


@pytest.fixture
def answer_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """Answering the call fails (a bug, a dependency): the fallback answers instead."""

    def broken(*args: Any, **kwargs: Any) -> str:
        raise RuntimeError("a bug while answering")

    monkeypatch.setattr(inbound, "answer", broken)


# --- 1. emergency repairs: a set time, then the backup, then how else to report ----------------


def test_the_emergency_line_rings_for_a_set_time_and_then_goes_somewhere(
    twilio: Any, written_only: Callable[..., Any], with_settings: Callable[..., Settings]
) -> None:
    with_settings(emergency_ring_seconds=40)
    call, root = written_only()
    emergency = press(twilio, root.find("Gather"), call, "1")
    dial = the_dial(emergency)
    assert dial.text == EMERGENCY_LINE
    assert (dial.get("timeout"), dial.get("method")) == ("40", "POST")
    assert urlsplit(dial.get("action")).path == "/twilio/voice/emergency-result"
    assert query_of(dial.get("action")) == {
        "call_sid": call["CallSid"],
        "lang": "en-GB",
        "slow": "0",
        "try": "1",
    }


def test_an_unanswered_emergency_line_rings_the_backup_then_says_how_else_to_report(
    twilio: Any,
    written_only: Callable[..., Any],
    with_settings: Callable[..., Settings],
    caplog: pytest.LogCaptureFixture,
) -> None:
    with_settings(emergency_backup=BACKUP_LINE)
    call, root = written_only()
    first = the_dial(press(twilio, root.find("Gather"), call, "1"))
    backup = parse(dial_ended(twilio, first, call, "no-answer"))
    assert [e.tag for e in backup] == ["Say", "Dial"]
    assert "try another number" in spoken(backup)
    second = the_dial(backup)
    assert second.text == BACKUP_LINE and second.get("timeout") == "30"
    assert query_of(second.get("action"))["try"] == "2"
    with caplog.at_level(logging.ERROR):
        told = parse(dial_ended(twilio, second, call, "busy"))
    assert [e.tag for e in told] == ["Say", "Say", "Say", "Hangup"]
    words = spoken(told)
    assert "could not get through to our emergency repairs line" in words
    assert "01332 000100" in words  # the organisation's phone, as dialled here
    assert "www dot example dot org slash contact" in words  # and its website, as said
    assert "dial 999" in words and words.endswith("Goodbye.")
    assert any("could not reach emergency repairs" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("status", ["no-answer", "busy", "failed", "canceled"])
def test_without_a_backup_an_unanswered_emergency_line_says_how_else_to_report(
    twilio: Any, written_only: Callable[..., Any], status: str
) -> None:
    call, root = written_only()
    dial = the_dial(press(twilio, root.find("Gather"), call, "1"))
    told = parse(dial_ended(twilio, dial, call, status))
    assert told.find("Dial") is None and told[-1].tag == "Hangup"
    assert "could not get through" in spoken(told) and "999" in spoken(told)


@pytest.mark.parametrize("status", ["completed", "answered"])
def test_an_answered_emergency_call_just_ends(
    twilio: Any,
    written_only: Callable[..., Any],
    with_settings: Callable[..., Settings],
    status: str,
) -> None:
    with_settings(emergency_backup=BACKUP_LINE)
    call, root = written_only()
    dial = the_dial(press(twilio, root.find("Gather"), call, "1"))
    ended = parse(dial_ended(twilio, dial, call, status, seconds=184))
    assert [e.tag for e in ended] == ["Hangup"]


def test_a_welsh_callers_emergency_failure_is_said_in_welsh(
    twilio: Any, written_only: Callable[..., Any], with_settings: Callable[..., Settings]
) -> None:
    with_settings(emergency_backup=BACKUP_LINE)
    call, root = written_only(language="cy-GB", adjustments={"slow_speech": True})
    first = the_dial(press(twilio, root.find("Gather"), call, "1"))
    assert query_of(first.get("action"))["lang"] == "cy-GB"
    backup = parse(dial_ended(twilio, first, call, "no-answer"))
    assert "rhoi cynnig ar rif arall" in spoken(backup)
    told = parse(dial_ended(twilio, the_dial(backup), call, "failed"))
    says = told.findall("Say")
    assert says and {s.get("language") for s in says} == {"cy-GB"}
    assert all(s.find("prosody") is not None for s in says)  # slowly, as they asked
    words = spoken(told)
    assert "ni lwyddon ni i gael drwodd i'n llinell atgyweiriadau brys" in words
    assert "01332 000100" in words and "ffoniwch 999" in words
    assert words.endswith("Hwyl fawr.")


def test_an_emergency_backup_setting_is_a_phone_number() -> None:
    assert parse_settings({}).emergency_backup == ""
    assert parse_settings({}).emergency_ring_seconds == 30
    routes = {"emergency_backup": "01332 000998", "emergency_ring_seconds": 45}
    parsed = parse_settings({"routes": routes})
    assert (parsed.emergency_backup, parsed.emergency_ring_seconds) == (BACKUP_LINE, 45)
    with pytest.raises(SettingsError, match="routes.emergency_backup"):
        parse_settings({"routes": {"emergency_backup": "not a number"}})


# --- 2. a direct connection nobody answers ------------------------------------------------------


def test_a_direct_dial_nobody_answers_hears_the_team_is_busy(
    app_with: Callable[..., Flask], twilio: Any, make_customer: Callable[..., Any]
) -> None:
    make_customer(language="pl-PL")
    twilio.client = app_with(REDIS_URL=NO_QUEUE).test_client()
    call = twilio.call_params(CUSTOMER)
    dial = the_dial(parse(twilio.post("/twilio/voice/incoming", call)))
    assert dial.findtext("Number") == DEFAULT_LINE and dial.get("timeout") == "30"
    assert urlsplit(dial.get("action")).path == "/twilio/voice/dial-result"
    assert query_of(dial.get("action"))["lang"] == "pl-PL"
    busy = parse(dial_ended(twilio, dial, call, "no-answer"))
    assert busy.find("Dial") is None and busy[-1].tag == "Hangup"
    assert "nikt z naszego zespołu" in spoken(busy)  # the team-busy message, in Polish
    assert "nacisnąć teraz 1" in spoken(busy) and "999" in spoken(busy)
    emergency = press(twilio, busy.find("Gather"), call, "1")
    assert the_dial(emergency).text == EMERGENCY_LINE


def test_a_direct_dial_that_was_answered_just_ends(
    app_with: Callable[..., Flask], twilio: Any
) -> None:
    twilio.client = app_with(REDIS_URL=NO_QUEUE).test_client()
    call = twilio.call_params(CUSTOMER)
    dial = the_dial(parse(twilio.post("/twilio/voice/incoming", call)))
    ended = parse(dial_ended(twilio, dial, call, "completed", seconds=312))
    assert [e.tag for e in ended] == ["Hangup"]


def test_a_spoc_caller_put_through_directly_and_not_answered_may_leave_a_message(
    app_with: Callable[..., Flask],
    twilio: Any,
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
) -> None:
    """Never the general line for a SPOC's caller: their voicemail, as when they wait."""
    restrict(make_customer(), kind="spoc", spoc=SPOC_LINE)
    twilio.client = app_with(REDIS_URL=NO_QUEUE).test_client()
    call = twilio.call_params(CUSTOMER)
    root = parse(twilio.post("/twilio/voice/incoming", call))
    dial = the_dial(root)
    assert dial.findtext("Number") == SPOC_LINE and dial.get("timeout") == "25"
    missed = parse(dial_ended(twilio, dial, call, "no-answer"))
    assert missed.find("Record") is not None and missed.find("Dial") is None
    # a stray key before the dial goes on to the same dial, which still goes to voicemail
    onward = the_dial(press(twilio, root.find("Gather"), call, "7"))
    assert onward.findtext("Number") == SPOC_LINE
    assert query_of(onward.get("action"))["kind"] == "spoc"
    assert parse(dial_ended(twilio, onward, call, "busy")).find("Record") is not None


# --- 3. the fallback: the caller's language, emergency repairs first, a dial that goes on --------


def test_the_fallback_answers_a_welsh_caller_in_welsh_with_emergency_repairs_first(
    app: Flask,
    twilio: Any,
    make_customer: Callable[..., Any],
    answer_fails: None,
) -> None:
    make_customer(language="cy-GB")
    assert redis_client(app).get(cache.key(CUSTOMER)) is not None  # their profile is cached
    call = twilio.call_params(CUSTOMER)
    root = parse(twilio.post("/twilio/voice/incoming", call))
    assert [e.tag for e in root] == ["Gather", "Dial"]
    assert {s.get("language") for s in root.iter("Say")} == {"cy-GB"}
    assert "pwyswch 1" in spoken(root)
    gather = root.find("Gather")
    assert gather is not None and gather.get("numDigits") == "1"
    assert query_of(gather.get("action"))["msg"] == "direct"
    dial = the_dial(root)
    assert dial.findtext("Number") == DEFAULT_LINE and dial.get("timeout") == "30"
    assert urlsplit(dial.get("action")).path == "/twilio/voice/dial-result"
    assert query_of(dial.get("action")) == {
        "call_sid": call["CallSid"],
        "lang": "cy-GB",
        "slow": "0",
    }
    # 1 is emergency repairs, in Welsh; another key goes on to the same dial
    emergency = press(twilio, gather, call, "1")
    assert the_dial(emergency).text == EMERGENCY_LINE
    assert emergency.find("Say").get("language") == "cy-GB"  # type: ignore[union-attr]
    onward = press(twilio, gather, call, "4")
    assert the_dial(onward).findtext("Number") == DEFAULT_LINE
    assert dead_dials(ElementTree.tostring(onward)) == []
    busy = parse(dial_ended(twilio, dial, call, "no-answer"))
    assert {s.get("language") for s in busy.iter("Say")} == {"cy-GB"}


def test_with_redis_down_the_fallback_still_answers_in_english(
    app_with: Callable[..., Flask],
    twilio: Any,
    make_customer: Callable[..., Any],
    answer_fails: None,
) -> None:
    make_customer(language="cy-GB")
    twilio.client = app_with(REDIS_URL=NO_QUEUE).test_client()
    root = parse(twilio.incoming(CUSTOMER))
    assert [e.tag for e in root] == ["Gather", "Dial"]
    assert {s.get("language") for s in root.iter("Say")} == {"en-GB"}
    assert "press 1" in spoken(root) and dead_dials(ElementTree.tostring(root)) == []


def test_with_redis_hung_the_fallback_answers_in_english_without_waiting_long(
    app_with: Callable[..., Flask],
    twilio: Any,
    make_customer: Callable[..., Any],
    hung_port: int,
    answer_fails: None,
) -> None:
    make_customer(language="cy-GB")
    twilio.client = app_with(REDIS_URL=f"redis://127.0.0.1:{hung_port}/0").test_client()
    started = time.monotonic()
    root = parse(twilio.incoming(CUSTOMER))
    assert time.monotonic() - started < 2.0  # the call path's short Redis timeout, not longer
    assert {s.get("language") for s in root.iter("Say")} == {"en-GB"}
    assert the_dial(root).get("action")


def test_while_redis_is_known_to_be_failing_the_fallback_does_not_ask_it(
    app: Flask,
    twilio: Any,
    make_customer: Callable[..., Any],
    answer_fails: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    make_customer(language="cy-GB")
    call_path_breaker(app).failed()  # a failure a moment ago: the breaker is open
    asked: list[str] = []
    real_get = redis_client(app).get

    def counted(name: str) -> Any:
        asked.append(name)
        return real_get(name)

    monkeypatch.setattr(redis_client(app), "get", counted)
    root = parse(twilio.incoming(CUSTOMER))
    assert {s.get("language") for s in root.iter("Say")} == {"en-GB"}
    assert cache.key(CUSTOMER) not in asked


def test_an_unreadable_cache_entry_means_english(
    app: Flask, twilio: Any, make_customer: Callable[..., Any], answer_fails: None
) -> None:
    make_customer(language="cy-GB")
    redis_client(app).set(cache.key(CUSTOMER), "=not json")
    root = parse(twilio.incoming(CUSTOMER))
    assert {s.get("language") for s in root.iter("Say")} == {"en-GB"}
    assert root.find("Gather") is not None


def test_if_even_rendering_the_fallback_fails_a_static_answer_is_given(
    app: Flask,
    twilio: Any,
    answer_fails: None,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*args: Any, **kwargs: Any) -> str:
        raise RuntimeError("a bug while rendering")

    monkeypatch.setattr(inbound, "_fallback_twiml", broken)
    with caplog.at_level(logging.ERROR):
        root = parse(twilio.incoming(CUSTOMER))
    assert the_dial(root).findtext("Number") == DEFAULT_LINE
    assert dead_dials(ElementTree.tostring(root)) == []
    assert any("could not render the fallback" in r.getMessage() for r in caplog.records)
    monkeypatch.setattr(twiml, "direct_twiml", broken)  # and the plainest dial fails too
    last = parse(twilio.incoming(CUSTOMER))
    assert [e.tag for e in last] == ["Say", "Hangup"] and "999" in spoken(last)


# --- 4. every <Dial> callguard answers has a timeout and an action ------------------------------


@dataclass
class Paths:
    """What a scenario needs to play a main path as Twilio would."""

    twilio: Any
    app_with: Callable[..., Flask]
    make_customer: Callable[..., Any]
    restrict: Callable[..., Any]
    with_settings: Callable[..., Settings]
    monkeypatch: pytest.MonkeyPatch

    def without_queue(self) -> None:
        self.twilio.client = self.app_with(REDIS_URL=NO_QUEUE).test_client()

    def incoming(self, number: str = CUSTOMER) -> list[bytes]:
        return [self.twilio.incoming(number).data]

    def key(self, digits: str, *, then_unanswered: bool = False) -> list[bytes]:
        """The inbound answer, a key pressed in its window, and (``then_unanswered``) what the
        key's <Dial> leads to when nobody answers it."""
        call = self.twilio.call_params(CUSTOMER)
        first = parse(self.twilio.post("/twilio/voice/incoming", call))
        after = press(self.twilio, first.find("Gather"), call, digits)
        answers = [ElementTree.tostring(first), ElementTree.tostring(after)]
        if then_unanswered:
            answers.append(dial_ended(self.twilio, the_dial(after), call, "no-answer").data)
        return answers


def _agent_route(p: Paths) -> list[bytes]:
    p.make_customer()
    return p.incoming()


def _spoc_route(p: Paths) -> list[bytes]:
    p.restrict(p.make_customer(), kind="spoc", spoc=SPOC_LINE)
    return p.key("5")


def _agent_route_queue_down(p: Paths) -> list[bytes]:
    p.make_customer()
    p.without_queue()
    return p.incoming()


def _unknown_caller_queue_down(p: Paths) -> list[bytes]:
    p.without_queue()
    return p.incoming("+447400999999")


def _spoc_route_queue_down_stray_key(p: Paths) -> list[bytes]:
    p.restrict(p.make_customer(), kind="spoc", spoc=SPOC_LINE)
    p.without_queue()
    return p.key("7")


def _emergency_then_backup(p: Paths) -> list[bytes]:
    p.with_settings(emergency_backup=BACKUP_LINE)
    p.restrict(p.make_customer(), kind="written_only")
    return p.key("1", then_unanswered=True)


def _emergency_spoc_caller(p: Paths) -> list[bytes]:
    p.restrict(p.make_customer(), kind="spoc", spoc=SPOC_LINE)
    return p.key("1")


def _fallback_stray_key(p: Paths) -> list[bytes]:
    p.make_customer()
    p.monkeypatch.setattr(inbound, "answer", lambda *args, **kwargs: 1 / 0)
    return p.key("3", then_unanswered=True)


SCENARIOS: dict[str, Callable[[Paths], list[bytes]]] = {
    "agent route (conference)": _agent_route,
    "spoc route (conference), another key": _spoc_route,
    "agent route, queue down": _agent_route_queue_down,
    "unknown caller, queue down": _unknown_caller_queue_down,
    "spoc route, queue down, a stray key": _spoc_route_queue_down_stray_key,
    "emergency repairs from a message, then the backup": _emergency_then_backup,
    "emergency repairs before the spoc": _emergency_spoc_caller,
    "fallback, a stray key, nobody answers": _fallback_stray_key,
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_dial_on_the_main_paths_has_a_timeout_and_an_action(
    app_with: Callable[..., Flask],
    twilio: Any,
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
    with_settings: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
    scenario: str,
) -> None:
    paths = Paths(twilio, app_with, make_customer, restrict, with_settings, monkeypatch)
    answers = SCENARIOS[scenario](paths)
    assert answers and all(ElementTree.fromstring(xml).tag == "Response" for xml in answers)
    for xml in answers:
        assert dead_dials(xml) == [], xml


def test_a_caller_moved_on_or_connected_by_a_job_is_never_dialled_without_an_action(
    app: Flask, fake_twilio: FakeTwilio, settings: Settings
) -> None:
    """The TwiML a call update carries: a waiting caller moved on (nobody was rung), and a
    caller connected directly after Twilio refused the dial-out."""
    from handlers.calls import _connect_directly
    from restrictions.destination import Destination
    from telephony import waiting
    from telephony.twilio_gateway import GatewayError

    moved, refused = "CA" + "7" * 32, "CA" + "8" * 32
    assert waiting.move_on(app, settings, moved, waiting.AGENT, Listener("cy-GB"))
    _connect_directly(
        refused, Destination.parse(f"dial:{SPOC_LINE}"), 25, True, GatewayError("refused")
    )
    for sid, kind in ((moved, "agent"), (refused, "spoc")):
        (update,) = fake_twilio.posts(f"/Calls/{sid}.json")
        xml = update.param("Twiml") or ""
        assert dead_dials(xml) == [], xml
        dial = the_dial(ElementTree.fromstring(xml))
        assert urlsplit(dial.get("action")).path == "/twilio/voice/dial-result"
        assert query_of(dial.get("action")).get("kind", "agent") == kind


# --- 5. the README's TwiML Bin for Twilio's fallback URL --------------------------------------


def readme_twiml_bin() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Pointing a Twilio number at callguard", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```xml\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) == 1, "the fallback URL's TwiML Bin, as one ```xml block"
    return textwrap.dedent(blocks[0]).strip()


def test_the_readmes_twiml_bin_dials_for_a_set_time_then_says_what_to_do() -> None:
    xml = readme_twiml_bin()
    assert "{{" not in xml  # nothing for Twilio's templating to fill in: paste as it is
    root = ElementTree.fromstring(xml)
    tags = [e.tag for e in root]
    assert tags.count("Dial") == 1 and tags[-1] == "Hangup"
    dial = the_dial(root)
    assert dial.get("timeout", "").isdigit() and dial.text == DEFAULT_LINE
    before, after = root[: tags.index("Dial")], root[tags.index("Dial") + 1 :]
    for part in (before, after):
        says = [s for s in part if s.tag == "Say"]
        assert {s.get("language") for s in says} == {"en-GB", "cy-GB"}  # English and Welsh
        assert all(len("".join(s.itertext()).split()) > 5 for s in says)
        assert "01332 000999" in " ".join("".join(s.itertext()) for s in says)
    first = " ".join("".join(s.itertext()) for s in before)
    assert "dial 999" in first and "ffoniwch 999" in first  # the danger line, in both
