"""Twilio callbacks stored as received, before anything acts on them (nothing lost), keyed on
Twilio's ids so a retried or duplicated callback is stored once (nothing counted twice)."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, cast

from redis import Redis
from sqlalchemy import Connection
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from restrictions import redis_keys
from restrictions.errors import Invalid
from restrictions.models import CallEvent, utcnow
from restrictions.validation import MAX_INT

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


SID = re.compile(r"^[A-Z]{2}[0-9a-fA-F]{32}$")


WHOLE = re.compile(r"-?[0-9]+")  # ASCII digits, one sign at most (int() takes more)


def whole(value: str | None, field: str) -> int | None:
    """A non-negative whole number that fits PostgreSQL's integer, or None when absent."""
    if value is None or value == "":
        return None
    if len(value) > 12 or not WHOLE.fullmatch(value.strip()):  # "--5" and "²" are not numbers
        raise Invalid(f"{field} must be a whole number, not {value[:20]!r}")
    number = int(value)
    if number < 0:
        raise Invalid(f"{field} must not be negative, got {number}")
    if number > MAX_INT:
        raise Invalid(f"{field} must be at most {MAX_INT}, got {number}")
    return number


def sid(value: str | None, field: str, *, required: bool = True) -> str | None:
    """A Twilio id: two letters and 32 hex digits."""
    text = (value or "").strip()
    if not text:
        if required:
            raise Invalid(f"{field} is missing")
        return None
    if not SID.match(text):
        raise Invalid(f"{field} {text[:40]!r} is not a Twilio id")
    return text


def twilio_time(payload: Mapping[str, Any], fallback: datetime) -> datetime:
    """When Twilio says the event happened (its ``Timestamp``, RFC 2822), not when we received
    or processed it; ``fallback`` (the time it was received) when it carries none we can read."""
    text = str(payload.get("Timestamp") or "")[:64]
    if not text:
        return fallback
    try:
        at = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return fallback
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC)


def validate_status(form: Mapping[str, str]) -> dict[str, Any]:
    """The fields callguard relies on in a call status callback, checked (Invalid otherwise)."""
    call_sid = sid(form.get("CallSid"), "CallSid")
    assert call_sid is not None
    status = (form.get("CallStatus") or "").strip()
    if status not in CALL_STATUSES:
        raise Invalid(f"CallStatus {status[:40]!r} is not a Twilio call status")
    sid(form.get("ParentCallSid"), "ParentCallSid", required=False)
    return {
        "call_sid": call_sid,
        "status": status,
        "sequence": whole(form.get("SequenceNumber"), "SequenceNumber") or 0,
        "duration": whole(form.get("CallDuration"), "CallDuration"),
    }


def store(
    sess: Session | Connection,
    *,
    source: str,
    resource_sid: str,
    call_sid: str | None,
    sequence: int,
    event: str,
    payload: Mapping[str, Any],
) -> int | None:
    """Insert the event once; returns its id, or None when it was already stored."""
    bind = sess.get_bind() if isinstance(sess, Session) else sess
    values = {
        "source": source,
        "resource_sid": resource_sid,
        "call_sid": call_sid,
        "sequence_number": sequence,
        "event": event,
        "payload": dict(payload),
        "received_at": utcnow(),
    }
    stored: int | None = sess.scalar(_insert_once(bind.dialect.name), values)
    return stored


@functools.cache
def _insert_once(dialect: str) -> Any:
    """The insert, built once per dialect with the values as parameters: building it with the
    values in was most of a status callback's time in SQLAlchemy."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    return (
        insert(CallEvent)
        .on_conflict_do_nothing(
            index_elements=["source", "resource_sid", "sequence_number", "event"]
        )
        .returning(CallEvent.id)
    )


# --- events kept in Redis while PostgreSQL cannot take them --------------------------------------

BUFFER = redis_keys.EVENTS_BUFFERED.key


@dataclass(frozen=True)
class EventRecord:
    """A callback as stored: where it came from, its key, and the payload as received."""

    source: str
    resource_sid: str
    call_sid: str | None
    sequence: int
    event: str
    payload: dict[str, Any]


def store_record(sess: Session | Connection, record: EventRecord) -> int | None:
    return store(
        sess,
        source=record.source,
        resource_sid=record.resource_sid,
        call_sid=record.call_sid,
        sequence=record.sequence,
        event=record.event,
        payload=record.payload,
    )


def buffer(redis: Redis, record: EventRecord) -> None:
    """Keep an event in a Redis stream (acknowledged by Redis; with AOF on, durable) until
    PostgreSQL can take it."""
    redis.xadd(BUFFER, {"event": json.dumps(asdict(record))})


def drain(
    sessions: Callable[[], Session],
    redis: Redis,
    *,
    batch: int = 500,
) -> int:
    """Move buffered events into PostgreSQL, each exactly once (storing is idempotent on the
    event's key, and an entry leaves the stream only after its commit); the sweep processes
    them with the rest of what is stored. Returns how many entries were moved."""
    moved = 0
    while True:
        entries = cast(list[tuple[bytes, dict[bytes, bytes]]], redis.xrange(BUFFER, count=batch))
        if not entries:
            return moved
        for entry_id, fields in entries:
            record = EventRecord(**json.loads(fields[b"event"]))
            with sessions() as sess:
                store_record(sess, record)
                sess.commit()
            redis.xdel(BUFFER, entry_id)
            moved += 1
