"""JSON shapes of the API's resources, in one place."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from restrictions import adjustments, policy_dates
from restrictions.attach import Attached
from restrictions.cache import in_force
from restrictions.due_list import DueItem
from restrictions.models import (
    AgentAction,
    Appeal,
    AuditEntry,
    Call,
    Customer,
    Restriction,
    Review,
    SentLetter,
    SharingRecord,
)


def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


def restriction(r: Restriction) -> dict[str, Any]:
    return {
        "id": r.id,
        "customer": r.customer.reference if r.customer else None,
        "kind": r.kind,
        "reason": r.reason,
        "reason_translations": dict(r.reason_translations or {}),
        **dict(r.details or {}),
        "details": dict(r.details or {}),
        "active": r.ended_at is None,
        "decided_at": _iso(r.decided_at),
        "decided_by": r.decided_by.name if r.decided_by else None,
        "state": r.state,
        "decided_on": _iso(r.decided_on),
        "notice_sent_on": _iso(r.notice_sent_on),
        "notice_method": r.notice_method,
        "apply_now": r.apply_now,
        "urgent_reason": r.urgent_reason,
        "notice_due_on": _iso(r.notice_due_on),
        "takes_effect_on": _iso(r.takes_effect_on),
        "review_due_on": _iso(r.review_due_on),
        "last_reviewed_on": _iso(r.last_reviewed_on),
        **_appeal_window(r),
        "replaces": r.replaces_id,
        "appeals": [appeal(a) for a in r.appeals],
        "sharing": [sharing_record(x) for x in r.sharing],
        "ended_at": _iso(r.ended_at),
        "ended_by": r.ended_by.name if r.ended_by else None,
        "end_reason": r.end_reason,
        # whether it routes calls now: active, or varied and its successor's notice not yet
        # recorded (the old terms apply until then)
        "in_force": any(x.id == r.id for x in in_force(r.customer.restrictions))
        if r.customer
        else r.state == "active",
        "lapsed_on": _iso(r.lapsed_on),
        "lapse_letter_sent_on": _iso(r.lapse_letter_sent_on),
    }


def sharing_record(x: SharingRecord) -> dict[str, Any]:
    """Information shared with another agency (policy 10.1)."""
    return {
        "id": x.id,
        "restriction_id": x.restriction_id,
        "shared_with": x.shared_with,
        "shared_on": _iso(x.shared_on),
        "purpose": x.purpose,
        "lawful_basis": x.lawful_basis,
        "recorded_by": x.recorded_by,
        "recorded_at": _iso(x.recorded_at),
    }


def _appeal_window(r: Restriction) -> dict[str, Any]:
    """The last day to appeal, and the letter it counts from (restrictions.policy_dates)."""
    window = policy_dates.appeal_window(r) if r.ended_at is None else None
    return {
        "appeal_last_day": _iso(window.last_day) if window else None,
        "appeal_counted_from": (
            {"letter": window.letter, "dated": _iso(window.letter_on)} if window else None
        ),
    }


def sent_letter(s: SentLetter) -> dict[str, Any]:
    """A letter as it was sent (its PDF is at ``download``)."""
    return {
        "id": s.id,
        "kind": s.kind,
        "restriction_id": s.restriction_id,
        "review_id": s.review_id,
        "appeal_id": s.appeal_id,
        "title": s.title,
        "language": s.language,
        "letter_on": _iso(s.letter_on),
        "sent_on": _iso(s.sent_on),
        "method": s.method,
        "template_version": s.template_version,
        "sha256": s.sha256,
        "recorded_by": s.recorded_by,
        "recorded_at": _iso(s.recorded_at),
        "download": f"/api/v1/letters/{s.id}",
    }


def appeal(a: Appeal) -> dict[str, Any]:
    return {
        "id": a.id,
        "restriction_id": a.restriction_id,
        "lodged_on": _iso(a.lodged_on),
        "grounds": a.grounds,
        "late_reason": a.late_reason,
        "due_on": _iso(a.due_on),
        "outcome": a.outcome,
        "notes": a.notes,
        "decided_on": _iso(a.decided_on),
        "decided_by": a.decided_by.name if a.decided_by else None,
        "successor": a.successor_id,
        "override_reason": a.override_reason,
    }


def review(rv: Review, r: Restriction) -> dict[str, Any]:
    return {
        "id": rv.id,
        "restriction_id": rv.restriction_id,
        "reviewed_on": _iso(rv.reviewed_on),
        "outcome": rv.outcome,
        "notes": rv.notes,
        "next_review_on": _iso(rv.next_review_on),
        "reviewer": rv.reviewer,
        "successor": rv.successor_id,
        "restriction": restriction(r),
    }


def due_item(item: DueItem) -> dict[str, Any]:
    r = item.restriction
    return {
        "what": item.what,
        "due_on": _iso(item.due_on),
        "days_overdue": item.days_overdue,
        "restriction_id": r.id,
        "kind": r.kind,
        "customer": r.customer.reference if r.customer else None,
        "customer_name": r.customer.name if r.customer else None,
        "appeal_id": item.appeal.id if item.appeal else None,
        "escalated_to": item.escalated_to,
        "escalated_on": _iso(item.escalated_on),
        "escalations": item.escalations,
    }


def call(c: Call) -> dict[str, Any]:
    return {
        "call_sid": c.call_sid,
        "from": c.from_number,
        "to": c.to_number,
        "route": c.route,
        "destination": c.route_destination,
        "status": c.status,
        "started_at": _iso(c.started_at),
        "answered_at": _iso(c.answered_at),
        "ended_at": _iso(c.ended_at),
        "duration_seconds": c.duration_seconds,
        "emergency_selected": c.emergency_selected_at is not None,
        "flags": list((c.flags or {}).get("flags", [])),
    }


def attached(a: Attached) -> dict[str, Any]:
    """What attaching calls (or a number) to a customer did."""
    return {
        "customer": a.customer.reference,
        "number_added": a.number,
        "calls": [call(c) for c in a.calls],
        "alerts_merged": [alert.id for alert in a.merged],
        "alerts_opened": [alert.id for alert in a.opened],
    }


def audit_entry(a: AuditEntry) -> dict[str, Any]:
    return {
        "at": _iso(a.at),
        "actor": a.actor,
        "action": a.action,
        "entity": a.entity,
        "entity_id": a.entity_id,
        "before": a.before,
        "after": a.after,
        "note": a.note,
    }


def agent_action(a: AgentAction, *, sensitive: bool = False) -> dict[str, Any]:
    """A press; the supervisor's review note only for supervisors (``sensitive``)."""
    return {
        "id": a.id,
        "kind": a.kind,
        "call_sid": a.call.call_sid if a.call else None,
        "agent": a.user.name if a.user else None,
        "reason": a.reason,
        "outcome": a.outcome,
        "error": a.error,
        "detail": a.detail,
        "at": _iso(a.created_at),
        "reviewed_at": _iso(a.reviewed_at),
        "reviewed_by": a.reviewed_by.name if a.reviewed_by else None,
        "review_note": a.review_note if sensitive else None,
    }


def customer(
    c: Customer,
    *,
    calls: list[Call] | None = None,
    audit: list[AuditEntry] | None = None,
    actions: list[AgentAction] | None = None,
    letters: list[SentLetter] | None = None,
    sensitive: bool = False,
) -> dict[str, Any]:
    adjusted = adjustments.of(c)
    data: dict[str, Any] = {
        "reference": c.reference,
        "name": c.name,
        "language": c.language,
        # the sensitive note only for a supervisor (``sensitive``), never for an agent
        "adjustments": adjusted.for_supervisor() if sensitive else adjusted.public(),
        "adjustment_texts": adjusted.words(c.language),
        "phone_numbers": [n.e164 for n in c.numbers],
        "postal_address": list(c.postal_address or []),
        "active_restrictions": [restriction(r) for r in c.restrictions if r.ended_at is None],
    }
    if calls is not None:
        data["recent_calls"] = [call(x) for x in calls]
    if actions is not None:
        data["agent_actions"] = [agent_action(x, sensitive=sensitive) for x in actions]
    if audit is not None:
        data["audit"] = [audit_entry(x) for x in audit]
    if letters is not None:
        data["letters"] = [sent_letter(x) for x in letters]
    return data
