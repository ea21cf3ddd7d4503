"""No restriction without an end in sight (policy 10.4): a restriction whose review is overdue keeps
applying (safety), but the daily job presses it on someone every day it stays overdue, on
supervisors and then on admins (``[reviews] admins_after_days``), and, when the organisation
chose ``lapse_after_days``, it lapses: it ends, on the audit trail, and the Due list shows the
letter that tells the customer until it is recorded as sent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from restrictions.errors import Conflict, Invalid
from restrictions.lifecycle import SYSTEM, Actor, audit, end_restriction, restriction_snapshot
from restrictions.models import Restriction, ReviewEscalation
from restrictions.settings import ReviewRules
from restrictions.validation import optional_date


@dataclass(frozen=True)
class Pressed:
    supervisors: int  # overdue reviews pressed on supervisors today
    admins: int  # … on admins
    lapsed: int  # restrictions that lapsed today


def level(days_overdue: int, rules: ReviewRules) -> str:
    """On whom a review this many days overdue is pressed."""
    return "admins" if days_overdue >= rules.admins_after_days else "supervisors"


def overdue_reviews(sess: Session, today: date) -> list[Restriction]:
    """Restrictions in force whose review date has passed, oldest first."""
    return list(
        sess.scalars(
            select(Restriction)
            .where(
                Restriction.ended_at.is_(None),
                Restriction.review_due_on.is_not(None),
                Restriction.review_due_on < today,
            )
            .order_by(Restriction.review_due_on, Restriction.id)
        )
    )


def press(sess: Session, rules: ReviewRules, today: date) -> Pressed:
    """The daily job's part: each overdue review is escalated once a day (a row a day, audited
    whenever it reaches someone new), or lapses once it is ``lapse_after_days`` overdue. The
    caller commits; running it twice on a day changes nothing."""
    counts = {"supervisors": 0, "admins": 0, "lapsed": 0}
    for r in overdue_reviews(sess, today):
        if r.state != "active" or r.review_due_on is None:
            continue
        days = (today - r.review_due_on).days
        if rules.lapse_after_days is not None and days >= rules.lapse_after_days:
            lapse(sess, r, days, rules.lapse_after_days, today)
            counts["lapsed"] += 1
            continue
        to = level(days, rules)
        if _escalate(sess, r, r.review_due_on, to, days, today):
            counts[to] += 1
    return Pressed(counts["supervisors"], counts["admins"], counts["lapsed"])


def _escalate(sess: Session, r: Restriction, due_on: date, to: str, days: int, today: date) -> bool:
    """Today's escalation of ``r``'s overdue review, once; False when it was already made."""
    earlier = list(
        sess.scalars(
            select(ReviewEscalation.level).where(
                ReviewEscalation.restriction_id == r.id,
                ReviewEscalation.review_due_on == due_on,
            )
        )
    )
    made = ReviewEscalation(
        restriction_id=r.id,
        escalated_on=today,
        level=to,
        review_due_on=due_on,
        days_overdue=days,
    )
    try:
        with sess.begin_nested():
            sess.add(made)
            sess.flush()
    except IntegrityError:  # already escalated today
        return False
    if to not in earlier:  # it reaches someone new: on the audit trail
        audit(
            sess,
            SYSTEM,
            "review.escalated",
            "restriction",
            r.id,
            customer_id=r.customer_id,
            after={"to": to, "review_due_on": due_on.isoformat(), "days_overdue": days},
            note=f"review overdue by {days} days: escalated to {to}",
        )
    return True


def lapse(sess: Session, r: Restriction, days: int, after_days: int, today: date) -> Restriction:
    """The restriction lapses: it ends by callguard's hand, for the recorded reason, and the
    letter telling the customer is due."""
    assert r.review_due_on is not None
    before = restriction_snapshot(r)
    reason = (
        f"lapsed: its review was due on {r.review_due_on.isoformat()} and is {days} days "
        f"overdue ([reviews] lapse_after_days = {after_days})"
    )
    end_restriction(sess, SYSTEM, r, reason)
    r.lapsed_on = today
    audit(
        sess,
        SYSTEM,
        "restriction.lapsed",
        "restriction",
        r.id,
        customer_id=r.customer_id,
        before=before,
        after={**restriction_snapshot(r), "lapsed_on": today.isoformat()},
        note=reason,
    )
    return r


def record_lapse_letter(
    sess: Session, actor: Actor, r: Restriction, sent_on: Any, *, today: date
) -> Restriction:
    """The letter telling the customer that the restriction lapsed was sent."""
    if r.lapsed_on is None:
        raise Conflict(f"restriction {r.id} has not lapsed")
    if r.lapse_letter_sent_on is not None:
        raise Conflict(
            f"the letter about restriction {r.id}'s lapse was recorded as sent on "
            f"{r.lapse_letter_sent_on.isoformat()}"
        )
    day = optional_date(sent_on, "sent_on")
    if day is None:
        raise Invalid(f"sent_on is required: a date like {today.isoformat()}")
    if not r.lapsed_on <= day <= today:
        raise Invalid(
            f"sent_on {day.isoformat()} must be between the lapse ({r.lapsed_on.isoformat()}) "
            "and today"
        )
    r.lapse_letter_sent_on = day
    audit(
        sess,
        actor,
        "restriction.lapse_letter_recorded",
        "restriction",
        r.id,
        customer_id=r.customer_id,
        after={"lapsed_on": r.lapsed_on.isoformat(), "sent_on": day.isoformat()},
    )
    return r
