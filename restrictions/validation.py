"""Checking what staff and systems send: each checker returns the clean value or raises Invalid
with a sentence that says what is wrong. Shared by the API, the pages, the CLI and import."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from prompts import DAYS as DAYS
from restrictions.errors import Invalid

_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
# PostgreSQL's integer: ids and counts outside it are bad input, not a database error.
MAX_INT = 2**31 - 1
# A customer's reasonable adjustments (restrictions.adjustments): each text at most this long.
MAX_ADJUSTMENT_VALUE = 200
# Permitted contact times: a window per day and part of a day is plenty.
MAX_WINDOWS = 28


def clean_text(value: str) -> str:
    """Text as stored: NUL bytes cannot be stored in PostgreSQL and never mean anything."""
    if "\x00" in value:
        raise Invalid("text must not contain NUL characters")
    return value


def required_text(value: Any, field: str, *, max_length: int, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise Invalid(f"{field} is required and must be text")
    if len(value) > max_length:
        raise Invalid(f"{field} is longer than {max_length} characters")
    if "\x00" in value:
        raise Invalid(f"{field} must not contain NUL characters")
    return value.strip()


def optional_date(value: Any, field: str) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, date):
        return value
    try:
        day = date.fromisoformat(str(value))
    except ValueError:
        raise Invalid(f"{field} must be a date like 2026-03-01, not {value!r}") from None
    if not 1900 <= day.year <= 2999:
        raise Invalid(f"{field} must be a date between 1900 and 2999, not {value!r}")
    return day


def not_after_today(value: Any, field: str, today: date, *, required: bool = True) -> date | None:
    """A day that has happened (a notice sent, an appeal lodged): not in the future."""
    day = optional_date(value, field)
    if day is None:
        if required:
            raise Invalid(f"{field} is required: a date like {today.isoformat()}")
        return None
    if day > today:
        raise Invalid(f"{field} {day.isoformat()} is in the future")
    return day


def whole_number(value: Any, field: str, *, minimum: int = 1, required: bool = False) -> int | None:
    if value is None or value == "":
        if required:
            raise Invalid(f"{field} is required")
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= MAX_INT:
        raise Invalid(f"{field} must be a whole number of at least {minimum}")
    return value


def windows(value: Any, field: str = "windows") -> list[dict[str, Any]]:
    """Permitted contact times: ``[{days: ["mon", …], start: "10:00", end: "12:00"}]``."""
    if not isinstance(value, list) or not value:
        raise Invalid(f"{field} must be a non-empty list of {{days, start, end}}")
    if len(value) > MAX_WINDOWS:
        raise Invalid(f"{field} may hold at most {MAX_WINDOWS} times")
    found = []
    for i, w in enumerate(value):
        if not isinstance(w, dict):
            raise Invalid(f"{field}[{i}] must be an object with days, start and end")
        days = w.get("days")
        if not isinstance(days, list) or not days or len(days) > len(DAYS):
            raise Invalid(f'{field}[{i}].days must list weekdays, for example ["mon", "wed"]')
        norm_days = []
        for d in days:
            key = str(d).strip().lower()[:3]
            if key not in DAYS:
                raise Invalid(f"{field}[{i}].days: {d!r} is not a weekday")
            norm_days.append(key)
        start, end = w.get("start"), w.get("end")
        for label, t in (("start", start), ("end", end)):
            if not isinstance(t, str) or not _TIME.fullmatch(t):
                raise Invalid(f'{field}[{i}].{label} must be a time like "10:00"')
        assert isinstance(start, str) and isinstance(end, str)
        if start >= end:
            raise Invalid(f"{field}[{i}]: start {start} must be before end {end}")
        found.append({"days": sorted(set(norm_days), key=DAYS.index), "start": start, "end": end})
    return found


# A customer's postal address: the lines a window envelope shows under their name.
MAX_ADDRESS_LINES = 8
MAX_ADDRESS_LINE = 100


def postal_address(value: Any) -> list[str] | None:
    """A postal address as its lines (``["1 High Street", "Derby", "DE1 1AA"]``), each trimmed,
    empty ones dropped; an empty list (or None) is no address."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise Invalid('postal_address must be a list of lines, for example ["1 High St", "Derby"]')
    if len(value) > MAX_ADDRESS_LINES:
        raise Invalid(f"postal_address may hold at most {MAX_ADDRESS_LINES} lines")
    lines = []
    for i, line in enumerate(value):
        if not isinstance(line, str):
            raise Invalid(f"postal_address[{i}] must be text")
        if len(line) > MAX_ADDRESS_LINE:
            raise Invalid(f"postal_address[{i}] is longer than {MAX_ADDRESS_LINE} characters")
        if any(ch in line for ch in "\x00\r\n"):
            raise Invalid(f"postal_address[{i}] must be one line, without NUL characters")
        if line.strip():
            lines.append(" ".join(line.split()))
    return lines or None


def reason_translations(
    value: Any, languages: tuple[str, ...], *, max_length: int
) -> dict[str, str]:
    """A text's translations by language tag (``{"cy-GB": "…"}``), each one of ``languages``."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Invalid('reason_translations must be an object, for example {"cy-GB": "…"}')
    found = {}
    for language, text in value.items():
        if language not in languages:
            raise Invalid(f"reason_translations: {language!r} is not one of {', '.join(languages)}")
        found[language] = required_text(
            text, f"reason_translations.{language}", max_length=max_length
        )
    return found
