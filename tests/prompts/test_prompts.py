"""What callers hear is data: the same messages in every language, rendered with adjustments."""

from __future__ import annotations

from typing import Any

import pytest

import prompts

PARAMS: dict[str, Any] = {
    "organisation_name": "Example Homes",
    "postal_address": "1 Example Street, Derby DE1 1AA",
    "email": "customer.services@example.org",
    "website": "https://example.org/portal",
    "phone": "01332 000100",
    "emergency_phone": "01332 000999",
    "as_explained": "",
    "windows": "on Mondays from 10:00 to 12:00",
    "max_calls": 2,
    "representative": "Derby Advocacy Service",
}
# What the phone line says besides each ending kind's own message (restrictions.kinds).
KEYS = {
    "connecting",
    "spoc_connecting",
    "hold",
    "spoc_emergency_offer",
    "replay_offer",
    "danger",
    "emergency_offer",
    "emergency_connecting",
    "emergency_backup_connecting",
    "emergency_unreachable",
    "outside_window",
    "allowance_used",
    "spoc_unavailable",
    "voicemail_thanks",
    "voicemail_not_recorded",
    "goodbye",
    "warning",
    "closing",
    "team_busy",
    "unavailable",
}
WINDOWS = [{"days": ["thu", "tue"], "start": "10:00", "end": "12:00"}]


def test_english_has_every_message_the_phone_line_needs() -> None:
    from restrictions import kinds

    ending = {k.message for k in kinds.all_kinds() if k.message}
    assert prompts.catalogue("en-GB")["say"].keys() == KEYS | ending


@pytest.mark.parametrize("language", prompts.languages())
def test_every_language_has_the_same_messages_words_and_days(language: str) -> None:
    english, data = prompts.catalogue("en-GB"), prompts.catalogue(language)
    for table in ("say", "words", "day_names"):
        assert data[table].keys() == english[table].keys(), table
    assert data["day_names"].keys() == set(prompts.DAYS)
    # the file says everything about its language: its tag, its name for staff, its voice
    assert data["language"] == language
    assert data["name"].strip() and data["voice"].strip()
    assert prompts.display_name(language) == data["name"]


@pytest.mark.parametrize("language", prompts.languages())
def test_every_translation_needs_the_same_placeholders_as_english(language: str) -> None:
    english = prompts.catalogue("en-GB")["say"]
    for key, template in prompts.catalogue(language)["say"].items():
        assert prompts.placeholders(template) == prompts.placeholders(english[key]), key
        assert prompts.placeholders(template) <= PARAMS.keys(), key


@pytest.mark.parametrize("language", prompts.languages())
def test_every_message_renders_with_every_placeholder_filled(language: str) -> None:
    for key in prompts.catalogue("en-GB")["say"]:
        sp = prompts.speech(key, language, **PARAMS)
        assert "{" not in sp.text and "}" not in sp.text and sp.text.strip(), key
        voice = prompts.catalogue(language)["voice"]
        assert (sp.language, sp.voice, sp.slow) == (language, voice, False)


@pytest.mark.parametrize("language", prompts.languages())
def test_writing_only_says_how_to_write_in_every_language(language: str) -> None:
    text = prompts.speech("written_only", language, **PARAMS).text
    for where in ("postal_address", "email", "website"):
        assert PARAMS[where] in text


@pytest.mark.parametrize("language", prompts.languages())
def test_the_emergency_offer_says_press_1(language: str) -> None:
    assert "1" in prompts.speech("emergency_offer", language).text


def test_a_missing_placeholder_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="representative"):
        prompts.speech("representative_only", "en-GB", organisation_name="X")


def test_an_unknown_message_is_a_clear_error() -> None:
    with pytest.raises(KeyError, match="no_such_prompt"):
        prompts.speech("no_such_prompt", "en-GB")


@pytest.mark.parametrize("language", ["fr-FR", "cy", "", None])
def test_an_unsupported_language_falls_back_to_english(language: str | None) -> None:
    sp = prompts.speech("goodbye", language)
    assert (sp.language, sp.voice, sp.text) == (
        "en-GB",
        "Polly.Amy",
        "Thank you for calling. Goodbye.",
    )


@pytest.mark.parametrize("language", prompts.languages())
def test_slow_speech_travels_with_the_words(language: str) -> None:
    assert prompts.speech("goodbye", language, slow=True).slow
    assert not prompts.speech("goodbye", language).slow


def test_windows_are_described_in_week_order_in_the_callers_language() -> None:
    assert prompts.describe_windows(WINDOWS, "en-GB") == (
        "on Tuesdays and Thursdays from 10:00 to 12:00"
    )
    # Welsh: "ar" softens the first day (ddydd); "a" leaves the next as it is
    assert prompts.describe_windows(WINDOWS, "cy-GB") == (
        "ar ddydd Mawrth a dydd Iau o 10:00 tan 12:00"
    )
    # Polish: weekdays in the plural with their own preposition, "od … do …"
    assert prompts.describe_windows(WINDOWS, "pl-PL") == (
        "we wtorki i w czwartki od 10:00 do 12:00"
    )
    assert prompts.describe_windows(WINDOWS, "xx-XX") == (
        "on Tuesdays and Thursdays from 10:00 to 12:00"
    )


def test_several_windows_and_days_are_listed_naturally() -> None:
    windows = [
        {"days": ["mon", "wed", "fri"], "start": "09:00", "end": "10:00"},
        {"days": ["sat"], "start": "14:00", "end": "15:30"},
    ]
    assert prompts.describe_windows(windows, "en-GB") == (
        "on Mondays, Wednesdays and Fridays from 09:00 to 10:00 or on Saturdays from 14:00 to 15:30"
    )
    assert prompts.describe_windows(windows, "cy-GB") == (
        "ar ddydd Llun, dydd Mercher a dydd Gwener o 09:00 tan 10:00 "
        "neu ar ddydd Sadwrn o 14:00 tan 15:30"
    )
    assert prompts.describe_windows(windows, "pl-PL") == (
        "w poniedziałki, w środy i w piątki od 09:00 do 10:00 lub w soboty od 14:00 do 15:30"
    )
    assert prompts.describe_windows([], "en-GB") == "at any time"


def test_described_windows_fit_the_outside_window_message() -> None:
    windows = prompts.describe_windows(WINDOWS, "cy-GB")
    text = prompts.speech("outside_window", "cy-GB", **{**PARAMS, "windows": windows}).text
    assert "Gallwn gymryd eich galwadau ar ddydd Mawrth a dydd Iau o 10:00 tan 12:00." in text


@pytest.mark.parametrize("language", prompts.languages())
def test_imposed_restrictions_are_never_called_agreements(language: str) -> None:
    english = prompts.catalogue("en-GB")["say"]
    assert not any("agreed" in text or "agreement" in text for text in english.values())
    for key in ("written_only", "outside_window", "representative_only"):
        template = prompts.catalogue(language)["say"][key]
        assert "{as_explained}" in template, key  # the letter is mentioned only when sent


@pytest.mark.parametrize("language", prompts.languages())
def test_the_closing_statement_gives_the_emergency_number(language: str) -> None:
    assert "01332 000999" in prompts.speech("closing", language, **PARAMS).text
    assert "999" in prompts.speech("danger", language).text
