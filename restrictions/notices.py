"""The written notice of a decision (policy 10.2): the restriction applies to calls from the
day it was sent, unless applied at once for danger (4.6); its review falls due 12 months on."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from restrictions import cache, policy_dates
from restrictions.errors import Conflict, Invalid
from restrictions.lifecycle import (
    NOTICE_METHODS,
    Actor,
    audit,
    restriction_snapshot,
)
from restrictions.models import Restriction
from restrictions.policy_dates import APPEAL_WORKING_DAYS as APPEAL_WORKING_DAYS
from restrictions.validation import not_after_today


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
    day = not_after_today(sent_on, "sent_on", today)
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
