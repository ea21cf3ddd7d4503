"""Live calls, and agents' Warn and End through the JSON API. The fake Twilio REST API checks
the exact requests Twilio would receive."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from xml.etree import ElementTree

import pytest
from flask import Flask
from sqlalchemy import select

from restrictions.models import AgentAction, AuditEntry
from telephony.database import database
from tests.calls import twilio_now

ACCOUNT = "AC" + "0" * 31 + "1"
CALLER = "CA" + "c" * 32
AGENT_LEG = "CA" + "d" * 32
CONFERENCE = "CF" + "f" * 32
BASE = f"/2010-04-01/Accounts/{ACCOUNT}"


@pytest.fixture
def conference_event(twilio: Any) -> Callable[..., Any]:
    """Post a signed conference status callback as Twilio does."""
    seq = iter(range(1, 1000))

    def post(event: str, participant: str | None = None, caller: str = CALLER, **extra: str) -> Any:
        params = {
            **extra,
            "AccountSid": ACCOUNT,
            "ConferenceSid": CONFERENCE,
            "FriendlyName": f"cg-{caller}",
            "StatusCallbackEvent": event,
            "SequenceNumber": str(next(seq)),
            "Timestamp": twilio_now(),
        }
        if participant:
            params.update(
                {
                    "CallSid": participant,
                    "Muted": "false",
                    "Hold": "false",
                    "Coaching": "false",
                    "EndConferenceOnExit": "false",
                    "StartConferenceOnEnter": "true",
                }
            )
            if participant != caller:
                params["ParticipantLabel"] = "agent"
        response = twilio.post("/twilio/conference/events", params)
        assert response.status_code == 204, response.data
        return response

    return post


@pytest.fixture
def live_call(
    twilio: Any,
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
    run_jobs: Callable[[], int],
    conference_event: Callable[..., Any],
    fake_twilio: Any,
) -> str:
    """A Welsh-speaking customer with a warning on file, connected to an agent."""
    customer = make_customer(language="cy-GB", adjustments={"slow_speech": True})
    restrict(customer, kind="warning")
    restrict(customer, kind="no_engagement", issue="the fence")
    twilio.post("/twilio/voice/incoming", twilio.call_params("+447400100001", CallSid=CALLER))
    run_jobs()
    conference_event("conference-start")
    conference_event("participant-join", CALLER)
    conference_event("participant-join", AGENT_LEG)
    fake_twilio.reset()  # forget the dial-out; each test checks only its own requests
    return CALLER


def test_a_connected_call_is_listed_with_the_callers_flags(
    client: Any, agent: Any, live_call: str
) -> None:
    response = client.get("/api/v1/calls/active", headers=agent.headers)
    assert response.status_code == 200
    (call,) = response.get_json()["calls"]
    assert call["call_sid"] == CALLER and call["from"] == "+447400100001"
    assert call["customer"]["reference"] == "HMS-0001"
    assert call["customer"]["adjustments"] == {"slow_speech": True}
    assert any(f.startswith("warning:") for f in call["flags"])
    assert "no_engagement:the fence" in call["flags"]
    assert {r["kind"] for r in call["restrictions"]} == {"warning", "no_engagement"}
    assert call["since"] is not None and call["warned"] is False


def test_a_caller_still_waiting_for_an_agent_is_listed_as_waiting_without_controls(
    client: Any,
    agent: Any,
    twilio: Any,
    run_jobs: Callable[[], int],
    conference_event: Callable[..., Any],
) -> None:
    twilio.post("/twilio/voice/incoming", twilio.call_params("+447400100001", CallSid=CALLER))
    run_jobs()
    conference_event("participant-join", CALLER)
    (call,) = client.get("/api/v1/calls/active", headers=agent.headers).get_json()["calls"]
    assert call["call_sid"] == CALLER and call["state"] == "waiting" and call["since"] is None
    refused = client.post(f"/api/v1/calls/{CALLER}/warn", headers=agent.headers)
    assert refused.status_code == 409 and "not connected" in refused.get_json()["error"]


def test_ended_calls_leave_the_list(
    client: Any, agent: Any, live_call: str, conference_event: Callable[..., Any]
) -> None:
    conference_event("participant-leave", CALLER)
    assert client.get("/api/v1/calls/active", headers=agent.headers).get_json()["calls"] == []


def test_a_retried_conference_event_is_stored_once(app: Flask, twilio: Any, live_call: str) -> None:
    from restrictions.models import CallEvent

    retry = {
        "AccountSid": ACCOUNT,
        "ConferenceSid": CONFERENCE,
        "FriendlyName": f"cg-{CALLER}",
        "StatusCallbackEvent": "participant-join",
        "SequenceNumber": "3",
        "CallSid": AGENT_LEG,
    }
    assert twilio.post("/twilio/conference/events", retry).status_code == 204
    with database(app).sessions() as sess:
        events = list(
            sess.scalars(
                select(CallEvent).where(CallEvent.source == "conference").order_by(CallEvent.id)
            )
        )
        assert [e.event for e in events] == [
            "conference-start",
            "participant-join",
            "participant-join",
        ]


def test_a_malformed_conference_event_is_a_400(app: Flask, twilio: Any) -> None:
    response = twilio.post("/twilio/conference/events", {"FriendlyName": "someone-else"})
    assert response.status_code == 400 and "FriendlyName" in response.get_json()["error"]


def test_warn_plays_the_warning_to_both_parties_and_the_call_goes_on(
    app: Flask,
    client: Any,
    agent: Any,
    live_call: str,
    fake_twilio: Any,
    twilio: Any,
    conference_event: Callable[..., Any],
) -> None:
    response = client.post(f"/api/v1/calls/{CALLER}/warn", headers=agent.headers)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["outcome"] == "pending"  # until Twilio says it played
    (request,) = fake_twilio.posts("/Conferences/")
    assert request.path == f"{BASE}/Conferences/{CONFERENCE}.json"
    action_id = response.get_json()["id"]
    assert request.param("AnnounceUrl") == (
        f"https://calls.example.org/twilio/conference/announce/{action_id}?lang=cy-GB&slow=1"
    )
    assert request.param("AnnounceMethod") == "POST"
    assert fake_twilio.posts("/Calls/") == []  # nobody is disconnected

    # Twilio fetches the announcement: the warning, in the caller's language, slowly
    announce = f"/twilio/conference/announce/{action_id}?lang=cy-GB&slow=1"
    played = twilio.post(announce, {"AccountSid": ACCOUNT})
    say = ElementTree.fromstring(played.data).find("Say")
    assert say is not None and say.get("language") == "cy-GB" and say.find("prosody") is not None
    assert "barchus" in "".join(say.itertext())
    listed = client.get("/api/v1/calls/active", headers=agent.headers).get_json()["calls"]
    assert (listed[0]["warned"], listed[0]["warning"]) == (False, "pending")

    conference_event("announcement-end")
    listed = client.get("/api/v1/calls/active", headers=agent.headers).get_json()["calls"]
    assert (listed[0]["warned"], listed[0]["warning"]) == (True, "ok")


def test_a_warning_twilio_could_not_play_is_failed_and_end_still_needs_a_reason(
    app: Flask, client: Any, agent: Any, live_call: str, conference_event: Callable[..., Any]
) -> None:
    client.post(f"/api/v1/calls/{CALLER}/warn", headers=agent.headers)
    conference_event("announcement-fail", ReasonAnnouncementFailed="Timeout fetching URL")
    listed = client.get("/api/v1/calls/active", headers=agent.headers).get_json()["calls"]
    assert (listed[0]["warned"], listed[0]["warning"]) == (False, "failed")
    with database(app).sessions() as sess:
        action = sess.scalar(select(AgentAction))
        assert action is not None and action.outcome == "failed"
        assert action.error is not None and "Timeout fetching URL" in action.error
    refused = client.post(f"/api/v1/calls/{CALLER}/end", headers=agent.headers)
    assert refused.status_code == 422 and "needs a reason" in refused.get_json()["error"]


def test_a_warning_still_playing_does_not_let_end_go_without_a_reason(
    client: Any, agent: Any, live_call: str
) -> None:
    client.post(f"/api/v1/calls/{CALLER}/warn", headers=agent.headers)
    refused = client.post(f"/api/v1/calls/{CALLER}/end", headers=agent.headers)
    assert refused.status_code == 422


def test_the_warning_is_served_while_postgresql_is_down(
    app_with: Callable[..., Flask], twilio: Any
) -> None:
    broken = app_with(DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:1/nowhere")
    twilio.client = broken.test_client()
    played = twilio.post("/twilio/conference/announce/7?lang=pl-PL&slow=0", {"AccountSid": ACCOUNT})
    assert played.status_code == 200
    say = ElementTree.fromstring(played.data).find("Say")
    assert say is not None and say.get("language") == "pl-PL" and say.find("prosody") is None


def test_end_on_a_caller_who_already_hung_up_closes_the_conference_and_says_so(
    app: Flask,
    client: Any,
    agent: Any,
    live_call: str,
    fake_twilio: Any,
    conference_event: Callable[..., Any],
) -> None:
    client.post(f"/api/v1/calls/{CALLER}/warn", headers=agent.headers)
    conference_event("announcement-end")
    fake_twilio.reset()
    fake_twilio.fail(
        f"/Calls/{CALLER}.json", 400, "Call is not in-progress. Cannot redirect.", code=21220
    )
    response = client.post(f"/api/v1/calls/{CALLER}/end", headers=agent.headers)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["outcome"] == "ok" and "already left" in body["detail"]
    hang_up, close = fake_twilio.posts()
    assert hang_up.path == f"{BASE}/Calls/{CALLER}.json"
    assert close.path == f"{BASE}/Conferences/{CONFERENCE}.json"
    assert close.param("Status") == "completed"  # the agent is not left in it alone


def test_end_after_a_warning_plays_the_closing_statement_then_disconnects_and_frees_the_agent(
    app: Flask,
    client: Any,
    agent: Any,
    live_call: str,
    fake_twilio: Any,
    conference_event: Callable[..., Any],
) -> None:
    client.post(f"/api/v1/calls/{CALLER}/warn", headers=agent.headers)
    conference_event("announcement-end")
    fake_twilio.reset()
    response = client.post(f"/api/v1/calls/{CALLER}/end", headers=agent.headers)
    assert response.status_code == 200, response.get_json()
    hang_up, free_agent = fake_twilio.posts()
    assert hang_up.path == f"{BASE}/Calls/{CALLER}.json"
    closing = ElementTree.fromstring(hang_up.param("Twiml") or "")
    # the statement, then the danger line
    assert [e.tag for e in closing] == ["Say", "Say", "Hangup"]
    assert "01332 000999" in "".join(closing[0].itertext())  # how to reach emergency repairs
    assert closing[0].get("language") == "cy-GB"
    assert free_agent.path == f"{BASE}/Conferences/{CONFERENCE}.json"
    assert free_agent.param("Status") == "completed"
    assert client.get("/api/v1/calls/active", headers=agent.headers).get_json()["calls"] == []


def test_end_without_a_warning_needs_a_reason(
    client: Any, agent: Any, live_call: str, fake_twilio: Any
) -> None:
    refused = client.post(f"/api/v1/calls/{CALLER}/end", headers=agent.headers)
    assert refused.status_code == 422 and "needs a reason" in refused.get_json()["error"]
    assert fake_twilio.requests == []
    response = client.post(
        f"/api/v1/calls/{CALLER}/end",
        headers=agent.headers,
        json={"reason": "Caller threatened to come to my home (4.6)"},
    )
    assert response.status_code == 200
    assert response.get_json()["reason"].startswith("Caller threatened")


def test_every_press_is_on_the_customers_record_and_audited(
    app: Flask, client: Any, agent: Any, live_call: str, conference_event: Callable[..., Any]
) -> None:
    client.post(f"/api/v1/calls/{CALLER}/warn", headers=agent.headers)
    conference_event("announcement-end")
    client.post(f"/api/v1/calls/{CALLER}/end", headers=agent.headers)
    record = client.get("/api/v1/customers/HMS-0001", headers=agent.headers).get_json()
    assert [
        (a["kind"], a["agent"], a["outcome"], a["call_sid"]) for a in record["agent_actions"]
    ] == [("end", "alex.agent", "ok", CALLER), ("warn", "alex.agent", "ok", CALLER)]
    with database(app).sessions() as sess:
        actions = {e.action for e in sess.scalars(select(AuditEntry))}
        assert {"agent.warn", "agent.end"} <= actions


def test_a_reviewed_press_says_who_reviewed_it_and_only_supervisors_read_the_note(
    app: Flask, client: Any, agent: Any, supervisor: Any, live_call: str
) -> None:
    from restrictions import agent_actions

    pressed = client.post(f"/api/v1/calls/{CALLER}/warn", headers=agent.headers).get_json()
    with database(app).sessions() as sess:
        reviewer = sess.merge(supervisor.user)
        agent_actions.mark_reviewed(sess, reviewer, pressed["id"], "Fair: the caller swore twice")
        sess.commit()
    as_supervisor = client.get("/api/v1/customers/HMS-0001", headers=supervisor.headers)
    (action,) = as_supervisor.get_json()["agent_actions"]
    assert (action["reviewed_by"], action["review_note"]) == (
        supervisor.user.name,
        "Fair: the caller swore twice",
    )
    assert action["reviewed_at"] is not None
    as_agent = client.get("/api/v1/customers/HMS-0001", headers=agent.headers).get_json()
    (seen,) = as_agent["agent_actions"]
    assert (seen["reviewed_by"], seen["review_note"]) == (supervisor.user.name, None)


def test_unknown_call_is_404_and_a_finished_call_is_409(
    client: Any, agent: Any, live_call: str, conference_event: Callable[..., Any]
) -> None:
    unknown = client.post("/api/v1/calls/CA" + "0" * 32 + "/warn", headers=agent.headers)
    assert unknown.status_code == 404
    conference_event("participant-leave", CALLER)
    conference_event("participant-leave", AGENT_LEG)
    conference_event("conference-end")
    finished = client.post(f"/api/v1/calls/{CALLER}/warn", headers=agent.headers)
    assert finished.status_code == 409 and "already ended" in finished.get_json()["error"]


@pytest.mark.parametrize(("status", "words"), [(500, "HTTP 500"), (400, "HTTP 400")])
def test_twilio_refusing_is_a_502_and_the_press_is_recorded_as_failed(
    app: Flask,
    client: Any,
    agent: Any,
    live_call: str,
    fake_twilio: Any,
    status: int,
    words: str,
) -> None:
    fake_twilio.fail("/Conferences/", status, "Conference is not in progress")
    response = client.post(f"/api/v1/calls/{CALLER}/warn", headers=agent.headers)
    assert response.status_code == 502
    assert words in response.get_json()["error"]
    assert "Conference is not in progress" in response.get_json()["error"]
    with database(app).sessions() as sess:
        action = sess.scalar(select(AgentAction))
        assert action is not None and action.outcome == "failed" and action.error


def test_twilio_timing_out_is_a_502(
    app: Flask, client: Any, agent: Any, live_call: str, twilio_too_slow: None
) -> None:
    response = client.post(
        f"/api/v1/calls/{CALLER}/end", headers=agent.headers, json={"reason": "Abusive language"}
    )
    assert response.status_code == 502 and "did not answer" in response.get_json()["error"]
    with database(app).sessions() as sess:
        action = sess.scalar(select(AgentAction))
        assert action is not None and action.outcome == "failed"


def test_calls_need_an_agent_token(client: Any, live_call: str) -> None:
    assert client.get("/api/v1/calls/active").status_code == 401
    assert client.post(f"/api/v1/calls/{CALLER}/warn").status_code == 401


@pytest.mark.parametrize("spoc", ["+441332000555", "sam.spoc"], ids=["by-number", "by-user"])
def test_a_spocs_call_is_theirs_alone_whatever_form_their_destination_takes(
    client: Any,
    twilio: Any,
    make_staff: Callable[..., Any],
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
    run_jobs: Callable[[], int],
    conference_event: Callable[..., Any],
    spoc: str,
) -> None:
    sam = make_staff("agent", "sam.spoc")
    other = make_staff("agent", "olly.other")
    supervisor = make_staff("supervisor")
    restrict(make_customer(), kind="spoc", spoc=spoc)
    twilio.post("/twilio/voice/incoming", twilio.call_params("+447400100001", CallSid=CALLER))
    run_jobs()
    conference_event("participant-join", CALLER)
    conference_event("participant-join", AGENT_LEG)
    listed = client.get("/api/v1/calls/active?mine=1", headers=other.headers).get_json()
    assert listed["calls"] == []  # not the contact centre's
    refused = client.post(f"/api/v1/calls/{CALLER}/warn", headers=other.headers)
    assert refused.status_code == 403
    theirs = client.post(f"/api/v1/calls/{CALLER}/warn", headers=sam.headers)
    assert theirs.status_code == (200 if spoc == "sam.spoc" else 403)
    theirs_too = client.post(f"/api/v1/calls/{CALLER}/warn", headers=supervisor.headers)
    assert theirs_too.status_code == 200
