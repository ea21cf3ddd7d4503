"""What the letters say: the decision (policy 10.2), the outcome of an appeal (section 12) and of a
review (10.4), in the customer's language, built from the record and the organisation's settings;
and the settings the letters need (who hears appeals, the Housing Ombudsman)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy.orm import Session

import prompts
from restrictions import appeals, kinds, letters, reviews
from restrictions.calendar import add_months, add_working_days
from restrictions.errors import Invalid, NotFound
from restrictions.lifecycle import Actor, add_restriction, create_customer
from restrictions.models import Customer, Restriction
from restrictions.settings import (
    Ombudsman,
    Organisation,
    Settings,
    SettingsError,
    parse_settings,
)
from restrictions.staff import create_user

TEST = Actor(None, "test")
SETTINGS = Settings()
LANGUAGES = ("en-GB", "cy-GB", "pl-PL")
DECIDED = date(2025, 12, 17)
SENT = date(2025, 12, 19)  # 20 working days on crosses Christmas, Boxing Day and New Year's Day
TODAY = date(2026, 2, 2)
WINDOWS = [{"days": ["thu", "tue"], "start": "10:00", "end": "12:00"}]
# The dates as the letters must write them, spelt out here independently of the prompt files.
MONTHS = {
    "en-GB": "January February March April May June July August September October November "
    "December",
    "cy-GB": "Ionawr Chwefror Mawrth Ebrill Mai Mehefin Gorffennaf Awst Medi Hydref Tachwedd "
    "Rhagfyr",
    "pl-PL": "stycznia lutego marca kwietnia maja czerwca lipca sierpnia września października "
    "listopada grudnia",
}
ALLOWANCE = {
    "en-GB": "The most calls you can make to us in one week, Monday to Sunday, is 3.",
    "cy-GB": "Y nifer mwyaf o alwadau y gallwch eu gwneud i ni mewn un wythnos, o ddydd Llun i "
    "ddydd Sul, yw 3.",
    "pl-PL": "Maksymalna liczba połączeń, które mogą Państwo wykonać do nas w ciągu jednego "
    "tygodnia (od poniedziałku do niedzieli), wynosi 3.",
}
SENT_WHEN = {
    "en-GB": "This applies from the day this letter is sent.",
    "cy-GB": "Mae hyn yn berthnasol o'r diwrnod yr anfonir y llythyr hwn.",
    "pl-PL": "Obowiązuje to od dnia wysłania tego listu.",
}


def in_words(day: date, language: str) -> str:
    return f"{day.day} {MONTHS[language].split()[day.month - 1]} {day.year}"


def customer(sess: Session, language: str = "en-GB", reference: str = "HMS-1") -> Customer:
    made = create_customer(
        sess,
        TEST,
        reference=reference,
        name="Pat Example",
        phone_numbers=["07400 100001"],
        language=language,
    )
    sess.commit()
    return made


def restrict(sess: Session, who: Customer, **body: Any) -> Restriction:
    body.setdefault("reason", "Shouted at a repairs operative on 3 December (policy 4.3)")
    body.setdefault("decided_on", DECIDED.isoformat())
    body.setdefault("notice_sent_on", SENT.isoformat())
    made = add_restriction(sess, TEST, who, body, today=TODAY)
    sess.commit()
    return made


def decision(restriction: Restriction, today: date = TODAY) -> str:
    return letters.decision_letter(restriction, SETTINGS, today=today).text()


# --- the decision letter ------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_decision_letter_states_every_required_element(sess: Session, language: str) -> None:
    restriction = restrict(
        sess,
        customer(sess, language),
        kind="limited_contact",
        windows=WINDOWS,
        max_calls_per_week=3,
    )
    letter = letters.decision_letter(restriction, SETTINGS, today=TODAY)
    text = letter.text()

    assert (letter.language, letter.date, letter.dated) == (
        language,
        SENT,
        in_words(SENT, language),
    )
    assert "Shouted at a repairs operative on 3 December (policy 4.3)" in text
    assert prompts.describe_windows(WINDOWS, language) in text
    assert ALLOWANCE[language] in text
    assert in_words(SENT, language) in text  # it takes effect the day the notice was sent
    assert in_words(add_months(SENT, 12), language) in text  # the review
    assert "The Head of Housing Services" in text and "appeals@example.org" in text
    last_day = add_working_days(SENT, appeals.APPEAL_WORKING_DAYS)
    assert last_day == date(2026, 1, 21)
    assert in_words(last_day, language) in text
    assert "Housing Ombudsman Service" in text and "0300 111 3000" in text
    assert "PO Box 1484, Unit D, Preston PR2 0ET" in text
    assert "https://www.housing-ombudsman.org.uk" in text
    assert "info@housing-ombudsman.org.uk" in text
    assert "01332 000999" in text  # the emergency repairs line, as it is dialled
    assert "999." in text.replace("01332 000999", "")


def shown(field: kinds.Field, value: Any, language: str) -> str:
    """What the letter must show of a field's value, worked out here: a number as it is dialled,
    permitted times in words, anything else as it is."""
    if field.type is kinds.FieldType.WINDOWS:
        return prompts.describe_windows(value, language)
    if field.type is kinds.FieldType.CONTACT:
        return letters.dialled(str(value))
    return str(value)


@pytest.mark.parametrize("language", prompts.languages())
@pytest.mark.parametrize("kind", [k.name for k in kinds.all_kinds()])
def test_what_is_restricted_is_in_words_with_its_details(
    sess: Session, language: str, kind: str
) -> None:
    declared = kinds.get(kind)
    restriction = restrict(sess, customer(sess, language), kind=kind, **declared.example)
    letter = letters.decision_letter(restriction, SETTINGS, today=TODAY)
    table = prompts.catalogue(language)["letter"]
    what = letter.sections[2]
    assert what.heading == table["what_heading"]
    expected = table["kinds"][kind].split("{")[0]
    assert what.paragraphs[0].startswith(expected)
    for field in declared.fields:  # each of the kind's own fields, from its example
        value = declared.example.get(field.name)
        if value is not None:
            assert shown(field, value, language) in what.paragraphs[0], field.name
    assert "{" not in letter.text() and "}" not in letter.text()


def test_a_spoc_who_is_a_staff_member_is_named_and_reached_through_our_number(
    sess: Session,
) -> None:
    create_user(sess, "jo.bloggs", "agent", display_name="Jo Bloggs")
    restriction = restrict(sess, customer(sess), kind="spoc", spoc="jo.bloggs")
    assert restriction.details["spoc"] == "client:jo.bloggs"
    text = decision(restriction)
    assert "Your named contact is Jo Bloggs." in text  # by name, never by their login
    assert "phone us on 01332 000100" in text
    assert "client:" not in text and "jo.bloggs" not in text


def test_a_spoc_abroad_is_shown_in_international_format(sess: Session) -> None:
    restriction = restrict(sess, customer(sess), kind="spoc", spoc="+33 1 42 68 53 00")
    assert "+33 1 42 68 53 00" in decision(restriction)


@pytest.mark.parametrize("language", LANGUAGES)
def test_before_its_notice_it_applies_from_the_day_the_letter_is_sent(
    sess: Session, language: str
) -> None:
    restriction = restrict(sess, customer(sess, language), kind="written_only", notice_sent_on=None)
    letter = letters.decision_letter(restriction, SETTINGS, today=TODAY)
    assert letter.date == TODAY  # no notice on record: dated today
    assert SENT_WHEN[language] in letter.text()
    assert in_words(add_months(TODAY, 12), language) in letter.text()  # reviewed a year on
    last_day = add_working_days(TODAY, appeals.APPEAL_WORKING_DAYS)
    assert in_words(last_day, language) in letter.text()


def test_applied_at_once_it_applies_from_the_decision(sess: Session) -> None:
    restriction = restrict(
        sess,
        customer(sess),
        kind="written_only",
        notice_sent_on=None,
        apply_now=True,
        urgent_reason="Threatened staff (4.6)",
    )
    text = decision(restriction)
    assert f"This applies from {in_words(DECIDED, 'en-GB')}." in text
    assert f"by {in_words(add_months(DECIDED, 12), 'en-GB')} at the latest" in text


def test_a_recorded_review_date_is_the_one_given(sess: Session) -> None:
    restriction = restrict(sess, customer(sess), kind="warning")
    restriction.review_due_on = date(2026, 6, 30)
    assert "We will review this decision by 30 June 2026 at the latest" in decision(restriction)


def test_a_language_we_do_not_write_falls_back_to_british_english(sess: Session) -> None:
    restriction = restrict(sess, customer(sess), kind="warning")
    restriction.customer.language = "fr-FR"
    letter = letters.decision_letter(restriction, SETTINGS, today=TODAY)
    assert letter.language == "en-GB"
    assert letter.title == "Our decision about how you contact us"


def test_the_organisations_settings_are_what_the_letter_says(sess: Session) -> None:
    settings = Settings(
        emergency_line="+441632960999",
        organisation=Organisation(
            name="Derby Homes",
            appeals_to="The Appeals Panel",
            appeals_email="panel@derby.example",
        ),
        ombudsman=Ombudsman(name="Test Ombudsman", phone="0300 000 0000"),
    )
    restriction = restrict(sess, customer(sess), kind="warning")
    text = letters.decision_letter(restriction, settings, today=TODAY).text()
    for expected in (
        "Derby Homes",
        "The Appeals Panel",
        "panel@derby.example",
        "Test Ombudsman",
        "0300 000 0000",
        "01632 960999",
    ):
        assert expected in text


@pytest.mark.parametrize(
    ("language", "day", "words"),
    [
        ("en-GB", date(2026, 11, 26), "26 November 2026"),
        ("cy-GB", date(2026, 11, 26), "26 Tachwedd 2026"),
        ("pl-PL", date(2026, 11, 26), "26 listopada 2026"),
        ("pl-PL", date(2027, 1, 1), "1 stycznia 2027"),
        ("xx-XX", date(2026, 5, 9), "9 May 2026"),
    ],
)
def test_dates_are_in_words_in_the_letters_language(language: str, day: date, words: str) -> None:
    assert letters.date_in_words(day, language) == words


# --- the letters are data: one file per language --------------------------------------------------


@pytest.mark.parametrize("language", prompts.languages())
def test_every_language_has_every_letter_text_with_the_same_placeholders(language: str) -> None:
    english = prompts.catalogue("en-GB")["letter"]
    table = prompts.catalogue(language)["letter"]
    assert table.keys() == english.keys()
    assert table["kinds"].keys() == english["kinds"].keys()
    assert len(table["months"]) == 12
    for key, template in table.items():
        if isinstance(template, str):
            assert prompts.placeholders(template) <= prompts.placeholders(english[key]) | {
                "name"
            }, key
    for key, template in table["kinds"].items():
        assert prompts.placeholders(template) == prompts.placeholders(english["kinds"][key]), key


@pytest.mark.parametrize("language", prompts.languages())
def test_every_kind_of_restriction_is_explained_in_every_language(language: str) -> None:
    explained = prompts.catalogue(language)["letter"]["kinds"]
    assert {k.name for k in kinds.all_kinds()} <= explained.keys()


# --- appeals and reviews --------------------------------------------------------------------------


def appealed(sess: Session, restriction: Restriction, outcome: str, **body: Any) -> None:
    appeal = appeals.lodge_appeal(
        sess,
        TEST,
        restriction,
        {"grounds": "I was provoked", "lodged_on": "2026-01-05"},
        today=TODAY,
    )
    appeals.decide_appeal(
        sess,
        TEST,
        appeal,
        {"outcome": outcome, "notes": "The recordings bear it out", **body},
        today=TODAY,
    )
    sess.commit()


@pytest.mark.parametrize("language", LANGUAGES)
def test_an_upheld_appeal_says_the_terms_stand(sess: Session, language: str) -> None:
    restriction = restrict(sess, customer(sess, language), kind="spoc", spoc="+441332000555")
    appealed(sess, restriction, "upheld")
    letter = letters.build(sess, restriction, "appeal", SETTINGS, today=TODAY)
    text = letter.text()
    assert letter.which == "appeal" and letter.date == TODAY
    assert letter.title == prompts.catalogue(language)["letter"]["appeal_title"]
    assert in_words(date(2026, 1, 5), language) in text  # when it was lodged
    assert in_words(DECIDED, language) in text  # which decision
    assert "01332 000555" in text  # the terms that stand
    assert "The recordings bear it out" in text
    assert "Housing Ombudsman Service" in text and "01332 000999" in text and "999." in text


def test_an_overturned_appeal_says_it_has_ended(sess: Session) -> None:
    restriction = restrict(sess, customer(sess), kind="written_only")
    appealed(sess, restriction, "overturned")
    text = letters.build(sess, restriction, "appeal", SETTINGS, today=TODAY).text()
    assert f"From {in_words(TODAY, 'en-GB')}, you can contact us in all the usual ways" in text
    assert "in writing only" not in text


def test_a_varied_appeal_gives_the_new_terms(sess: Session) -> None:
    restriction = restrict(sess, customer(sess), kind="written_only")
    appealed(
        sess,
        restriction,
        "varied",
        successor={"kind": "limited_contact", "reason": "Varied on appeal", "windows": WINDOWS},
    )
    text = letters.build(sess, restriction, "appeal", SETTINGS, today=TODAY).text()
    assert "We have decided to change the arrangements." in text
    assert "You can phone us only on Tuesdays and Thursdays from 10:00 to 12:00." in text
    assert "This applies from the day this letter is sent." in text


def test_only_a_decided_appeal_has_a_letter(sess: Session) -> None:
    restriction = restrict(sess, customer(sess), kind="warning")
    with pytest.raises(NotFound, match="no decided appeal"):
        letters.build(sess, restriction, "appeal", SETTINGS, today=TODAY)
    appeals.lodge_appeal(
        sess, TEST, restriction, {"grounds": "Unfair", "lodged_on": "2026-01-05"}, today=TODAY
    )
    with pytest.raises(NotFound, match="no decided appeal"):
        letters.build(sess, restriction, "appeal", SETTINGS, today=TODAY)


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_continued_review_gives_the_next_review_and_how_to_appeal(
    sess: Session, language: str
) -> None:
    restriction = restrict(
        sess, customer(sess, language), kind="representative_only", representative="Derby Advocacy"
    )
    reviews.review(
        sess,
        TEST,
        restriction,
        {"outcome": "continue", "notes": "Still needed", "next_review_on": "2026-08-01"},
        today=TODAY,
    )
    sess.commit()
    letter = letters.build(sess, restriction, "review", SETTINGS, today=TODAY)
    text = letter.text()
    assert letter.title == prompts.catalogue(language)["letter"]["review_title"]
    assert "Derby Advocacy" in text and "Still needed" in text
    assert in_words(date(2026, 8, 1), language) in text
    last_day = add_working_days(TODAY, appeals.APPEAL_WORKING_DAYS)
    assert in_words(last_day, language) in text
    assert "The Head of Housing Services" in text


def test_an_ended_review_says_so_and_offers_no_appeal(sess: Session) -> None:
    restriction = restrict(sess, customer(sess), kind="written_only")
    reviews.review(
        sess, TEST, restriction, {"outcome": "end", "notes": "Calm for a year"}, today=TODAY
    )
    sess.commit()
    text = letters.build(sess, restriction, "review", SETTINGS, today=TODAY).text()
    assert "We have decided to end the arrangements." in text
    assert "how to appeal" not in text
    assert "Housing Ombudsman Service" in text


def test_a_varied_review_gives_the_new_terms(sess: Session) -> None:
    restriction = restrict(sess, customer(sess), kind="written_only")
    body = {
        "outcome": "vary",
        "notes": "Less strict now",
        "successor": {"kind": "no_engagement", "reason": "Varied", "issue": "the fence"},
    }
    reviews.review(sess, TEST, restriction, body, today=TODAY)
    sess.commit()
    text = letters.build(sess, restriction, "review", SETTINGS, today=TODAY).text()
    assert "We will not discuss this issue with you any further: the fence." in text
    assert "Less strict now" in text


def test_only_a_reviewed_restriction_has_a_review_letter(sess: Session) -> None:
    restriction = restrict(sess, customer(sess), kind="warning")
    with pytest.raises(NotFound, match="has not been reviewed"):
        letters.build(sess, restriction, "review", SETTINGS, today=TODAY)


def test_an_unknown_letter_is_invalid(sess: Session) -> None:
    restriction = restrict(sess, customer(sess), kind="warning")
    with pytest.raises(Invalid, match="decision, appeal, review"):
        letters.build(sess, restriction, "apology", SETTINGS, today=TODAY)


# --- the settings letters need --------------------------------------------------------------------


def test_the_ombudsman_and_who_hears_appeals_default_sensibly() -> None:
    settings = parse_settings({})
    assert settings.ombudsman == Ombudsman(
        name="Housing Ombudsman Service",
        address="PO Box 1484, Unit D, Preston PR2 0ET",
        phone="0300 111 3000",
        website="https://www.housing-ombudsman.org.uk",
        email="info@housing-ombudsman.org.uk",
    )
    assert settings.organisation.appeals_to == "The Head of Housing Services"
    assert settings.organisation.appeals_email == "appeals@example.org"


def test_the_ombudsman_and_appeals_are_read_from_the_config_file() -> None:
    settings = parse_settings(
        {
            "organisation": {
                "name": "Derby Homes",
                "phone": "01332 000200",
                "appeals_to": "The Appeals Officer",
                "appeals_email": "appeals@derby.example",
            },
            "ombudsman": {"phone": "0300 000 1111", "email": "help@ombudsman.example"},
            "routes": {"emergency": "01332 000998"},
        }
    )
    org = settings.organisation
    assert (org.name, org.phone, org.appeals_to, org.appeals_email) == (
        "Derby Homes",
        "+441332000200",
        "The Appeals Officer",
        "appeals@derby.example",
    )
    assert settings.emergency_line == "+441332000998"
    assert settings.ombudsman == Ombudsman(phone="0300 000 1111", email="help@ombudsman.example")


def test_an_ombudsman_that_is_not_a_table_is_a_settings_error() -> None:
    with pytest.raises(SettingsError, match="ombudsman"):
        parse_settings({"ombudsman": "Housing Ombudsman"})
