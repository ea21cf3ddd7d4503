"""Twilio callbacks stored as received, before anything acts on them (nothing lost), keyed on
Twilio's ids so a retried or duplicated callback is stored once (nothing counted twice)."""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
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

log = logging.getLogger(__name__)

BUFFER = redis_keys.EVENTS_BUFFERED.key
UNREADABLE = redis_keys.EVENTS_UNREADABLE.key
UNREADABLE_KEPT = 10_000  # the most entries kept aside (the oldest go first)
UNREADABLE_DAYS = 30  # and for at most this long: they hold callers' numbers


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


_TYPES: dict[str, tuple[type, ...]] = {
    "source": (str,),
    "resource_sid": (str,),
    "call_sid": (str, type(None)),
    "sequence": (int,),
    "event": (str,),
    "payload": (dict,),
}


def read_entry(fields: Mapping[bytes, bytes]) -> EventRecord:
    """A buffered entry's event, stored as received when it is moved (``received_at`` is the
    time it reached PostgreSQL: a TaskRouter event waits WAIT_FOR_CALL from then for its call).
    Fields a later release adds are ignored; ValueError when it cannot be read."""
    try:
        data = json.loads(fields[b"event"])
    except (KeyError, ValueError) as exc:  # no event, not UTF-8, not JSON
        raise ValueError(f"the event is not readable JSON ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise ValueError("the event is not a JSON object")
    for name, types in _TYPES.items():
        value = data.get(name)
        if not isinstance(value, types) or isinstance(value, bool):
            raise ValueError(f"the event's {name} is missing or of the wrong type")
    return EventRecord(**{name: data[name] for name in _TYPES})


def drain(
    sessions: Callable[[], Session],
    redis: Redis,
    *,
    batch: int = 500,
) -> int:
    """Move buffered events into PostgreSQL, each exactly once (storing is idempotent on the
    event's key, and an entry leaves the stream only after its commit); the sweep processes
    them with the rest of what is stored. An entry that cannot be read is set aside, whole, in
    its own stream and logged, so it never holds up the ones behind it. Returns how many entries
    were moved."""
    oldest = int((utcnow() - timedelta(days=UNREADABLE_DAYS)).timestamp() * 1000)
    redis.xtrim(UNREADABLE, minid=oldest, approximate=False)  # they hold callers' numbers
    moved = 0
    while True:
        entries = cast(list[tuple[bytes, dict[bytes, bytes]]], redis.xrange(BUFFER, count=batch))
        if not entries:
            return moved
        for entry_id, fields in entries:
            try:
                record = read_entry(fields)
            except ValueError as exc:
                set_aside(redis, entry_id, fields, str(exc))
                continue
            with sessions() as sess:
                store_record(sess, record)
                sess.commit()
            redis.xdel(BUFFER, entry_id)
            moved += 1


def set_aside(redis: Redis, entry_id: bytes, fields: Mapping[bytes, bytes], why: str) -> None:
    """Keep an unreadable entry for a person to look at, then let the buffer go on."""
    kept = {**fields, b"buffered_as": entry_id, b"why": why.encode()}
    redis.xadd(UNREADABLE, kept, maxlen=UNREADABLE_KEPT, approximate=True)  # type: ignore[arg-type]
    redis.xdel(BUFFER, entry_id)
    log.error(
        "a callback kept in Redis could not be read (%s): set aside as %s in %s",
        why,
        entry_id.decode(errors="replace"),
        UNREADABLE,
    )
