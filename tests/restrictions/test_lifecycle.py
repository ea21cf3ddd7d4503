"""Customers and restrictions change only through the lifecycle: each change is checked, audited
with who and why, and refreshes the routing cache once it is committed (never before)."""

from __future__ import annotations

from datetime import date

import fakeredis
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from restrictions import cache
from restrictions.appeals import lodge_appeal
from restrictions.errors import Conflict, Invalid, NotFound
from restrictions.lifecycle import (
    Actor,
    add_restriction,
    create_customer,
    end_restriction,
    get_customer,
    get_restriction,
    update_customer,
)
from restrictions.models import AuditEntry, Customer, Restriction
from restrictions.staff import create_user

TEST = Actor(None, "test")


def customer(sess: Session, reference: str = "HMS-1", *numbers: str) -> Customer:
    made = create_customer(
        sess,
        TEST,
        reference=reference,
        name="Pat Example",
        phone_numbers=list(numbers or ("07400 100001",)),
    )
    sess.commit()
    return made


def audit_actions(sess: Session) -> list[str]:
    return list(sess.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


# --- customers ---------------------------------------------------------------------------------


def test_a_new_customer_has_e164_numbers_and_is_audited(sess: Session) -> None:
    made = customer(sess, "HMS-1", "07400 100001", "+44 1332 123456", "07400100001")
    assert [n.e164 for n in made.numbers] == ["+447400100001", "+441332123456"]
    entry = sess.scalar(select(AuditEntry))
    assert entry is not None and (entry.action, entry.actor) == ("customer.created", "test")
    assert entry.after is not None and entry.after["phone_numbers"] == [
        "+447400100001",
        "+441332123456",
    ]


def test_a_duplicate_reference_or_an_owned_number_is_a_conflict(sess: Session) -> None:
    customer(sess, "HMS-1", "07400 100001")
    with pytest.raises(Conflict, match="HMS-1"):
        customer(sess, "HMS-1", "07400 100002")
    sess.rollback()
    with pytest.raises(Conflict, match=r"\+447400100001 already belongs to customer HMS-1"):
        customer(sess, "HMS-2", "07400 100001")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "", "name is required"),
        ("name", "x" * 201, "longer than 200"),
        ("name", "Pat\x00", "NUL"),
        ("phone_numbers", [], "non-empty list"),
        ("phone_numbers", ["12345"], "not a valid phone number"),
        ("language", "fr-FR", "language must be one of en-GB"),
        ("adjustments", {"slow_speech": "yes"}, "true or false"),
    ],
)
def test_bad_customer_fields_are_refused_with_the_reason(
    sess: Session, field: str, value: object, message: str
) -> None:
    fields: dict[str, object] = {"name": "Pat", "phone_numbers": ["07400 100001"]}
    fields[field] = value
    with pytest.raises(Invalid, match=message):
        create_customer(sess, TEST, reference="HMS-1", **fields)  # type: ignore[arg-type]
    assert sess.scalar(select(func.count()).select_from(Customer)) == 0


def test_an_update_is_audited_only_when_something_changed(sess: Session) -> None:
    made = customer(sess)
    assert not update_customer(sess, TEST, made, name="Pat Example", language="en-GB")
    assert update_customer(sess, TEST, made, name="Pat Jones", phone_numbers=["07400 100009"])
    sess.commit()
    assert audit_actions(sess) == ["customer.created", "customer.updated"]
    assert get_customer(sess, "HMS-1").name == "Pat Jones"
    with pytest.raises(NotFound):
        get_customer(sess, "HMS-404")


def test_the_cache_follows_commits_not_flushes(
    sess: Session, cache_redis: fakeredis.FakeRedis
) -> None:
    made = create_customer(
        sess, TEST, reference="HMS-1", name="Pat", phone_numbers=["07400 100001"]
    )
    sess.flush()
    assert cache.read(cache_redis, "+447400100001") == (False, None)
    sess.commit()
    hit, profile = cache.read(cache_redis, "+447400100001")
    assert hit and profile is not None and profile.customer_id == made.id
    update_customer(sess, TEST, made, phone_numbers=["07400 100002"])
    sess.rollback()
    assert cache.read(cache_redis, "+447400100002") == (False, None)


# --- restrictions ------------------------------------------------------------------------------


def test_a_restriction_is_audited_and_reaches_the_routing_cache(
    sess: Session, cache_redis: fakeredis.FakeRedis
) -> None:
    made = customer(sess)
    body = {
        "kind": "written_only",
        "reason": "Abuse (4.2)",
        "decided_on": "2026-02-27",
        "notice_sent_on": "2026-03-02",
    }
    restriction = add_restriction(sess, TEST, made, body, today=date(2026, 3, 5))
    sess.commit()
    assert restriction.state == "active"
    assert restriction.review_due_on == date(2027, 3, 2)  # 12 months after it took effect
    _, profile = cache.read(cache_redis, "+447400100001")
    assert profile is not None and [r.kind for r in profile.restrictions] == ["written_only"]
    assert audit_actions(sess)[-1] == "restriction.created"


def test_each_kind_checks_its_own_fields(sess: Session) -> None:
    made = customer(sess)
    create_user(sess, "jo.spoc", "agent")

    def add(**body: object) -> Restriction:
        return add_restriction(sess, TEST, made, {"reason": "r", **body})

    assert add(kind="spoc", spoc="jo.spoc").details == {"spoc": "client:jo.spoc"}
    assert add(kind="spoc", spoc="01332 000555").details == {"spoc": "+441332000555"}
    with pytest.raises(Invalid, match="no staff user named 'nobody'"):
        add(kind="spoc", spoc="client:nobody")
    with pytest.raises(Invalid, match="spoc is required"):
        add(kind="spoc")
    limited = add(
        kind="limited_contact",
        windows=[{"days": ["Thursday", "tue"], "start": "10:00", "end": "12:00"}],
    )
    assert limited.details == {
        "windows": [{"days": ["tue", "thu"], "start": "10:00", "end": "12:00"}],
        "max_calls_per_week": None,
    }
    with pytest.raises(Invalid, match="start 12:00 must be before end 10:00"):
        add(kind="limited_contact", windows=[{"days": ["mon"], "start": "12:00", "end": "10:00"}])
    with pytest.raises(Invalid, match="max_calls_per_week must be a whole number"):
        add(
            kind="limited_contact",
            windows=[{"days": ["mon"], "start": "10:00", "end": "12:00"}],
            max_calls_per_week=0,
        )
    with pytest.raises(Invalid, match="representative is required"):
        add(kind="representative_only")
    with pytest.raises(Invalid, match="reason is required"):
        add_restriction(sess, TEST, made, {"kind": "warning"})


def test_ending_is_recorded_once_and_the_row_stays(
    sess: Session, cache_redis: fakeredis.FakeRedis
) -> None:
    made = customer(sess)
    restriction = add_restriction(
        sess,
        TEST,
        made,
        {
            "kind": "written_only",
            "reason": "r",
            "apply_now": True,
            "urgent_reason": "Threats (4.6)",
        },
    )
    sess.commit()
    with pytest.raises(Invalid, match="reason"):
        end_restriction(sess, TEST, restriction, "")
    end_restriction(sess, TEST, restriction, "Behaviour improved (10.4)")
    sess.commit()
    assert get_restriction(sess, restriction.id).end_reason == "Behaviour improved (10.4)"
    _, profile = cache.read(cache_redis, "+447400100001")
    assert profile is not None and profile.restrictions == ()
    with pytest.raises(Conflict, match="already ended"):
        end_restriction(sess, TEST, restriction, "again")


def test_an_appeal_is_due_in_twenty_working_days_and_keeps_the_restriction(
    sess: Session, cache_redis: fakeredis.FakeRedis
) -> None:
    made = customer(sess)
    restriction = add_restriction(
        sess,
        TEST,
        made,
        {
            "kind": "written_only",
            "reason": "r",
            "decided_on": "2026-12-17",
            "notice_sent_on": "2026-12-18",
        },
        today=date(2026, 12, 21),
    )
    # 2026-12-21: Christmas Day, Boxing Day (28th in lieu) and New Year's Day are not working days
    appeal = lodge_appeal(
        sess,
        TEST,
        restriction,
        {"grounds": "Unfair", "lodged_on": "2026-12-21"},
        today=date(2026, 12, 21),
    )
    sess.commit()
    assert appeal.due_on == date(2027, 1, 21)
    _, profile = cache.read(cache_redis, "+447400100001")
    assert profile is not None and profile.restrictions[0].under_appeal
    with pytest.raises(NotFound):
        get_restriction(sess, 999_999)
