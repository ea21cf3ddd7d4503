"""TwiML builders are pure functions: parse what they return and check what Twilio will do."""

from __future__ import annotations

from xml.etree import ElementTree
from xml.etree.ElementTree import Element

import pytest

import prompts
from prompts import Speech
from restrictions.destination import Destination
from restrictions.errors import Invalid
from telephony import twiml

KEYS = "https://calls.example.org/twilio/voice/emergency?call_sid=CA1&msg=route&replay=0"
EVENTS = "https://calls.example.org/twilio/conference/events"
HOLD = "https://calls.example.org/twilio/voice/hold?call_sid=CA1&kind=agent&since=1&ring=30"
VOICEMAIL = "https://calls.example.org/twilio/voice/voicemail?call_sid=CA1"
HELLO = Speech("Hello.", "en-GB", "Polly.Amy", False)
SLOW_WELSH = Speech("Helo.", "cy-GB", "Polly.Gwyneth", True)
MESSAGE = Speech("We deal with your enquiries in writing only.", "en-GB", "Polly.Amy", False)
OFFER = prompts.speech("emergency_offer", "en-GB")
REPLAY = prompts.speech("replay_offer", "en-GB")
DANGER = prompts.speech("danger", "en-GB")
GOODBYE = prompts.speech("goodbye", "en-GB")


def parse(xml: str) -> Element:
    root = ElementTree.fromstring(xml)
    assert root.tag == "Response"
    return root


def words(say: Element) -> str:
    return "".join(say.itertext()).strip()


def test_say_uses_the_voice_and_language() -> None:
    say = parse(twiml.announcement(HELLO)).find("Say")
    assert say is not None and say.text == "Hello." and say.find("prosody") is None
    assert (say.get("voice"), say.get("language")) == ("Polly.Amy", "en-GB")


def test_slow_speech_is_ssml_prosody_inside_the_say() -> None:
    say = parse(twiml.announcement(SLOW_WELSH)).find("Say")
    assert say is not None and (say.get("voice"), say.get("language")) == ("Polly.Gwyneth", "cy-GB")
    prosody = say.find("prosody")
    assert prosody is not None and prosody.get("rate") == "slow" and prosody.text == "Helo."


def test_conference_name_is_per_call_and_read_back() -> None:
    assert twiml.conference_name("CA123") == "cg-CA123"
    assert twiml.call_sid_of_conference("cg-CA123") == "CA123"
    assert twiml.call_sid_of_conference("cg-") is None
    assert twiml.call_sid_of_conference("other-CA123") is None


def test_the_caller_waits_in_their_conference_hearing_our_hold_url() -> None:
    after = "https://calls.example.org/twilio/voice/after-conference?call_sid=CA123"
    root = parse(twiml.join_conference("CA123", HELLO, EVENTS, HOLD, after=after))
    assert [e.tag for e in root] == ["Say", "Dial"]
    dial = root.find("Dial")
    assert dial is not None and dial.get("action") == after  # never a dead end
    conference = root.find("./Dial/Conference")
    assert conference is not None and conference.text == "cg-CA123"
    # the person rung starts the conference; until then the caller hears our waitUrl heartbeat
    assert conference.get("startConferenceOnEnter") == "false"
    # the caller leaving (or being moved on) ends it: nobody is left in it alone
    assert conference.get("endConferenceOnExit") == "true"
    assert (conference.get("waitUrl"), conference.get("waitMethod")) == (HOLD, "POST")
    assert conference.get("beep") == "false"
    assert conference.get("statusCallback") == EVENTS
    assert conference.get("statusCallbackEvent") == "start end join leave announcement"


def test_a_spoc_caller_is_offered_emergency_repairs_before_the_spoc_rings() -> None:
    spoc_offer = prompts.speech("spoc_emergency_offer", "en-GB")
    root = parse(
        twiml.join_conference(
            "CA1", HELLO, EVENTS, HOLD, offer=spoc_offer, key_action=KEYS, after=HOLD
        )
    )
    assert [e.tag for e in root] == ["Gather", "Dial"]
    gather = root.find("Gather")
    assert gather is not None and gather.get("action") == KEYS
    assert int(gather.get("timeout") or 0) >= 5
    assert [words(s) for s in gather.findall("Say")] == [HELLO.text, spoc_offer.text]
    assert "press 1" in spoc_offer.text


def test_hold_is_words_a_pause_and_the_next_heartbeat() -> None:
    root = parse(twiml.hold(HELLO, 10, HOLD + "&n=1"))
    assert [e.tag for e in root] == ["Say", "Pause", "Redirect"]
    pause, again = root.find("Pause"), root.find("Redirect")
    assert pause is not None and pause.get("length") == "10"
    assert again is not None and again.text == HOLD + "&n=1" and again.get("method") == "POST"
    assert [e.tag for e in parse(twiml.hold(None, 0, HOLD))] == ["Pause", "Redirect"]


@pytest.mark.parametrize(
    ("route", "tag", "target"),
    [("enqueue:housing", "Enqueue", "housing"), ("redirect:https://cc.example.org/v", "", "")],
)
def test_queue_and_redirect_routes_hand_the_call_over(route: str, tag: str, target: str) -> None:
    root = parse(twiml.route_twiml(Destination.parse(route), HELLO))
    if tag:
        assert [e.tag for e in root] == ["Say", tag] and root.findtext(tag) == target
    else:
        redirect = root.find("Redirect")
        assert [e.tag for e in root] == ["Redirect"]
        assert redirect is not None and redirect.text == "https://cc.example.org/v"
        assert redirect.get("method") == "POST"


def test_an_unknown_route_is_refused() -> None:
    with pytest.raises(Invalid, match="carrier-pigeon"):
        Destination.parse("carrier-pigeon:loft")


def test_a_message_that_ends_the_call_offers_emergency_repairs_first_and_a_replay() -> None:
    root = parse(twiml.message_then_end(MESSAGE, OFFER, REPLAY, DANGER, GOODBYE, KEYS))
    assert [e.tag for e in root] == ["Gather", "Say", "Say", "Hangup"]
    gather = root.find("Gather")
    assert gather is not None and gather.get("action") == KEYS
    assert (gather.get("numDigits"), gather.get("method")) == ("1", "POST")
    assert int(gather.get("timeout") or 0) >= 5
    # a key during the offer, the message or after it reaches the action
    assert [words(s) for s in gather.findall("Say")] == [
        OFFER.text,
        MESSAGE.text,
        OFFER.text,
        REPLAY.text,
    ]
    # every ending message says what to do in danger, then goodbye
    assert [words(s) for s in root.findall("Say")] == [DANGER.text, GOODBYE.text]


def test_a_replayed_message_does_not_offer_another_replay() -> None:
    root = parse(twiml.message_then_end(MESSAGE, OFFER, None, DANGER, GOODBYE, KEYS))
    gather = root.find("Gather")
    assert gather is not None and REPLAY.text not in [words(s) for s in gather.findall("Say")]


def test_a_slow_speaker_hears_every_part_slowly() -> None:
    slow = {
        k: prompts.speech(k, "pl-PL", slow=True)
        for k in ("emergency_offer", "replay_offer", "danger", "goodbye")
    }
    root = parse(
        twiml.message_then_end(
            slow["goodbye"],
            slow["emergency_offer"],
            slow["replay_offer"],
            slow["danger"],
            slow["goodbye"],
            KEYS,
        )
    )
    says = root.findall(".//Say")
    assert len(says) == 6 and all(s.find("prosody") is not None for s in says)
    assert {s.get("language") for s in says} == {"pl-PL"}


def test_emergency_dial_connects_to_the_line() -> None:
    root = parse(twiml.emergency_dial("+441332000999", HELLO))
    assert [e.tag for e in root] == ["Say", "Dial"]
    assert root.findtext("Dial") == "+441332000999"


def test_spoc_voicemail_offers_emergencies_then_records_for_the_spoc() -> None:
    root = parse(twiml.spoc_voicemail(HELLO, DANGER, GOODBYE, VOICEMAIL, KEYS, max_length=90))
    assert [e.tag for e in root] == ["Gather", "Record", "Say", "Say", "Hangup"]
    record = root.find("Record")
    assert record is not None and record.get("action") == VOICEMAIL
    assert (record.get("maxLength"), record.get("playBeep")) == ("90", "true")
    assert root.find("Enqueue") is None and root.find("Dial") is None  # never the general line
    again = parse(twiml.spoc_voicemail(HELLO, DANGER, GOODBYE, VOICEMAIL, None))
    assert [e.tag for e in again] == ["Say", "Record", "Say", "Say", "Hangup"]


def test_announcement_is_only_words() -> None:
    root = parse(twiml.announcement(HELLO))
    assert [e.tag for e in root] == ["Say"]


def test_closing_statement_then_the_danger_line_then_hang_up() -> None:
    root = parse(twiml.closing_then_hangup(HELLO, DANGER))
    assert [e.tag for e in root] == ["Say", "Say", "Hangup"]
    assert words(root[1]) == DANGER.text


def test_direct_dial_of_a_number_a_staff_user_and_sip() -> None:
    def direct(route: str, timeout: int = 30) -> Element:
        return parse(twiml.direct_twiml(Destination.parse(route), HELLO, timeout))

    assert direct("dial:+441332000100").findtext("./Dial/Number") == "+441332000100"
    assert direct("client:jo").findtext("./Dial/Client") == "jo"
    sip = direct("dial:sip:desk@pbx.example.org", timeout=20)
    assert sip.findtext("./Dial/Sip") == "sip:desk@pbx.example.org"
    dial = sip.find("Dial")
    assert dial is not None and dial.get("timeout") == "20"


def test_a_direct_dial_can_offer_emergency_repairs_first() -> None:
    root = parse(
        twiml.direct_twiml(
            Destination.parse("dial:+441332000100"), HELLO, offer=OFFER, key_action=KEYS
        )
    )
    assert [e.tag for e in root] == ["Gather", "Dial"]


def test_describe_tells_what_a_caller_hears() -> None:
    lines = twiml.describe(twiml.message_then_end(MESSAGE, OFFER, REPLAY, DANGER, GOODBYE, KEYS))
    assert lines == [
        "[press a key now: 1 for emergency repairs]",
        OFFER.text,
        MESSAGE.text,
        OFFER.text,
        REPLAY.text,
        DANGER.text,
        GOODBYE.text,
        "[call ends]",
    ]
