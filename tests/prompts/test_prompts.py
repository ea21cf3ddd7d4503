"""What callers hear is data, the same set of messages in every language."""

from __future__ import annotations

import pytest

import prompts

PARAMS = {
    "organisation_name": "Example Homes",
    "postal_address": "1 Example Street",
    "email": "a@b.org",
    "website": "https://example.org",
    "phone": "+441332000100",
    "windows": "Monday 10:00 to 12:00",
    "max_calls": 2,
    "representative": "Derby Advocacy",
}


def test_every_language_has_the_same_messages_and_days() -> None:
    english = prompts.catalogue("en-GB")
    for language in prompts.SUPPORTED:
        data = prompts.catalogue(language)
        assert data["say"].keys() == english["say"].keys(), language
        assert data["day_names"].keys() == english["day_names"].keys(), language
        assert data["language"] == language


@pytest.mark.parametrize("language", prompts.SUPPORTED)
def test_every_message_renders_with_every_placeholder_filled(language: str) -> None:
    for key in prompts.catalogue(language)["say"]:
        text = prompts.speech(key, language, **PARAMS).text
        assert "{" not in text and text.strip(), (language, key)


def test_a_missing_placeholder_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="representative"):
        prompts.speech("representative_only", "en-GB", organisation_name="X")


def test_unknown_language_falls_back_to_english_and_slow_is_kept() -> None:
    sp = prompts.speech("goodbye", "fr-FR", slow=True)
    assert (sp.language, sp.voice, sp.slow) == ("en-GB", "Polly.Amy", True)


def test_windows_are_described_in_the_callers_language() -> None:
    windows = [{"days": ["tue", "thu"], "start": "10:00", "end": "12:00"}]
    assert prompts.describe_windows(windows, "en-GB") == "Tuesday and Thursday 10:00 to 12:00"
    assert prompts.describe_windows(windows, "cy-GB") == "dydd Mawrth a dydd Iau 10:00 i 12:00"
    assert "we wtorek" in prompts.describe_windows(windows, "pl-PL")
