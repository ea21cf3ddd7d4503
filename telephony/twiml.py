"""TwiML as pure functions: a decision and some words in, the XML Twilio runs out.

Built with the ``twilio`` library's VoiceResponse; nothing here touches Flask, Redis or a database,
so every answer can be tested by parsing the XML.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

from prompts import Speech

CONFERENCE_EVENTS = "start end join leave announcement"


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


def conference_name(call_sid: str) -> str:
    """Each call for an agent gets its own conference, so Warn and End can play into it later."""
    return f"cg-{call_sid}"


def connect_to_conference(call_sid: str, greeting: Speech, urls: CallbackUrls) -> str:
    """The caller waits in their own conference while a job dials the agent or SPOC in."""
    response = VoiceResponse()
    say(response, greeting)
    dial = Dial()
    dial.conference(
        conference_name(call_sid),
        start_conference_on_enter=True,
        end_conference_on_exit=False,
        beep=False,
        status_callback=urls.conference_status,
        status_callback_method="POST",
        status_callback_event=CONFERENCE_EVENTS,
    )
    response.append(dial)
    return str(response)


def route_twiml(destination: str, greeting: Speech, call_sid: str, urls: CallbackUrls) -> str:
    """TwiML for a route that connects the caller (dial:, client:, enqueue:, redirect:)."""
    scheme, _, target = destination.partition(":")
    if scheme in ("dial", "client"):
        return connect_to_conference(call_sid, greeting, urls)
    response = VoiceResponse()
    if scheme == "enqueue":
        say(response, greeting)
        response.enqueue(target)
    elif scheme == "redirect":
        response.redirect(target, method="POST")
    else:
        raise ValueError(f"unknown route {destination!r}")
    return str(response)


def _offer(response: VoiceResponse, offer: Speech, urls: CallbackUrls, timeout: int) -> None:
    gather = Gather(num_digits=1, action=urls.emergency_gather, method="POST", timeout=timeout)
    say(gather, offer)
    response.append(gather)


def message_then_end(
    message: Speech, emergency_offer: Speech, goodbye: Speech, urls: CallbackUrls
) -> str:
    """A message that ends the call, with emergency repairs offered first and again after it."""
    response = VoiceResponse()
    _offer(response, emergency_offer, urls, timeout=2)
    gather = Gather(num_digits=1, action=urls.emergency_gather, method="POST", timeout=4)
    say(gather, message)
    say(gather, emergency_offer)
    response.append(gather)
    say(response, goodbye)
    response.hangup()
    return str(response)


def direct_twiml(destination: str, greeting: Speech, timeout: int = 30) -> str:
    """Connect without a conference: the way through when the queue or Twilio's REST API is down."""
    scheme, _, target = destination.partition(":")
    response = VoiceResponse()
    if scheme == "redirect":
        response.redirect(target, method="POST")
        return str(response)
    say(response, greeting)
    if scheme == "enqueue":
        response.enqueue(target)
        return str(response)
    dial = Dial(timeout=timeout)
    if target.startswith("client:") or scheme == "client":
        dial.client(target.removeprefix("client:"))
    elif target.startswith("sip:"):
        dial.sip(target)
    else:
        dial.number(target)
    response.append(dial)
    return str(response)


def emergency_dial(line: str, connecting: Speech) -> str:
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
    response = VoiceResponse()
    for sp in parts:
        say(response, sp)
    response.hangup()
    return str(response)


def redirect_to(url: str) -> str:
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
