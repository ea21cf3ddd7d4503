"""The system of record: customers, numbers, restrictions, staff, calls and the audit trail.

Nothing here is deleted: a restriction ends by a recorded decision (policy 10.2), an alert is closed
with a reason, and every change to a customer or restriction leaves an AuditEntry.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

JSONType = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware UTC datetimes; SQLite hands back naive ones, so make them aware again."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType}


class Role(StrEnum):
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"
    # another system (a Studio flow, a Function, the housing system): asks for decisions only
    INTEGRATION = "integration"

    def may(self, needed: Role) -> bool:
        """Staff roles are ordered: admin may do what a supervisor may, a supervisor what an
        agent may. An integration may only ask for decisions, which supervisors may too."""
        if needed is Role.INTEGRATION:
            return self in (Role.INTEGRATION, Role.SUPERVISOR, Role.ADMIN)
        if self is Role.INTEGRATION:
            return False
        order = [Role.AGENT, Role.SUPERVISOR, Role.ADMIN]
        return order.index(self) >= order.index(needed)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Part of every page session; bumping it (sign-out, a new password, disabling) ends them all.
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # How letters name them (migration 0011): as a decision's signatory and as a named contact
    # (SPOC), with their own phone number; the role in words when there is no job title.
    display_name: Mapped[str | None] = mapped_column(String(120))
    job_title: Mapped[str | None] = mapped_column(String(120))
    direct_line: Mapped[str | None] = mapped_column(String(20))  # E.164
    # token_hash above is the previous release's single token: kept (expand only) and set to the
    # newest token's hash, or to an unusable one when the user's tokens are revoked; the tokens
    # themselves are api_tokens rows.
    api_tokens: Mapped[list[ApiToken]] = relationship(
        back_populates="user", order_by="ApiToken.id", cascade="all, delete-orphan"
    )

    @property
    def role_enum(self) -> Role:
        return Role(self.role)


class ApiToken(Base):
    """A staff member's API bearer token: only its SHA-256 is kept. It works until it expires
    or is revoked (rotated, the password changed, signed out everywhere, the user disabled)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(back_populates="api_tokens")

    def state(self, now: datetime) -> str:
        """``active``, ``expired`` or ``revoked``."""
        if self.revoked_at is not None:
            return "revoked"
        return "active" if self.expires_at > now else "expired"


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(8), default="en-GB")
    adjustments: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Supervisors only (migration 0010): never shown to agents nor copied into the audit trail;
    # the typed adjustments above are restrictions.adjustments.
    sensitive_note: Mapped[str | None] = mapped_column(Text)
    # The lines a letter's window envelope shows under their name (migration 0011); None: unknown.
    postal_address: Mapped[list[str] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    numbers: Mapped[list[PhoneNumber]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", order_by="PhoneNumber.id"
    )
    restrictions: Mapped[list[Restriction]] = relationship(
        back_populates="customer",
        order_by="Restriction.decided_at",
        foreign_keys="Restriction.customer_id",
    )


class PhoneNumber(Base):
    __tablename__ = "phone_numbers"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    e164: Mapped[str] = mapped_column(String(20), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    customer: Mapped[Customer] = relationship(back_populates="numbers")


class Restriction(Base):
    """A decision under policy 10.1. It applies to calls from the day its written notice is
    recorded (or at once, for danger: ``apply_now``) until a recorded end; nothing is deleted."""

    __tablename__ = "restrictions"
    __table_args__ = (Index("ix_restrictions_active", "customer_id", "ended_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    kind: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    # The reason in other languages, by language tag, for the letters (migration 0011).
    reason_translations: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)  # when it was recorded
    decided_on: Mapped[date] = mapped_column(Date)  # the decision's date (may be in the past)
    notice_sent_on: Mapped[date | None] = mapped_column(Date)
    notice_method: Mapped[str | None] = mapped_column(String(16))
    apply_now: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    urgent_reason: Mapped[str | None] = mapped_column(Text)
    notice_due_on: Mapped[date | None] = mapped_column(Date)
    review_due_on: Mapped[date | None] = mapped_column(Date)
    last_reviewed_on: Mapped[date | None] = mapped_column(Date)
    replaces_id: Mapped[int | None] = mapped_column(ForeignKey("restrictions.id"))
    source_alert_id: Mapped[int | None] = mapped_column(ForeignKey("contact_alerts.id"))
    ended_at: Mapped[datetime | None] = mapped_column()
    ended_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    end_reason: Mapped[str | None] = mapped_column(Text)
    # Ended by callguard because its review was overdue past [reviews] lapse_after_days; the
    # customer is written to about it (the Due list shows the letter until it is recorded).
    lapsed_on: Mapped[date | None] = mapped_column(Date)
    lapse_letter_sent_on: Mapped[date | None] = mapped_column(Date)

    customer: Mapped[Customer] = relationship(
        back_populates="restrictions", foreign_keys=[customer_id]
    )
    decided_by: Mapped[User | None] = relationship(foreign_keys=[decided_by_id])
    ended_by: Mapped[User | None] = relationship(foreign_keys=[ended_by_id])

    appeals: Mapped[list[Appeal]] = relationship(
        back_populates="restriction", order_by="Appeal.id", foreign_keys="Appeal.restriction_id"
    )
    # Sharing with other agencies (policy 10.1, migration 0010), oldest first.
    sharing: Mapped[list[SharingRecord]] = relationship(
        order_by="SharingRecord.id", passive_deletes=True
    )

    @property
    def active(self) -> bool:
        """Live (not ended); whether it applies to calls is ``state``."""
        return self.ended_at is None

    @property
    def state(self) -> str:
        """``awaiting_notice``, ``active`` (applies to calls) or ``ended``."""
        if self.ended_at is not None:
            return "ended"
        if self.notice_sent_on is not None or self.apply_now:
            return "active"
        return "awaiting_notice"

    @property
    def takes_effect_on(self) -> date | None:
        """The day it applies to calls from: at once, or the day its notice was sent."""
        if self.apply_now:
            return self.decided_on
        return self.notice_sent_on

    @property
    def under_appeal(self) -> bool:
        return any(a.outcome is None for a in self.appeals)


class Appeal(Base):
    """An appeal against a restriction (policy section 12), decided by someone who did not make
    the decision; the restriction stays in force while it is heard (12.3)."""

    __tablename__ = "appeals"

    id: Mapped[int] = mapped_column(primary_key=True)
    restriction_id: Mapped[int] = mapped_column(ForeignKey("restrictions.id"), index=True)
    lodged_on: Mapped[date] = mapped_column(Date)
    grounds: Mapped[str] = mapped_column(Text)
    late_reason: Mapped[str | None] = mapped_column(Text)
    due_on: Mapped[date] = mapped_column(Date)
    lodged_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    lodged_at: Mapped[datetime] = mapped_column(default=utcnow)
    outcome: Mapped[str | None] = mapped_column(String(16))
    notes: Mapped[str | None] = mapped_column(Text)
    decided_on: Mapped[date | None] = mapped_column(Date)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    successor_id: Mapped[int | None] = mapped_column(ForeignKey("restrictions.id"))
    # Why an admin who took part in the restriction decided its appeal all the same (12.2).
    override_reason: Mapped[str | None] = mapped_column(Text)

    restriction: Mapped[Restriction] = relationship(
        back_populates="appeals", foreign_keys=[restriction_id]
    )
    decided_by: Mapped[User | None] = relationship(foreign_keys=[decided_by_id])


class Review(Base):
    """A review of a restriction (policy 10.4): continued, varied or ended, by whom and why."""

    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(primary_key=True)
    restriction_id: Mapped[int] = mapped_column(ForeignKey("restrictions.id"), index=True)
    reviewed_on: Mapped[date] = mapped_column(Date)
    outcome: Mapped[str] = mapped_column(String(16))
    notes: Mapped[str] = mapped_column(Text)
    next_review_on: Mapped[date | None] = mapped_column(Date)
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reviewer: Mapped[str] = mapped_column(String(80))
    successor_id: Mapped[int | None] = mapped_column(ForeignKey("restrictions.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Call(Base):
    """One inbound call, keyed on Twilio's CallSid."""

    __tablename__ = "calls"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(64), unique=True)
    from_number: Mapped[str] = mapped_column(String(64), default="")
    from_e164: Mapped[str | None] = mapped_column(String(20), index=True)
    to_number: Mapped[str] = mapped_column(String(64), default="")
    caller_name: Mapped[str | None] = mapped_column(String(200))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    identified: Mapped[bool] = mapped_column(Boolean, default=False)
    route: Mapped[str] = mapped_column(String(32), default="default")
    route_destination: Mapped[str | None] = mapped_column(String(255))
    restriction_id: Mapped[int | None] = mapped_column(ForeignKey("restrictions.id"))
    flags: Mapped[dict[str, Any]] = mapped_column(default=dict)
    fallback: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(32), default="ringing")
    started_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    answered_at: Mapped[datetime | None] = mapped_column()
    ended_at: Mapped[datetime | None] = mapped_column()
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    counted_at: Mapped[datetime | None] = mapped_column()
    emergency_selected_at: Mapped[datetime | None] = mapped_column()
    conference_name: Mapped[str | None] = mapped_column(String(80))
    conference_sid: Mapped[str | None] = mapped_column(String(64))
    agent_call_sid: Mapped[str | None] = mapped_column(String(64))
    agent_label: Mapped[str | None] = mapped_column(String(255))
    voicemail_url: Mapped[str | None] = mapped_column(String(500))
    # The dial-out claims the call before it asks Twilio, so it never dials twice.
    dial_claimed_at: Mapped[datetime | None] = mapped_column()
    # Set once a caller left waiting was moved on (voicemail, team busy or a direct dial).
    moved_on_at: Mapped[datetime | None] = mapped_column()
    # The caller's conference as Twilio reported it (participant joins and leaves, in Twilio's
    # order); the columns below are worked out from it (restrictions.calls.apply_conference_event).
    conference_log: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)
    # Since when a person (not the caller) has been in the conference; None while nobody is.
    person_present_since: Mapped[datetime | None] = mapped_column()
    person_left_at: Mapped[datetime | None] = mapped_column()
    caller_joined_at: Mapped[datetime | None] = mapped_column()
    # What the agent wrote about the call when wrapping it up (migration 0012), audited.
    wrap_up_note: Mapped[str | None] = mapped_column(Text)

    customer: Mapped[Customer | None] = relationship()


class CallEvent(Base):
    """A Twilio callback exactly as received, stored before it is processed (nothing lost)."""

    __tablename__ = "call_events"
    __table_args__ = (
        UniqueConstraint(
            "source", "resource_sid", "sequence_number", "event", name="uq_call_events_key"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    resource_sid: Mapped[str] = mapped_column(String(64))
    call_sid: Mapped[str | None] = mapped_column(String(64), index=True)
    sequence_number: Mapped[int] = mapped_column(Integer)
    event: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column()
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column()
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # A job that failed for good: kept with its reason for an admin, never retried forever.
    parked_reason: Mapped[str | None] = mapped_column(Text)


class AlertStatus(StrEnum):
    OPEN = "open"
    DISMISSED = "dismissed"
    ESCALATED = "escalated"
    # An unidentified number's alert closed because its calls were attached to a customer
    # (restrictions.attach): the customer's own alerts are evaluated over them instead.
    MERGED = "merged"


class ContactAlert(Base):
    """Excessive contact (policy section 6): evidence for a person to decide on."""

    __tablename__ = "contact_alerts"
    __table_args__ = (
        Index(
            "uq_contact_alerts_open",
            "subject",
            "rule_name",
            unique=True,
            postgresql_where=text("status = 'open'"),
            sqlite_where=text("status = 'open'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subject: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    phone_e164: Mapped[str | None] = mapped_column(String(20))
    rule_name: Mapped[str] = mapped_column(String(80))
    rule: Mapped[dict[str, Any]] = mapped_column(default=dict)
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default=AlertStatus.OPEN.value)
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column()
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    close_reason: Mapped[str | None] = mapped_column(Text)
    restriction_id: Mapped[int | None] = mapped_column(
        ForeignKey("restrictions.id", use_alter=True, name="fk_contact_alerts_restriction")
    )

    customer: Mapped[Customer | None] = relationship()
    closed_by: Mapped[User | None] = relationship()


class AgentAction(Base):
    """An agent's Warn or End press on a live call (policy 9.2, 4.6)."""

    __tablename__ = "agent_actions"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(16), default="pending")
    error: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[str | None] = mapped_column(Text)  # what happened, beyond the outcome
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    reviewed_at: Mapped[datetime | None] = mapped_column()
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    review_note: Mapped[str | None] = mapped_column(Text)  # the reviewer's words (0013)

    call: Mapped[Call] = relationship()
    user: Mapped[User] = relationship(foreign_keys=[user_id])
    reviewed_by: Mapped[User | None] = relationship(foreign_keys=[reviewed_by_id])
    customer: Mapped[Customer | None] = relationship()


class AuditEntry(Base):
    """Who changed what, when, with the state before and after (policy 10.2)."""

    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[int] = mapped_column(Integer)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    note: Mapped[str | None] = mapped_column(Text)


class Voicemail(Base):
    """A message a SPOC's caller left (the ``<Record>`` after the SPOC did not answer), keyed on
    Twilio's RecordingSid: ``new`` until its named contact (or a supervisor) marks it handled;
    Twilio's copy of the audio is deleted a while after that (``twilio_deleted_at``)."""

    __tablename__ = "voicemails"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    # The SPOC the call was for, as it is dialled: client:<user name> or an E.164 number.
    spoc: Mapped[str | None] = mapped_column(String(255), index=True)
    recording_sid: Mapped[str] = mapped_column(String(64), unique=True)
    recording_url: Mapped[str] = mapped_column(String(500))
    duration_seconds: Mapped[int] = mapped_column(Integer, default=0)
    transcription: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="new")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    handled_at: Mapped[datetime | None] = mapped_column()
    handled_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    twilio_deleted_at: Mapped[datetime | None] = mapped_column()

    call: Mapped[Call] = relationship()
    customer: Mapped[Customer | None] = relationship()
    handled_by: Mapped[User | None] = relationship()


# --- attaching calls to a customer, and subject access (migration 0009) ------------------------

# Audit entries naming a row ("naming them", for a subject access export), and a number's
# alerts (moved to the customer when the number's calls are attached to them).
Index("ix_audit_entries_entity", AuditEntry.entity, AuditEntry.entity_id)
Index("ix_contact_alerts_subject", ContactAlert.subject)
# The calls a restriction routed (an export follows every reference to the customer's rows).
Index("ix_calls_restriction_id", Call.restriction_id)


# --- letters kept as sent (migration 0007) --------------------------------------------------------


class SentLetter(Base):
    """A letter as it went to the customer: rendered once, when it was sent, and kept unchanged
    (never updated: a trigger refuses it in PostgreSQL and SQLite, and the ORM refuses it too).
    A download of a sent letter is these bytes; ``sha256`` is theirs."""

    __tablename__ = "sent_letters"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    restriction_id: Mapped[int] = mapped_column(ForeignKey("restrictions.id"), index=True)
    review_id: Mapped[int | None] = mapped_column(ForeignKey("reviews.id"))
    appeal_id: Mapped[int | None] = mapped_column(ForeignKey("appeals.id"))
    # decision, urgent_notice (the notice of one applied at once), review, appeal or end
    kind: Mapped[str] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(8))
    title: Mapped[str] = mapped_column(Text)
    letter_on: Mapped[date] = mapped_column(Date)  # the date the letter bears
    sent_on: Mapped[date] = mapped_column(Date)
    method: Mapped[str] = mapped_column(String(16))  # post, email, hand or portal
    template_version: Mapped[str] = mapped_column(String(64))
    pdf: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)  # loaded when read
    sha256: Mapped[str] = mapped_column(String(64))
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    recorded_by: Mapped[str] = mapped_column(String(80))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)

    restriction: Mapped[Restriction] = relationship(foreign_keys=[restriction_id])


@event.listens_for(SentLetter, "before_update")
def _kept_as_sent(mapper: Any, connection: Any, target: SentLetter) -> None:
    raise ValueError(f"sent letter {target.id} is kept as it was sent and cannot be changed")


class ReviewEscalation(Base):
    """A restriction whose review is overdue, pressed on someone by the daily job: once a day,
    to supervisors, and to admins once it is ``[reviews] admins_after_days`` overdue."""

    __tablename__ = "review_escalations"
    __table_args__ = (
        UniqueConstraint("restriction_id", "escalated_on", name="uq_review_escalations_day"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    restriction_id: Mapped[int] = mapped_column(
        ForeignKey("restrictions.id", ondelete="CASCADE"), index=True
    )
    escalated_on: Mapped[date] = mapped_column(Date)
    level: Mapped[str] = mapped_column(String(16))  # supervisors or admins
    review_due_on: Mapped[date] = mapped_column(Date)
    days_overdue: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- sharing with other agencies (migration 0010) -------------------------------------------------


class SharingRecord(Base):
    """Information about a restriction shared with another agency (policy 10.1): with whom, on
    which day, why and on which lawful basis, and who recorded it. Deleted with its restriction
    (``ON DELETE CASCADE``, so a release that does not know this table can still purge)."""

    __tablename__ = "sharing_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    restriction_id: Mapped[int] = mapped_column(
        ForeignKey("restrictions.id", ondelete="CASCADE"), index=True
    )
    shared_with: Mapped[str] = mapped_column(String(200))
    shared_on: Mapped[date] = mapped_column(Date)
    purpose: Mapped[str] = mapped_column(Text)
    lawful_basis: Mapped[str] = mapped_column(String(32))
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    recorded_by: Mapped[str] = mapped_column(String(80))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
