"""Keeping Twilio's callbacks: into PostgreSQL within a deadline, or, when PostgreSQL cannot
take them in time (down, or hung), into a Redis stream that the worker's sweep moves into
PostgreSQL exactly once when it is back. Twilio gets a 2xx for every event we hold; only when
neither can take it does it get a 503 (and retries, where the number's URL asks it to).

The work runs on its own pool of threads, so a hung database costs callbacks their threads and
never the inbound call's."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast

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


class _AfterCommit:
    """Who runs ``then`` once the work has committed: the webhook, while it still waits for the
    work; the thread that committed it, when the webhook gave up at the deadline (the late
    transaction applied the event, so the copy buffered in Redis is stored later as a no-op and
    nothing else would do what follows from it)."""

    def __init__(self, app: Flask, then: Callable[[Any], None] | None) -> None:
        self.app, self.then = app, then
        self.lock = threading.Lock()
        self.waiting, self.committed = True, False
        self.result: Any = None

    def done(self, result: Any) -> None:
        """In the work's thread, after its commit."""
        with self.lock:
            self.committed, self.result = True, result
            if self.waiting:
                return  # the webhook has the result: it runs ``then``
        with self.app.app_context():
            self.run(result)

    def give_up(self) -> bool:
        """In the webhook's thread, past the deadline: whether the work had committed all the
        same (then the webhook runs ``then`` itself; else the work's thread will, if it does)."""
        with self.lock:
            self.waiting = False
            return self.committed

    def run(self, result: Any) -> None:
        if self.then is None:
            return
        try:
            self.then(result)
        except Exception:  # what follows is best effort; the event itself is kept
            log.exception("after keeping an event, what follows from it failed")


def _in_session(db: Database, work: Callable[[Session], T], after: _AfterCommit) -> T:
    with db.sessions() as sess:
        result = work(sess)
        sess.commit()
    after.done(result)
    return result


def keep(
    app: Flask,
    record: EventRecord,
    work: Callable[[Session], T],
    then: Callable[[T], None] | None = None,
) -> T | None:
    """Run ``work`` (which stores ``record``) in a session of its own under the deadline; if
    PostgreSQL fails or is too slow, buffer the record in Redis and return None. ``then`` runs
    with the work's result once it has committed, whenever that is: here within the deadline,
    or in the work's own thread when its commit comes after it."""
    db = database(app)
    after = _AfterCommit(app, then)
    return _keep(app, record, db, _in_session, db, work, after, after=after)


def keep_event(app: Flask, record: EventRecord) -> int | None:
    """``keep`` for an event that is only stored (one statement, in autocommit): its id, or
    None when it was stored already or is buffered in Redis."""
    db = database(app)
    return _keep(app, record, db, db.one_statement, lambda conn: store_record(conn, record))


def _keep(
    app: Flask,
    record: EventRecord,
    db: Database,
    run: Callable[..., T],
    *args: Any,
    after: _AfterCommit | None = None,
) -> T | None:
    deadline = float(app.config["CALLBACK_DEADLINE_SECONDS"])
    try:
        stored = db.breakers["callbacks"].call(deadline, "callbacks", run, *args)
    except Exception as exc:  # the database is down, hung, or refused: keep the event anyway
        if after is not None and after.give_up():  # it committed as the deadline passed
            metrics.event_stored(record.source, "postgresql")
            after.run(after.result)
            return cast(T, after.result)
        log.warning(
            "%s event %s for %s: PostgreSQL could not take it (%s); keeping it in Redis",
            record.source,
            record.event,
            record.resource_sid,
            exc,
        )
    else:
        metrics.event_stored(record.source, "postgresql")
        if after is not None:
            after.run(stored)
        return stored
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
