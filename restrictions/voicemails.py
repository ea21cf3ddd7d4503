"""Messages a SPOC's caller left: stored once per Twilio recording, listed for their named contact
(supervisors see all), marked handled by a person (audited), and Twilio's copy of the audio
deleted ``voicemail_days`` after that.

Twilio's recording status callback (and, when transcription is on, its transcription callback)
is stored as a CallEvent first, like every callback; ``apply_event`` turns it into the
voicemail's row, whether on the web request or later, from an event kept in Redis while
PostgreSQL was away. Every function takes the session; the caller commits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from restrictions.calls import get_or_create_call
from restrictions.destination import Destination
from restrictions.errors import Conflict, DomainError, Forbidden, Invalid, NotFound
from restrictions.events import sid, whole
from restrictions.lifecycle import Actor, audit
from restrictions.models import Call, CallEvent, Role, User, Voicemail

RECORDING = "recording"  # CallEvent.source of a recording status callback
TRANSCRIPTION = "transcription"  # CallEvent.source of a transcription callback
SOURCES = frozenset({RECORDING, TRANSCRIPTION})
NEW = "new"
HANDLED = "handled"
STATUSES = (NEW, HANDLED)
COMPLETED = "completed"
MAX_TRANSCRIPTION = 10000


@dataclass(frozen=True)
class Recording:
    """What a recording status callback says, checked."""

    recording_sid: str
    call_sid: str
    recording_url: str
    status: str
    duration_seconds: int


def _twilio_id(value: str | None, field: str, prefix: str) -> str:
    checked = sid(value, field)
    assert checked is not None
    if not checked.startswith(prefix):
        raise Invalid(f"{field} {checked[:40]!r} is not a Twilio {prefix} id")
    return checked


def recording_from(form: Mapping[str, Any], call_sid: str | None = None) -> Recording:
    """Twilio's ``RecordingSid`` (RE…), ``CallSid`` (CA…, or the one our callback URL carried),
    ``RecordingUrl``, ``RecordingStatus`` and ``RecordingDuration``; Invalid when one is wrong."""
    recording_sid = _twilio_id(form.get("RecordingSid"), "RecordingSid", "RE")
    caller = _twilio_id(form.get("CallSid") or call_sid, "CallSid", "CA")
    url = str(form.get("RecordingUrl") or "").strip()
    status = str(form.get("RecordingStatus") or "").strip()
    if len(status) > 40:
        raise Invalid("RecordingStatus is not a Twilio recording status")
    if status == COMPLETED and not url.startswith("https://"):
        raise Invalid("RecordingUrl must be Twilio's https:// address of the recording")
    if len(url) > 500:
        raise Invalid("RecordingUrl is longer than 500 characters")
    duration = whole(str(form.get("RecordingDuration") or ""), "RecordingDuration") or 0
    return Recording(recording_sid, caller, url, status, duration)


def spoc_of(route_destination: str | None) -> str | None:
    """The SPOC as their voicemails name them: ``client:<user name>`` or an E.164 number."""
    if not route_destination:
        return None
    try:
        return Destination.parse(route_destination).address
    except DomainError:
        return route_destination[:255]


def _insert_once(sess: Session, values: dict[str, Any]) -> int | None:
    dialect = sess.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = (
        insert(Voicemail)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["recording_sid"])
        .returning(Voicemail.id)
    )
    stored: int | None = sess.scalar(statement)
    return stored


def store_recording(sess: Session, recording: Recording) -> Voicemail | None:
    """The voicemail for a completed recording, stored once (a retried or duplicated callback
    finds the first); None for a recording that is not ``completed`` (absent, failed)."""
    if recording.status != COMPLETED:
        return None
    existing = by_recording_sid(sess, recording.recording_sid)
    if existing is not None:
        return existing
    call = get_or_create_call(sess, recording.call_sid)
    call.voicemail_url = call.voicemail_url or recording.recording_url
    stored = _insert_once(
        sess,
        {
            "call_id": call.id,
            "customer_id": call.customer_id,
            "spoc": spoc_of(call.route_destination),
            "recording_sid": recording.recording_sid,
            "recording_url": recording.recording_url,
            "duration_seconds": recording.duration_seconds,
            "status": NEW,
            "created_at": datetime.now(UTC),
        },
    )
    voicemail = by_recording_sid(sess, recording.recording_sid)
    assert voicemail is not None
    if stored is not None:
        _take_transcription(sess, voicemail)
    return voicemail


def by_recording_sid(sess: Session, recording_sid: str) -> Voicemail | None:
    return sess.scalar(select(Voicemail).where(Voicemail.recording_sid == recording_sid))


def _transcription_text(payload: Mapping[str, Any]) -> str | None:
    if payload.get("TranscriptionStatus") != COMPLETED:
        return None
    text = str(payload.get("TranscriptionText") or "").strip()
    return text[:MAX_TRANSCRIPTION] or None


def _take_transcription(sess: Session, voicemail: Voicemail) -> None:
    """A transcription that arrived before its recording's callback is stored with it."""
    payload = sess.scalar(
        select(CallEvent.payload)
        .where(CallEvent.source == TRANSCRIPTION, CallEvent.resource_sid == voicemail.recording_sid)
        .order_by(CallEvent.id.desc())
        .limit(1)
    )
    if payload is not None and voicemail.transcription is None:
        voicemail.transcription = _transcription_text(payload)


def store_transcription(sess: Session, recording_sid: str, payload: Mapping[str, Any]) -> bool:
    """Twilio's transcription of a voicemail; False when its recording is not stored yet (the
    recording's callback takes it from the stored event then) or it failed."""
    voicemail = by_recording_sid(sess, recording_sid)
    text = _transcription_text(payload)
    if voicemail is None or text is None:
        return False
    voicemail.transcription = text
    return True


def apply_event(sess: Session, event: CallEvent) -> None:
    """Turn a stored recording or transcription callback into the voicemail's row; marks the
    event processed. Safe to run twice."""
    if event.source == RECORDING:
        store_recording(sess, recording_from(event.payload, event.call_sid))
    elif event.source == TRANSCRIPTION:
        store_transcription(sess, event.resource_sid, event.payload)
    event.processed_at = datetime.now(UTC)


# --- what staff see ---------------------------------------------------------------------------


def names_for(user: User) -> list[str]:
    """How a SPOC who is this user is named on a voicemail."""
    return [f"client:{user.name}", user.name]


def may_see(user: User, voicemail: Voicemail) -> bool:
    return user.role_enum.may(Role.SUPERVISOR) or voicemail.spoc in names_for(user)


def _fill_in(sess: Session) -> None:
    """Voicemails stored before their call's row was written (the worker was behind) learn
    their SPOC and customer from the call once it is."""
    for voicemail, call in sess.execute(
        select(Voicemail, Call)
        .join(Call, Call.id == Voicemail.call_id)
        .where(Voicemail.spoc.is_(None), Call.route_destination.is_not(None))
    ):
        voicemail.spoc = spoc_of(call.route_destination)
        voicemail.customer_id = voicemail.customer_id or call.customer_id
    sess.flush()


def list_voicemails(
    sess: Session,
    user: User,
    *,
    status: str | None = None,
    customer_id: int | None = None,
    limit: int = 500,
) -> list[Voicemail]:
    """Newest first: all of them for a supervisor, an agent's own (they are the SPOC) for an
    agent; ``status`` new or handled."""
    if status is not None and status not in STATUSES:  # an empty one too: it is not a filter
        raise Invalid(f"status must be new or handled, not {status!r}")
    _fill_in(sess)
    query = select(Voicemail)
    if not user.role_enum.may(Role.SUPERVISOR):
        query = query.where(Voicemail.spoc.in_(names_for(user)))
    if status:
        query = query.where(Voicemail.status == status)
    if customer_id is not None:
        query = query.where(Voicemail.customer_id == customer_id)
    query = query.order_by(Voicemail.created_at.desc(), Voicemail.id.desc()).limit(limit)
    return list(sess.scalars(query))


def get_voicemail(
    sess: Session, voicemail_id: int, user: User, *, for_decision: bool = False
) -> Voicemail:
    """The voicemail, if this user may see it (404 when there is none, 403 when it is another
    SPOC's). ``for_decision`` locks its row, so of two people marking it at once the second
    sees what the first did (409)."""
    _fill_in(sess)
    voicemail = sess.get(Voicemail, voicemail_id, with_for_update=for_decision or None)
    if voicemail is None:
        raise NotFound(f"no voicemail with id {voicemail_id}")
    if not may_see(user, voicemail):
        raise Forbidden("this voicemail is for another named contact")
    return voicemail


def mark_handled(
    sess: Session, actor: Actor, voicemail: Voicemail, *, now: datetime | None = None
) -> Voicemail:
    """Someone dealt with the message: recorded once, on the audit trail."""
    if voicemail.status == HANDLED:
        by = f" by {voicemail.handled_by.name}" if voicemail.handled_by else ""
        raise Conflict(f"voicemail {voicemail.id} was already marked handled{by}")
    voicemail.status = HANDLED
    voicemail.handled_at = now or datetime.now(UTC)
    voicemail.handled_by_id = actor.user_id
    audit(
        sess,
        actor,
        "voicemail.handled",
        "voicemail",
        voicemail.id,
        customer_id=voicemail.customer_id,
        before={"status": NEW},
        after={"status": HANDLED, "recording_sid": voicemail.recording_sid},
    )
    return voicemail


# --- Twilio's copy ----------------------------------------------------------------------------


def due_for_deletion(
    sess: Session, now: datetime, retention_days: int, unhandled_days: int | None = None
) -> list[Voicemail]:
    """Twilio's copy not yet deleted, and handled more than ``retention_days`` ago or, with
    ``unhandled_days``, left that long ago and never handled (a message nobody dealt with is
    not kept at Twilio for ever)."""
    before = now - timedelta(days=retention_days)
    due = and_(Voicemail.status == HANDLED, Voicemail.handled_at < before)
    if unhandled_days is not None:
        left_before = now - timedelta(days=unhandled_days)
        due = or_(due, and_(Voicemail.status != HANDLED, Voicemail.created_at < left_before))
    return list(
        sess.scalars(
            select(Voicemail)
            .where(due, Voicemail.twilio_deleted_at.is_(None))
            .order_by(Voicemail.id)
        )
    )


def mark_deleted(sess: Session, voicemail: Voicemail, now: datetime) -> bool:
    """Twilio's copy is gone: noted once (False when another run noted it first)."""
    done = sess.execute(
        update(Voicemail)
        .where(Voicemail.id == voicemail.id, Voicemail.twilio_deleted_at.is_(None))
        .values(twilio_deleted_at=now)
        .returning(Voicemail.id)
    ).first()
    sess.refresh(voicemail, ["twilio_deleted_at"])
    return done is not None


def for_customer(sess: Session, customer_id: int, limit: int = 20) -> list[Voicemail]:
    """A customer's newest voicemails (their record page)."""
    _fill_in(sess)
    return list(
        sess.scalars(
            select(Voicemail)
            .where(Voicemail.customer_id == customer_id)
            .order_by(Voicemail.created_at.desc(), Voicemail.id.desc())
            .limit(limit)
        )
    )
