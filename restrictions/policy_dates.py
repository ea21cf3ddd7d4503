"""The policy's dates, computed here and nowhere else: the letters, the JSON API, the pages and the
daily job all ask this module, so they cannot disagree.

- **today**, on the landlord's clock (Europe/London unless the settings say otherwise);
- **notice due**: a restriction applied at once (danger, 4.6) has its notice sent within 2
  working days of the decision;
- **review due**: at most 12 months after it took effect or was last reviewed (10.4);
- **appeal last day**: 20 working days after the date of the letter that gave the right of
  appeal (12.2): the decision letter (its notice), or a later review outcome letter (a review
  that continues it), whose own date starts a new 20 working days;
- **appeal decision due**: 20 working days after the appeal was lodged.

Working days are England and Wales's (``restrictions.calendar``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from restrictions.calendar import add_months, add_working_days
from restrictions.models import Restriction

APPEAL_WORKING_DAYS = 20  # policy 12.2: appeal within, and decided within, 20 working days
NOTICE_WORKING_DAYS = 2  # a restriction applied at once has its notice sent within 2 working days
REVIEW_MONTHS = 12  # policy 10.4: at most 12 months between reviews
LANDLORD_TIMEZONE = "Europe/London"  # the landlord's calendar: "today" is a day in England


def today(timezone: str = LANDLORD_TIMEZONE, *, now: datetime | None = None) -> date:
    """Today on the landlord's clock (``now``, when given, instead of the present moment)."""
    return (now or datetime.now(UTC)).astimezone(ZoneInfo(timezone)).date()


def notice_due(decided_on: date) -> date:
    """When the notice of a restriction applied at once must have been sent."""
    return add_working_days(decided_on, NOTICE_WORKING_DAYS)


def review_due(since: date) -> date:
    """The latest next review, 12 months after ``since`` (it took effect, or was reviewed)."""
    return add_months(since, REVIEW_MONTHS)


def appeal_last_day(letter_on: date) -> date:
    """The last day to appeal, given the date of the letter that gave the right of appeal."""
    return add_working_days(letter_on, APPEAL_WORKING_DAYS)


def appeal_decision_due(lodged_on: date) -> date:
    """When the decision on an appeal lodged on ``lodged_on`` is due."""
    return add_working_days(lodged_on, APPEAL_WORKING_DAYS)


def decision_letter_date(restriction: Restriction, today: date) -> date:
    """The decision letter's date: the day its notice was sent, else (not sent yet) today."""
    return restriction.notice_sent_on or today


def review_date(restriction: Restriction, letter_on: date) -> date:
    """The review date a letter gives: as recorded, else 12 months after it takes effect (or
    after the letter, when it takes effect on the day the letter is sent)."""
    if restriction.review_due_on is not None:
        return restriction.review_due_on
    return review_due(restriction.takes_effect_on or letter_on)


@dataclass(frozen=True)
class AppealWindow:
    """The letter that gives the right of appeal now, and the last day to appeal."""

    letter: str  # "decision" (its notice), "urgent_notice" (applied at once) or "review"
    letter_on: date  # that letter's date
    last_day: date


def appeal_window(restriction: Restriction) -> AppealWindow | None:
    """From the latest letter that gave the right of appeal: the decision letter (dated the day
    its notice was sent) or, later, the outcome letter of a review that continued it (dated the
    review). A restriction applied at once and not yet notified counts from the decision. None
    while nothing has been sent (it cannot be appealed yet)."""
    letters: list[tuple[date, str]] = []
    if restriction.notice_sent_on is not None:
        kind = "urgent_notice" if restriction.apply_now else "decision"
        letters.append((restriction.notice_sent_on, kind))
    elif restriction.apply_now:
        letters.append((restriction.decided_on, "urgent_notice"))
    if restriction.last_reviewed_on is not None:
        letters.append((restriction.last_reviewed_on, "review"))
    if not letters:
        return None
    letter_on, kind = sorted(letters, key=lambda item: item[0])[-1]  # a review wins a tie
    return AppealWindow(kind, letter_on, appeal_last_day(letter_on))


def first_appealable_on(restriction: Restriction) -> date | None:
    """The first day it may be appealed: its notice (the decision, when applied at once)."""
    if restriction.notice_sent_on is not None:
        return restriction.notice_sent_on
    return restriction.decided_on if restriction.apply_now else None
