"""Personal data is kept no longer than needed: old callback payloads and calls go, incidents and
ended restrictions after six years; nothing about a restriction in force, an open alert or an
undecided appeal is touched; each run is audited with its counts, and a dry run changes nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from restrictions import retention
from restrictions.lifecycle import Actor, add_restriction, create_customer, end_restriction
from restrictions.models import (
    AgentAction,
    AuditEntry,
    Call,
    CallEvent,
    Customer,
    Restriction,
)
from restrictions.staff import create_user

NOW = datetime(2033, 6, 1, tzinfo=UTC)
TEST = Actor(None, "test")
RULES = retention.Retention()


def customer(sess: Session, n: int) -> Customer:
    return create_customer(
        sess, TEST, reference=f"RET-{n}", name="Pat", phone_numbers=[f"+4474004000{n:02d}"]
    )


def count(sess: Session, model: type, *where: Any) -> int:
    return int(sess.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_what_has_passed_its_time_goes_and_what_is_live_stays(sess: Session) -> None:
    before_calls = count(sess, Call)
    gone, kept = customer(sess, 1), customer(sess, 2)
    old = NOW - timedelta(days=800)
    agent, _ = create_user(sess, "ret.agent", "agent")
    sess.add_all(
        [
            Call(
                call_sid="CA" + "1" * 32, customer_id=gone.id, from_number="+4474", started_at=old
            ),
            Call(
                call_sid="CA" + "2" * 32, customer_id=kept.id, from_number="+4475", started_at=old
            ),
            Call(
                call_sid="CA" + "3" * 32, customer_id=gone.id, from_number="+4476", started_at=NOW
            ),
            CallEvent(
                source="status",
                resource_sid="CA" + "1" * 32,
                sequence_number=3,
                event="completed",
                payload={"From": "+447400400001"},
                received_at=NOW - timedelta(days=91),
                processed_at=NOW - timedelta(days=91),
            ),
        ]
    )
    sess.flush()
    incident_call = Call(
        call_sid="CA" + "4" * 32, customer_id=gone.id, from_number="+4477", started_at=old
    )
    sess.add(incident_call)
    sess.flush()
    sess.add(
        AgentAction(
            call_id=incident_call.id,
            customer_id=gone.id,
            user_id=agent.id,
            kind="end",
            created_at=NOW - timedelta(days=300),
        )
    )
    live = add_restriction(
        sess,
        TEST,
        kept,
        {"kind": "warning", "reason": "r", "notice_sent_on": "2026-01-05"},
        today=date(2026, 1, 5),
    )
    ended = add_restriction(
        sess,
        TEST,
        gone,
        {"kind": "warning", "reason": "r", "notice_sent_on": "2026-01-05"},
        today=date(2026, 1, 5),
    )
    sess.flush()
    end_restriction(sess, TEST, ended, "Reviewed")
    ended.ended_at = NOW - timedelta(days=7 * 365)
    sess.commit()

    dry = retention.purge(sess, RULES, now=NOW, dry_run=True)
    assert (dry.callback_events, dry.calls_deleted, dry.calls_anonymised, dry.restrictions) == (
        1,
        1,
        1,
        1,
    )
    assert count(sess, Call) == before_calls + 4  # the dry run changed nothing

    done = retention.purge(sess, RULES, now=NOW)
    sess.commit()
    assert done == dry
    assert sess.scalar(select(Call).where(Call.call_sid == "CA" + "1" * 32)) is None
    kept_call = sess.scalar(select(Call).where(Call.call_sid == "CA" + "2" * 32))
    assert kept_call is not None, "a customer with a restriction in force keeps their calls"
    assert sess.scalar(select(Call).where(Call.call_sid == "CA" + "3" * 32)) is not None
    anonymised = sess.scalar(select(Call).where(Call.call_sid == "CA" + "4" * 32))
    assert anonymised is not None and anonymised.from_number == "" and anonymised.from_e164 is None
    assert sess.get(Restriction, ended.id) is None and sess.get(Restriction, live.id) is not None
    entry = sess.scalar(select(AuditEntry).where(AuditEntry.action == "retention.purged"))
    assert entry is not None and entry.after is not None and entry.after["calls_deleted"] == 1
