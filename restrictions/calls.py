"""Call rows, keyed on Twilio's CallSid; any callback may be the first to mention a call."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from restrictions.errors import NotFound
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


def require_call(sess: Session, call_sid: str) -> None:
    """NotFound (404) unless callguard has a call ``call_sid``: checked before a request's body,
    so asking about a call that is not there says so, whatever the body."""
    if sess.scalar(select(Call.id).where(Call.call_sid == call_sid)) is None:
        raise NotFound(f"no call {call_sid}")


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
    reason: str | None = None,
) -> None:
    """Add one conference event to the call's log and work out, from the whole log in Twilio's
    order, who is in the caller's conference now.

    Twilio sends events late, twice and out of order, and the person rung may join (and leave)
    while the caller still hears the greeting, so the state is never moved by one event alone:
    the log is replayed, each conference in ``SequenceNumber`` order. The call is *answered* only
    at the moment the caller and a person were both in one conference. Announcements are kept
    in the log too, so Warns are settled in Twilio's order (``settle_warnings``).
    """
    if event not in PARTICIPANT_EVENTS | ANNOUNCEMENT_EVENTS:
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
    if reason:
        entry["reason"] = reason[:200]
    if entry in log:
        return  # a retry or a duplicate: nothing new
    if len(log) < LOG_LIMIT:
        log.append(entry)
    call.conference_log = log
    _replay(call, log)


def _replay(call: Call, log: list[dict[str, Any]]) -> None:
    """Each conference replayed on its own, in ``SequenceNumber`` order: the caller and a person
    can only have been together inside one conference, so no ordering between conferences
    (whose ``Timestamp``s tie within a second, and whose SIDs are random) can pair a caller in
    one with a person in another."""
    conferences: dict[str, list[dict[str, Any]]] = {}
    for e in log:
        if e["event"] in PARTICIPANT_EVENTS:
            conferences.setdefault(e["conference"], []).append(e)
    answered: datetime | None = None
    left: datetime | None = None
    ended: datetime | None = None
    caller_joined: datetime | None = None
    present: dict[str, datetime] = {}  # who else is in a conference now, since when
    latest_person: tuple[datetime, str] | None = None
    current: tuple[bool, str, str] | None = None  # (still open, began, sid): the newest wins
    for sid, events in conferences.items():
        caller_in, over = False, False
        people: dict[str, datetime] = {}
        for e in sorted(events, key=lambda e: e["sequence"]):
            at = datetime.fromisoformat(e["at"])
            who, kind = e["participant"], e["event"]
            if kind == "participant-join" and who == call.call_sid:
                caller_in = True
                caller_joined = min(caller_joined or at, at)
            elif kind == "participant-join" and who:
                people.setdefault(who, at)
                if latest_person is None or at >= latest_person[0]:
                    latest_person = (at, who)
            elif kind == "participant-leave" and who == call.call_sid:
                caller_in = False
                ended = min(ended or at, at)
            elif kind == "participant-leave" and who:
                if people.pop(who, None) is not None:
                    left = max(left or at, at)
            elif kind == "conference-end":
                if people:
                    left = max(left or at, at)
                people.clear()
                caller_in, over = False, True
            if caller_in and people:
                answered = min(answered or at, at)
        present.update(people)
        rank = (not over, min(e["at"] for e in events), sid)
        if current is None or rank > current:
            current = rank
    call.conference_sid = current[2] if current else call.conference_sid
    call.agent_call_sid = latest_person[1] if latest_person else call.agent_call_sid
    call.person_present_since = min(present.values()) if present else None
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


OURS = "cg-"  # the conferences callguard creates: cg-<CallSid>
KNOWN_FOR = timedelta(days=1)  # another's conference belongs to a call begun this recently


def conference_call(sess: Session, event: CallEvent) -> Call | None:
    """The call a stored conference event is about. One of callguard's own (``cg-<CallSid>``)
    names it; another's (Flex's, named after its task) belongs to a known call only when a
    participant is that call's caller, or it is the conference already recorded on the call."""
    name = str(event.payload.get("FriendlyName", ""))
    if name.startswith(OURS):
        return get_or_create_call(sess, name.removeprefix(OURS), conference_name=name)
    if event.call_sid:
        call = sess.scalar(select(Call).where(Call.call_sid == event.call_sid))
        if call is not None:
            return call
    return sess.scalar(
        select(Call)
        .where(
            Call.started_at > event.received_at - KNOWN_FOR,
            Call.conference_sid == event.resource_sid,
        )
        .order_by(Call.id.desc())
        .limit(1)
    )


def apply_conference_record(sess: Session, event: CallEvent) -> str | None:
    """Apply a stored conference event to its call; the caller's CallSid when it is the moment
    a person joined them (the call then uses a weekly allowance), else None. Marks the event
    processed (one about no known call is stored and changes nothing)."""
    call = conference_call(sess, event)
    if call is None:
        event.processed_at = datetime.now(UTC)
        return None
    sess.refresh(call, with_for_update=True)  # two events for one call: one replays at a time
    answered_before = call.answered_at is not None
    at = twilio_time(event.payload, event.received_at)
    reason = event.payload.get("ReasonAnnouncementFailed") or event.payload.get("Reason")
    apply_conference_event(
        call,
        event.event,
        event.resource_sid,
        event.call_sid,
        at,
        event.sequence_number,
        str(reason) if reason else None,
    )
    theirs = not str(event.payload.get("FriendlyName", "")).startswith(OURS)
    if theirs and event.event in PARTICIPANT_EVENTS:
        catch_up_conference(sess, call, event.resource_sid)  # its events before this one
    if event.event in ANNOUNCEMENT_EVENTS:
        settle_warnings(sess, call)
    event.processed_at = datetime.now(UTC)
    return call.call_sid if not answered_before and call.answered_at is not None else None


def catch_up_conference(sess: Session, call: Call, conference_sid: str) -> None:
    """A conference callguard did not create (Flex's) has just been found to be the call's: its
    participant events that arrived before anything said so (stored, and let go as nobody's)
    are applied now. The call's conference log takes each once, so this is safe to repeat."""
    for e in sess.scalars(
        select(CallEvent)
        .where(
            CallEvent.source == "conference",
            CallEvent.resource_sid == conference_sid,
            CallEvent.event.in_(PARTICIPANT_EVENTS),
        )
        .order_by(CallEvent.id)
        .limit(LOG_LIMIT)
    ):
        at = twilio_time(e.payload, e.received_at)
        apply_conference_event(call, e.event, conference_sid, e.call_sid, at, e.sequence_number)


ANNOUNCEMENT_EVENTS = frozenset({"announcement-end", "announcement-fail"})


PLAY_FAILED = "Twilio could not play the warning: "


def settle_warnings(sess: Session, call: Call) -> None:
    """Twilio says whether each Warn it was asked to play played: the announcements on the
    call's log, in Twilio's order (``SequenceNumber``, whatever order they arrived in), settle
    the Warns Twilio accepted, oldest first: ``ok`` (played) or ``failed`` (with its reason)."""
    played = sorted(
        (e for e in call.conference_log or [] if e["event"] in ANNOUNCEMENT_EVENTS),
        key=lambda e: (e["at"], e["sequence"]),
    )
    if not played:
        return
    warns = sess.scalars(
        select(AgentAction)
        .where(AgentAction.call_id == call.id, AgentAction.kind == "warn")
        .order_by(AgentAction.id)
        .with_for_update()
    ).all()
    sent = [
        w
        for w in warns
        if not (w.outcome == "failed" and not (w.error or "").startswith(PLAY_FAILED))
    ]
    for warn, announced in zip(sent, played, strict=False):
        if announced["event"] == "announcement-end":
            warn.outcome, warn.error = "ok", None
        else:
            warn.outcome = "failed"
            warn.error = (PLAY_FAILED + (announced.get("reason") or "no reason given"))[:1000]
