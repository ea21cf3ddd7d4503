"""Twilio callbacks stored as received, before anything acts on them (nothing lost), keyed on
Twilio's ids so a retried or duplicated callback is stored once (nothing counted twice)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from restrictions.errors import Invalid
from restrictions.models import CallEvent, utcnow

CALL_STATUSES = frozenset(
    {
        "queued",
        "initiated",
        "ringing",
        "in-progress",
        "answered",
        "completed",
        "busy",
        "no-answer",
        "failed",
        "canceled",
    }
)
FINAL = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})


def _whole(value: str | None, field: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except ValueError:
        raise Invalid(f"{field} must be a whole number, not {value!r}") from None
    if number < 0:
        raise Invalid(f"{field} must not be negative, got {number}")
    return number


def validate_status(form: Mapping[str, str]) -> dict[str, Any]:
    """The fields callguard relies on in a call status callback, checked (Invalid otherwise)."""
    call_sid = (form.get("CallSid") or "").strip()
    if not call_sid:
        raise Invalid("CallSid is missing")
    status = (form.get("CallStatus") or "").strip()
    if status not in CALL_STATUSES:
        raise Invalid(f"CallStatus {status!r} is not a Twilio call status")
    return {
        "call_sid": call_sid,
        "status": status,
        "sequence": _whole(form.get("SequenceNumber"), "SequenceNumber") or 0,
        "duration": _whole(form.get("CallDuration"), "CallDuration"),
    }


def store(
    sess: Session,
    *,
    source: str,
    resource_sid: str,
    call_sid: str | None,
    sequence: int,
    event: str,
    payload: Mapping[str, Any],
) -> int | None:
    """Insert the event once; returns its id, or None when it was already stored."""
    insert = pg_insert if sess.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(CallEvent)
        .values(
            source=source,
            resource_sid=resource_sid,
            call_sid=call_sid,
            sequence_number=sequence,
            event=event,
            payload=dict(payload),
            received_at=utcnow(),
        )
        .on_conflict_do_nothing(
            index_elements=["source", "resource_sid", "sequence_number", "event"]
        )
        .returning(CallEvent.id)
    )
    return sess.scalar(statement)
