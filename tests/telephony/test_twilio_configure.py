"""``callguard twilio configure [--apply]``: the number's and the TaskRouter workspace's callback
URLs, shown as current → wanted and set only with --apply, through Twilio's REST API faked at the
HTTP layer (tests/fake_twilio.py)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from telephony.cli import main
from tests.conftest import LANDLORD_NUMBER, PUBLIC_BASE_URL
from tests.fake_twilio import ACCOUNT_SID, FakeTwilio

pytestmark = pytest.mark.usefixtures("app")

WORKSPACE = "WS" + "0" * 31 + "7"
INCOMING = f"{PUBLIC_BASE_URL}/twilio/voice/incoming"
STATUS = f"{PUBLIC_BASE_URL}/twilio/voice/status#rc=3&rp=all&ct=2000&rt=5000"
EVENTS = f"{PUBLIC_BASE_URL}/twilio/taskrouter/events"
EVENTS_FILTER = (
    "task.created,task.updated,task.canceled,task.completed,task.wrapup,reservation.accepted,"
    "reservation.rejected,reservation.timeout,reservation.canceled,reservation.wrapup,"
    "reservation.completed"
)
BIN = "https://handler.twilio.com/twiml/EH" + "0" * 32


@pytest.fixture
def number(fake_twilio: FakeTwilio) -> dict[str, Any]:
    """The landlord's number as Twilio holds it before callguard: bought, pointed nowhere yet."""
    return fake_twilio.add_number(
        LANDLORD_NUMBER,
        voice_url="https://demo.twilio.com/welcome/voice/",  # what a new number answers with
        voice_method="GET",
        voice_fallback_url=BIN,
        status_callback="",
        status_callback_method="GET",
    )


@pytest.fixture
def workspace(app: Flask, fake_twilio: FakeTwilio) -> dict[str, Any]:
    app.config["TWILIO_WORKSPACE_SID"] = WORKSPACE
    return fake_twilio.workspace(WORKSPACE, event_callback_url=None, events_filter=None)


def configure(runner: Any, *args: str) -> Any:
    return runner.invoke(main, ["twilio", "configure", *args])


def row(output: str, name: str) -> str:
    """The table's line for one setting."""
    found = [line for line in output.splitlines() if line.split()[1:2] == [name]]
    assert len(found) == 1, output
    return found[0]


def test_a_dry_run_shows_current_and_wanted_values_and_changes_nothing(
    runner: Any, fake_twilio: FakeTwilio, number: dict[str, Any], workspace: dict[str, Any]
) -> None:
    result = configure(runner)
    assert result.exit_code == 0, result.output
    out = result.output
    voice = row(out, "VoiceUrl")
    assert "change" in voice and f"https://demo.twilio.com/welcome/voice/ → {INCOMING}" in voice
    assert "change" in row(out, "VoiceMethod") and "GET → POST" in row(out, "VoiceMethod")
    assert f"(unset) → {STATUS}" in row(out, "StatusCallback")
    assert "keep" in row(out, "VoiceFallbackUrl") and BIN in row(out, "VoiceFallbackUrl")
    assert f"(unset) → {EVENTS}" in row(out, "EventCallbackUrl")
    assert f"(unset) → {EVENTS_FILTER}" in row(out, "EventsFilter")
    assert "dry run, nothing was changed" in out and "--apply" in out
    assert fake_twilio.posts() == []
    lookup = [r for r in fake_twilio.requests if r.path.endswith("/IncomingPhoneNumbers.json")]
    assert [r.query.get("PhoneNumber") for r in lookup] == [[LANDLORD_NUMBER]]
    assert [r.method for r in fake_twilio.requests if "/Workspaces/" in r.path] == ["GET"]
    assert number["voice_url"] == "https://demo.twilio.com/welcome/voice/"


def test_apply_posts_exactly_the_fields_callguard_sets(
    runner: Any, fake_twilio: FakeTwilio, number: dict[str, Any], workspace: dict[str, Any]
) -> None:
    result = configure(runner, "--apply")
    assert result.exit_code == 0, result.output
    assert "changed 6 setting(s)" in result.output
    posts = fake_twilio.posts()
    assert [p.path for p in posts] == [
        f"/2010-04-01/Accounts/{ACCOUNT_SID}/IncomingPhoneNumbers/{number['sid']}.json",
        f"/v1/Workspaces/{WORKSPACE}",
    ]
    assert posts[0].form == {
        "VoiceUrl": [INCOMING],
        "VoiceMethod": ["POST"],
        "StatusCallback": [STATUS],
        "StatusCallbackMethod": ["POST"],
    }, "the fallback is left as it is"
    assert posts[1].form == {"EventCallbackUrl": [EVENTS], "EventsFilter": [EVENTS_FILTER]}
    assert number["voice_fallback_url"] == BIN


def test_running_apply_twice_changes_nothing_the_second_time(
    runner: Any, fake_twilio: FakeTwilio, number: dict[str, Any], workspace: dict[str, Any]
) -> None:
    assert configure(runner, "--apply").exit_code == 0
    assert len(fake_twilio.posts()) == 2
    fake_twilio.requests.clear()
    workspace["events_filter"] = EVENTS_FILTER.replace(",", ", ")  # as Twilio may give it back
    again = configure(runner, "--apply")
    assert again.exit_code == 0, again.output
    assert fake_twilio.posts() == []
    assert "nothing to change" in again.output
    for name in ("VoiceUrl", "VoiceMethod", "StatusCallback", "EventCallbackUrl", "EventsFilter"):
        assert row(again.output, name).split()[0] == "ok"


def test_a_value_on_another_host_is_not_overwritten_without_force(
    runner: Any, fake_twilio: FakeTwilio, number: dict[str, Any], workspace: dict[str, Any]
) -> None:
    number["voice_url"] = "https://old-ivr.example.net/answer"
    workspace["event_callback_url"] = "https://reports.example.net/taskrouter"
    refused = configure(runner, "--apply")
    assert refused.exit_code == 1
    assert "REFUSED" in row(refused.output, "VoiceUrl")
    assert "old-ivr.example.net" in row(refused.output, "VoiceUrl")
    assert "REFUSED" in row(refused.output, "EventCallbackUrl")
    assert "kept with VoiceUrl" in row(refused.output, "VoiceMethod")
    assert "nothing was changed" in refused.output and "--force" in refused.output
    assert "VoiceUrl, EventCallbackUrl" in refused.output
    assert fake_twilio.posts() == [], "not even the settings nobody else had set"
    assert number["voice_url"] == "https://old-ivr.example.net/answer"

    dry = configure(runner)
    assert dry.exit_code == 0 and "--apply would refuse" in dry.output

    forced = configure(runner, "--apply", "--force")
    assert forced.exit_code == 0, forced.output
    assert number["voice_url"] == INCOMING
    assert workspace["event_callback_url"] == EVENTS


def test_callguards_own_host_and_twilios_placeholder_are_changed_without_force(
    runner: Any, fake_twilio: FakeTwilio, number: dict[str, Any]
) -> None:
    number["status_callback"] = f"{PUBLIC_BASE_URL}/twilio/voice/status"  # no retries yet
    result = configure(runner, "--apply")
    assert result.exit_code == 0, result.output
    (post,) = fake_twilio.posts()
    assert post.param("VoiceUrl") == INCOMING  # was demo.twilio.com
    assert post.param("StatusCallback") == STATUS


def test_without_a_workspace_sid_the_workspace_is_skipped(
    runner: Any, fake_twilio: FakeTwilio, number: dict[str, Any]
) -> None:
    result = configure(runner, "--apply")
    assert result.exit_code == 0, result.output
    assert "TaskRouter workspace: skipped (TWILIO_WORKSPACE_SID is not set)" in result.output
    assert [p.path.rsplit("/", 1)[-1] for p in fake_twilio.posts()] == [f"{number['sid']}.json"]
    assert not [r for r in fake_twilio.requests if "Workspaces" in r.path]


def test_a_number_not_in_the_account_is_one_clear_error_line(
    runner: Any, fake_twilio: FakeTwilio
) -> None:
    fake_twilio.add_number(LANDLORD_NUMBER + "9")  # Twilio's filter matches it too: not ours
    result = configure(runner, "--apply")
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if " werkzeug: " not in line]  # fake logs
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ") and f"no phone number {LANDLORD_NUMBER}" in lines[0]
    assert fake_twilio.posts() == []

    other = configure(runner, "--number", "+441332000111")
    assert other.exit_code == 1 and "no phone number +441332000111" in other.output


def test_the_fallback_is_set_only_when_given_and_a_fallback_on_callguard_is_warned_of(
    runner: Any, fake_twilio: FakeTwilio, number: dict[str, Any]
) -> None:
    number["voice_fallback_url"] = f"{PUBLIC_BASE_URL}/twilio/voice/fallback"
    warned = configure(runner)
    assert warned.exit_code == 0, warned.output
    assert "warning: VoiceFallbackUrl" in warned.output and "callguard is down" in warned.output

    result = configure(runner, "--apply", "--fallback-url", BIN)
    assert result.exit_code == 0, result.output
    (post,) = fake_twilio.posts()
    assert post.param("VoiceFallbackUrl") == BIN
    assert post.param("VoiceFallbackMethod") is None  # it was POST already
    assert "warning: VoiceFallbackUrl" not in result.output
    assert number["voice_fallback_url"] == BIN


def test_a_public_base_url_twilio_cannot_reach_is_refused(
    app: Flask, runner: Any, fake_twilio: FakeTwilio, number: dict[str, Any]
) -> None:
    app.config["PUBLIC_BASE_URL"] = "http://localhost:5000"
    result = configure(runner, "--apply")
    assert result.exit_code == 1 and "PUBLIC_BASE_URL" in result.output
    assert fake_twilio.requests == []
