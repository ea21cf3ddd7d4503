"""Codes in words, for the staff pages: the one place that turns what callguard stores (route
kinds, contact rule names, audit actions, seconds, UTC times, language codes, field paths in
the domain's messages) into what people read.

Each is a Jinja filter, registered once by ``register``; the JSON API keeps its codes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask

from restrictions import adjustments, kinds
from restrictions.routing import RouteKind
from restrictions.sent_letters import KIND_NAMES as LETTER_KINDS
from restrictions.settings import ContactRule
from telephony.config import current_settings

# --- routes: where a call went ------------------------------------------------------------------

ROUTE_NAMES = {
    RouteKind.DEFAULT.value: "Contact centre",
    RouteKind.OUTSIDE_WINDOW.value: "Outside their permitted times: told, and the call ended",
    RouteKind.ALLOWANCE_USED.value: "Weekly allowance used: told, and the call ended",
}


def route_name(code: str | None) -> str:
    """Where a call went, in words: every route ``restrictions.routing.decide`` can give (its own
    routes, and a kind's route named after the kind, in the kind's label)."""
    if not code:
        return "Not decided yet"
    if code in ROUTE_NAMES:
        return ROUTE_NAMES[code]
    kind = kinds.find(code)
    if kind is None:
        return _humane(code)
    if kind.effect is kinds.Effect.ENDS_CALL:
        return f"{kind.label}: told, and the call ended"
    if kind.effect is kinds.Effect.PERSON:
        return f"{kind.label}: put through to them"
    return kind.label


# --- contact rules ------------------------------------------------------------------------------

_UNITS = ((10080, "week"), (1440, "day"), (60, "hour"), (1, "minute"))


def _amount(minutes: int) -> tuple[int, str]:
    """A number of minutes in the largest unit that divides it: 180 → (3, "hour")."""
    for size, unit in _UNITS:
        if minutes % size == 0:
            return minutes // size, unit
    return minutes, "minute"


def span(minutes: int) -> str:
    """A length of time in words: 60 → "an hour", 1440 → "a day", 90 → "90 minutes"."""
    n, unit = _amount(minutes)
    if n == 1:
        return f"an {unit}" if unit == "hour" else f"a {unit}"
    return f"{n} {unit}s"


def _rule_terms(rule: Any) -> tuple[str, int | None, int | None, int | None]:
    """A rule's name, window and limit, from a ContactRule, a stored rule (``describe_rule``)
    or a name looked up in the settings."""
    if isinstance(rule, ContactRule):
        return rule.name, rule.window_minutes, rule.max_calls, rule.max_minutes
    if isinstance(rule, Mapping):
        name = str(rule.get("name") or "")
        if rule.get("window_minutes"):
            return name, rule.get("window_minutes"), rule.get("max_calls"), rule.get("max_minutes")
        rule = name
    name = str(rule or "")
    for configured in current_settings().contact_rules:
        if configured.name == name:
            return _rule_terms(configured)
    return name, None, None, None


def rule_name(rule: ContactRule | Mapping[str, Any] | str | None) -> str:
    """A contact rule as its limit in words: "5 calls within an hour", "3 hours of calls within
    a week"; a rule callguard no longer knows, by its name."""
    name, window, max_calls, max_minutes = _rule_terms(rule)
    if not window:
        return _humane(name) if name else "A contact limit"
    within = span(int(window))
    if max_calls:
        return f"{max_calls} call{'' if int(max_calls) == 1 else 's'} within {within}"
    if max_minutes:
        n, unit = _amount(int(max_minutes))
        return f"{n} {unit}{'' if n == 1 else 's'} of calls within {within}"
    return f"Calls within {within}"


def rule_window(rule: ContactRule | Mapping[str, Any] | str | None) -> str:
    """The window a rule counts calls over, in words ("an hour"); "" when not known."""
    _, window, _, _ = _rule_terms(rule)
    return span(int(window)) if window else ""


# --- the audit trail ----------------------------------------------------------------------------

ACTION_NAMES = {
    "customer.created": "Customer added",
    "customer.updated": "Customer's details changed",
    "customer.exported": "Everything held about them exported (subject access)",
    "restriction.created": "Restriction recorded",
    "restriction.notice_recorded": "Notice recorded as sent",
    "restriction.ended": "Restriction ended",
    "restriction.superseded": "Restriction replaced by new terms",
    "restriction.varied": "Restriction varied",
    "restriction.lapsed": "Restriction lapsed: its review was overdue",
    "restriction.lapse_letter_recorded": "Letter about the lapse recorded as sent",
    "restriction.shared": "Sharing with another agency recorded",
    "restriction.reviewed.continue": "Reviewed: it continues",
    "restriction.reviewed.vary": "Reviewed: varied",
    "restriction.reviewed.end": "Reviewed: ended",
    "review.escalated": "Overdue review pressed on someone more senior",
    "appeal.lodged": "Appeal lodged",
    "appeal.upheld": "Appeal decided: upheld",
    "appeal.overturned": "Appeal decided: overturned",
    "appeal.varied": "Appeal decided: varied",
    "appeal.independence_overridden": "Appeal decided by someone who took part (reason recorded)",
    "alert.opened": "Excessive-contact alert opened",
    "alert.dismissed": "Alert dismissed: no action needed",
    "alert.escalated": "Alert escalated to a restriction",
    "alert.merged": "Alert closed as merged",
    "call.attached": "Call attached to the customer",
    "calls.attached": "Calls attached to the customer",
    "call.wrap_up_note": "Wrap-up note written",
    "call.simulated": "Demonstration call",
    "agent.warn": "Agent played the warning",
    "agent.end": "Agent ended the call",
    "agent.warn.failed": "Agent's warning failed",
    "agent.end.failed": "Agent's ending the call failed",
    "agent.warn.simulated": "Agent played the warning (demonstration)",
    "agent.end.simulated": "Agent ended the call (demonstration)",
    "incident.reviewed": "Incident reviewed",
    "voicemail.handled": "Voicemail marked handled",
    "due.notice_overdue": "Notice overdue",
    "due.review_due": "Review due",
    "due.review_overdue": "Review overdue",
    "due.appeal_overdue": "Appeal decision overdue",
    "event.retried": "Failed event retried",
    "retention.purged": "Old records deleted (retention)",
    "user.created": "Member of staff added",
    "user.details_changed": "Letter details changed",
    "user.role_changed": "Role changed",
    "user.disabled": "Disabled",
    "user.enabled": "Re-enabled",
    "user.password_reset": "Given a new password",
    "user.password_changed": "Changed their password",
    "user.token_rotated": "API token rotated",
    **{f"letter.sent.{kind}": f"Letter sent: {words}" for kind, words in LETTER_KINDS.items()},
}


def action_name(code: str | None) -> str:
    """An audit action in words; one callguard has no words for, as its code with spaces."""
    if not code:
        return ""
    found = ACTION_NAMES.get(code)
    if found is not None:
        return found
    text = code.replace(".", " ").replace("_", " ")
    return text[:1].upper() + text[1:]


# --- agents' presses ----------------------------------------------------------------------------

PRESS_NAMES = {"warn": "Warning", "end": "Call ended"}
OUTCOME_NAMES = {"ok": "Done", "failed": "Failed", "pending": "Waiting"}


def press_name(code: str | None) -> str:
    return PRESS_NAMES.get(code or "", _humane(code or ""))


def outcome_name(code: str | None) -> str:
    return OUTCOME_NAMES.get(code or "", _humane(code or ""))


# --- durations, moments and languages ---------------------------------------------------------


def duration(seconds: int | float | None) -> str:
    """Seconds as people read them: 245 → "4 min 05 s", 45 → "45 s"; "" when not known."""
    if seconds is None:
        return ""
    total = max(0, int(seconds))
    minutes, rest = divmod(total, 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


def _zone() -> ZoneInfo:
    return ZoneInfo(current_settings().timezone)


def when(value: datetime | str | None) -> str:
    """A moment (stored in UTC; a naive one or an ISO string is read as UTC) on the landlord's
    clock: "2 Dec 2026, 16:05"."""
    if value is None or value == "":
        return ""
    moment = value
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
    assert isinstance(moment, datetime)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    local = moment.astimezone(_zone())
    return f"{local.day} {local:%b %Y}, {local:%H:%M}"


language_name = adjustments.language_name  # "cy-GB" → "Welsh (Cymraeg)"


# --- the domain's messages ----------------------------------------------------------------------

FIELD_NAMES = {  # the domain's field names, as the pages' forms call them
    "reason": "Reason",
    "urgent_reason": "Why it must apply at once",
    "notice_sent_on": "Written notice sent on",
    "notice_method": "How the notice was sent",
    "decided_on": "Decided on",
    "apply_now": "Apply at once",
    "sent_on": "Sent on",
    "method": "How it was sent",
    "letter_method": "How the letter goes",
    "notes": "Notes",
    "next_review_on": "Next review by",
    "lodged_on": "Appeal lodged on",
    "grounds": "Grounds of appeal",
    "late_reason": "Why it is accepted late",
    "override_reason": "Why you decide the appeal all the same",
    "shared_with": "Shared with",
    "shared_on": "Shared on",
    "purpose": "Why it was shared",
    "lawful_basis": "Lawful basis",
    "postal_address": "Postal address",
    "phone_numbers": "Phone numbers",
    "reason_translations": "Reason in other languages",
    "adjustments": "Adjustments",
    "display_name": "Name in letters",
    "job_title": "Job title",
    "direct_line": "Direct line",
}
PART_NAMES = {  # a part of a field, after a dot
    "days": "days",
    "start": "start",
    "end": "end",
    "representative": "representative or support worker",
    "contact": "how to reach them",
    "preferred_contact": "preferred contact",
    "slow_speech": "slower speech",
    "large_print": "large print",
    "sensitive_note": "sensitive note",
}
ROW_WORDS = {"postal_address": "line", "phone_numbers": "number"}  # what an item of a list is
_PATH = re.compile(r"^([a-z][a-z0-9_]*)((?:\[\d+\]|\.[a-z][a-z0-9_]*)*)(?=[\s:]|$)")
_STEP = re.compile(r"\[(\d+)\]|\.([a-z][a-z0-9_]*)")


def _field_name(name: str) -> str | None:
    if name in FIELD_NAMES:
        return FIELD_NAMES[name]
    for kind in kinds.all_kinds():
        for f in kind.fields:
            if f.name == name:
                return f.label
    return None


def plain_message(message: str) -> str:
    """The domain's message for a person, with a leading field path in words:
    "windows[0].days: 'x' is not a weekday" → "Permitted days and times, row 1, days: 'x' is
    not a weekday". A message that does not begin with a field is as it was."""
    found = _PATH.match(message)
    if found is None:
        return message
    name, steps = found[1], found[2]
    label = _field_name(name)
    if label is None:
        if "_" not in name and not steps:
            return message  # an ordinary word, not a field
        label = _humane(name)
    words = [label]
    row_word = ROW_WORDS.get(name, "row")
    for row, part in _STEP.findall(steps):
        if row:
            words.append(f"{row_word} {int(row) + 1}")
        else:
            words.append(PART_NAMES.get(part, part.replace("_", " ")))
    return ", ".join(words) + message[found.end() :]


def _humane(code: str) -> str:
    """A code nobody has words for, at least without its marks: "calls-per-hour" → "Calls per
    hour"."""
    text = re.sub(r"[-_.]+", " ", code).strip()
    return text[:1].upper() + text[1:]


FILTERS: dict[str, Callable[..., str]] = {
    "route_name": route_name,
    "rule_name": rule_name,
    "rule_window": rule_window,
    "action_name": action_name,
    "press_name": press_name,
    "outcome_name": outcome_name,
    "duration": duration,
    "when": when,
    "moment": when,  # the older name: one style for moments everywhere
    "language_name": language_name,
}


def register(app: Flask) -> None:
    """Every filter above, on the app's templates (once, as the pages are added)."""
    for name, fn in FILTERS.items():
        app.add_template_filter(fn, name)
