"""restrictions/events.py: a Twilio callback is checked, then stored as received once per key
(source, Twilio id, sequence number, event), so a retry or duplicate is never a second event; while
PostgreSQL is away it waits in a Redis stream, and leaves it only once committed to PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest
import time_machine
from redis import Redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from restrictions import events
from restrictions.errors import Invalid
from restrictions.models import CallEvent
from restrictions.validation import MAX_INT

NOW = datetime(2031, 3, 4, 10, 0, tzinfo=UTC)


def call_sid(n: int) -> str:
    return f"CA{n:032x}"


def record(
    n: int, event: str = "ringing", sequence: int = 0, source: str = "status"
) -> events.EventRecord:
    return events.EventRecord(
        source=source,
        resource_sid=call_sid(n),
        call_sid=call_sid(n),
        sequence=sequence,
        event=event,
        payload={"CallSid": call_sid(n), "CallStatus": event, "SequenceNumber": str(sequence)},
    )


def stored(sess: Session, *resource_sids: str) -> list[CallEvent]:
    """The events stored for these resources, in the order they were stored."""
    return list(
        sess.scalars(
            select(CallEvent)
            .where(CallEvent.resource_sid.in_(resource_sids))
            .order_by(CallEvent.id)
            .execution_options(populate_existing=True)
        )
    )


def sessions_on(sess: Session, cls: type[Session] = Session) -> Callable[[], Session]:
    """Sessions as the sweep's factory makes them, on the test's connection (rolled back after)."""
    return lambda: cls(bind=sess.get_bind(), join_transaction_mode="create_savepoint")


# --- storing once ------------------------------------------------------------------------------


def test_a_retried_callback_is_stored_once_and_keeps_what_first_arrived(sess: Session) -> None:
    first = record(1, "completed", 4)
    with time_machine.travel(NOW, tick=False):
        event_id = events.store_record(sess, first)
    retry = replace(first, payload={**first.payload, "Retry": "1"})
    with time_machine.travel(NOW + timedelta(minutes=5), tick=False):
        again = events.store_record(sess, retry)
        duplicate = events.store_record(sess, first)

    assert event_id is not None
    assert again is None and duplicate is None  # the callers process only what returns an id
    [row] = stored(sess, call_sid(1))
    assert row.id == event_id
    assert row.received_at == NOW  # the retry neither moves the event in time
    assert "Retry" not in row.payload  # nor replaces what was received


def test_an_event_is_stored_exactly_as_received_and_waits_unprocessed(sess: Session) -> None:
    payload = {"CallSid": call_sid(2), "CallStatus": "busy", "Caller": "+447400100001", "X": ""}
    with time_machine.travel(NOW, tick=False):
        event_id = events.store(
            sess,
            source="status",
            resource_sid=call_sid(2),
            call_sid=call_sid(2),
            sequence=7,
            event="busy",
            payload=payload,
        )

    [row] = stored(sess, call_sid(2))
    assert row.id == event_id
    assert (row.source, row.resource_sid, row.call_sid) == ("status", call_sid(2), call_sid(2))
    assert (row.sequence_number, row.event, row.payload) == (7, "busy", payload)
    assert row.received_at == NOW
    assert (row.processed_at, row.parked_reason, row.attempts) == (None, None, 0)


def test_the_key_is_source_twilio_id_sequence_and_event_together(sess: Session) -> None:
    base = record(3, "in-progress", 2)
    variants = [
        base,
        replace(base, source="conference"),
        replace(base, resource_sid=call_sid(4)),
        replace(base, sequence=3),
        replace(base, event="completed"),
        # the call_sid and the payload are not part of the key: the same event again
        replace(base, call_sid=None, payload={"other": "1"}),
    ]

    ids = [events.store_record(sess, r) for r in variants]

    assert all(i is not None for i in ids[:5])
    assert len(set(ids[:5])) == 5
    assert ids[5] is None
    assert len(stored(sess, call_sid(3), call_sid(4))) == 5


def test_events_arriving_out_of_order_are_each_kept_with_twilio_sequence_and_time(
    sess: Session,
) -> None:
    """Twilio does not promise the order of its callbacks: the last to arrive may be the first
    to have happened, and is stored all the same, with its own sequence number and time."""
    sent = {
        0: ("initiated", "Tue, 04 Mar 2031 09:59:58 +0000"),
        1: ("ringing", "Tue, 04 Mar 2031 09:59:59 +0000"),
        2: ("completed", "Tue, 04 Mar 2031 10:01:30 +0000"),
    }
    for minute, sequence in enumerate((2, 0, 1)):  # completed arrives first, initiated last
        status, timestamp = sent[sequence]
        payload = {"CallStatus": status, "SequenceNumber": str(sequence), "Timestamp": timestamp}
        with time_machine.travel(NOW + timedelta(minutes=minute), tick=False):
            assert (
                events.store(
                    sess,
                    source="status",
                    resource_sid=call_sid(5),
                    call_sid=call_sid(5),
                    sequence=sequence,
                    event=status,
                    payload=payload,
                )
                is not None
            )

    rows = stored(sess, call_sid(5))
    assert [r.sequence_number for r in rows] == [2, 0, 1]  # as they arrived
    by_sequence = sorted(rows, key=lambda r: r.sequence_number)
    assert [r.event for r in by_sequence] == ["initiated", "ringing", "completed"]
    happened = [events.twilio_time(r.payload, r.received_at) for r in by_sequence]
    assert happened == sorted(happened)  # Twilio's time follows the sequence, arrival did not
    assert happened[0] == datetime(2031, 3, 4, 9, 59, 58, tzinfo=UTC)
    assert by_sequence[0].received_at == NOW + timedelta(minutes=1)


def test_storing_on_a_bare_connection_is_as_idempotent_as_on_a_session(sess: Session) -> None:
    """The status callback stores in one autocommit statement (telephony.callbacks.keep_event)."""
    connection = sess.connection()
    first = events.store_record(connection, record(6, "answered", 1))
    again = events.store_record(connection, record(6, "answered", 1))
    on_session = events.store_record(sess, record(6, "answered", 1))

    assert first is not None
    assert again is None and on_session is None
    assert [r.id for r in stored(sess, call_sid(6))] == [first]


# --- what a status callback must carry ---------------------------------------------------------


def test_a_status_callback_yields_the_fields_callguard_relies_on() -> None:
    form = {
        "CallSid": f" {call_sid(7)} ",
        "CallStatus": "completed",
        "SequenceNumber": "3",
        "CallDuration": "125",
        "ParentCallSid": call_sid(8),
    }
    assert events.validate_status(form) == {
        "call_sid": call_sid(7),
        "status": "completed",
        "sequence": 3,
        "duration": 125,
    }
    # an early callback carries neither: sequence 0 (so it still has a key), no duration
    assert events.validate_status({"CallSid": call_sid(7), "CallStatus": "ringing"}) == {
        "call_sid": call_sid(7),
        "status": "ringing",
        "sequence": 0,
        "duration": None,
    }
    assert events.CALL_STATUSES >= events.FINAL
    assert events.FINAL == {"completed", "busy", "no-answer", "failed", "canceled"}


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        pytest.param({"CallSid": ""}, "CallSid is missing", id="no CallSid"),
        pytest.param({"CallSid": "CA" + "g" * 32}, "is not a Twilio id", id="CallSid not hex"),
        pytest.param({"CallSid": "ca" + "1" * 32}, "is not a Twilio id", id="lower-case"),
        pytest.param({"CallSid": "CA" + "1" * 31}, "is not a Twilio id", id="CallSid short"),
        pytest.param({"CallSid": "CA" + "1" * 33}, "is not a Twilio id", id="CallSid long"),
        pytest.param({"CallStatus": "hung-up"}, "is not a Twilio call status", id="unknown status"),
        pytest.param({"CallStatus": ""}, "is not a Twilio call status", id="no status"),
        pytest.param({"ParentCallSid": "not-a-sid"}, "ParentCallSid", id="bad ParentCallSid"),
        pytest.param({"SequenceNumber": "-1"}, "must not be negative", id="negative sequence"),
        pytest.param({"SequenceNumber": "1.5"}, "must be a whole number", id="fractional sequence"),
        pytest.param({"SequenceNumber": "+5"}, "must be a whole number", id="signed sequence"),
        pytest.param({"CallDuration": str(MAX_INT + 1)}, "must be at most", id="too long a call"),
        pytest.param({"CallDuration": "1" * 13}, "must be a whole number", id="13 digits"),
    ],
)
def test_a_status_callback_callguard_cannot_rely_on_is_invalid(
    change: dict[str, str], complaint: str
) -> None:
    form = {"CallSid": call_sid(9), "CallStatus": "completed", "SequenceNumber": "1", **change}
    with pytest.raises(Invalid, match=complaint):
        events.validate_status(form)


def test_whole_numbers_are_bounded_by_what_postgresql_can_store(sess: Session) -> None:
    assert events.whole(None, "n") is None
    assert events.whole("", "n") is None
    assert events.whole("0", "n") == 0
    assert events.whole(str(MAX_INT), "n") == MAX_INT
    with pytest.raises(Invalid, match="at most"):
        events.whole(str(MAX_INT + 1), "n")
    # the largest accepted sequence number really is one the column holds
    assert events.store_record(sess, record(10, sequence=MAX_INT)) is not None
    assert stored(sess, call_sid(10))[0].sequence_number == MAX_INT


@pytest.mark.parametrize("value", ["--5", "²", "+5", "٣"])
def test_a_malformed_number_is_invalid_never_an_unexpected_error(value: str) -> None:
    """Invalid (the webhook's 400), never the ValueError int() raises (a 500 Twilio retries)."""
    with pytest.raises(Invalid):
        events.validate_status(
            {"CallSid": call_sid(11), "CallStatus": "completed", "CallDuration": value}
        )


def test_twilio_time_is_when_twilio_says_it_happened_else_when_received() -> None:
    received = datetime(2031, 3, 4, 12, 0, tzinfo=UTC)
    at = events.twilio_time({"Timestamp": "Tue, 04 Mar 2031 11:00:00 +0100"}, received)
    assert at == datetime(2031, 3, 4, 10, 0, tzinfo=UTC)
    assert at.utcoffset() == timedelta(0)
    unzoned = events.twilio_time({"Timestamp": "Tue, 04 Mar 2031 11:00:00 -0000"}, received)
    assert unzoned == datetime(2031, 3, 4, 11, 0, tzinfo=UTC)  # "-0000": UTC, not naive
    for unreadable in ({}, {"Timestamp": ""}, {"Timestamp": "yesterday"}, {"Timestamp": None}):
        assert events.twilio_time(unreadable, received) == received
    out_of_range = "Tue, 04 Mar 99999 11:00:00 +0000"
    assert events.twilio_time({"Timestamp": out_of_range}, received) == received


# --- kept in Redis while PostgreSQL is away ----------------------------------------------------


def test_buffered_events_move_into_postgresql_once_each_and_leave_the_stream(
    sess: Session, redis_conn: Redis
) -> None:
    already = events.store_record(sess, record(12, "ringing", 1))  # stored before the outage
    for r in (
        record(12, "ringing", 1),  # Twilio's retry of it, kept in Redis
        record(12, "completed", 2),
        record(12, "completed", 2),  # and a duplicate of a kept one
        record(13, "busy", 1),
    ):
        events.buffer(redis_conn, r)
    assert redis_conn.xlen(events.BUFFER) == 4

    moved = events.drain(sessions_on(sess), redis_conn)

    assert moved == 4  # every entry dealt with ...
    assert redis_conn.xlen(events.BUFFER) == 0
    rows = stored(sess, call_sid(12), call_sid(13))
    keys = [(r.resource_sid, r.sequence_number, r.event) for r in rows]
    assert keys == [  # ... but each event stored once
        (call_sid(12), 1, "ringing"),
        (call_sid(12), 2, "completed"),
        (call_sid(13), 1, "busy"),
    ]
    assert rows[0].id == already
    assert rows[1].payload == record(12, "completed", 2).payload  # the payload survives Redis
    assert all(r.processed_at is None for r in rows)  # left for the sweep to process
    assert events.drain(sessions_on(sess), redis_conn) == 0  # nothing left to move


def test_draining_takes_batch_after_batch_until_the_stream_is_empty(
    sess: Session, redis_conn: Redis
) -> None:
    for n in range(7):
        events.buffer(redis_conn, record(20 + n, "completed", 1))

    moved = events.drain(sessions_on(sess), redis_conn, batch=3)

    assert moved == 7
    assert redis_conn.xlen(events.BUFFER) == 0
    assert len(stored(sess, *(call_sid(20 + n) for n in range(7)))) == 7


class CommitFails(Session):
    """PostgreSQL goes away again between the insert and its commit."""

    def commit(self) -> None:
        raise ConnectionError("PostgreSQL went away")


def test_an_entry_leaves_the_stream_only_once_its_event_is_committed(
    sess: Session, redis_conn: Redis
) -> None:
    events.buffer(redis_conn, record(30, "completed", 3))
    events.buffer(redis_conn, record(31, "completed", 3))

    with pytest.raises(ConnectionError):
        events.drain(sessions_on(sess, CommitFails), redis_conn)

    assert redis_conn.xlen(events.BUFFER) == 2  # nothing lost
    assert stored(sess, call_sid(30), call_sid(31)) == []  # the insert was rolled back
    assert events.drain(sessions_on(sess), redis_conn) == 2  # moved when PostgreSQL is back
    assert redis_conn.xlen(events.BUFFER) == 0
    assert len(stored(sess, call_sid(30), call_sid(31))) == 2


def test_an_entry_from_another_release_still_moves(sess: Session, redis_conn: Redis) -> None:
    """Fields a later release adds to the event, or to the entry, are ignored."""
    newer = json.dumps({**asdict(record(42, "completed", 2)), "region": "ie1"})
    redis_conn.xadd(events.BUFFER, {"event": newer, "received_at": "2031-03-04T10:00:00"})
    assert events.drain(sessions_on(sess), redis_conn) == 1
    (row,) = stored(sess, call_sid(42))
    assert row.payload == record(42, "completed", 2).payload


def test_entries_set_aside_are_kept_for_thirty_days(sess: Session, redis_conn: Redis) -> None:
    """They hold callers' numbers: no longer than the drain's next look after 30 days (an
    entry's id is Redis's clock, so the days are counted from now)."""
    now = datetime.now(UTC)
    redis_conn.xadd(events.BUFFER, {"event": "{"})
    events.drain(sessions_on(sess), redis_conn)
    assert redis_conn.xlen(events.UNREADABLE) == 1
    with time_machine.travel(now + timedelta(days=29), tick=False):
        events.drain(sessions_on(sess), redis_conn)
    assert redis_conn.xlen(events.UNREADABLE) == 1
    with time_machine.travel(now + timedelta(days=31), tick=False):
        events.drain(sessions_on(sess), redis_conn)
    assert redis_conn.xlen(events.UNREADABLE) == 0


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"event": "{not json"}, "not readable JSON"),
        ({"something": "else"}, "not readable JSON"),
        ({"event": "[1, 2]"}, "not a JSON object"),
        ({"event": json.dumps({**asdict(record(43)), "sequence": "7"})}, "sequence"),
        ({"event": json.dumps({**asdict(record(43)), "payload": None})}, "payload"),
        ({"event": json.dumps({"source": "status"})}, "resource_sid"),
    ],
)
def test_an_entry_that_cannot_be_read_is_set_aside_and_the_rest_still_move(
    sess: Session,
    redis_conn: Redis,
    caplog: pytest.LogCaptureFixture,
    fields: dict[str, str],
    why: str,
) -> None:
    events.buffer(redis_conn, record(44, "completed", 1))
    bad = redis_conn.xadd(events.BUFFER, fields)  # type: ignore[arg-type]
    events.buffer(redis_conn, record(45, "completed", 1))

    assert events.drain(sessions_on(sess), redis_conn) == 2

    assert redis_conn.xlen(events.BUFFER) == 0
    assert len(stored(sess, call_sid(44), call_sid(45))) == 2
    ((_, kept),) = cast(
        list[tuple[bytes, dict[bytes, bytes]]], redis_conn.xrange(events.UNREADABLE)
    )
    assert kept[b"buffered_as"] == bad
    assert why in kept[b"why"].decode()
    assert {k.encode(): v.encode() for k, v in fields.items()}.items() <= kept.items()
    assert any(r.levelname == "ERROR" and why in r.getMessage() for r in caplog.records)
