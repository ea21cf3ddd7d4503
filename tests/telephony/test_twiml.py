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

URLS = twiml.CallbackUrls(
    emergency_gather="https://calls.example.org/twilio/voice/emergency?call_sid=CA1",
    conference_status="https://calls.example.org/twilio/conference/events",
    voicemail="https://calls.example.org/twilio/voice/voicemail?call_sid=CA1",
)
HELLO = Speech("Hello.", "en-GB", "Polly.Amy", False)
SLOW_WELSH = Speech("Helo.", "cy-GB", "Polly.Gwyneth", True)
MESSAGE = Speech("We deal with your enquiries in writing only.", "en-GB", "Polly.Amy", False)
OFFER = prompts.speech("emergency_offer", "en-GB")
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


def test_conference_name_is_per_call() -> None:
    assert twiml.conference_name("CA123") == "cg-CA123"


def test_a_dialled_route_waits_in_its_own_conference() -> None:
    root = parse(twiml.route_twiml(Destination.parse("dial:+441332000100"), HELLO, "CA123", URLS))
    assert [e.tag for e in root] == ["Say", "Dial"]
    conference = root.find("./Dial/Conference")
    assert conference is not None and conference.text == "cg-CA123"
    assert conference.get("statusCallback") == URLS.conference_status
    assert conference.get("statusCallbackMethod") == "POST"
    assert set((conference.get("statusCallbackEvent") or "").split()) == {
        "start",
        "end",
        "join",
        "leave",
        "announcement",
    }
    assert conference.get("startConferenceOnEnter") == "true"
    assert conference.get("endConferenceOnExit") == "false"  # End frees the agent, not the room
    assert conference.get("beep") == "false"


@pytest.mark.parametrize("destination", ["dial:sip:desk@pbx.example.org", "client:jsmith"])
def test_sip_and_staff_user_destinations_also_use_the_conference(destination: str) -> None:
    root = parse(twiml.route_twiml(Destination.parse(destination), HELLO, "CA9", URLS))
    assert root.findtext("./Dial/Conference") == "cg-CA9"


def test_an_enqueue_route_greets_then_queues() -> None:
    root = parse(twiml.route_twiml(Destination.parse("enqueue:housing"), HELLO, "CA1", URLS))
    assert [e.tag for e in root] == ["Say", "Enqueue"]
    assert root.findtext("Enqueue") == "housing"


def test_a_redirect_route_hands_the_call_over_by_post() -> None:
    root = parse(
        twiml.route_twiml(
            Destination.parse("redirect:https://cc.example.org/voice"), HELLO, "CA1", URLS
        )
    )
    redirect = root.find("Redirect")
    assert [e.tag for e in root] == ["Redirect"]
    assert redirect is not None and redirect.text == "https://cc.example.org/voice"
    assert redirect.get("method") == "POST"


def test_an_unknown_route_is_refused() -> None:
    with pytest.raises(Invalid, match="carrier-pigeon"):
        Destination.parse("carrier-pigeon:loft")


def test_a_message_that_ends_the_call_offers_emergency_repairs_first() -> None:
    root = parse(twiml.message_then_end(MESSAGE, OFFER, GOODBYE, URLS))
    assert [e.tag for e in root] == ["Gather", "Gather", "Say", "Hangup"]
    first, second = root.findall("Gather")
    for gather in (first, second):
        assert gather.get("action") == URLS.emergency_gather
        assert (gather.get("numDigits"), gather.get("method")) == ("1", "POST")
        assert gather.get("timeout") == str(twiml.OFFER_TIMEOUT_SECONDS)
    assert [words(s) for s in first.findall("Say")] == [OFFER.text]
    # the message can be interrupted with 1, and the offer is repeated before goodbye
    assert [words(s) for s in second.findall("Say")] == [MESSAGE.text, OFFER.text]
    assert words(root.findall("Say")[-1]) == GOODBYE.text


def test_a_slow_speaker_hears_every_part_slowly() -> None:
    slow = [prompts.speech(k, "pl-PL", slow=True) for k in ("emergency_offer", "goodbye")]
    root = parse(twiml.message_then_end(slow[1], slow[0], slow[1], URLS))
    says = root.findall(".//Say")
    assert len(says) == 4 and all(s.find("prosody") is not None for s in says)
    assert {s.get("language") for s in says} == {"pl-PL"}


def test_emergency_dial_connects_to_the_line() -> None:
    root = parse(twiml.emergency_dial("+441332000999", HELLO))
    assert [e.tag for e in root] == ["Say", "Dial"]
    assert root.findtext("Dial") == "+441332000999"


def test_spoc_voicemail_records_a_message_for_the_spoc() -> None:
    root = parse(twiml.spoc_voicemail(HELLO, GOODBYE, URLS, max_length=90))
    assert [e.tag for e in root] == ["Say", "Record", "Say", "Hangup"]
    record = root.find("Record")
    assert record is not None and record.get("action") == URLS.voicemail
    assert (record.get("maxLength"), record.get("playBeep")) == ("90", "true")
    assert root.find("Enqueue") is None and root.find("Dial") is None  # never the general line


def test_announcement_is_only_words() -> None:
    root = parse(twiml.announcement(HELLO))
    assert [e.tag for e in root] == ["Say"]


def test_closing_statement_then_hang_up() -> None:
    closing = prompts.speech(
        "closing",
        "en-GB",
        organisation_name="Example Homes",
        postal_address="1 Example Street",
        email="a@example.org",
    )
    root = parse(twiml.closing_then_hangup(closing))
    assert [e.tag for e in root] == ["Say", "Hangup"]
    assert "ending this call" in words(root[0])


def test_direct_dial_of_a_number_a_staff_user_and_sip() -> None:
    assert parse(twiml.direct_twiml(Destination.parse("dial:+441332000100"), HELLO)).findtext(
        "./Dial/Number"
    ) == ("+441332000100")
    assert (
        parse(twiml.direct_twiml(Destination.parse("client:jo"), HELLO)).findtext("./Dial/Client")
        == "jo"
    )
    sip = parse(
        twiml.direct_twiml(Destination.parse("dial:sip:desk@pbx.example.org"), HELLO, timeout=20)
    )
    assert sip.findtext("./Dial/Sip") == "sip:desk@pbx.example.org"
    dial = sip.find("Dial")
    assert dial is not None and dial.get("timeout") == "20"


def test_describe_tells_what_a_caller_hears() -> None:
    lines = twiml.describe(twiml.message_then_end(MESSAGE, OFFER, GOODBYE, URLS))
    assert lines[0].startswith("[press a key now")
    assert MESSAGE.text in lines and lines[-1] == "[call ends]"
