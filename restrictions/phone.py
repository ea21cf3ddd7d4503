"""Phone numbers, normalised to E.164 with the ``phonenumbers`` library (region GB)."""

from __future__ import annotations

import phonenumbers

from restrictions.errors import Invalid

REGION = "GB"

# What Twilio sends in From for a withheld or unknown caller; never a customer's number.
WITHHELD = frozenset(
    {"", "anonymous", "+266696687", "266696687", "restricted", "unknown", "private"}
)


def to_e164(raw: str) -> str:
    """A customer's number as E.164, or Invalid with the reason."""
    text = (raw or "").strip()
    if not text:
        raise Invalid("phone number is empty")
    try:
        parsed = phonenumbers.parse(text, REGION)
    except phonenumbers.NumberParseException as exc:
        raise Invalid(f"{raw!r} is not a phone number: {exc}") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise Invalid(f"{raw!r} is not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def caller_e164(raw: str | None) -> str | None:
    """The caller's number from Twilio's From, or None when withheld, unknown or garbage (11.3)."""
    text = (raw or "").strip()
    if text.lower() in WITHHELD:
        return None
    try:
        return to_e164(text)
    except Invalid:
        return None
