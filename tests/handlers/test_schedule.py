"""The daily job marks what fell due or overdue on the audit trail, once each, and applies the
retention rules."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import time_machine
from flask import Flask
from sqlalchemy import select

from restrictions.models import AuditEntry
from telephony.database import database


def test_overdue_reviews_and_notices_are_marked_once_a_day(
    app: Flask, make_customer: Callable[..., Any], restrict: Callable[..., Any]
) -> None:
    from handlers.schedule import daily

    with time_machine.travel(datetime(2026, 3, 2, 9, tzinfo=UTC), tick=False):
        restrict(make_customer(), kind="written_only", notice_sent_on="2026-03-02")
        restrict(
            make_customer(reference="HMS-2", numbers=("+447400100002",)),
            kind="warning",
            apply_now=True,
            urgent_reason="Threats (4.6)",
        )
    with time_machine.travel(datetime(2027, 3, 10, 9, tzinfo=UTC), tick=False):
        first = daily()
        second = daily()
    assert first["marked"] == 2 and second["marked"] == 0
    with database(app).sessions() as sess:
        actions = sorted(
            sess.scalars(select(AuditEntry.action).where(AuditEntry.action.like("due.%")))
        )
        purges = sess.scalars(
            select(AuditEntry.id).where(AuditEntry.action == "retention.purged")
        ).all()
    assert actions == ["due.notice_overdue", "due.review_overdue"]
    assert len(purges) == 2
