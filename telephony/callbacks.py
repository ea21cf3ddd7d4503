"""Keeping Twilio's callbacks: into PostgreSQL within a deadline, or, when PostgreSQL cannot
take them in time (down, or hung), into a Redis stream that the worker's sweep moves into
PostgreSQL exactly once when it is back. Twilio gets a 2xx for every event we hold; only when
neither can take it does it get a 503 (and retries, where the number's URL asks it to).

The work runs on its own pool of threads, so a hung database costs callbacks their threads and
never the inbound call's."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask
from redis.exceptions import RedisError
from sqlalchemy.orm import Session

from restrictions.db import Database
from restrictions.events import EventRecord, buffer, store_record
from telephony import handover, metrics
from telephony.database import database
from telephony.redis_store import redis_client

log = logging.getLogger("callguard.callbacks")

T = TypeVar("T")


class NotKept(RuntimeError):
    """Neither PostgreSQL nor Redis could take the event."""


def _in_session(db: Database, work: Callable[[Session], T]) -> T:
    with db.sessions() as sess:
        result = work(sess)
        sess.commit()
        return result


def keep(app: Flask, record: EventRecord, work: Callable[[Session], T]) -> T | None:
    """Run ``work`` (which stores ``record``) in a session of its own under the deadline; if
    PostgreSQL fails or is too slow, buffer the record in Redis and return None."""
    db = database(app)
    return _keep(app, record, db, _in_session, db, work)


def keep_event(app: Flask, record: EventRecord) -> int | None:
    """``keep`` for an event that is only stored (one statement, in autocommit): its id, or
    None when it was stored already or is buffered in Redis."""
    db = database(app)
    return _keep(app, record, db, db.one_statement, lambda conn: store_record(conn, record))


def _keep(
    app: Flask, record: EventRecord, db: Database, run: Callable[..., T], *args: Any
) -> T | None:
    deadline = float(app.config["CALLBACK_DEADLINE_SECONDS"])
    try:
        stored = db.breakers["callbacks"].call(deadline, "callbacks", run, *args)
        metrics.event_stored(record.source, "postgresql")
        return stored
    except Exception as exc:  # the database is down, hung, or refused: keep the event anyway
        log.warning(
            "%s event %s for %s: PostgreSQL could not take it (%s); keeping it in Redis",
            record.source,
            record.event,
            record.resource_sid,
            exc,
        )
    try:
        buffer(redis_client(app), record)
    except RedisError as exc:
        metrics.event_not_kept(record.source)
        raise NotKept(f"neither PostgreSQL nor Redis could keep the event: {exc}") from exc
    metrics.event_stored(record.source, "redis")
    return None


def process_later(event_id: int) -> None:
    """A stored event is processed by the worker (idempotent on the event id)."""
    handover.hand_over_event(event_id)
