"""TwiML as pure functions: a decision and some words in, the XML Twilio runs out.

Built with the ``twilio`` library's VoiceResponse; nothing here touches Flask, Redis or a database,
so every answer can be tested by parsing the XML. Every path that does not reach a person offers
emergency repairs and ends with the "in danger, dial 999" line.
"""

from __future__ import annotations

from typing import Any

from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

from prompts import Speech
from restrictions.destination import Destination, Scheme

CONFERENCE_EVENTS = "start end join leave announcement"
CONFERENCE_EVENT_LIST = ["start", "end", "join", "leave", "announcement"]
KEY_WINDOW_SECONDS = 6  # time to press a key after the words end; generous for slow speech
CONFERENCE_PREFIX = "cg-"
FALLBACK_TASK = '{"type":"inbound","direction":"inbound","callguard":{"fallback":true}}'


def say(parent: VoiceResponse | Gather, sp: Speech) -> None:
    """<Say> in the caller's language and voice; slower speech as SSML prosody when asked for."""
    if sp.slow:
        element = parent.say(voice=sp.voice, language=sp.language)
        element.prosody(sp.text, rate="slow")
    else:
        parent.say(sp.text, voice=sp.voice, language=sp.language)


def conference_name(call_sid: str) -> str:
    """Each call for an agent gets its own conference, so Warn and End can play into it later."""
    return CONFERENCE_PREFIX + call_sid


def call_sid_of_conference(name: str) -> str | None:
    """The caller's CallSid from its conference's friendly name (None if it is not one of ours)."""
    if not name.startswith(CONFERENCE_PREFIX) or len(name) == len(CONFERENCE_PREFIX):
        return None
    return name.removeprefix(CONFERENCE_PREFIX)


def _keys(action: str, *parts: Speech) -> Gather:
    """A key press during ``parts`` (or just after) goes to ``action``: 1 is emergency repairs."""
    gather = Gather(num_digits=1, action=action, method="POST", timeout=KEY_WINDOW_SECONDS)
    for sp in parts:
        say(gather, sp)
    return gather


def _conference(call_sid: str, conference_status: str, hold_url: str, after: str) -> Dial:
    """The caller waits in their own conference (hearing ``hold_url``) until the person callguard
    rings accepts and starts it. The caller leaving (hanging up, or moved on) ends it for
    everyone, so nobody is left in it alone; when it ends, ``after`` says what happens next."""
    dial = Dial(action=after, method="POST")
    dial.conference(
        conference_name(call_sid),
        start_conference_on_enter=False,
        end_conference_on_exit=True,
        wait_url=hold_url,
        wait_method="POST",
        beep=False,
        status_callback=conference_status,
        status_callback_method="POST",
        status_callback_event=CONFERENCE_EVENTS,
    )
    return dial


def join_conference(
    call_sid: str,
    greeting: Speech,
    conference_status: str,
    hold_url: str,
    *,
    offer: Speech | None = None,
    key_action: str | None = None,
    after: str,
) -> str:
    """Greet the caller and put them in their conference while a job rings the agent or SPOC.

    With ``offer`` (a SPOC's caller, who never reaches the general line) the greeting is a short
    key window first: 1 is emergency repairs.
    """
    response = VoiceResponse()
    if offer is not None and key_action is not None:
        response.append(_keys(key_action, greeting, offer))
    else:
        say(response, greeting)
    response.append(_conference(call_sid, conference_status, hold_url, after))
    return str(response)


def conference_only(call_sid: str, conference_status: str, hold_url: str, after: str) -> str:
    """Straight into the conference (after a key other than 1 during the SPOC's greeting)."""
    response = VoiceResponse()
    response.append(_conference(call_sid, conference_status, hold_url, after))
    return str(response)


def whisper(words: Speech, again: Speech, no_key: Speech, accept_url: str) -> str:
    """What the person rung hears on answering: who is calling and how to take the call. Only a
    key (1) joins them to the caller; silence (a voicemail greeting, say) hangs up."""
    response = VoiceResponse()
    gather = Gather(num_digits=1, action=accept_url, method="POST", timeout=KEY_WINDOW_SECONDS)
    say(gather, words)
    gather.pause(length=1)
    say(gather, again)
    response.append(gather)
    say(response, no_key)
    response.hangup()
    return str(response)


def join_caller(call_sid: str, conference_status: str, *, beep: bool) -> str:
    """The person rung accepted: into the caller's conference, which starts now and ends when
    they leave (the caller then hears what comes after it)."""
    response = VoiceResponse()
    dial = Dial()
    dial.conference(
        conference_name(call_sid),
        start_conference_on_enter=True,
        end_conference_on_exit=True,
        beep="true" if beep else "false",
        status_callback=conference_status,
        status_callback_method="POST",
        status_callback_event=CONFERENCE_EVENTS,
    )
    response.append(dial)
    response.hangup()
    return str(response)


def hang_up(words: Speech | None = None) -> str:
    response = VoiceResponse()
    if words is not None:
        say(response, words)
    response.hangup()
    return str(response)


def hold(words: Speech | None, pause_seconds: int, next_url: str) -> str:
    """What a waiting caller hears (the conference's waitUrl): words, a pause, then Twilio asks
    again, so the web process sees every waiting caller every few seconds."""
    response = VoiceResponse()
    if words is not None:
        say(response, words)
    response.pause(length=max(1, pause_seconds))
    response.redirect(next_url, method="POST")
    return str(response)


def route_twiml(destination: Destination, greeting: Speech) -> str:
    """A queue or another handler takes the call as it is."""
    return direct_twiml(destination, greeting)


def message_then_end(
    message: Speech,
    offer: Speech,
    replay_offer: Speech | None,
    danger: Speech,
    goodbye: Speech,
    key_action: str,
) -> str:
    """A message that ends the call: the emergency offer, the message, the offer again and (once)
    how to hear it again; then the danger line, goodbye, and the line clears. A key press at any
    point goes to ``key_action``."""
    response = VoiceResponse()
    parts = [offer, message, offer] + ([replay_offer] if replay_offer is not None else [])
    response.append(_keys(key_action, *parts))
    say(response, danger)
    say(response, goodbye)
    response.hangup()
    return str(response)


def goodbye(danger: Speech, words: Speech) -> str:
    return spoken_then_hangup(danger, words)


def direct_twiml(
    destination: Destination,
    greeting: Speech,
    timeout: int = 30,
    *,
    offer: Speech | None = None,
    key_action: str | None = None,
    action: str | None = None,
) -> str:
    """Connect without a conference: the way through when the queue or Twilio's REST API is down,
    or when a waiting caller is moved on. ``action`` is where Twilio goes when the <Dial> ends
    (the dial-result webhook), so an unanswered dial is never the end of the call."""
    response = VoiceResponse()
    if destination.scheme is Scheme.REDIRECT:
        response.redirect(destination.target, method="POST")
        return str(response)
    if offer is not None and key_action is not None:
        response.append(_keys(key_action, greeting, offer))
    else:
        say(response, greeting)
    if destination.scheme is Scheme.ENQUEUE:
        response.enqueue(destination.target)
        return str(response)
    if destination.scheme is Scheme.TASKROUTER:
        # no decision could be made: TaskRouter still routes the call, told only that
        enqueue = response.enqueue(None, workflow_sid=destination.target)
        enqueue.task(FALLBACK_TASK, priority=0)
        return str(response)
    dial = Dial(timeout=timeout, action=action, method="POST" if action else None)
    if destination.scheme is Scheme.CLIENT:
        dial.client(destination.target)
    elif destination.scheme is Scheme.SIP:
        dial.sip(destination.target)
    else:
        dial.number(destination.target)
    response.append(dial)
    return str(response)


def emergency_dial(
    line: str, connecting: Speech, timeout: int = 30, action: str | None = None
) -> str:
    """Emergency repairs chosen: straight to the configured line, never blocked by a restriction.
    ``action`` (the emergency-result webhook) says what happens if the line does not answer."""
    response = VoiceResponse()
    say(response, connecting)
    response.dial(line, timeout=timeout, action=action, method="POST" if action else None)
    return str(response)


def spoc_voicemail(
    unavailable: Speech,
    danger: Speech,
    goodbye: Speech,
    voicemail_action: str,
    key_action: str | None,
    max_length: int = 120,
    *,
    recording_status: str | None = None,
    transcribe_callback: str | None = None,
) -> str:
    """The SPOC did not answer: a message (with the emergency option), then a recording for them;
    never the general line. ``recording_status`` is told when the recording is ready (the
    voicemail is stored from it); ``transcribe_callback``, when given, gets Twilio's transcript."""
    response = VoiceResponse()
    if key_action is not None:
        response.append(_keys(key_action, unavailable))
    else:
        say(response, unavailable)
    extra: dict[str, Any] = {}
    if recording_status is not None:
        extra.update(
            recording_status_callback=recording_status,
            recording_status_callback_event="completed",
            recording_status_callback_method="POST",
        )
    if transcribe_callback is not None:
        extra.update(transcribe=True, transcribe_callback=transcribe_callback)
    response.record(
        action=voicemail_action,
        method="POST",
        max_length=max_length,
        play_beep=True,
        finish_on_key="#",
        **extra,
    )
    say(response, danger)
    say(response, goodbye)
    response.hangup()
    return str(response)


def spoken_then_hangup(*parts: Speech) -> str:
    """Words, then the line is cleared (voicemail thanks, goodbye)."""
    response = VoiceResponse()
    for sp in parts:
        say(response, sp)
    response.hangup()
    return str(response)


def announcement(sp: Speech) -> str:
    """What a conference announcement plays (Warn): just the words."""
    response = VoiceResponse()
    say(response, sp)
    return str(response)


def closing_then_hangup(closing: Speech, danger: Speech) -> str:
    """The closing statement (with the emergency number), the danger line, then the line clears."""
    return spoken_then_hangup(closing, danger)


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
        elif tag == "Pause":
            lines.append(f"[{node.get('length', '1')} s pause]")
        elif tag == "Hangup":
            lines.append("[call ends]")
        else:
            for child in node:
                walk(child)

    walk(ElementTree.fromstring(xml))
    return lines


def enqueue_task(
    greeting: Speech,
    workflow_sid: str,
    attributes: str,
    *,
    priority: int,
    timeout: int,
    wait_url: str,
    action: str,
) -> str:
    """TaskRouter routes and bridges: the caller is greeted and queued as a task of
    ``workflow_sid`` carrying callguard's decision (``attributes``, JSON); they wait hearing
    ``wait_url`` and, when they leave the queue however it happens, ``action`` says what next."""
    response = VoiceResponse()
    say(response, greeting)
    enqueue = response.enqueue(
        None,
        workflow_sid=workflow_sid,
        wait_url=wait_url,
        wait_url_method="POST",
        action=action,
        method="POST",
    )
    enqueue.task(attributes, priority=priority, timeout=timeout)
    return str(response)


def queue_wait(words: Speech | None, offer: Speech, key_action: str, pause_seconds: int) -> str:
    """What a caller queued for TaskRouter hears (the Enqueue's waitUrl, where ``<Gather>`` is
    allowed): hold words with the emergency offer (1 leaves the queue for the emergency line),
    then a pause; Twilio fetches it again when it ends."""
    response = VoiceResponse()
    gather = Gather(num_digits=1, action=key_action, method="POST", timeout=1)
    if words is not None:
        say(gather, words)
    say(gather, offer)
    response.append(gather)
    response.pause(length=max(1, pause_seconds))
    return str(response)


def leave_queue() -> str:
    """Out of the queue: the Enqueue's action is asked what comes next."""
    response = VoiceResponse()
    response.leave()
    return str(response)


def redirect_to(url: str) -> str:
    response = VoiceResponse()
    response.redirect(url, method="POST")
    return str(response)
