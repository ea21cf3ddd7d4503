"""What the letters to a customer say: the decision (policy 10.2), the outcome of their latest
appeal (section 12) and of the latest review (10.4), the end of a restriction, and its lapse (its
review overdue past ``[reviews] lapse_after_days``), as content, in the customer's language.
Their dates (the appeal's last day, the review) are the policy's calendar's
(``restrictions.policy_dates``).

The words are data, in each language's prompt file (``[letter]`` and ``[letter.kinds]``): adding a
language stays one file. Here they are filled in with the decision, the customer's details and the
organisation's settings; ``telephony.letters`` lays the result out as HTML and PDF. Every string in
a Letter is plain text (nothing is marked up), so whatever renders it escapes all of it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers
from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

import prompts
from restrictions import kinds, policy_dates
from restrictions.errors import Invalid, NotFound
from restrictions.models import Appeal, Restriction, Review, User
from restrictions.policy_dates import APPEAL_WORKING_DAYS
from restrictions.settings import Settings

WHICH = ("decision", "appeal", "review", "end", "lapse")


@dataclass(frozen=True)
class Section:
    """A part of the letter: an optional heading ("" for none) and its paragraphs."""

    heading: str
    paragraphs: tuple[str, ...]


@dataclass(frozen=True)
class Letter:
    which: str  # decision, appeal, review, end or lapse
    language: str  # the language it is written in (the customer's, or en-GB)
    date: date  # the letter's date
    dated: str  # that date in words, in the letter's language
    sender: tuple[str, ...]  # the organisation: name, address, how to contact it
    recipient: tuple[str, ...]  # the customer's name and postal address: the envelope's window
    title: str
    greeting: str
    sections: tuple[Section, ...]
    sign_off: str
    signature: str
    # Set on a preview (drawn from today's record, not sent): what it says across its top.
    preview: str = ""
    reference: str = ""  # "Our reference: …", beside the date (not through the window)
    signatory: tuple[str, ...] = ()  # who signs: their name when on record, their job or role
    large_print: bool = False  # the customer asked for large print (adjustments: large_print)

    def text(self) -> str:
        """Everything the letter says, as plain text (for searching and tests)."""
        parts = [*self.sender, *self.recipient, self.reference, self.dated, self.title]
        parts.append(self.greeting)
        for section in self.sections:
            parts += [section.heading, *section.paragraphs]
        parts += [self.sign_off, *self.signatory, self.signature]
        return "\n".join(p for p in parts if p)


class _Words:
    """A language's ``[letter]`` table, filled in with the parameters every letter may use."""

    def __init__(self, language: str, params: Mapping[str, Any]) -> None:
        self.language = prompts.resolve(language)
        self.table: Mapping[str, Any] = prompts.catalogue(self.language)["letter"]
        self.params = dict(params)

    def _fill(self, key: str, template: str, extra: Mapping[str, Any]) -> str:
        params = {**self.params, **extra}
        missing = prompts.placeholders(template) - params.keys()
        if missing:
            raise ValueError(
                f"letter text {key!r} ({self.language}) needs {', '.join(sorted(missing))}"
            )
        return template.format(**params)

    def __call__(self, key: str, **extra: Any) -> str:
        template = self.table.get(key)
        if not isinstance(template, str):
            raise KeyError(f"no letter text {key!r} in {self.language}")
        return self._fill(key, template, extra)

    def kind(self, name: str, **extra: Any) -> str:
        template = self.table.get("kinds", {}).get(name)
        if not isinstance(template, str):
            raise KeyError(f"no letter text for the kind {name!r} in {self.language}")
        return self._fill(f"kinds.{name}", template, extra)

    def day(self, day: date) -> str:
        months: Sequence[str] = self.table["months"]
        return self("date", day=day.day, month=months[day.month - 1], year=day.year)

    def role(self, name: str) -> str:
        """A staff role in words (``[letter.roles]``); the team for anything else."""
        roles: Mapping[str, str] = self.table.get("roles", {})
        return roles.get(name) or roles["team"]


def date_in_words(day: date, language: str | None) -> str:
    """A date as the letter writes it: "26 November 2026", "26 Tachwedd 2026"."""
    return _Words(prompts.resolve(language), {}).day(day)


def dialled(e164: str) -> str:
    """A phone number as it is dialled from the UK: national for UK numbers, else international."""
    parsed = phonenumbers.parse(e164, "GB")
    style = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if parsed.country_code == 44
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    return phonenumbers.format_number(parsed, style)


# The decision letter's date, and the review date a letter gives: the policy's calendar's.
letter_date = policy_dates.decision_letter_date
review_date = policy_dates.review_date


def _params(settings: Settings, language: str) -> dict[str, Any]:
    org = settings.organisation.in_language(language)
    return {
        "organisation_name": org.name,
        "postal_address": org.postal_address,
        "email": org.email,
        "website": org.website,
        "phone": dialled(org.phone),
        "emergency_phone": dialled(settings.emergency_line),
        "appeals_to": org.appeals_to,
        "appeals_email": org.appeals_email,
        "working_days": APPEAL_WORKING_DAYS,
    }


# --- what a restriction means ---------------------------------------------------------------------


def _reach(words: _Words, contact: str, sess: Session | None) -> str:
    """How to reach the named contact: a number of their own ("your named contact, on …"), or
    a member of staff by the name letters give them (never their login), on their direct line
    when they have one, else through our number."""
    if contact.startswith("+"):
        return words("contact_number", contact_phone=dialled(contact))
    login = contact.removeprefix("client:")
    user = sess.scalar(select(User).where(User.name == login)) if sess is not None else None
    name = user.display_name if user is not None else None
    line = user.direct_line if user is not None else None
    if name and line:
        return words("contact_staff_direct", contact_name=name, contact_phone=dialled(line))
    if name:
        return words("contact_staff", contact_name=name)
    if line:
        return words("contact_number", contact_phone=dialled(line))
    return words("contact_unnamed")


def _field_in_words(field: kinds.Field, value: Any, words: _Words, sess: Session | None) -> str:
    """One of a kind's fields as its letter says it, by the field's type: a contact as how to
    reach them, permitted times in words (none: at any time), anything else as it is; a field
    with a letter phrase says it through that phrase, or nothing when it is empty."""
    if field.type is kinds.FieldType.WINDOWS:
        said = prompts.describe_windows(value or [], words.language)
    elif value in (None, "", []):
        return ""
    elif field.type is kinds.FieldType.CONTACT:
        said = _reach(words, str(value), sess)
    else:
        said = str(value)
    return words(field.letter_phrase, value=said) + " " if field.letter_phrase else said


def _what_is_restricted(restriction: Restriction, words: _Words) -> str:
    """The restriction's terms in words: the kind's meaning, each of its own fields filled in by
    name (the kind's declaration says what they are; nothing here knows one kind from another)."""
    kind = kinds.get(restriction.kind)
    details = restriction.details or {}
    sess = object_session(restriction)
    extra = {f.name: _field_in_words(f, details.get(f.name), words, sess) for f in kind.fields}
    return words.kind(kind.name, **extra)


def _starts(restriction: Restriction, words: _Words) -> str:
    effect = restriction.takes_effect_on
    if effect is None:
        return words("starts_when_sent")
    return words("starts_on", date=words.day(effect))


def _terms(restriction: Restriction, words: _Words, letter_day: date) -> list[str]:
    """What is restricted, from when, and when it will be reviewed."""
    return [
        _what_is_restricted(restriction, words),
        _starts(restriction, words),
        words("review", date=words.day(review_date(restriction, letter_day))),
    ]


# --- the parts every letter shares ----------------------------------------------------------------


def _appeal(words: _Words, letter_day: date) -> Section:
    last_day = words.day(policy_dates.appeal_last_day(letter_day))
    return Section(
        words("appeal_heading"), (words("appeal", last_day=last_day), words("appeal_process"))
    )


def _ombudsman(words: _Words, settings: Settings) -> Section:
    o = settings.ombudsman.in_language(words.language)
    contact = {
        "name": o.name,
        "address": o.address,
        "phone": o.phone,
        "website": o.website,
        "email": o.email,
    }
    return Section(
        words("ombudsman_heading"),
        (words("ombudsman", **contact), words("ombudsman_contact", **contact)),
    )


def _safety(words: _Words) -> Section:
    return Section(words("safety_heading"), (words("emergency"), words("danger")))


def _staff_wrote(words: _Words, text: str) -> tuple[str, str]:
    """What staff wrote (a reason, an outcome's notes), marked as theirs in the letter's
    language; it stays as they wrote it (or as it was translated for the letter)."""
    return words("staff_words"), text


def _reason(restriction: Restriction, language: str) -> str:
    """The restriction's reason in the letter's language when staff gave a translation."""
    return (restriction.reason_translations or {}).get(language) or restriction.reason


# A date or a moment as a computer writes it (2026-03-04, 2026-03-04T10:15:00+00:00): never in a
# letter. Staff text pasted from a record (an escalated alert's evidence, say) may hold one.
_ISO_MOMENT = re.compile(
    r"(?<!\d)\d{4}-\d{2}-\d{2}"  # the date, then perhaps a time and perhaps its offset
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?(?!\d)"
)


def plain_dates(text: str, words: _Words, timezone: str) -> str:
    """``text`` with each ISO date or timestamp written as a date in words, in the letter's
    language (a moment with its offset on the landlord's clock; one without, as it stands)."""

    def in_words(found: re.Match[str]) -> str:
        written = found.group(0)
        try:
            moment = datetime.fromisoformat(written.replace(",", "."))
        except ValueError:
            return written
        if moment.tzinfo is not None:
            moment = moment.astimezone(ZoneInfo(timezone))
        return words.day(moment.date())

    return _ISO_MOMENT.sub(in_words, text)


def _signatory(words: _Words, signer: User | None) -> tuple[str, ...]:
    """Who signs: the person who decided, by the name letters give them, with their job title
    or else their role in words; the team when no one is on record."""
    if signer is None:
        return (words.role("team"),)
    title = signer.job_title or words.role(signer.role)
    return tuple(line for line in (signer.display_name, title) if line)


def _letter(
    which: str,
    restriction: Restriction,
    settings: Settings,
    words: _Words,
    letter_day: date,
    title: str,
    sections: Sequence[Section],
    signer_id: int | None = None,
) -> Letter:
    org = settings.organisation.in_language(words.language)
    customer = restriction.customer
    sess = object_session(restriction)
    signer = sess.get(User, signer_id) if sess is not None and signer_id is not None else None
    sections = [
        Section(s.heading, tuple(plain_dates(p, words, settings.timezone) for p in s.paragraphs))
        for s in sections
    ]
    return Letter(
        which=which,
        language=words.language,
        date=letter_day,
        dated=words.day(letter_day),
        sender=(
            org.name,
            org.postal_address,
            words("sender_phone"),
            words("sender_email"),
            org.website,
        ),
        recipient=(customer.name, *(customer.postal_address or ())),
        title=title,
        greeting=words("greeting", name=customer.name),
        sections=(
            *sections,
            _ombudsman(words, settings),
            _safety(words),
            Section("", (words("help"),)),
        ),
        sign_off=words("sign_off"),
        signature=words("signature"),
        reference=words("reference", reference=customer.reference),
        signatory=_signatory(words, signer),
        large_print=bool((customer.adjustments or {}).get("large_print")),
    )


def _words(restriction: Restriction, settings: Settings) -> _Words:
    language = prompts.resolve(restriction.customer.language)
    return _Words(language, _params(settings, language))


# --- the letters ----------------------------------------------------------------------------------


def decision_letter(restriction: Restriction, settings: Settings, *, today: date) -> Letter:
    """The decision (policy 10.2): why, what is restricted, from when, the review, how to appeal
    and by when, the Ombudsman, emergency repairs and 999. ``today`` is the landlord's date."""
    words = _words(restriction, settings)
    day = letter_date(restriction, today)
    sections = (
        Section("", (words("decision_intro", decided_on=words.day(restriction.decided_on)),)),
        Section(
            words("why_heading"),
            (words("why"), *_staff_wrote(words, _reason(restriction, words.language))),
        ),
        Section(words("what_heading"), (_what_is_restricted(restriction, words),)),
        Section(
            words("when_heading"),
            (
                _starts(restriction, words),
                words("review", date=words.day(review_date(restriction, day))),
            ),
        ),
        _appeal(words, day),
    )
    title = words("decision_title")
    return _letter(
        "decision", restriction, settings, words, day, title, sections, restriction.decided_by_id
    )


def latest_decided_appeal(sess: Session, restriction: Restriction) -> Appeal:
    """Read from the database, not ``restriction.appeals`` (which may predate the appeal)."""
    found = sess.scalars(
        select(Appeal)
        .where(Appeal.restriction_id == restriction.id, Appeal.outcome.is_not(None))
        .order_by(Appeal.decided_on.desc().nulls_last(), Appeal.id.desc())
        .limit(1)
    ).first()
    if found is None:
        raise NotFound(f"restriction {restriction.id} has no decided appeal")
    return found


def latest_review(sess: Session, restriction: Restriction) -> Review:
    found = sess.scalars(
        select(Review)
        .where(Review.restriction_id == restriction.id)
        .order_by(Review.reviewed_on.desc(), Review.id.desc())
        .limit(1)
    ).first()
    if found is None:
        raise NotFound(f"restriction {restriction.id} has not been reviewed")
    return found


def _successor(sess: Session, successor_id: int | None) -> Restriction:
    successor = sess.get(Restriction, successor_id) if successor_id is not None else None
    if successor is None:
        raise NotFound(f"the restriction that replaced this one (id {successor_id}) is missing")
    return successor


def appeal_letter(
    sess: Session, restriction: Restriction, settings: Settings, *, today: date
) -> Letter:
    """The outcome of the customer's latest decided appeal against ``restriction`` (section 12):
    upheld (the terms stand), overturned (it has ended) or varied (the new terms)."""
    appeal = latest_decided_appeal(sess, restriction)
    words = _words(restriction, settings)
    decided_on = appeal.decided_on or today
    intro = words(
        "appeal_intro",
        lodged_on=words.day(appeal.lodged_on),
        decided_on=words.day(restriction.decided_on),
    )
    if appeal.outcome == "upheld":
        outcome = [words("appeal_upheld"), *_terms(restriction, words, today)]
    elif appeal.outcome == "overturned":
        outcome = [words("appeal_overturned", date=words.day(decided_on))]
    else:
        successor = _successor(sess, appeal.successor_id)
        outcome = [words("appeal_varied"), *_terms(successor, words, today)]
    sections = [Section("", (intro,)), Section(words("outcome_heading"), tuple(outcome))]
    if appeal.notes:
        sections.append(Section(words("reasons_heading"), _staff_wrote(words, appeal.notes)))
    title = words("appeal_title")
    return _letter(
        "appeal", restriction, settings, words, today, title, sections, appeal.decided_by_id
    )


def review_letter(
    sess: Session, restriction: Restriction, settings: Settings, *, today: date
) -> Letter:
    """The outcome of the latest review of ``restriction`` (policy 10.4): continued (the terms
    and the next review), varied (the new terms) or ended; appealable unless it ended."""
    done = latest_review(sess, restriction)
    words = _words(restriction, settings)
    intro = words(
        "review_intro",
        reviewed_on=words.day(done.reviewed_on),
        decided_on=words.day(restriction.decided_on),
    )
    if done.outcome == "continue":
        next_on = done.next_review_on or review_date(restriction, today)
        outcome = [
            words("review_continue"),
            _what_is_restricted(restriction, words),
            words("review", date=words.day(next_on)),
        ]
    elif done.outcome == "vary":
        successor = _successor(sess, done.successor_id)
        outcome = [words("review_vary"), *_terms(successor, words, today)]
    else:
        outcome = [words("review_end", date=words.day(done.reviewed_on))]
    sections = [Section("", (intro,)), Section(words("outcome_heading"), tuple(outcome))]
    if done.notes:
        sections.append(Section(words("reasons_heading"), _staff_wrote(words, done.notes)))
    if done.outcome != "end":
        sections.append(_appeal(words, today))
    title = words("review_title")
    return _letter("review", restriction, settings, words, today, title, sections, done.reviewer_id)


def end_letter(restriction: Restriction, settings: Settings, *, today: date) -> Letter:
    """The restriction has ended by a decision of its own (not at a review or an appeal, whose
    letters say so, nor by lapsing: ``lapse_letter``): from when, and why. Nothing is left to
    appeal."""
    if restriction.ended_at is None:
        raise NotFound(f"restriction {restriction.id} has not ended")
    if restriction.lapsed_on is not None:  # its end reason is callguard's, never for a letter
        raise NotFound(f"restriction {restriction.id} lapsed: its letter is the lapse letter")
    words = _words(restriction, settings)
    ended_on = policy_dates.today(settings.timezone, now=restriction.ended_at)
    intro = words("end_intro", decided_on=words.day(restriction.decided_on))
    sections = [
        Section("", (intro,)),
        Section(words("outcome_heading"), (words("end_outcome", date=words.day(ended_on)),)),
    ]
    if restriction.end_reason:
        sections.append(
            Section(words("reasons_heading"), _staff_wrote(words, restriction.end_reason))
        )
    title = words("end_title")
    return _letter(
        "end", restriction, settings, words, today, title, sections, restriction.ended_by_id
    )


def lapse_letter(restriction: Restriction, settings: Settings, *, today: date) -> Letter:
    """The restriction lapsed (``restrictions.overdue.lapse``): we did not review it by the date
    we gave, so it ended on the day it lapsed. Its recorded end reason is callguard's own, for
    staff (a setting's name, ISO dates): the letter never gives it. Nothing is left to appeal."""
    lapsed_on = restriction.lapsed_on
    if lapsed_on is None:
        raise NotFound(f"restriction {restriction.id} has not lapsed")
    words = _words(restriction, settings)
    due_on = review_date(restriction, lapsed_on)  # the review due date it lapsed from
    intro = words("lapse_intro", decided_on=words.day(restriction.decided_on))
    outcome = words("lapse_outcome", review_due=words.day(due_on), lapsed_on=words.day(lapsed_on))
    sections = [Section("", (intro,)), Section(words("lapse_heading"), (outcome,))]
    title = words("lapse_title")
    # ended by callguard (ended_by_id None): signed by the team
    return _letter(
        "lapse", restriction, settings, words, today, title, sections, restriction.ended_by_id
    )


def build(
    sess: Session, restriction: Restriction, which: str, settings: Settings, *, today: date
) -> Letter:
    """The letter ``which`` (decision, appeal, review, end or lapse) about ``restriction``;
    NotFound when there is no decided appeal, no review, no end or no lapse to write about."""
    if which == "decision":
        return decision_letter(restriction, settings, today=today)
    if which == "appeal":
        return appeal_letter(sess, restriction, settings, today=today)
    if which == "review":
        return review_letter(sess, restriction, settings, today=today)
    if which == "end":
        return end_letter(restriction, settings, today=today)
    if which == "lapse":
        return lapse_letter(restriction, settings, today=today)
    raise Invalid(f"letter must be one of {', '.join(WHICH)}, not {which!r}")
