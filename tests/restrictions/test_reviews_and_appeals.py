"""A restriction's life after the decision: it applies from its written notice (or at once, for
danger), is reviewed at least every 12 months, and an appeal is heard by someone who did not
decide it, within 20 working days; each step is audited and the phone line follows."""

from __future__ import annotations

from datetime import date
from typing import Any

import fakeredis
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from restrictions import appeals, cache, due_list, lifecycle, notices, reviews
from restrictions.errors import Conflict, Forbidden, Invalid
from restrictions.lifecycle import Actor, add_restriction, create_customer
from restrictions.models import AuditEntry, Customer, Restriction
from restrictions.staff import create_user

TEST = Actor(None, "test")
MONDAY = date(2026, 3, 2)


def customer(sess: Session, ref: str = "DEC-1", number: str = "+447400300001") -> Customer:
    made = create_customer(sess, TEST, reference=ref, name="Pat", phone_numbers=[number])
    sess.flush()
    return made


def restriction(sess: Session, who: Customer, actor: Actor = TEST, **body: Any) -> Restriction:
    made = add_restriction(
        sess,
        actor,
        who,
        {"kind": "written_only", "reason": "Abuse (4.2)", "decided_on": "2026-02-27", **body},
        today=MONDAY,
    )
    sess.commit()
    return made


def in_force(redis: fakeredis.FakeRedis, number: str = "+447400300001") -> list[str]:
    hit, profile = cache.read(redis, number)
    return [r.kind for r in profile.restrictions] if hit and profile else []


# --- notice ----------------------------------------------------------------------------------


def test_a_decision_applies_only_from_its_notice(
    sess: Session, cache_redis: fakeredis.FakeRedis
) -> None:
    made = restriction(sess, customer(sess))
    assert made.state == "awaiting_notice" and made.review_due_on is None
    assert in_force(cache_redis) == []
    notices.record_notice(sess, TEST, made, "2026-03-02", "post", today=MONDAY)
    sess.commit()
    assert made.state == "active" and made.takes_effect_on == MONDAY
    assert made.review_due_on == date(2027, 3, 2)
    assert in_force(cache_redis) == ["written_only"]


@pytest.mark.parametrize(
    ("sent_on", "method", "error", "message"),
    [
        ("2026-03-03", "post", Invalid, "in the future"),
        ("2026-02-26", "post", Invalid, "before the decision"),
        ("2026-03-02", "pigeon", Invalid, "method must be one of"),
        (None, "post", Invalid, "sent_on is required"),
    ],
)
def test_a_notice_date_must_make_sense(
    sess: Session, sent_on: str | None, method: str, error: type[Exception], message: str
) -> None:
    made = restriction(sess, customer(sess))
    with pytest.raises(error, match=message):
        notices.record_notice(sess, TEST, made, sent_on, method, today=MONDAY)


def test_a_notice_is_recorded_once(sess: Session) -> None:
    made = restriction(sess, customer(sess), notice_sent_on="2026-02-28")
    with pytest.raises(Conflict, match="2026-02-28"):
        notices.record_notice(sess, TEST, made, "2026-03-02", "post", today=MONDAY)


def test_danger_applies_at_once_and_the_notice_is_due_in_two_working_days(
    sess: Session, cache_redis: fakeredis.FakeRedis
) -> None:
    with pytest.raises(Invalid, match="urgent_reason"):
        restriction(sess, customer(sess), apply_now=True)
    sess.rollback()
    made = restriction(sess, customer(sess), apply_now=True, urgent_reason="Threat to staff (4.6)")
    assert made.state == "active" and in_force(cache_redis) == ["written_only"]
    assert made.notice_due_on == date(2026, 3, 3)  # Friday 27 Feb + 2 working days
    items = due_list.due(sess, MONDAY)
    assert [(i.what, i.restriction.id) for i in items if i.restriction.id == made.id] == [
        ("letter", made.id)
    ]
    late = due_list.due(sess, date(2026, 3, 5))
    (overdue,) = [i for i in late if i.restriction.id == made.id]
    assert (overdue.what, overdue.days_overdue) == ("notice_overdue", 2)


# --- reviews ---------------------------------------------------------------------------------


def test_continue_sets_the_next_review_at_most_twelve_months_on(sess: Session) -> None:
    made = restriction(sess, customer(sess), notice_sent_on="2026-03-02")
    with pytest.raises(Invalid, match="notes"):
        reviews.review(sess, TEST, made, {"outcome": "continue"}, today=MONDAY)
    with pytest.raises(Invalid, match="at most 12 months"):
        reviews.review(
            sess,
            TEST,
            made,
            {"outcome": "continue", "notes": "n", "next_review_on": "2027-03-03"},
            today=MONDAY,
        )
    done = reviews.review(
        sess,
        TEST,
        made,
        {"outcome": "continue", "notes": "Still needed", "next_review_on": "2026-09-01"},
        today=MONDAY,
    )
    sess.commit()
    assert (done.outcome, made.review_due_on, made.last_reviewed_on) == (
        "continue",
        date(2026, 9, 1),
        MONDAY,
    )


def test_ending_at_review_frees_the_phone_line(
    sess: Session, cache_redis: fakeredis.FakeRedis
) -> None:
    made = restriction(sess, customer(sess), notice_sent_on="2026-03-02")
    reviews.review(sess, TEST, made, {"outcome": "end", "notes": "Improved"}, today=MONDAY)
    sess.commit()
    assert made.state == "ended" and in_force(cache_redis) == []


def test_varying_ends_it_and_links_its_successor(
    sess: Session, cache_redis: fakeredis.FakeRedis
) -> None:
    made = restriction(sess, customer(sess), notice_sent_on="2026-03-02")
    with pytest.raises(Invalid, match="successor is required"):
        reviews.review(sess, TEST, made, {"outcome": "vary", "notes": "n"}, today=MONDAY)
    successor = {
        "kind": "limited_contact",
        "reason": "Calls allowed again, within limits",
        "windows": [{"days": ["tue"], "start": "10:00", "end": "12:00"}],
        "notice_sent_on": "2026-03-02",
    }
    done = reviews.review(
        sess,
        TEST,
        made,
        {"outcome": "vary", "notes": "Ease it", "successor": successor},
        today=MONDAY,
    )
    sess.commit()
    new = sess.get(Restriction, done.successor_id)
    assert new is not None and new.replaces_id == made.id and made.state == "ended"
    assert in_force(cache_redis) == ["limited_contact"]


def test_reviews_due_within_thirty_days_and_overdue_are_listed_oldest_first(
    sess: Session,
) -> None:
    pat = customer(sess)
    due_soon = restriction(sess, pat, notice_sent_on="2026-03-02")
    overdue = restriction(sess, pat, notice_sent_on="2026-02-28", kind="warning")
    later = restriction(sess, pat, notice_sent_on="2026-03-02", kind="no_engagement", issue="x")
    due_soon.review_due_on, overdue.review_due_on = date(2026, 3, 20), date(2026, 2, 20)
    later.review_due_on = date(2026, 6, 1)
    sess.commit()
    mine = [i for i in due_list.reviews_due(sess, MONDAY) if i.restriction.customer_id == pat.id]
    assert [(i.restriction.id, i.what, i.days_overdue) for i in mine] == [
        (overdue.id, "review_overdue", 10),
        (due_soon.id, "review_due", 0),
    ]


# --- appeals ---------------------------------------------------------------------------------


def test_an_appeal_within_twenty_working_days_keeps_the_restriction_in_force(
    sess: Session, cache_redis: fakeredis.FakeRedis
) -> None:
    made = restriction(sess, customer(sess), notice_sent_on="2026-03-02")
    appeal = appeals.lodge_appeal(
        sess, TEST, made, {"lodged_on": "2026-03-02", "grounds": "It is unfair"}, today=MONDAY
    )
    sess.commit()
    assert appeal.due_on == date(2026, 3, 30)
    hit, profile = cache.read(cache_redis, "+447400300001")
    assert profile is not None and profile.restrictions[0].under_appeal


@pytest.mark.parametrize(
    ("body", "today", "error", "message"),
    [
        ({"grounds": "g", "lodged_on": "2026-03-09"}, MONDAY, Invalid, "in the future"),
        ({"grounds": "g", "lodged_on": "2026-03-01"}, MONDAY, Invalid, "before the notice"),
        ({"grounds": "g", "lodged_on": "2026-03-31"}, date(2026, 3, 31), Invalid, "last day"),
        ({"lodged_on": "2026-03-02"}, MONDAY, Invalid, "grounds is required"),
    ],
)
def test_an_appeal_must_be_in_time_and_say_why(
    sess: Session, body: dict[str, Any], today: date, error: type[Exception], message: str
) -> None:
    made = restriction(sess, customer(sess), notice_sent_on="2026-03-02")
    with pytest.raises(error, match=message):
        appeals.lodge_appeal(sess, TEST, made, body, today=today)


def test_a_late_appeal_is_accepted_with_its_reason_recorded(sess: Session) -> None:
    made = restriction(sess, customer(sess), notice_sent_on="2026-03-02")
    late = appeals.lodge_appeal(
        sess,
        TEST,
        made,
        {"grounds": "g", "lodged_on": "2026-04-20", "late_reason": "In hospital"},
        today=date(2026, 4, 20),
    )
    sess.commit()
    assert late.late_reason == "In hospital"
    entry = sess.scalar(select(AuditEntry).where(AuditEntry.action == "appeal.lodged"))
    assert entry is not None and entry.note == "In hospital"


def test_one_appeal_at_a_time(sess: Session) -> None:
    made = restriction(sess, customer(sess), notice_sent_on="2026-03-02")
    appeals.lodge_appeal(sess, TEST, made, {"grounds": "g"}, today=MONDAY)
    with pytest.raises(Conflict, match="still to be decided"):
        appeals.lodge_appeal(sess, TEST, made, {"grounds": "again"}, today=MONDAY)


def test_the_decider_of_the_restriction_may_not_decide_its_appeal(
    sess: Session, cache_redis: fakeredis.FakeRedis
) -> None:
    decider, _ = create_user(sess, "dec.decider", "supervisor")
    other, _ = create_user(sess, "dec.other", "supervisor")
    made = restriction(sess, customer(sess), Actor.of(decider), notice_sent_on="2026-03-02")
    appeal = appeals.lodge_appeal(sess, TEST, made, {"grounds": "g"}, today=MONDAY)
    with pytest.raises(Forbidden, match="did not decide the restriction"):
        appeals.decide_appeal(
            sess, Actor.of(decider), appeal, {"outcome": "upheld", "notes": "n"}, today=MONDAY
        )
    appeals.decide_appeal(
        sess, Actor.of(other), appeal, {"outcome": "overturned", "notes": "n"}, today=MONDAY
    )
    sess.commit()
    assert appeal.outcome == "overturned" and made.state == "ended"
    assert in_force(cache_redis) == []
    with pytest.raises(Conflict, match="already decided"):
        appeals.decide_appeal(
            sess, Actor.of(other), appeal, {"outcome": "upheld", "notes": "n"}, today=MONDAY
        )


def test_appeals_awaiting_a_decision_are_due_with_their_deadline(sess: Session) -> None:
    made = restriction(sess, customer(sess), notice_sent_on="2026-03-02")
    appeal = appeals.lodge_appeal(sess, TEST, made, {"grounds": "g"}, today=MONDAY)
    sess.commit()
    (item,) = [i for i in due_list.due(sess, date(2026, 4, 1)) if i.appeal is not None]
    assert (item.what, item.due_on, item.days_overdue) == ("appeal", appeal.due_on, 2)


# --- clashes ---------------------------------------------------------------------------------


def test_a_restriction_another_overrides_says_which_wins(sess: Session) -> None:
    pat = customer(sess)
    writing = restriction(sess, pat, notice_sent_on="2026-03-02")
    spoc = restriction(sess, pat, kind="spoc", spoc="+441332000555", notice_sent_on="2026-03-02")
    assert lifecycle.clashes(writing) == []
    (warning,) = lifecycle.clashes(spoc)
    assert f"restriction {writing.id} (Writing only) overrides this one" in warning


def test_an_appeal_against_a_restriction_applied_at_once_counts_from_the_decision(
    sess: Session,
) -> None:
    made = restriction(sess, customer(sess), apply_now=True, urgent_reason="Threats (4.6)")
    assert appeals.appeal_deadline(made) == date(2026, 3, 27)  # 20 working days after 27 Feb
    appeal = appeals.lodge_appeal(sess, TEST, made, {"grounds": "g"}, today=MONDAY)
    assert appeal.lodged_on == MONDAY


def test_an_appeal_left_open_when_the_restriction_ended_can_still_be_decided(
    sess: Session,
) -> None:
    made = restriction(sess, customer(sess), notice_sent_on="2026-03-02")
    appeal = appeals.lodge_appeal(sess, TEST, made, {"grounds": "g"}, today=MONDAY)
    reviews.review(sess, TEST, made, {"outcome": "end", "notes": "Improved"}, today=MONDAY)
    with pytest.raises(Conflict, match="has ended"):
        appeals.decide_appeal(sess, TEST, appeal, {"outcome": "varied", "notes": "n"}, today=MONDAY)
    appeals.decide_appeal(sess, TEST, appeal, {"outcome": "overturned", "notes": "n"}, today=MONDAY)
    assert appeal.outcome == "overturned" and made.state == "ended"


def test_a_decision_awaiting_its_notice_overrides_nothing_yet(sess: Session) -> None:
    pat = customer(sess)
    restriction(sess, pat)  # writing only, awaiting notice: calls are not affected yet
    spoc = restriction(sess, pat, kind="spoc", spoc="+441332000555", notice_sent_on="2026-03-02")
    assert lifecycle.clashes(spoc) == []
