"""The daily job: mark what fell due or overdue (reviews, notices, appeals) on the audit trail,
once each, so the Due page and the trail agree; then apply the retention rules."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from handlers import job
from restrictions import decisions, retention, voicemails
from restrictions.lifecycle import SYSTEM, audit
from restrictions.models import AuditEntry
from telephony import current_settings, twilio_gateway
from telephony.database import session
from telephony.twilio_gateway import GatewayError

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
    recordings = delete_voicemail_recordings(settings.voicemail_days)
    log.info(
        "daily: %d newly due or overdue; retention %s; %d voicemail recordings deleted",
        marked,
        purged,
        recordings,
    )
    return {"marked": marked, **purged.__dict__, "voicemail_recordings_deleted": recordings}


def delete_voicemail_recordings(days: int) -> int:
    """Delete Twilio's copy of each voicemail handled more than ``days`` ago, once each (a
    recording Twilio no longer has counts as deleted); one that fails is tried again the next
    day. Returns how many were marked deleted."""
    sess = session()
    now = datetime.now(UTC)
    done = 0
    for voicemail in voicemails.due_for_deletion(sess, now, days):
        try:
            twilio_gateway.delete_recording(voicemail.recording_sid)
        except GatewayError as exc:
            log.warning("voicemail %s: Twilio's copy not deleted (%s)", voicemail.id, exc)
            continue
        if voicemails.mark_deleted(sess, voicemail, now):
            done += 1
        sess.commit()
    sess.commit()
    return done
