"""TwiML builders are pure: parse what they return."""

from __future__ import annotations

from xml.etree import ElementTree

import prompts
from telephony import twiml

URLS = twiml.CallbackUrls("https://x/emergency", "https://x/conference", "https://x/voicemail")


def test_direct_dial_of_a_number_client_and_sip() -> None:
    hello = prompts.speech("goodbye", "en-GB")
    assert (
        ElementTree.fromstring(twiml.direct_twiml("dial:+441332000100", hello)).findtext(
            "./Dial/Number"
        )
        == "+441332000100"
    )
    assert (
        ElementTree.fromstring(twiml.direct_twiml("client:jo", hello)).findtext("./Dial/Client")
        == "jo"
    )
    assert (
        ElementTree.fromstring(twiml.direct_twiml("dial:sip:desk@pbx.example.org", hello)).findtext(
            "./Dial/Sip"
        )
        == "sip:desk@pbx.example.org"
    )


def test_redirect_route() -> None:
    root = ElementTree.fromstring(
        twiml.route_twiml(
            "redirect:https://cc.example.org/voice", prompts.speech("goodbye", None), "CA1", URLS
        )
    )
    redirect = root.find("Redirect")
    assert redirect is not None and redirect.text == "https://cc.example.org/voice"
    assert redirect.get("method") == "POST"


def test_announcement_and_closing() -> None:
    warning = prompts.speech("warning", "pl-PL", slow=True, organisation_name="X")
    root = ElementTree.fromstring(twiml.announcement(warning))
    say = root.find("Say")
    assert say is not None and say.get("language") == "pl-PL"
    assert say.find("prosody") is not None
    closing = ElementTree.fromstring(twiml.closing_then_hangup(warning))
    assert [e.tag for e in closing] == ["Say", "Hangup"]


def test_describe_tells_what_a_caller_hears() -> None:
    xml = twiml.message_then_end(
        prompts.speech("goodbye", None),
        prompts.speech("emergency_offer", None),
        prompts.speech("goodbye", None),
        URLS,
    )
    lines = twiml.describe(xml)
    assert lines[0].startswith("[press a key now")
    assert lines[-1] == "[call ends]"
