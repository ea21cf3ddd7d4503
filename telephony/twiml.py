"""TwiML as pure functions: a decision and some words in, the XML Twilio runs out.

Built with the ``twilio`` library's VoiceResponse; nothing here touches Flask, Redis or a database,
so every answer can be tested by parsing the XML.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

from prompts import Speech
from restrictions.destination import Destination, Scheme

CONFERENCE_EVENTS = "start end join leave announcement"
OFFER_TIMEOUT_SECONDS = 5  # time to press 1 after the emergency offer; generous for slow speech


@dataclass(frozen=True)
class CallbackUrls:
    """Absolute callback URLs, built by the webhook from PUBLIC_BASE_URL."""

    emergency_gather: str
    conference_status: str
    voicemail: str


def say(parent: VoiceResponse | Gather, sp: Speech) -> None:
    """<Say> in the caller's language and voice; slower speech as SSML prosody when asked for."""
    if sp.slow:
        element = parent.say(voice=sp.voice, language=sp.language)
        element.prosody(sp.text, rate="slow")
    else:
        parent.say(sp.text, voice=sp.voice, language=sp.language)


CONFERENCE_PREFIX = "cg-"


def conference_name(call_sid: str) -> str:
    """Each call for an agent gets its own conference, so Warn and End can play into it later."""
    return CONFERENCE_PREFIX + call_sid


def call_sid_of_conference(name: str) -> str | None:
    """The caller's CallSid from its conference's friendly name (None if it is not one of ours)."""
    if not name.startswith(CONFERENCE_PREFIX) or len(name) == len(CONFERENCE_PREFIX):
        return None
    return name.removeprefix(CONFERENCE_PREFIX)


def connect_to_conference(call_sid: str, greeting: Speech, urls: CallbackUrls) -> str:
    """The caller waits in their own conference while a job dials the agent or SPOC in."""
    response = VoiceResponse()
    say(response, greeting)
    dial = Dial()
    dial.conference(
        conference_name(call_sid),
        start_conference_on_enter=True,
        end_conference_on_exit=False,
        wait_url="",  # the conference starts with the caller: nothing to wait for, no hold music
        beep=False,
        status_callback=urls.conference_status,
        status_callback_method="POST",
        status_callback_event=CONFERENCE_EVENTS,
    )
    response.append(dial)
    return str(response)


def route_twiml(
    destination: Destination, greeting: Speech, call_sid: str, urls: CallbackUrls
) -> str:
    """TwiML for a route that connects the caller: a person is rung into the caller's conference;
    a queue or another handler takes the call as it is."""
    if destination.dials:
        return connect_to_conference(call_sid, greeting, urls)
    return direct_twiml(destination, greeting)


def _emergency_gather(urls: CallbackUrls, *parts: Speech) -> Gather:
    """A key press anywhere in ``parts`` (or just after) goes to the emergency-repairs action."""
    gather = Gather(
        num_digits=1, action=urls.emergency_gather, method="POST", timeout=OFFER_TIMEOUT_SECONDS
    )
    for sp in parts:
        say(gather, sp)
    return gather


def message_then_end(
    message: Speech, emergency_offer: Speech, goodbye: Speech, urls: CallbackUrls
) -> str:
    """A message that ends the call (emergency repairs are offered before it).

    The caller hears: the emergency offer; the message; the offer again; goodbye; the line clears.
    Pressing a key during the message or either offer reaches the emergency action too.
    """
    response = VoiceResponse()
    response.append(_emergency_gather(urls, emergency_offer))
    response.append(_emergency_gather(urls, message, emergency_offer))
    say(response, goodbye)
    response.hangup()
    return str(response)


def direct_twiml(destination: Destination, greeting: Speech, timeout: int = 30) -> str:
    """Connect without a conference: the way through when the queue or Twilio's REST API is down."""
    response = VoiceResponse()
    if destination.scheme is Scheme.REDIRECT:
        response.redirect(destination.target, method="POST")
        return str(response)
    say(response, greeting)
    if destination.scheme is Scheme.ENQUEUE:
        response.enqueue(destination.target)
        return str(response)
    dial = Dial(timeout=timeout)
    if destination.scheme is Scheme.CLIENT:
        dial.client(destination.target)
    elif destination.scheme is Scheme.SIP:
        dial.sip(destination.target)
    else:
        dial.number(destination.target)
    response.append(dial)
    return str(response)


def emergency_dial(line: str, connecting: Speech) -> str:
    """Emergency repairs chosen: straight to the configured line, never blocked by a restriction."""
    response = VoiceResponse()
    say(response, connecting)
    response.dial(line)
    return str(response)


def spoc_voicemail(
    unavailable: Speech, goodbye: Speech, urls: CallbackUrls, max_length: int = 120
) -> str:
    """The SPOC did not answer: a message and a recording for them, never the general line."""
    response = VoiceResponse()
    say(response, unavailable)
    response.record(
        action=urls.voicemail,
        method="POST",
        max_length=max_length,
        play_beep=True,
        finish_on_key="#",
    )
    say(response, goodbye)
    response.hangup()
    return str(response)


def spoken_then_hangup(*parts: Speech) -> str:
    """Words, then the line is cleared (voicemail thanks, closing statement)."""
    response = VoiceResponse()
    for sp in parts:
        say(response, sp)
    response.hangup()
    return str(response)


def redirect_to(url: str) -> str:
    """Start the call's TwiML again elsewhere (a key other than 1 replays the message)."""
    response = VoiceResponse()
    response.redirect(url, method="POST")
    return str(response)


def announcement(sp: Speech) -> str:
    """What a conference announcement plays (Warn): just the words."""
    response = VoiceResponse()
    say(response, sp)
    return str(response)


def closing_then_hangup(sp: Speech) -> str:
    """The closing statement to the caller, then the line is cleared (End)."""
    return spoken_then_hangup(sp)


def describe(xml: str) -> list[str]:
    """What a caller would hear and what happens, line by line (for ``simulate-call``)."""
    from xml.etree import ElementTree

    lines: list[str] = []

    def walk(node: Any) -> None:
        tag = node.tag
        if tag == "Say":
            lines.append("".join(node.itertext()).strip())
        elif tag == "Gather":
            lines.append("[press a key now: 1 for emergency repairs]")
            for child in node:
                walk(child)
        elif tag == "Dial":
            target = "".join(node.itertext()).strip()
            if node.find("Conference") is not None:
                lines.append(f"[waiting in conference {target} while an agent is dialled in]")
            else:
                lines.append(f"[dialling {target}]")
        elif tag == "Enqueue":
            lines.append(f"[queued in {node.text}]")
        elif tag == "Redirect":
            lines.append(f"[redirected to {node.text}]")
        elif tag == "Record":
            lines.append("[recording a message after the tone]")
        elif tag == "Hangup":
            lines.append("[call ends]")
        else:
            for child in node:
                walk(child)

    walk(ElementTree.fromstring(xml))
    return lines
