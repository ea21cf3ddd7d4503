"""The daily job: mark what fell due or overdue (reviews, notices, appeals) on the audit trail,
once each, so the Due page and the trail agree; press overdue reviews on supervisors and admins,
or let them lapse (``[reviews]``); then apply the retention rules."""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime

from sqlalchemy import select

from handlers import job
from restrictions import due_list, overdue, policy_dates
from restrictions.lifecycle import SYSTEM, audit
from restrictions.models import AuditEntry
from telephony import purging
from telephony.config import current_settings
from telephony.database import session

log = logging.getLogger("callguard.jobs.daily")


@job
def daily() -> dict[str, int]:
    """Returns how many items were newly marked, the overdue reviews pressed (``escalated_*``)
    and lapsed, and what retention removed."""
    settings = current_settings()
    today = policy_dates.today(settings.timezone)  # the landlord's clock, as the API's
    sess = session()
    marked = 0
    for item in due_list.due(sess, today):
        if item.what in ("letter", "lapse_letter") or (
            item.what == "appeal" and not item.days_overdue
        ):
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
    pressed = overdue.press(sess, settings.reviews, today)
    # Twilio's copies of old voicemails first, then every table: one audit entry, every count
    purged = purging.purge(sess, settings.retention)
    sess.commit()
    recordings = purged.recordings_deleted
    log.info(
        "daily: %d newly due or overdue; overdue reviews pressed on supervisors %d, on admins "
        "%d, lapsed %d; retention %s; %d voicemail recordings deleted",
        marked,
        pressed.supervisors,
        pressed.admins,
        pressed.lapsed,
        purged,
        recordings,
    )
    return {
        "marked": marked,
        "escalated_to_supervisors": pressed.supervisors,
        "escalated_to_admins": pressed.admins,
        "lapsed": pressed.lapsed,
        **{rule: n for rule, n in purged.__dict__.items() if rule != "tables"},
        "voicemail_recordings_deleted": recordings,
    }


def delete_voicemail_recordings(days: int) -> int:
    """Delete Twilio's copy of each voicemail handled more than ``days`` ago (or never handled
    within ``[retention] voicemail_unhandled_days``), once each (``telephony.purging``; the
    daily job does this through ``purging.purge``). Returns how many were marked deleted."""
    rules = dataclasses.replace(current_settings().retention, voicemail_days=days)
    sess = session()
    done = purging.delete_recordings(sess, rules, datetime.now(UTC))
    sess.commit()
    return len(done)
