"""Phone numbers, normalised to E.164 with the ``phonenumbers`` library (region GB)."""

from __future__ import annotations

import functools

import phonenumbers

from restrictions.errors import Invalid

REGION = "GB"
MAX_NUMBER_LENGTH = 64  # as written (spaces, brackets, an extension): E.164 itself is 16 at most
MAX_NUMBERS = 20  # a customer's numbers

# What Twilio sends in From for a withheld or unknown caller; never a customer's number.
WITHHELD = frozenset(
    {
        "",
        "anonymous",
        "restricted",
        "unknown",
        "private",
        "+266696687",
        "266696687",
        "+7378742833",
        "+2562533",
        "+8656696",
        "+86282452253",
    }
)


def to_e164(raw: str) -> str:
    """A customer's number as E.164, or Invalid with the reason."""
    text = (raw or "").strip()
    if not text:
        raise Invalid("phone number is empty")
    if len(text) > MAX_NUMBER_LENGTH:
        raise Invalid(f"{text[:20]!r}… is not a phone number: over {MAX_NUMBER_LENGTH} characters")
    try:
        parsed = phonenumbers.parse(text, REGION)
    except phonenumbers.NumberParseException as exc:
        raise Invalid(f"{raw!r} is not a phone number: {exc}") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise Invalid(f"{raw!r} is not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


@functools.lru_cache(maxsize=65536)
def caller_e164(raw: str | None) -> str | None:
    """The caller's number from Twilio's From, or None when withheld, unknown or garbage (11.3).

    Only a number written as a number counts: a ``client:`` identity is never a phone number,
    whatever digits it holds, and a ``sip:`` address counts only by an E.164 user part.
    Remembered per process: callers ring again, and parsing is most of a look-up's time.
    """
    text = (raw or "").strip()[:64]
    if text.lower() in WITHHELD or text.lower().startswith("client:"):
        return None
    if text.lower().startswith("sip:"):
        user = text[4:].partition("@")[0].partition(";")[0]
        if not user.startswith("+"):
            return None
        text = user
    elif not any(ch.isdigit() for ch in text) or any(ch.isalpha() for ch in text):
        return None
    try:
        return to_e164(text)
    except Invalid:
        return None
