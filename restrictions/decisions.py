"""A restriction's life after the decision, as the policy requires: written notice (10.2), the
12-month review (10.4) and the appeal to someone who did not decide it (section 12).

States: ``awaiting_notice`` (decided; applies to calls only from the day its notice is recorded),
``active`` (applies; a restriction applied at once for danger, 4.6, is active and shows "notice
overdue" until its notice is recorded, due within 2 working days), ``ended``. Every change is
audited with who and why; the routing cache follows every commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from restrictions import cache, kinds, policy_dates
from restrictions.errors import Conflict, Forbidden, Invalid, NotFound
from restrictions.lifecycle import (
    NOTICE_METHODS,
    Actor,
    add_restriction,
    audit,
    end_restriction,
    restriction_snapshot,
)
from restrictions.models import Appeal, Restriction, Review, ReviewEscalation, Role, User
from restrictions.policy_dates import APPEAL_WORKING_DAYS as APPEAL_WORKING_DAYS
from restrictions.validation import optional_date, required_text

REVIEW_OUTCOMES = ("continue", "vary", "end")
APPEAL_OUTCOMES = ("upheld", "overturned", "varied")
DUE_WITHIN_DAYS = 30


def _day(value: Any, field: str, today: date, *, required: bool = True) -> date | None:
    day = optional_date(value, field)
    if day is None:
        if required:
            raise Invalid(f"{field} is required: a date like {today.isoformat()}")
        return None
    if day > today:
        raise Invalid(f"{field} {day.isoformat()} is in the future")
    return day


# --- notice --------------------------------------------------------------------------------------


def record_notice(
    sess: Session,
    actor: Actor,
    restriction: Restriction,
    sent_on: Any,
    method: Any,
    *,
    today: date,
) -> Restriction:
    """The written notice was sent: the restriction applies from that day (unless it already
    applied at once), and its first review falls due 12 months after it took effect."""
    if restriction.ended_at is not None:
        raise Conflict(f"restriction {restriction.id} has ended")
    if restriction.notice_sent_on is not None:
        raise Conflict(
            f"the notice of restriction {restriction.id} was recorded as sent on "
            f"{restriction.notice_sent_on.isoformat()}"
        )
    day = _day(sent_on, "sent_on", today)
    assert day is not None
    if day < restriction.decided_on:
        raise Invalid(
            f"sent_on {day.isoformat()} is before the decision "
            f"({restriction.decided_on.isoformat()})"
        )
    if method not in NOTICE_METHODS:
        raise Invalid(f"method must be one of {', '.join(NOTICE_METHODS)}, not {method!r}")
    before = restriction_snapshot(restriction)
    restriction.notice_sent_on = day
    restriction.notice_method = str(method)
    restriction.review_due_on = policy_dates.review_due(restriction.takes_effect_on or day)
    audit(
        sess,
        actor,
        "restriction.notice_recorded",
        "restriction",
        restriction.id,
        customer_id=restriction.customer_id,
        before=before,
        after=restriction_snapshot(restriction),
    )
    predecessor = (
        sess.get(Restriction, restriction.replaces_id) if restriction.replaces_id else None
    )
    if predecessor is not None and predecessor.state == "ended":
        audit(  # the terms it varied applied to calls until now (see cache.in_force)
            sess,
            actor,
            "restriction.superseded",
            "restriction",
            predecessor.id,
            customer_id=predecessor.customer_id,
            after={"successor_id": restriction.id, "from": day.isoformat()},
            note=f"restriction {restriction.id} applies to calls from {day.isoformat()}",
        )
    cache.refresh_after_commit(sess, restriction.customer_id)
    return restriction


# --- reviews (10.4) ------------------------------------------------------------------------------


def review(
    sess: Session,
    actor: Actor,
    restriction: Restriction,
    body: Mapping[str, Any],
    *,
    today: date,
) -> Review:
    """A person reviewed the restriction: ``continue`` (with notes and the next review, at most
    12 months on), ``vary`` (this one ends; its successor, in ``successor``, is recorded and
    linked) or ``end``."""
    if restriction.ended_at is not None:
        raise Conflict(f"restriction {restriction.id} has ended")
    if restriction.state != "active":
        raise Conflict(f"restriction {restriction.id} is not in force yet: record its notice first")
    outcome = body.get("outcome")
    if outcome not in REVIEW_OUTCOMES:
        raise Invalid(f"outcome must be one of {', '.join(REVIEW_OUTCOMES)}, not {outcome!r}")
    notes = required_text(body.get("notes"), "notes", max_length=5000)
    done = Review(
        restriction_id=restriction.id,
        reviewed_on=today,
        outcome=outcome,
        notes=notes,
        reviewer_id=actor.user_id,
        reviewer=actor.label,
    )
    before = restriction_snapshot(restriction)
    if outcome == "continue":
        latest = policy_dates.review_due(today)
        next_on = optional_date(body.get("next_review_on"), "next_review_on") or latest
        if next_on <= today or next_on > latest:
            raise Invalid(
                f"next_review_on must be after today and at most 12 months on "
                f"({latest.isoformat()})"
            )
        restriction.last_reviewed_on = today
        restriction.review_due_on = next_on
        done.next_review_on = next_on
    elif outcome == "vary":
        done.successor_id = _vary(
            sess, actor, restriction, body, f"varied at review: {notes}", today
        ).id
    else:
        end_restriction(sess, actor, restriction, f"ended at review: {notes}")
    sess.add(done)
    sess.flush()
    audit(
        sess,
        actor,
        f"restriction.reviewed.{outcome}",
        "restriction",
        restriction.id,
        customer_id=restriction.customer_id,
        before=before,
        after=restriction_snapshot(restriction),
        note=notes,
    )
    cache.refresh_after_commit(sess, restriction.customer_id)
    return done


def _vary(
    sess: Session,
    actor: Actor,
    restriction: Restriction,
    body: Mapping[str, Any],
    why: str,
    today: date,
) -> Restriction:
    successor_body = body.get("successor")
    if not isinstance(successor_body, Mapping):
        raise Invalid(
            "successor is required to vary a restriction: the new restriction's "
            "{kind, reason, …its fields}"
        )
    end_restriction(sess, actor, restriction, why)
    successor = add_restriction(sess, actor, restriction.customer, successor_body, today=today)
    successor.replaces_id = restriction.id
    if successor.state == "awaiting_notice":
        # The line stays protected: its terms keep routing the caller until the successor's
        # notice is recorded (cache.in_force), when "restriction.superseded" is audited.
        audit(
            sess,
            actor,
            "restriction.varied",
            "restriction",
            restriction.id,
            customer_id=restriction.customer_id,
            after={"successor_id": successor.id, "successor_state": successor.state},
            note=(
                f"its terms apply to calls until the notice of restriction {successor.id} "
                "is recorded"
            ),
        )
    return successor


# --- appeals (section 12) -------------------------------------------------------------------------


def appeal_deadline(restriction: Restriction) -> date | None:
    """The last day to appeal, from the latest letter that gave the right of appeal
    (``policy_dates.appeal_window``); None while nothing has been sent."""
    window = policy_dates.appeal_window(restriction)
    return window.last_day if window is not None else None


def open_appeal(sess: Session, restriction: Restriction) -> Appeal | None:
    return sess.scalar(
        select(Appeal).where(Appeal.restriction_id == restriction.id, Appeal.outcome.is_(None))
    )


def lodge_appeal(
    sess: Session,
    actor: Actor,
    restriction: Restriction,
    body: Mapping[str, Any],
    *,
    today: date,
) -> Appeal:
    """An appeal within 20 working days of the notice (12.2), or later with a reason that is
    recorded; one at a time. The restriction stays in force while it is heard (12.3)."""
    if restriction.ended_at is not None:
        raise Conflict(f"restriction {restriction.id} has ended; there is nothing to appeal")
    earlier = open_appeal(sess, restriction)
    if earlier is not None:
        raise Conflict(
            f"appeal {earlier.id}, lodged on {earlier.lodged_on.isoformat()}, "
            "is still to be decided"
        )
    lodged_on = _day(body.get("lodged_on"), "lodged_on", today, required=False) or today
    grounds = required_text(body.get("grounds"), "grounds", max_length=10000)
    notice = policy_dates.first_appealable_on(restriction)
    window = policy_dates.appeal_window(restriction)
    if notice is None or window is None:
        raise Invalid("the restriction's notice has not been sent yet, so it cannot be appealed")
    if lodged_on < notice:
        raise Invalid(
            f"lodged_on {lodged_on.isoformat()} is before the notice ({notice.isoformat()})"
        )
    last_day = window.last_day
    late_reason = body.get("late_reason")
    if lodged_on > last_day:
        if not isinstance(late_reason, str) or not late_reason.strip():
            letter = "review outcome" if window.letter == "review" else "decision"
            raise Invalid(
                f"lodged_on {lodged_on.isoformat()} is after the last day to appeal "
                f"({last_day.isoformat()}, 20 working days after the {letter} letter of "
                f"{window.letter_on.isoformat()}); give late_reason to accept it late"
            )
        late_reason = required_text(late_reason, "late_reason", max_length=5000)
    else:
        late_reason = None
    appeal = Appeal(
        restriction_id=restriction.id,
        lodged_on=lodged_on,
        grounds=grounds,
        late_reason=late_reason,
        due_on=policy_dates.appeal_decision_due(lodged_on),
        lodged_by_id=actor.user_id,
    )
    sess.add(appeal)
    sess.flush()
    audit(
        sess,
        actor,
        "appeal.lodged",
        "appeal",
        appeal.id,
        customer_id=restriction.customer_id,
        after=appeal_snapshot(appeal),
        note=late_reason,
    )
    cache.refresh_after_commit(sess, restriction.customer_id)  # agents see "under appeal"
    return appeal


def get_appeal(sess: Session, appeal_id: int, *, for_decision: bool = False) -> Appeal:
    appeal = sess.get(Appeal, appeal_id, with_for_update=for_decision or None)
    if appeal is None:
        raise NotFound(f"no appeal with id {appeal_id}")
    return appeal


def lineage(sess: Session, restriction: Restriction) -> list[Restriction]:
    """The restriction and those it varied (``replaces``), newest first."""
    found = [restriction]
    while found[-1].replaces_id is not None and len(found) < 100:
        earlier = sess.get(Restriction, found[-1].replaces_id)
        if earlier is None or earlier in found:
            break
        found.append(earlier)
    return found


def took_part(sess: Session, restriction: Restriction) -> dict[int, str]:
    """Who took part in the restriction (or in one it varied), each with how, in words: decided
    it, reviewed it (continued, varied or ended it), or upheld or varied an earlier appeal. None
    of them may decide an appeal against it (12.2)."""
    chain = lineage(sess, restriction)
    ids = [r.id for r in chain]
    parts: dict[int, str] = {}

    def note(user_id: int | None, how: str) -> None:
        if user_id is not None and user_id not in parts:
            parts[user_id] = how

    for r in chain:
        what = "it" if r is restriction else f"restriction {r.id}, which it replaced"
        note(r.decided_by_id, f"decided {what}")
    review_words = {"continue": "continued", "vary": "varied", "end": "ended"}
    for rv in sess.scalars(
        select(Review).where(Review.restriction_id.in_(ids)).order_by(Review.id)
    ):
        what = "it" if rv.restriction_id == restriction.id else f"restriction {rv.restriction_id}"
        words = review_words.get(rv.outcome, "reviewed")
        note(rv.reviewer_id, f"{words} {what} at review on {rv.reviewed_on.isoformat()}")
    for a in sess.scalars(
        select(Appeal)
        .where(Appeal.restriction_id.in_(ids), Appeal.outcome.in_(("upheld", "varied")))
        .order_by(Appeal.id)
    ):
        note(a.decided_by_id, f"{a.outcome} appeal {a.id} against restriction {a.restriction_id}")
    return parts


def _independent(
    sess: Session, actor: Actor, restriction: Restriction, body: Mapping[str, Any]
) -> tuple[str, str] | None:
    """Refuse (403) an appeal decision by someone who took part in the restriction, unless an
    admin gives ``override_reason``; returns that reason and how the admin took part (None when
    no reason was needed)."""
    if actor.user_id is None:
        return None
    how = took_part(sess, restriction).get(actor.user_id)
    if how is None:
        return None
    refusal = (
        "an appeal must be decided by someone who did not decide the restriction, nor review, "
        f"vary or continue it: you {how}"
    )
    user = sess.get(User, actor.user_id)
    if user is None or user.role != Role.ADMIN.value:
        raise Forbidden(refusal)
    reason = body.get("override_reason")
    if not isinstance(reason, str) or not reason.strip():
        raise Forbidden(
            f"{refusal}; as an admin you may decide it all the same by giving override_reason "
            "(it is recorded on the audit trail)"
        )
    return required_text(reason, "override_reason", max_length=5000), how


def decide_appeal(
    sess: Session,
    actor: Actor,
    appeal: Appeal,
    body: Mapping[str, Any],
    *,
    today: date,
) -> Appeal:
    """Decided by someone who did not decide, review, vary or continue the restriction (12.2),
    or by an admin who did, with an ``override_reason`` that is recorded: ``upheld`` (it stays),
    ``overturned`` (it ends at once), ``varied`` (it ends; ``successor`` replaces it)."""
    if appeal.outcome is not None:
        raise Conflict(f"appeal {appeal.id} was already decided: {appeal.outcome}")
    restriction = appeal.restriction
    override = _independent(sess, actor, restriction, body)
    outcome = body.get("outcome")
    if outcome not in APPEAL_OUTCOMES:
        raise Invalid(f"outcome must be one of {', '.join(APPEAL_OUTCOMES)}, not {outcome!r}")
    notes = required_text(body.get("notes"), "notes", max_length=10000)
    if outcome == "varied" and restriction.ended_at is not None:
        raise Conflict(
            f"restriction {restriction.id} has ended: uphold or overturn the appeal instead"
        )
    before = appeal_snapshot(appeal)
    appeal.outcome = outcome
    appeal.notes = notes
    appeal.decided_on = today
    appeal.decided_by_id = actor.user_id
    if override is not None:
        appeal.override_reason, how = override
        audit(
            sess,
            actor,
            "appeal.independence_overridden",
            "appeal",
            appeal.id,
            customer_id=restriction.customer_id,
            after={"outcome": outcome, "override_reason": appeal.override_reason, "took_part": how},
            note=appeal.override_reason,
        )
    if outcome == "overturned":
        if restriction.ended_at is None:  # it may have ended meanwhile; the appeal is still heard
            end_restriction(sess, actor, restriction, f"appeal {appeal.id} overturned it: {notes}")
    elif outcome == "varied":
        appeal.successor_id = _vary(
            sess, actor, restriction, body, f"appeal {appeal.id} varied it: {notes}", today
        ).id
    audit(
        sess,
        actor,
        f"appeal.{outcome}",
        "appeal",
        appeal.id,
        customer_id=restriction.customer_id,
        before=before,
        after=appeal_snapshot(appeal),
        note=notes,
    )
    cache.refresh_after_commit(sess, restriction.customer_id)
    return appeal


def appeal_snapshot(a: Appeal) -> dict[str, Any]:
    return {
        "id": a.id,
        "restriction_id": a.restriction_id,
        "lodged_on": a.lodged_on.isoformat(),
        "due_on": a.due_on.isoformat(),
        "grounds": a.grounds,
        "late_reason": a.late_reason,
        "outcome": a.outcome,
        "decided_on": a.decided_on.isoformat() if a.decided_on else None,
        "override_reason": a.override_reason,
    }


# --- what is due ---------------------------------------------------------------------------------


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


# --- clashes -------------------------------------------------------------------------------------


def clashes(restriction: Restriction) -> list[str]:
    """Which other live restriction of the customer wins over this one on the phone line (the
    routing precedence), in words; empty when this one applies."""
    mine = kinds.find(restriction.kind)
    if mine is None:
        return []
    warnings = []
    for other in restriction.customer.restrictions:
        if other.id == restriction.id or other.state != "active":
            continue  # only what applies to calls can override
        theirs = kinds.find(other.kind)
        if theirs is None or theirs.effect is kinds.Effect.FLAG:
            continue
        if theirs.precedence < mine.precedence or (
            theirs.name == mine.name and other.decided_at > restriction.decided_at
        ):
            warnings.append(
                f"restriction {other.id} ({theirs.label}) overrides this one on calls: "
                f"it comes first in the routing order"
            )
    return warnings
