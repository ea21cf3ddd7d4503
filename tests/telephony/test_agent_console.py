"""The agent console in a real browser: a live call appears without a reload, Warn, then End.
Supervisors then see the presses as incidents."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from restrictions.models import AgentAction, Call
from telephony.database import database
from tests.browser import follow

pytestmark = pytest.mark.browser

ACCOUNT = "AC" + "0" * 31 + "1"
CALLER = "CA" + "c" * 32
AGENT_LEG = "CA" + "d" * 32
CONFERENCE = "CF" + "f" * 32
POLL_MS = 1000  # the console asks for the live calls once a second
PLAYED = {  # Twilio: the Warn's announcement played
    "AccountSid": ACCOUNT,
    "ConferenceSid": CONFERENCE,
    "FriendlyName": f"cg-{CALLER}",
    "StatusCallbackEvent": "announcement-end",
    "SequenceNumber": "4",
}


@pytest.fixture
def page(browser: Any, live_server: str) -> Iterator[Any]:
    """A tab whose clock the test can move on, so the console's next poll comes when the test
    says (a context of its own: a clock once installed stays for the context's life). It still
    runs on its own as well: a test that must see no poll in between pauses it."""
    context = browser.new_context(base_url=live_server)
    tab = context.new_page()
    tab.set_default_timeout(15000)
    tab.clock.install()
    yield tab
    context.close()


@pytest.fixture
def connect_call(
    twilio: Any,
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
    run_jobs: Callable[[], int],
    fake_twilio: Any,
) -> Callable[[], None]:
    """Bring a call in and connect it to an agent, as Twilio reports it."""

    def connect() -> None:
        customer = make_customer(name="Pat <script>alert(1)</script>")
        restrict(customer, kind="no_engagement", issue="the boundary fence")
        twilio.post("/twilio/voice/incoming", twilio.call_params("+447400100001", CallSid=CALLER))
        run_jobs()
        for seq, (event, participant) in enumerate(
            [
                ("conference-start", None),
                ("participant-join", CALLER),
                ("participant-join", AGENT_LEG),
            ],
            start=1,
        ):
            params = {
                "AccountSid": ACCOUNT,
                "ConferenceSid": CONFERENCE,
                "FriendlyName": f"cg-{CALLER}",
                "StatusCallbackEvent": event,
                "SequenceNumber": str(seq),
            }
            if participant:
                params["CallSid"] = participant
            assert twilio.post("/twilio/conference/events", params).status_code == 204
        fake_twilio.reset()

    return connect


def test_a_live_call_appears_then_the_agent_warns_and_ends_it(
    app: Flask,
    page: Any,
    agent: Any,
    sign_in: Callable[..., None],
    connect_call: Callable[[], None],
    fake_twilio: Any,
    twilio: Any,
) -> None:
    sign_in(page, agent)
    assert page.get_by_role("heading", name="Live calls").is_visible()
    assert page.get_by_text("No live calls.").is_visible()

    connect_call()  # while the page is open
    page.clock.run_for(POLL_MS)  # the next poll: no reload
    card = page.locator(f'section.call[data-call-sid="{CALLER}"]')
    card.wait_for()
    assert "Pat <script>alert(1)</script>" in card.locator(".caller").inner_text()
    assert "Do not engage on: the boundary fence" in card.locator(".flags").inner_text()

    warn = card.get_by_role("button", name="Warn")
    warn.focus()
    page.keyboard.press("Enter")  # keyboard-reachable
    assert fake_twilio.requests == []  # it asks first
    send = card.get_by_role("button", name="Play the warning to")
    assert send.evaluate("button => button === document.activeElement")
    page.keyboard.press("Enter")
    page.get_by_text("waiting for Twilio to say it has played").wait_for()  # in flight
    (announce,) = fake_twilio.posts("/Conferences/")
    assert announce.path.endswith(f"/Conferences/{CONFERENCE}.json")
    assert "/twilio/conference/announce/1?" in (announce.param("AnnounceUrl") or "")
    assert twilio.post("/twilio/conference/events", PLAYED).status_code == 204
    with page.expect_response(lambda r: "/agent/live.json" in r.url):
        page.clock.run_for(POLL_MS)  # this poll brings Twilio's word
    page.get_by_text("Warning played. The call continues.").wait_for()
    card.get_by_role("button", name=re.compile(r"^End call: ")).wait_for()

    card.get_by_role("button", name="End call").click()  # warned already: no reason needed
    page.get_by_text("Call ended.").wait_for()
    page.clock.run_for(POLL_MS)  # the ended call leaves the list at the next poll
    card.wait_for(state="detached")
    assert [r.path.rsplit("/", 2)[-2:] for r in fake_twilio.posts()[1:]] == [
        ["Calls", f"{CALLER}.json"],
        ["Conferences", f"{CONFERENCE}.json"],
    ]
    with database(app).sessions() as sess:
        kinds = [
            (a.kind, a.outcome) for a in sess.scalars(select(AgentAction).order_by(AgentAction.id))
        ]
    assert kinds == [("warn", "ok"), ("end", "ok")]


def test_a_warning_twilio_played_before_answering_lets_end_go_without_a_reason_at_once(
    app: Flask,
    page: Any,
    agent: Any,
    sign_in: Callable[..., None],
    connect_call: Callable[[], None],
    fake_twilio: Any,
    twilio: Any,
) -> None:
    """Twilio's announcement-end arrives before its answer to the announce request: the Warn's
    own answer says it played, and End needs no reason without waiting for a poll."""
    sign_in(page, agent)
    connect_call()
    fake_twilio.before_answering(
        f"/Conferences/{CONFERENCE}.json",
        lambda _: twilio.post("/twilio/conference/events", PLAYED),
    )
    page.clock.run_for(POLL_MS)
    card = page.locator(f'section.call[data-call-sid="{CALLER}"]')
    card.wait_for()
    page.clock.pause_at(datetime.now(UTC) + timedelta(seconds=5))  # no poll from here on
    card.get_by_role("button", name="Warn").click()
    card.get_by_role("button", name="Play the warning to").click()
    card.get_by_text("Warning played. The call continues.").wait_for()
    # no poll since: the page knows from the Warn's answer
    card.get_by_role("button", name=re.compile(r"^End call: ")).click()
    card.get_by_text("Call ended.").wait_for()
    with database(app).sessions() as sess:
        kinds = [
            (a.kind, a.outcome, a.reason)
            for a in sess.scalars(select(AgentAction).order_by(AgentAction.id))
        ]
    assert kinds == [("warn", "ok", None), ("end", "ok", None)]


def test_ending_without_a_warning_asks_for_a_reason(
    app: Flask,
    page: Any,
    agent: Any,
    sign_in: Callable[..., None],
    connect_call: Callable[[], None],
    fake_twilio: Any,
) -> None:
    connect_call()
    sign_in(page, agent)
    card = page.locator(f'section.call[data-call-sid="{CALLER}"]')
    card.wait_for()
    card.get_by_role("button", name="End call (reason needed)").click()
    reason = card.get_by_label("Reason for ending without a warning")
    assert reason.is_visible()
    card.get_by_role("button", name="Confirm end").click()
    assert "Give a reason" in card.locator(".outcome").inner_text()
    assert fake_twilio.requests == []
    reason.fill("Threatened to come to the office (4.6)")
    card.get_by_role("button", name="Confirm end").click()
    page.get_by_text("Call ended.").wait_for()
    page.clock.run_for(POLL_MS)
    card.wait_for(state="detached")
    with database(app).sessions() as sess:
        action = sess.scalar(select(AgentAction))
        assert action is not None and action.reason == "Threatened to come to the office (4.6)"


def test_supervisors_see_presses_as_incidents_and_mark_them_reviewed(
    app: Flask,
    page: Any,
    client: Any,
    agent: Any,
    supervisor: Any,
    sign_in: Callable[..., None],
    connect_call: Callable[[], None],
) -> None:
    connect_call()
    client.post(
        f"/api/v1/calls/{CALLER}/end", headers=agent.headers, json={"reason": "Racist abuse (4.4)"}
    )
    sign_in(page, supervisor)
    follow(page.get_by_role("link", name="Incidents"))
    row = page.locator("tr.incident")
    assert row.count() == 1
    assert "Racist abuse (4.4)" in row.inner_text() and "alex.agent" in row.inner_text()
    follow(row.get_by_role("button", name="Mark reviewed"))
    assert "reviewed" in page.locator("tr.incident").inner_text()
    with database(app).sessions() as sess:
        action = sess.scalar(select(AgentAction))
        assert action is not None and action.reviewed_by_id == supervisor.user.id


def test_the_console_is_for_signed_in_staff(page: Any) -> None:
    page.goto("/agent/")
    assert page.get_by_role("heading", name="Sign in").is_visible()


# --- the caller named, the Warn confirmation, Escape, the timer, announcements ------------------


WHO = "Pat <script>alert(1)</script> (+447400100001)"


def test_controls_name_the_caller_and_the_card_speaks_in_words(
    page: Any,
    agent: Any,
    sign_in: Callable[..., None],
    connect_call: Callable[[], None],
) -> None:
    connect_call()
    sign_in(page, agent)
    card = page.locator(f'section.call[data-call-sid="{CALLER}"]')
    card.wait_for()
    assert card.locator(".warn").get_attribute("aria-label") == f"Warn {WHO}"
    assert card.locator(".end").get_attribute("aria-label") == f"End call (reason needed): {WHO}"
    assert card.get_attribute("aria-labelledby") == f"caller-{CALLER}"
    link = card.get_by_role("link", name="Customer record: Pat")
    assert link.get_attribute("href") == "/agent/customers/HMS-0001"
    assert "Speaks English" in card.locator(".adjustments").inner_text()
    assert (
        "Issue not to be engaged on: the boundary fence"
        in card.locator(".restrictions").inner_text()
    )
    assert card.locator(".elapsed").get_attribute("role") == "timer"
    assert re.fullmatch(r"\d+:\d\d(:\d\d)?", card.locator(".elapsed").inner_text())
    # the poll's "Updated …" line is no live region: only #announcer is
    assert page.locator("#status").get_attribute("aria-live") is None
    assert page.locator("#calls").get_attribute("aria-live") is None
    page.get_by_text("1 live call.").wait_for()


def test_warn_then_cancel_sends_nothing(
    page: Any,
    agent: Any,
    sign_in: Callable[..., None],
    connect_call: Callable[[], None],
    fake_twilio: Any,
    app: Flask,
) -> None:
    connect_call()
    sign_in(page, agent)
    card = page.locator(f'section.call[data-call-sid="{CALLER}"]')
    card.wait_for()
    card.get_by_role("button", name="Warn").click()
    dialog = card.get_by_role("dialog", name=f"Warn {WHO}?")
    assert dialog.is_visible()
    assert card.get_by_role("button", name=f"Play the warning to {WHO}").is_visible()
    card.get_by_role("button", name="Cancel: do not warn").click()
    assert dialog.is_hidden()
    assert card.locator(".outcome").inner_text() == "Warning not sent."
    page.clock.run_for(POLL_MS)
    assert fake_twilio.requests == []
    # Escape closes the confirmation too, and focus goes back to Warn
    card.get_by_role("button", name="Warn").click()
    assert dialog.is_visible()
    page.keyboard.press("Escape")
    assert dialog.is_hidden()
    assert card.locator(".warn").evaluate("b => b === document.activeElement")
    assert fake_twilio.requests == []
    with database(app).sessions() as sess:
        assert sess.scalar(select(AgentAction)) is None


def test_escape_closes_the_end_reason_dialog(
    page: Any,
    agent: Any,
    sign_in: Callable[..., None],
    connect_call: Callable[[], None],
    fake_twilio: Any,
) -> None:
    connect_call()
    sign_in(page, agent)
    card = page.locator(f'section.call[data-call-sid="{CALLER}"]')
    card.wait_for()
    card.get_by_role("button", name="End call (reason needed)").click()
    dialog = card.get_by_role("dialog", name=f"End the call with {WHO}")
    assert dialog.is_visible()
    assert card.get_by_role("button", name=f"Confirm end: {WHO}").is_visible()
    page.keyboard.press("Escape")
    assert dialog.is_hidden()
    assert card.locator(".end").evaluate("b => b === document.activeElement")
    assert fake_twilio.requests == []


def test_announcements_say_what_matters_and_can_be_paused(
    page: Any,
    agent: Any,
    sign_in: Callable[..., None],
    connect_call: Callable[[], None],
) -> None:
    sign_in(page, agent)
    announcer = page.locator("#announcer")
    # the poll's answer has come back before the call comes in: else it may see the call
    # waiting, and the next poll announces it put through instead of arrived
    with page.expect_response(lambda r: "/agent/live.json" in r.url):
        page.clock.run_for(POLL_MS)
    assert announcer.inner_text() == ""  # polls with nothing new say nothing
    connect_call()
    page.clock.run_for(POLL_MS)
    page.locator(f'section.call[data-call-sid="{CALLER}"]').wait_for()
    page.clock.run_for(100)  # the announcement is written a moment after it is cleared
    assert announcer.inner_text() == f"Call arrived: {WHO}."
    for _ in range(3):
        page.clock.run_for(POLL_MS)  # no change: the same words stay, nothing re-announced
    assert announcer.inner_text() == f"Call arrived: {WHO}."
    pause = page.get_by_role("button", name="Pause announcements")
    pause.click()
    assert (
        page.get_by_role("button", name="Resume announcements").get_attribute("aria-pressed")
        == "true"
    )
    assert announcer.inner_text() == ""


def test_the_wrap_up_note_is_saved_from_the_card(
    app: Flask,
    page: Any,
    agent: Any,
    sign_in: Callable[..., None],
    connect_call: Callable[[], None],
) -> None:
    connect_call()
    sign_in(page, agent)
    card = page.locator(f'section.call[data-call-sid="{CALLER}"]')
    card.wait_for()
    card.get_by_label("Wrap-up note").fill("Asked about the fence again; declined (5.1).")
    card.get_by_role("button", name="Save the wrap-up note").click()
    card.get_by_text("Wrap-up note saved.").wait_for()
    with database(app).sessions() as sess:
        call = sess.scalar(select(Call).where(Call.call_sid == CALLER))
        assert call is not None
        assert call.wrap_up_note == "Asked about the fence again; declined (5.1)."
