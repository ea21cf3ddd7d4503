"""What a caller hears is said in their language and pace, with addresses read out as words, and
a decision's letter mentioned only when it was sent."""

from __future__ import annotations

from dataclasses import replace

from restrictions.settings import Organisation, Settings, spoken_address, spoken_number
from restrictions.speech import Listener, danger, say

SETTINGS = Settings()


def test_the_letter_is_mentioned_only_when_it_was_sent() -> None:
    sent = say("written_only", Listener(), SETTINGS, letter=True).text
    unsent = say("written_only", Listener(), SETTINGS, letter=False).text
    assert "We explained this decision in our letter to you." in sent
    assert "letter" not in unsent
    welsh = say("representative_only", Listener("cy-GB"), SETTINGS, representative="X", letter=True)
    assert "yn ein llythyr atoch" in welsh.text


def test_web_and_email_addresses_are_read_out_not_spelt() -> None:
    text = say("written_only", Listener(), SETTINGS).text
    assert "customer dot services at example dot org" in text
    assert "www dot example dot org slash contact" in text
    assert "@" not in text and "https://" not in text
    assert "1 Example Street, Derby DE1 1AA" in text  # and the postal address


def test_the_spoken_forms_can_be_configured() -> None:
    organisation = replace(
        Organisation(), spoken_email="cysylltu at enghraifft dot cymru", spoken_website="our site"
    )
    text = say("written_only", Listener("cy-GB"), replace(SETTINGS, organisation=organisation))
    assert "cysylltu at enghraifft dot cymru" in text.text and "our site" in text.text


def test_spoken_helpers() -> None:
    assert (
        spoken_address("https://www.example.org/contact/")
        == "www dot example dot org slash contact"
    )
    assert spoken_address("a-b@example.org") == "a dash b at example dot org"
    assert spoken_number("+441332000999") == "01332 000999"


def test_the_danger_line_is_in_the_callers_language_unless_the_organisation_sets_its_own() -> None:
    welsh = danger(Listener("cy-GB", slow=True), SETTINGS)
    assert "999" in welsh.text and welsh.language == "cy-GB" and welsh.slow
    custom = replace(
        SETTINGS,
        organisation=replace(Organisation(), danger_message="In danger? Hang up and call 999."),
    )
    assert danger(Listener("pl-PL"), custom).text == "In danger? Hang up and call 999."


def test_no_windows_means_any_time() -> None:
    text = say("allowance_used", Listener(), SETTINGS, max_calls=2, windows=[], letter=False).text
    assert "You can call again from Monday, at any time." in text
