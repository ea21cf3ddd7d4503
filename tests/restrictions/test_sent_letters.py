"""Letters kept as sent (``restrictions.sent_letters``) and the one calendar of the policy's dates
(``restrictions.policy_dates``), in the domain: a letter is kept once, as it was when sent, and
never changed; a notice outside the decision-to-today range keeps nothing; ending a restriction
keeps an end letter, and recording the letter about a lapse keeps a lapse letter that never gives
callguard's own reason; and the letters and the appeal rules count the appeal's last day from the
same letter, the decision's or a later review's."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, date, datetime
from typing import Any

import pytest
import time_machine
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from restrictions import appeals, letters, overdue, policy_dates, reviews, sent_letters
from restrictions.calendar import add_working_days
from restrictions.errors import Conflict, Invalid, NotFound
from restrictions.lifecycle import Actor, add_restriction, create_customer
from restrictions.models import Customer, Restriction, SentLetter
from restrictions.settings import Settings

TEST = Actor(None, "test")
SETTINGS = Settings()
DECIDED = date(2026, 6, 2)  # a Tuesday; 20 working days on is Tuesday 30 June
NOTICE = date(2026, 6, 2)
REVIEWED = date(2026, 7, 1)  # after the decision letter's last day to appeal
REVIEW_LAST_DAY = date(2026, 7, 29)  # 20 working days after the review letter


def render(letter: letters.Letter) -> sent_letters.Rendered:
    """Stands in for the PDF (drawn by the web layer): the letter's words, and a version."""
    return sent_letters.Rendered(f"{letter.title}\n{letter.text()}".encode(), "test-template-1")


def customer(sess: Session) -> Customer:
    made = create_customer(
        sess, TEST, reference="SL-1", name="Pat Example", phone_numbers=["07400 100901"]
    )
    sess.commit()
    return made


def decided(sess: Session, **body: Any) -> Restriction:
    """A decision of 2 June 2026 awaiting its notice."""
    made = add_restriction(
        sess,
        TEST,
        customer(sess),
        {
            "kind": "written_only",
            "reason": "Abuse (4.2)",
            "decided_on": DECIDED.isoformat(),
            **body,
        },
        today=DECIDED,
    )
    sess.commit()
    return made


def notify(sess: Session, restriction: Restriction, sent_on: Any, today: date) -> SentLetter:
    kept = sent_letters.record_notice(
        sess, TEST, restriction, sent_on, "post", today=today, settings=SETTINGS, render=render
    )
    sess.commit()
    return kept


def kept(sess: Session) -> list[SentLetter]:
    return list(sess.scalars(select(SentLetter).order_by(SentLetter.id)))


# --- the calendar ---------------------------------------------------------------------------------


def test_the_policys_dates_come_from_one_calendar() -> None:
    assert policy_dates.appeal_last_day(date(2025, 12, 19)) == date(2026, 1, 21)  # Christmas
    assert policy_dates.appeal_decision_due(date(2026, 1, 5)) == date(2026, 2, 2)
    assert policy_dates.notice_due(date(2025, 12, 24)) == date(2025, 12, 30)  # two bank holidays
    assert policy_dates.review_due(date(2024, 2, 29)) == date(2025, 2, 28)
    # 23:30 UTC on 30 June is 00:30 on 1 July in London (BST)
    assert policy_dates.today(now=datetime(2026, 6, 30, 23, 30, tzinfo=UTC)) == date(2026, 7, 1)
    with time_machine.travel(datetime(2026, 6, 30, 23, 30, tzinfo=UTC), tick=False):
        assert policy_dates.today() == date(2026, 7, 1)
        assert policy_dates.today("UTC") == date(2026, 6, 30)


def test_the_appeal_counts_from_the_latest_letter_that_gave_the_right(sess: Session) -> None:
    made = decided(sess)
    assert policy_dates.appeal_window(made) is None  # nothing sent: nothing to appeal yet
    notify(sess, made, NOTICE.isoformat(), today=NOTICE)
    window = policy_dates.appeal_window(made)
    assert window == policy_dates.AppealWindow("decision", NOTICE, date(2026, 6, 30))
    reviews.review(
        sess, TEST, made, {"outcome": "continue", "notes": "Still needed"}, today=REVIEWED
    )
    window = policy_dates.appeal_window(made)
    assert window == policy_dates.AppealWindow("review", REVIEWED, REVIEW_LAST_DAY)
    assert appeals.appeal_deadline(made) == REVIEW_LAST_DAY


def test_applied_at_once_and_not_yet_notified_it_counts_from_the_decision(sess: Session) -> None:
    made = decided(sess, apply_now=True, urgent_reason="Threats (4.6)")
    window = policy_dates.appeal_window(made)
    assert window == policy_dates.AppealWindow("urgent_notice", DECIDED, date(2026, 6, 30))
    assert made.notice_due_on == policy_dates.notice_due(DECIDED) == date(2026, 6, 4)


# --- letters kept as sent -------------------------------------------------------------------------


def test_the_notice_keeps_the_decision_letter_as_it_was_sent(sess: Session) -> None:
    made = decided(sess)
    letter = notify(sess, made, NOTICE.isoformat(), today=date(2026, 6, 3))
    assert kept(sess) == [letter]
    assert (letter.kind, letter.method, letter.sent_on, letter.letter_on) == (
        "decision",
        "post",
        NOTICE,
        NOTICE,
    )
    assert letter.sha256 == hashlib.sha256(letter.pdf).hexdigest()
    assert letter.template_version == "test-template-1"
    assert (letter.restriction_id, letter.customer_id) == (made.id, made.customer_id)
    assert letter.language == "en-GB" and letter.recorded_by == "test"
    words = letter.pdf.decode()
    assert "Your appeal must reach us by 30 June 2026 at the latest" in words
    assert "We will review this decision by 2 June 2027 at the latest" in words
    # what was sent stays what was sent, though the record moves on
    reviews.review(
        sess,
        TEST,
        made,
        {"outcome": "continue", "notes": "Still needed", "next_review_on": "2027-01-15"},
        today=REVIEWED,
    )
    sess.commit()
    copy = sent_letters.sent_copy(sess, made, "decision")
    assert copy == letter and copy.pdf == letter.pdf
    assert "2 June 2027" in copy.pdf.decode() and "15 January 2027" not in copy.pdf.decode()
    assert "15 January 2027" in letters.decision_letter(made, SETTINGS, today=REVIEWED).text()


def test_a_kept_letter_cannot_be_changed(sess: Session) -> None:
    letter = notify(sess, decided(sess), NOTICE.isoformat(), today=NOTICE)
    with pytest.raises(DBAPIError, match="kept as they were sent"):
        with sess.begin_nested():
            sess.execute(text("UPDATE sent_letters SET pdf = 'forged'"))
    letter.method = "email"
    with pytest.raises(ValueError, match="cannot be changed"):
        sess.flush()
    sess.rollback()


@pytest.mark.parametrize(
    ("sent_on", "message"),
    [
        ("2026-06-01", "sent_on 2026-06-01 is before the decision (2026-06-02)"),
        ("2026-06-11", "sent_on 2026-06-11 is in the future"),
        ("01/06/2026", "sent_on must be a date like 2026-03-01"),
        (None, "sent_on is required"),
    ],
)
def test_a_notice_before_its_decision_or_after_today_keeps_nothing(
    sess: Session, sent_on: Any, message: str
) -> None:
    made = decided(sess)
    with pytest.raises(Invalid, match=re.escape(message)):
        notify(sess, made, sent_on, today=date(2026, 6, 10))
    sess.rollback()
    assert kept(sess) == []
    assert made.notice_sent_on is None and made.state == "awaiting_notice"
    count = sess.scalar(select(func.count()).select_from(SentLetter))
    assert count == 0


def test_ending_a_restriction_keeps_its_end_letter(sess: Session) -> None:
    made = decided(sess)
    notify(sess, made, NOTICE.isoformat(), today=NOTICE)
    with time_machine.travel(datetime(2026, 6, 10, 9, tzinfo=UTC), tick=False):
        ended = sent_letters.end(
            sess,
            TEST,
            made,
            {"reason": "Behaviour has improved", "letter_method": "hand"},
            today=date(2026, 6, 10),
            settings=SETTINGS,
            render=render,
        )
    sess.commit()
    assert made.state == "ended"
    assert [k.kind for k in kept(sess)] == ["decision", "end"]
    assert (ended.method, ended.sent_on) == ("hand", date(2026, 6, 10))
    words = ended.pdf.decode()
    assert "The end of the arrangements about how you contact us" in words
    assert "From 10 June 2026, you can contact us in all the usual ways again." in words
    assert "Behaviour has improved" in words
    assert sent_letters.sent_copy(sess, made, "end") == ended


def test_a_letter_method_that_is_not_known_ends_nothing(sess: Session) -> None:
    made = decided(sess)
    notify(sess, made, NOTICE.isoformat(), today=NOTICE)
    with pytest.raises(Invalid, match="letter_method must be one of post, email, hand, portal"):
        sent_letters.end(
            sess,
            TEST,
            made,
            {"reason": "Improved", "letter_method": "pigeon"},
            today=NOTICE,
            settings=SETTINGS,
            render=render,
        )
    assert made.ended_at is None


# --- a restriction that lapsed --------------------------------------------------------------------

REVIEW_DUE = date(2027, 6, 2)  # 12 months after the notice of 2 June 2026
LAPSED = date(2027, 8, 1)  # 60 days overdue: [reviews] lapse_after_days = 60
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
LAPSE_WORDS = {  # the review due date and the lapse, in the letter's language
    "en-GB": (
        "We said we would review those arrangements by 2 June 2027.",
        "So the arrangements ended on 1 August 2027.",
    ),
    "cy-GB": (
        "Roeddem wedi dweud y byddem yn adolygu'r trefniadau hynny erbyn 2 Mehefin 2027.",
        "Felly daeth y trefniadau i ben ar 1 Awst 2027.",
    ),
    "pl-PL": (
        "Zobowiązaliśmy się ponownie rozpatrzyć te ustalenia najpóźniej do 2 czerwca 2027.",
        "ustalenia przestały obowiązywać z dniem 1 sierpnia 2027.",
    ),
}


def lapsed(sess: Session, language: str = "en-GB") -> Restriction:
    """A restriction noticed on 2 June 2026 that lapsed on 1 August 2027, as the daily job
    lapses one."""
    who = create_customer(
        sess,
        TEST,
        reference="SL-1",
        name="Pat Example",
        phone_numbers=["07400 100901"],
        language=language,
    )
    made = add_restriction(
        sess,
        TEST,
        who,
        {
            "kind": "written_only",
            "reason": "Abuse (4.2)",
            "decided_on": DECIDED.isoformat(),
            "notice_sent_on": NOTICE.isoformat(),
        },
        today=NOTICE,
    )
    assert made.review_due_on == REVIEW_DUE
    overdue.lapse(sess, made, (LAPSED - REVIEW_DUE).days, 60, LAPSED)
    sess.commit()
    return made


def lapse_letter_sent(
    sess: Session, restriction: Restriction, body: dict[str, Any], today: date
) -> SentLetter:
    return sent_letters.lapse_letter_sent(
        sess, TEST, restriction, body, today=today, settings=SETTINGS, render=render
    )


def test_recording_a_lapse_letter_keeps_it_without_callguards_reason(sess: Session) -> None:
    made = lapsed(sess)
    assert made.end_reason is not None and "lapse_after_days" in made.end_reason
    with pytest.raises(NotFound, match="lapsed: its letter is the lapse letter"):
        letters.build(sess, made, "end", SETTINGS, today=LAPSED)  # never with its end reason
    sent_on = date(2027, 8, 2)
    letter = lapse_letter_sent(
        sess, made, {"sent_on": sent_on.isoformat(), "method": "email"}, date(2027, 8, 3)
    )
    sess.commit()
    assert made.lapse_letter_sent_on == sent_on
    assert (letter.kind, letter.method, letter.sent_on, letter.letter_on) == (
        "lapse",
        "email",
        sent_on,
        sent_on,
    )
    assert letter.sha256 == hashlib.sha256(letter.pdf).hexdigest()
    assert (letter.restriction_id, letter.language) == (made.id, "en-GB")
    assert [k.kind for k in kept(sess)] == ["lapse"]
    assert sent_letters.sent_copy(sess, made, "lapse") == letter
    assert sent_letters.KIND_NAMES["lapse"] == "Lapse of the restriction"
    words = letter.pdf.decode()
    assert "The arrangements about how you contact us have ended" in words
    assert "our decision of 2 June 2026" in words
    for said in LAPSE_WORDS["en-GB"]:
        assert said in words
    assert "From that day, you can contact us in all the usual ways again." in words
    assert "lapse_after_days" not in words and made.end_reason not in words
    assert not ISO_DATE.search(words), ISO_DATE.findall(words)
    assert "In our own words" not in words and "how to appeal" not in words  # no reason, no appeal
    assert "Customer Services Team" in words  # callguard ended it: the team signs

    # recorded once
    with pytest.raises(Conflict, match="was recorded as sent on 2027-08-02"):
        lapse_letter_sent(sess, made, {"sent_on": "2027-08-03"}, date(2027, 8, 3))
    sess.rollback()
    assert [k.kind for k in kept(sess)] == ["lapse"]


@pytest.mark.parametrize(
    ("body", "error", "message"),
    [
        ({"sent_on": "2027-07-31"}, Invalid, "must be between the lapse (2027-08-01) and today"),
        ({"sent_on": "2027-08-04"}, Invalid, "must be between the lapse (2027-08-01) and today"),
        ({}, Invalid, "sent_on is required"),
        ({"sent_on": "2027-08-02", "method": "pigeon"}, Invalid, "method must be one of post"),
        (
            {"sent_on": "2027-08-02", "method": "post", "letter_method": "email"},
            Invalid,
            "method and letter_method differ",
        ),
    ],
)
def test_a_lapse_letter_out_of_range_or_sent_by_no_known_method_keeps_nothing(
    sess: Session, body: dict[str, Any], error: type[Exception], message: str
) -> None:
    made = lapsed(sess)
    with pytest.raises(error, match=re.escape(message)):
        lapse_letter_sent(sess, made, body, date(2027, 8, 3))
    sess.rollback()
    assert kept(sess) == [] and made.lapse_letter_sent_on is None


def test_only_a_restriction_that_lapsed_has_a_lapse_letter(sess: Session) -> None:
    made = decided(sess)
    notify(sess, made, NOTICE.isoformat(), today=NOTICE)
    with pytest.raises(NotFound, match="has not lapsed"):
        letters.build(sess, made, "lapse", SETTINGS, today=NOTICE)
    with pytest.raises(Conflict, match="has not lapsed"):
        lapse_letter_sent(sess, made, {"sent_on": NOTICE.isoformat()}, NOTICE)
    sess.rollback()
    assert [k.kind for k in kept(sess)] == ["decision"]


def test_letter_method_is_another_name_for_the_lapse_letters_method(sess: Session) -> None:
    made = lapsed(sess)
    letter = lapse_letter_sent(
        sess, made, {"sent_on": "2027-08-01", "letter_method": "hand"}, LAPSED
    )
    assert (letter.method, letter.sent_on) == ("hand", LAPSED)


@pytest.mark.parametrize("language", ["en-GB", "cy-GB", "pl-PL"])
def test_the_lapse_letter_is_written_in_the_customers_language(
    sess: Session, language: str
) -> None:
    made = lapsed(sess, language)
    letter = lapse_letter_sent(sess, made, {"sent_on": "2027-08-02"}, date(2027, 8, 2))
    assert (letter.language, letter.method) == (language, "post")
    built = letters.lapse_letter(made, SETTINGS, today=date(2027, 8, 2))
    assert built.which == "lapse" and built.signatory  # signed by the team
    assert built.title == letters._Words(language, {})("lapse_title")
    text = built.text()
    for said in LAPSE_WORDS[language]:
        assert said in text, said
    assert "lapse_after_days" not in text and not ISO_DATE.search(text)
    assert letter.pdf.decode() == f"{built.title}\n{text}"


def test_an_appeal_after_a_review_is_judged_against_the_review_letters_deadline(
    sess: Session,
) -> None:
    made = decided(sess)
    notify(sess, made, NOTICE.isoformat(), today=NOTICE)
    _, review_letter = sent_letters.review(
        sess,
        TEST,
        made,
        {"outcome": "continue", "notes": "Still needed"},
        today=REVIEWED,
        settings=SETTINGS,
        render=render,
    )
    sess.commit()
    assert review_letter.kind == "review" and review_letter.letter_on == REVIEWED
    assert "Your appeal must reach us by 29 July 2026 at the latest" in review_letter.pdf.decode()
    assert REVIEW_LAST_DAY == add_working_days(REVIEWED, 20)
    late = REVIEW_LAST_DAY.replace(day=30)
    with pytest.raises(Invalid, match=r"review outcome letter of 2026-07-01"):
        appeals.lodge_appeal(
            sess, TEST, made, {"grounds": "Unfair", "lodged_on": late.isoformat()}, today=late
        )
    appeal = appeals.lodge_appeal(
        sess,
        TEST,
        made,
        {"grounds": "Unfair", "lodged_on": REVIEW_LAST_DAY.isoformat()},
        today=late,
    )
    assert appeal.late_reason is None  # in time: the decision letter's 30 June does not count
    assert appeal.due_on == policy_dates.appeal_decision_due(REVIEW_LAST_DAY) == date(2026, 8, 26)
