"""Appeals (policy section 12): lodged within 20 working days of the letter that gave the right,
decided by someone who took no part in the restriction; the restriction stays in force meanwhile."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from restrictions import cache, policy_dates
from restrictions.errors import Conflict, Forbidden, Invalid, NotFound
from restrictions.lifecycle import (
    Actor,
    audit,
    end_restriction,
)
from restrictions.models import Appeal, Restriction, Review, Role, User
from restrictions.policy_dates import APPEAL_WORKING_DAYS as APPEAL_WORKING_DAYS
from restrictions.reviews import vary
from restrictions.validation import not_after_today, required_text

APPEAL_OUTCOMES = ("upheld", "overturned", "varied")


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
    lodged_on = not_after_today(body.get("lodged_on"), "lodged_on", today, required=False) or today
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
        appeal.successor_id = vary(
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
