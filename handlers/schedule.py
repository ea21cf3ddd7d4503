"""The daily job: mark what fell due or overdue (reviews, notices, appeals) on the audit trail,
once each, so the Due page and the trail agree; then apply the retention rules."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from handlers import job
from restrictions import decisions, retention
from restrictions.lifecycle import SYSTEM, audit
from restrictions.models import AuditEntry
from telephony import current_settings
from telephony.database import session

log = logging.getLogger("callguard.jobs.daily")


@job
def daily() -> dict[str, int]:
    """Returns how many items were newly marked, and what retention removed."""
    settings = current_settings()
    today = datetime.now(UTC).astimezone(ZoneInfo(settings.timezone)).date()
    sess = session()
    marked = 0
    for item in decisions.due(sess, today):
        if item.what == "letter" or (item.what == "appeal" and not item.days_overdue):
            continue
        action = f"due.{item.what}" + ("_overdue" if item.what == "appeal" else "")
        entity, entity_id = (
            ("appeal", item.appeal.id)
            if item.appeal is not None
            else ("restriction", item.restriction.id)
        )
        note = item.due_on.isoformat() if item.due_on else None
        seen = sess.scalar(
            select(AuditEntry.id).where(
                AuditEntry.action == action,
                AuditEntry.entity == entity,
                AuditEntry.entity_id == entity_id,
                AuditEntry.note == note,
            )
        )
        if seen is None:
            audit(
                sess,
                SYSTEM,
                action,
                entity,
                entity_id,
                customer_id=item.restriction.customer_id,
                after={"due_on": note, "days_overdue": item.days_overdue},
                note=note,
            )
            marked += 1
    purged = retention.purge(sess, settings.retention)
    sess.commit()
    log.info("daily: %d newly due or overdue; retention %s", marked, purged)
    return {"marked": marked, **purged.__dict__}
