"""Call rows, keyed on Twilio's CallSid; any callback may be the first to mention a call."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from restrictions.events import FINAL, twilio_time
from restrictions.models import AgentAction, Call, CallEvent, PhoneNumber
from restrictions.phone import caller_e164


def get_or_create_call(sess: Session, call_sid: str, **fields: Any) -> Call:
    """The call with this CallSid, created with ``fields`` if no callback has created it yet.

    Safe under races: the insert does nothing when another worker got there first, and ``fields``
    never overwrite what an existing row already says.
    """
    existing = sess.scalar(select(Call).where(Call.call_sid == call_sid))
    if existing is not None:
        return existing
    dialect = sess.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    values = {"call_sid": call_sid, **fields}
    # defaults that the ORM would fill in (the Core insert does not run Python-side defaults)
    for column in Call.__table__.columns:
        if column.name not in values and column.default is not None and column.name != "id":
            arg = column.default.arg
            values[column.name] = arg(None) if callable(arg) else arg
    sess.execute(insert(Call).values(**values).on_conflict_do_nothing(index_elements=["call_sid"]))
    call = sess.scalar(select(Call).where(Call.call_sid == call_sid))
    assert call is not None
    return call


# What the inbound webhook knows about a call, written to its row by the job (or, without the
# queue, on the request path).
ROW_FIELDS = (
    "from_number",
    "from_e164",
    "to_number",
    "caller_name",
    "customer_id",
    "identified",
    "route",
    "route_destination",
    "restriction_id",
    "flags",
    "fallback",
    "conference_name",
)


def connected_directly(call: Call) -> bool:
    """Whether the caller was put straight through (no conference, nobody to ring)."""
    return call.dial_claimed_at is not None and call.conference_name is None


def record_call(sess: Session, record: Mapping[str, Any]) -> Call:
    """Write the inbound webhook's record of a call to its row (idempotent on the CallSid).

    A call the webhook connected directly (``direct``: Redis or the decision failed, so a
    ``<Dial>`` and no conference) claims its dial-out, so no worker rings anyone into a
    conference for it later; and a hand-over that arrives after that changes nothing. If a
    worker claimed the dial-out first, the direct record changes nothing instead:
    ``call.dial_claimed_at`` set with a ``conference_name`` says which won.
    """
    started = datetime.fromisoformat(record["started_at"])
    call = get_or_create_call(sess, record["call_sid"], started_at=started)
    if record.get("direct"):
        claimed = sess.execute(
            update(Call)
            .where(Call.call_sid == call.call_sid, Call.dial_claimed_at.is_(None))
            .values(dial_claimed_at=datetime.now(UTC))
            .returning(Call.id)
        ).first()
        sess.refresh(call, ["dial_claimed_at", "conference_name"])
        if claimed is None:
            return call  # a worker is ringing someone into the conference already
    elif connected_directly(call):
        return call  # connected directly already: nothing to ring, nothing to rewrite
    for name in ROW_FIELDS:
        setattr(call, name, record.get(name))
    call.started_at = min(call.started_at, started)
    return call


# --- call state: every transition, whichever callback brings it ---------------------------------

# How far a call has got; an event that arrives late never moves it back.
PROGRESS = {"queued": 0, "initiated": 1, "ringing": 2, "in-progress": 3, "answered": 3, "ending": 4}


def _customer_for(sess: Session, e164: str | None) -> int | None:
    if not e164:
        return None
    return sess.scalar(select(PhoneNumber.customer_id).where(PhoneNumber.e164 == e164))


def is_customer_call(payload: Mapping[str, Any]) -> bool:
    """Only the inbound parent leg is a customer's contact: legs that ``<Dial>`` or the REST API
    made (``ParentCallSid``, ``Direction`` outbound-dial or outbound-api) are stored, never
    counted."""
    direction = payload.get("Direction") or "inbound"
    return direction == "inbound" and not payload.get("ParentCallSid")


def apply_status(sess: Session, event: CallEvent) -> Call:
    """A call status callback moves the call forward; ``completed`` is the final word."""
    payload = event.payload
    e164 = caller_e164(payload.get("From"))
    at = twilio_time(payload, event.received_at)
    length = payload.get("CallDuration")
    began = at - timedelta(seconds=int(str(length))) if str(length or "").isdigit() else at
    call = get_or_create_call(
        sess,
        event.resource_sid,
        from_number=str(payload.get("From", ""))[:64],
        from_e164=e164,
        to_number=str(payload.get("To", ""))[:64],
        started_at=began,  # a call first heard of when it ended began its length before
    )
    if call.from_e164 is None and e164 is not None:  # an earlier callback created a bare row
        call.from_e164 = e164
        call.from_number = call.from_number or str(payload.get("From", ""))[:64]
    if call.customer_id is None and call.from_e164:
        call.customer_id = _customer_for(sess, call.from_e164)
        call.identified = call.customer_id is not None
    status = event.event
    if status in FINAL:
        if call.ended_at is None:
            call.ended_at = at
        call.status = status
        duration = payload.get("CallDuration")
        if duration not in (None, ""):
            call.duration_seconds = int(duration)  # the final word on the call's length
        elif call.duration_seconds is None:
            call.duration_seconds = 0
    elif call.ended_at is None and PROGRESS.get(status, 0) >= PROGRESS.get(call.status, 0):
        # ``in-progress`` on the caller's leg means Twilio answered it (our TwiML runs), not
        # that a person did: only a conference join says that (apply_conference_event).
        call.status = status
    return call


# Conference events worth keeping on the call (announcements settle a Warn instead).
PARTICIPANT_EVENTS = frozenset({"participant-join", "participant-leave", "conference-end"})
LOG_LIMIT = 60  # a call's conference log is bounded: a real call has a handful of events


def apply_conference_event(
    call: Call,
    event: str,
    conference_sid: str,
    participant: str | None,
    at: datetime,
    sequence: int = 0,
) -> None:
    """Add one conference event to the call's log and work out, from the whole log in Twilio's
    order, who is in the caller's conference now.

    Twilio sends events late, twice and out of order, and the person rung may join (and leave)
    while the caller still hears the greeting, so the state is never moved by one event alone:
    the log is sorted (each conference in the order it started, then by ``SequenceNumber``) and
    replayed. The call is *answered* only at the moment the caller and a person were both in.
    """
    if event not in PARTICIPANT_EVENTS:
        call.conference_sid = call.conference_sid or conference_sid
        return
    log = list(call.conference_log or [])
    entry = {
        "conference": conference_sid,
        "sequence": sequence,
        "event": event,
        "participant": participant,
        "at": at.isoformat(),
    }
    if entry in log:
        return  # a retry or a duplicate: nothing new
    if len(log) < LOG_LIMIT:
        log.append(entry)
    call.conference_log = log
    _replay(call, log)


def _ordered(log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each conference in the order it began (a caller may meet a second one after the person
    rung ended the first), each conference's events in ``SequenceNumber`` order."""
    began: dict[str, str] = {}
    for e in log:
        began[e["conference"]] = min(began.get(e["conference"], e["at"]), e["at"])
    return sorted(log, key=lambda e: (began[e["conference"]], e["conference"], e["sequence"]))


def _replay(call: Call, log: list[dict[str, Any]]) -> None:
    caller_in = False
    people: dict[str, datetime] = {}  # who else is in, since when
    answered: datetime | None = None
    left: datetime | None = None
    ended: datetime | None = None
    caller_joined: datetime | None = None
    latest_person: str | None = None
    conference: str | None = None
    for e in _ordered(log):
        at = datetime.fromisoformat(e["at"])
        who, kind = e["participant"], e["event"]
        conference = e["conference"]
        if kind == "participant-join" and who == call.call_sid:
            caller_in, caller_joined = True, caller_joined or at
        elif kind == "participant-join" and who:
            people.setdefault(who, at)
            latest_person = who
        elif kind == "participant-leave" and who == call.call_sid:
            caller_in, ended = False, ended or at
        elif kind == "participant-leave" and who:
            if people.pop(who, None) is not None:
                left = at
        elif kind == "conference-end":
            if people:
                left = at
            people.clear()
            caller_in = False
        if caller_in and people and answered is None:
            answered = at
    call.conference_sid = conference or call.conference_sid
    call.agent_call_sid = latest_person or call.agent_call_sid
    call.person_present_since = min(people.values()) if people else None
    call.person_left_at = left
    call.caller_joined_at = caller_joined
    if answered is not None and (call.answered_at is None or answered < call.answered_at):
        call.answered_at = answered
    if call.answered_at is not None and call.ended_at is None and call.status != ENDING_STATUS:
        call.status = "in-progress"
    if ended is not None and call.ended_at is None:
        call.ended_at = ended


ENDING_STATUS = "ending"


def person_gone(call: Call) -> bool:
    """The person rung joined the conference and left it with nobody else there."""
    return call.person_left_at is not None and call.person_present_since is None


def end_by_agent(call: Call, at: datetime) -> None:
    """An agent's End took the caller off the line."""
    call.ended_at = call.ended_at or at
    call.status = "completed"


def claim_dial(sess: Session, call_sid: str, now: datetime, ring_seconds: int) -> bool:
    """Claim the right to ring a person for this call, once: not after the caller has gone, been
    moved on, or waited longer than the ring time (a dial-out then would ring for nobody).
    Atomic, so two workers (or a retried job) never dial twice."""
    claimed = sess.execute(
        update(Call)
        .where(
            Call.call_sid == call_sid,
            Call.dial_claimed_at.is_(None),
            Call.ended_at.is_(None),
            Call.moved_on_at.is_(None),
            Call.started_at > now - timedelta(seconds=ring_seconds),
        )
        .values(dial_claimed_at=now)
        .returning(Call.id)
    ).first()
    return claimed is not None


def apply_conference_record(sess: Session, event: CallEvent) -> bool:
    """Apply a stored conference event to its call; True when it is the moment a person joined
    the caller (the call then uses a weekly allowance). Marks the event processed."""
    name = str(event.payload.get("FriendlyName", ""))
    call = get_or_create_call(sess, name.removeprefix("cg-"), conference_name=name)
    sess.refresh(call, with_for_update=True)  # two events for one call: one replays at a time
    answered_before = call.answered_at is not None
    at = twilio_time(event.payload, event.received_at)
    apply_conference_event(
        call, event.event, event.resource_sid, event.call_sid, at, event.sequence_number
    )
    if event.event in ANNOUNCEMENT_EVENTS:
        settle_warning(sess, call, event.event, event.payload)
    event.processed_at = datetime.now(UTC)
    return not answered_before and call.answered_at is not None


ANNOUNCEMENT_EVENTS = frozenset({"announcement-end", "announcement-fail"})


def settle_warning(sess: Session, call: Call, event: str, payload: Mapping[str, Any]) -> None:
    """Twilio says whether the Warn it was asked to play played: the oldest Warn on this call
    still waiting for that word is ``ok`` (played) or ``failed`` (with Twilio's reason)."""
    action = sess.scalar(
        select(AgentAction)
        .where(
            AgentAction.call_id == call.id,
            AgentAction.kind == "warn",
            AgentAction.outcome == "pending",
        )
        .order_by(AgentAction.id)
        .limit(1)
        .with_for_update()
    )
    if action is None:
        return
    if event == "announcement-end":
        action.outcome = "ok"
    else:
        reason = payload.get("ReasonAnnouncementFailed") or payload.get("Reason") or ""
        action.outcome = "failed"
        action.error = f"Twilio could not play the warning: {reason or 'no reason given'}"[:1000]
