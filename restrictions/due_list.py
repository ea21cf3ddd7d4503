"""What is due: letters to send, overdue notices, reviews due within 30 days or overdue, and
appeals to decide; the supervisors' Due list and the daily job read it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from restrictions.models import Appeal, Restriction, ReviewEscalation
from restrictions.policy_dates import APPEAL_WORKING_DAYS as APPEAL_WORKING_DAYS

DUE_WITHIN_DAYS = 30


@dataclass(frozen=True)
class DueItem:
    what: str  # letter, notice_overdue, review_due, review_overdue, appeal, lapse_letter
    restriction: Restriction
    due_on: date | None
    days_overdue: int
    appeal: Appeal | None = None
    # an overdue review as the daily job pressed it: on whom (supervisors, then admins), the
    # latest day, and on how many days
    escalated_to: str | None = None
    escalated_on: date | None = None
    escalations: int = 0


def due(sess: Session, today: date) -> list[DueItem]:
    """Everything a supervisor must do, with its deadline, oldest first: letters to send (a
    decision awaiting its notice), notices overdue (applied at once, not yet sent), reviews due
    within 30 days or overdue (with their escalations), appeals awaiting a decision, and letters
    about restrictions that lapsed."""
    items: list[DueItem] = []
    live = list(sess.scalars(select(Restriction).where(Restriction.ended_at.is_(None))))
    pressed = _escalations(
        sess, [r.id for r in live if r.review_due_on and r.review_due_on < today]
    )
    for r in live:
        if r.notice_sent_on is None:
            if r.apply_now:
                due_on = r.notice_due_on
                late = max(0, (today - due_on).days) if due_on else 0
                what = "notice_overdue" if due_on and due_on < today else "letter"
                items.append(DueItem(what, r, due_on, late))
            else:
                items.append(DueItem("letter", r, r.decided_on, 0))
            continue
        if r.review_due_on is not None and (r.review_due_on - today).days <= DUE_WITHIN_DAYS:
            late = max(0, (today - r.review_due_on).days)
            what = "review_overdue" if late else "review_due"
            level, last, times = pressed.get((r.id, r.review_due_on), (None, None, 0))
            items.append(DueItem(what, r, r.review_due_on, late, None, level, last, times))
    lapsed = sess.scalars(
        select(Restriction).where(
            Restriction.lapsed_on.is_not(None), Restriction.lapse_letter_sent_on.is_(None)
        )
    )
    for r in lapsed:
        items.append(DueItem("lapse_letter", r, r.lapsed_on, 0))
    appeals = sess.scalars(select(Appeal).where(Appeal.outcome.is_(None)))
    for a in appeals:
        late = max(0, (today - a.due_on).days)
        items.append(DueItem("appeal", a.restriction, a.due_on, late, a))
    return sorted(items, key=lambda i: (i.due_on or today, i.restriction.id))


def _escalations(
    sess: Session, restriction_ids: list[int]
) -> dict[tuple[int, date], tuple[str, date, int]]:
    """(restriction, review due on) -> (on whom it was last pressed, the latest day, how many
    days) for the overdue reviews the daily job pressed (``overdue.press``)."""
    if not restriction_ids:
        return {}
    admins = func.max(case((ReviewEscalation.level == "admins", 1), else_=0))
    rows = sess.execute(
        select(
            ReviewEscalation.restriction_id,
            ReviewEscalation.review_due_on,
            admins,
            func.max(ReviewEscalation.escalated_on),
            func.count(ReviewEscalation.id),
        )
        .where(ReviewEscalation.restriction_id.in_(restriction_ids))
        .group_by(ReviewEscalation.restriction_id, ReviewEscalation.review_due_on)
    )
    return {
        (rid, due_on): ("admins" if to_admins else "supervisors", last, times)
        for rid, due_on, to_admins, last, times in rows
    }


def reviews_due(sess: Session, today: date) -> list[DueItem]:
    return [i for i in due(sess, today) if i.what in ("review_due", "review_overdue")]
