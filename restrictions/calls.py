"""Call rows, keyed on Twilio's CallSid; any callback may be the first to mention a call."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from restrictions.models import Call


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
