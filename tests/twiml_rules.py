"""Twilio's TwiML rules, as its documentation states them, for checking what callguard answers:
which verbs a document may hold in each context, which nouns each verb takes, and the attribute
values Twilio accepts. A document that breaks one would fail at Twilio (13238 for a waitUrl or
announcement with a verb it does not allow, 12100 for an unknown element)."""

from __future__ import annotations

import json
from xml.etree import ElementTree

VERBS = {
    "Say", "Play", "Pause", "Gather", "Dial", "Enqueue", "Leave", "Hangup", "Redirect",
    "Record", "Reject", "Connect", "Refer", "Stop", "Start", "Pay", "Prompt", "Echo", "Queue",
}  # fmt: skip
# What a document may hold where Twilio runs it.
CONTEXTS = {
    "call": VERBS,
    # a <Conference>'s waitUrl and an announcement: error 13238 for anything else
    "conference-wait": {"Say", "Play", "Pause", "Redirect"},
    "announcement": {"Say", "Play", "Pause", "Redirect"},
    # an <Enqueue>'s waitUrl
    "queue-wait": {"Say", "Play", "Pause", "Redirect", "Leave", "Hangup", "Gather"},
}
CHILDREN = {
    "Say": {"prosody", "break", "emphasis", "lang", "p", "phoneme", "s", "say-as", "sub", "w"},
    "Gather": {"Say", "Play", "Pause"},
    "Dial": {"Number", "Client", "Sip", "Conference", "Queue", "Sim", "Application"},
    "Enqueue": {"Task"},
    "Play": set(),
    "Pause": set(),
    "Hangup": set(),
    "Leave": set(),
    "Redirect": set(),
    "Record": set(),
    "Reject": set(),
}
METHODS = {"GET", "POST"}
BOOLEANS = {"true", "false"}
CONFERENCE_EVENTS = {"start", "end", "join", "leave", "mute", "hold", "modify", "speaker",
                     "announcement"}  # fmt: skip


def check(xml: bytes | str, context: str = "call") -> ElementTree.Element:
    """Parse ``xml`` and raise AssertionError naming the first rule it breaks."""
    root = ElementTree.fromstring(xml)
    assert root.tag == "Response", f"the root is <{root.tag}>, not <Response>"
    allowed = CONTEXTS[context]
    for verb in root:
        assert verb.tag in allowed, f"<{verb.tag}> is not allowed in a {context} document"
        _check_verb(verb)
    return root


def _check_verb(verb: ElementTree.Element) -> None:
    tag = verb.tag
    for child in verb:
        assert child.tag in CHILDREN.get(tag, set()), f"<{child.tag}> inside <{tag}>"
        if tag in ("Gather",):
            _check_verb(child)
    for name in ("method", "waitMethod", "waitUrlMethod", "statusCallbackMethod"):
        if name in verb.attrib:
            assert verb.attrib[name] in METHODS, f"<{tag} {name}={verb.attrib[name]!r}>"
    for name in ("timeout", "numDigits", "maxLength", "length"):
        if name in verb.attrib:
            assert verb.attrib[name].isdigit(), f"<{tag} {name}={verb.attrib[name]!r}>"
    for url in ("action", "waitUrl"):
        if url in verb.attrib:
            assert verb.attrib[url].startswith(("https://", "http://")), f"<{tag} {url}>"
    if tag == "Dial":
        for noun in verb:
            if noun.tag == "Conference":
                _check_conference(noun)
    if tag == "Enqueue":
        assert "workflowSid" in verb.attrib or (verb.text or "").strip(), "a queue or workflow"
        for task in verb:
            json.loads(task.text or "")  # a <Task>'s body is its JSON attributes
            for name in ("priority", "timeout"):
                if name in task.attrib:
                    assert task.attrib[name].isdigit(), f"<Task {name}>"


def _check_conference(conference: ElementTree.Element) -> None:
    for name in ("startConferenceOnEnter", "endConferenceOnExit", "beep"):
        if name in conference.attrib:
            value = conference.attrib[name]
            assert value in BOOLEANS | {"onEnter", "onExit"}, f"<Conference {name}={value!r}>"
    events = conference.attrib.get("statusCallbackEvent", "")
    assert set(events.split()) <= CONFERENCE_EVENTS, f"statusCallbackEvent {events!r}"
    assert 1 <= len(conference.text or "") <= 128, "a conference's name"
