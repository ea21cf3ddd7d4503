"""Call rows, keyed on Twilio's CallSid; any callback may be the first to mention a call."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from restrictions.events import FINAL
from restrictions.models import Call, CallEvent, PhoneNumber
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
    call = get_or_create_call(
        sess,
        event.resource_sid,
        from_number=str(payload.get("From", ""))[:64],
        from_e164=e164,
        to_number=str(payload.get("To", ""))[:64],
        started_at=event.received_at,
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
            call.ended_at = event.received_at
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


def apply_conference_event(
    call: Call, event: str, conference_sid: str, participant: str | None, at: datetime
) -> None:
    """A conference event moves the call's live state: the conference exists, someone other
    than the caller joined (the call is answered), the caller left or the conference ended."""
    call.conference_sid = call.conference_sid or conference_sid
    is_caller = participant == call.call_sid
    if event == "participant-join" and participant and not is_caller:
        call.agent_call_sid = participant
        if call.answered_at is None:
            call.answered_at = at
        if call.ended_at is None:
            call.status = "in-progress"
    elif (event == "participant-leave" and is_caller) or event == "conference-end":
        if call.ended_at is None:
            call.ended_at = at


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
    answered_before = call.answered_at is not None
    now = datetime.now(UTC)
    apply_conference_event(call, event.event, event.resource_sid, event.call_sid, now)
    event.processed_at = now
    return not answered_before and call.answered_at is not None
