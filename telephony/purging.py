"""Applying the retention rules (``restrictions.retention``) with what only the web layer can
do: Twilio's copies of voicemails past their time are deleted there first (through the gateway,
once each, a failure tried again next run), then the tables are purged, and one audit entry
records every count. Used by ``callguard purge`` and the daily job."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from restrictions import retention, voicemails
from restrictions.retention import Purged, Retention
from telephony import twilio_gateway
from telephony.twilio_gateway import GatewayError

log = logging.getLogger("callguard.retention")


def delete_recordings(
    sess: Session, rules: Retention, now: datetime, *, dry_run: bool = False
) -> list[int]:
    """Delete Twilio's copy of each voicemail handled more than ``voicemail_days`` ago, or left
    more than ``voicemail_unhandled_days`` ago and never handled, and mark it deleted (a
    recording Twilio no longer has counts as deleted); one that fails is tried again next run.
    Returns the voicemails' ids: those deleted now (or, dry, that would be)."""
    due = voicemails.due_for_deletion(
        sess, now, rules.voicemail_days, unhandled_days=rules.voicemail_unhandled_days
    )
    if dry_run:
        return [v.id for v in due]
    done = []
    for voicemail in due:
        try:
            twilio_gateway.delete_recording(voicemail.recording_sid)
        except GatewayError as exc:
            log.warning("voicemail %s: Twilio's copy not deleted (%s)", voicemail.id, exc)
            continue
        if voicemails.mark_deleted(sess, voicemail, now):
            done.append(voicemail.id)
        sess.commit()
    return done


def purge(
    sess: Session, rules: Retention, *, now: datetime | None = None, dry_run: bool = False
) -> Purged:
    """Twilio's recordings first, then every table; the caller commits (a dry run changes
    nothing, at Twilio or here)."""
    now = now or datetime.now(UTC)
    recordings = delete_recordings(sess, rules, now, dry_run=dry_run)
    return retention.purge(sess, rules, now=now, dry_run=dry_run, recordings_deleted=recordings)
