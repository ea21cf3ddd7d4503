"""The 12-month review (policy 10.4): continue it, vary it (a successor replaces it, linked) or
end it; every outcome is audited and the routing cache follows the commit."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from restrictions import cache, policy_dates
from restrictions.errors import Conflict, Invalid
from restrictions.lifecycle import (
    Actor,
    add_restriction,
    audit,
    end_restriction,
    restriction_snapshot,
)
from restrictions.models import Restriction, Review
from restrictions.policy_dates import APPEAL_WORKING_DAYS as APPEAL_WORKING_DAYS
from restrictions.validation import optional_date, required_text

REVIEW_OUTCOMES = ("continue", "vary", "end")


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
        done.successor_id = vary(
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


def vary(
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
