"""TaskRouter's workspace events (a contact centre on TaskRouter and Flex): which call a task is
for, which worker accepted it, and the conference Flex bridged it in, so Warn and End work on
calls callguard did not bridge itself.

Each event is stored as received (``source = "taskrouter"``, keyed on the event's ``Sid``) with
the caller's CallSid from the task's attributes (``call_sid``, which Studio's Send to Flex and
callguard's own ``<Task>`` put there). The call's TaskRouter state is never moved by one event:
TaskRouter and Flex send them late, twice and out of order, so every event stored for the call is
replayed in the order Twilio stamped them. Flex names its conference in the task's attributes
(``conference: {sid, participants: {customer, worker}}``) once it has bridged the call.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from restrictions.agent_actions import UNMAPPED_WORKER
from restrictions.calls import ENDING_STATUS, catch_up_conference
from restrictions.events import SID, twilio_time
from restrictions.models import Call, CallEvent

SOURCE = "taskrouter"
ACCEPTED = "reservation.accepted"
# Only tasks and their reservations say anything about a call (workers' activities, queues and
# workflows do not): the other events are answered and not stored.
KINDS = ("task.", "reservation.")
CLIENT = "client:"
WORKER = UNMAPPED_WORKER  # a worker callguard cannot map to a member of staff
# A task may name a call whose row the worker has not written yet (the inbound call is recorded
# from a stream): its events wait this long for it, retried by the sweep, then are let go.
WAIT_FOR_CALL = timedelta(minutes=5)
REPLAY_LIMIT = 200  # a real task has a dozen events


def concerns_calls(event_type: str) -> bool:
    return event_type.startswith(KINDS)


def _json_object(text: Any) -> dict[str, Any]:
    """A JSON object sent as a string (TaskAttributes, WorkerAttributes), or {}."""
    if isinstance(text, dict):
        return text
    try:
        value = json.loads(str(text or "")[:100_000])
    except (ValueError, RecursionError):  # not JSON, or nested past reason
        return {}
    return value if isinstance(value, dict) else {}


def _sid(value: Any) -> str | None:
    text = value.strip() if isinstance(value, str) else ""
    return text if SID.match(text) else None


def task_attributes(payload: Mapping[str, Any]) -> dict[str, Any]:
    return _json_object(payload.get("TaskAttributes"))


def call_sid_of(payload: Mapping[str, Any]) -> str | None:
    """The caller's CallSid the task names (``call_sid``), if it names one."""
    found = _sid(task_attributes(payload).get("call_sid"))
    return found if found and found.startswith("CA") else None


def flex_conference(attributes: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """Flex's conference for the task and the worker's leg in it, as Flex writes them into the
    task's attributes: ``{"conference": {"sid": "CF…", "participants": {"worker": "CA…"}}}``."""
    conference = attributes.get("conference")
    if not isinstance(conference, dict):
        return None, None
    sid = _sid(conference.get("sid"))
    participants = conference.get("participants")
    worker = _sid(participants.get("worker")) if isinstance(participants, dict) else None
    return (sid if sid and sid.startswith("CF") else None), worker


def agent_label(payload: Mapping[str, Any]) -> str:
    """Who accepted: the worker's ``contact_uri`` (``client:<user name>``, which is how a member
    of staff is named on a call), else ``worker:<their name>`` (nobody's but a supervisor's)."""
    uri = _json_object(payload.get("WorkerAttributes")).get("contact_uri")
    if isinstance(uri, str) and uri.startswith(CLIENT) and uri.strip() != CLIENT:
        return uri.strip()[:255]
    name = str(payload.get("WorkerName") or payload.get("WorkerSid") or "unknown")
    return (WORKER + name.strip())[:255]


def event_time(payload: Mapping[str, Any], fallback: datetime) -> datetime:
    """When TaskRouter says the event happened: ``TimestampMs`` or ``Timestamp`` (unix time),
    else ``fallback`` (when it was received)."""
    for field, scale in (("TimestampMs", 1000), ("Timestamp", 1)):
        text = str(payload.get(field) or "").strip()
        if text.isdigit() and len(text) <= 16:
            try:
                return datetime.fromtimestamp(int(text) / scale, UTC)
            except (OverflowError, OSError, ValueError):
                continue
    return twilio_time(payload, fallback)  # an RFC 2822 Timestamp, as Voice sends


def apply_record(sess: Session, event: CallEvent, now: datetime | None = None) -> str | None:
    """Apply a stored TaskRouter event to the call its task names; the call's CallSid when this
    is the moment a worker and the caller were first connected (the call then uses a weekly
    allowance), else None. Marks the event processed, except one for a call not recorded yet,
    which the sweep tries again for ``WAIT_FOR_CALL``."""
    now = now or datetime.now(UTC)
    call = None
    if event.call_sid is not None:
        call = sess.scalar(select(Call).where(Call.call_sid == event.call_sid).with_for_update())
    if call is None:
        if event.call_sid is None or now - event.received_at > WAIT_FOR_CALL:
            event.processed_at = now  # no call of ours: stored, and nothing else
        return None
    answered_before = call.answered_at is not None
    replay(sess, call)
    event.processed_at = now
    return call.call_sid if not answered_before and call.answered_at is not None else None


def replay(sess: Session, call: Call) -> None:
    """Work out, from every TaskRouter event stored for the call in Twilio's order, who took it
    and where: the latest worker to accept, Flex's latest conference and the worker's leg in
    it; connected at the first acceptance (or the first time Flex names the worker's leg)."""
    events = list(
        sess.scalars(
            select(CallEvent)
            .where(CallEvent.source == SOURCE, CallEvent.call_sid == call.call_sid)
            .order_by(CallEvent.id)
            .limit(REPLAY_LIMIT)
        )
    )
    events.sort(key=lambda e: (event_time(e.payload, e.received_at), e.id))
    label = conference = worker_leg = None
    connected: datetime | None = None
    for e in events:
        at = event_time(e.payload, e.received_at)
        sid, leg = flex_conference(task_attributes(e.payload))
        conference = sid or conference
        if leg is not None:
            worker_leg, connected = leg, min(connected or at, at)
        if e.event == ACCEPTED:
            label, connected = agent_label(e.payload), min(connected or at, at)
    if label is not None:
        call.agent_label = label
    if worker_leg is not None:
        call.agent_call_sid = worker_leg
    if conference is not None and conference != call.conference_sid:
        call.conference_sid = conference
        catch_up_conference(sess, call, conference)
    if connected is not None and (call.ended_at is None or connected <= call.ended_at):
        if call.answered_at is None or connected < call.answered_at:
            call.answered_at = connected
    if call.answered_at is not None and call.ended_at is None and call.status != ENDING_STATUS:
        call.status = "in-progress"
