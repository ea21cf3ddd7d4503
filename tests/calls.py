"""Reading TwiML and playing Twilio's side of a call in tests: what the caller hears, which
conference they wait in, and the callbacks Twilio sends (conference and status), signed."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, cast
from xml.etree import ElementTree

from flask import Flask
from sqlalchemy import select

from restrictions.models import Call
from telephony.database import database
from tests import twiml_rules


def twilio_now() -> str:
    """Now, as Twilio writes an event's ``Timestamp`` (RFC 2822; time-travel aware)."""
    return format_datetime(datetime.now(UTC).replace(microsecond=0), usegmt=False)


# Where Twilio runs what a webhook answers, which decides the verbs it may hold.
CONTEXTS = {
    "/twilio/voice/hold": "conference-wait",
    "/twilio/voice/queue/wait": "queue-wait",
    "/twilio/voice/queue/key": "queue-wait",
    "/twilio/conference/announce/": "announcement",
}


def parse(response: Any) -> ElementTree.Element:
    """A webhook's TwiML, checked against Twilio's rules for where Twilio runs it."""
    assert response.status_code == 200, response.data
    assert response.mimetype == "text/xml"
    path = getattr(getattr(response, "request", None), "path", "") or ""
    context = next((c for prefix, c in CONTEXTS.items() if path.startswith(prefix)), "call")
    return twiml_rules.check(response.data, context)


def spoken(root: ElementTree.Element) -> str:
    return " ".join("".join(s.itertext()) for s in root.iter("Say"))


def conference_of(root: ElementTree.Element) -> ElementTree.Element | None:
    return root.find("./Dial/Conference")


def handed_over(app: Flask) -> list[dict[bytes, bytes]]:
    """The inbound calls waiting for a worker, oldest first: each entry's fields."""
    from telephony.handover import CALLS
    from telephony.redis_store import redis_client

    entries = cast(list[tuple[bytes, dict[bytes, bytes]]], redis_client(app).xrange(CALLS))
    return [fields for _, fields in entries]


def call_row(app: Flask, call_sid: str) -> Call:
    with database(app).sessions() as sess:
        call = sess.scalar(select(Call).where(Call.call_sid == call_sid))
        assert call is not None, "the call's row was not written"
        return call


def conference_event(
    twilio: Any,
    caller_sid: str,
    event: str,
    participant: str | None = None,
    *,
    sequence: int = 1,
    conference_sid: str | None = None,
) -> Any:
    """A conference status callback as Twilio sends it (``participant-join`` …); each caller's
    conference has its own ConferenceSid."""
    conference_sid = conference_sid or "CF" + caller_sid[2:]
    params = {
        "AccountSid": "AC" + "0" * 31 + "1",
        "ConferenceSid": conference_sid,
        "FriendlyName": f"cg-{caller_sid}",
        "StatusCallbackEvent": event,
        "SequenceNumber": str(sequence),
        "Timestamp": twilio_now(),
    }
    if participant:
        params["CallSid"] = participant
    return twilio.post("/twilio/conference/events", params)


def status_event(
    twilio: Any,
    call_sid: str,
    status: str,
    sequence: int,
    *,
    from_: str = "+447400100001",
    **extra: str,
) -> Any:
    """A call status callback for the inbound parent leg (override ``Direction`` …)."""
    params = {
        "AccountSid": "AC" + "0" * 31 + "1",
        "ApiVersion": "2010-04-01",
        "CallSid": call_sid,
        "CallStatus": status,
        "Direction": "inbound",
        "From": from_,
        "To": "+441332000000",
        "SequenceNumber": str(sequence),
        "CallbackSource": "call-progress-events",
        "Timestamp": twilio_now(),
        **extra,
    }
    return twilio.post("/twilio/voice/status", params)


def put_together(twilio: Any, caller_sid: str, person: str, *, sequence: int = 1) -> None:
    """The caller and the person rung both in the caller's conference, as Twilio reports it:
    the caller's join, then the person's (each a signed conference callback)."""
    for n, participant in enumerate((caller_sid, person)):
        joined = conference_event(
            twilio, caller_sid, "participant-join", participant, sequence=sequence + n
        )
        assert joined.status_code == 204, joined.data
