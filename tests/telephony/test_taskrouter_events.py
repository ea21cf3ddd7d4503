"""A contact centre on TaskRouter and Flex: TaskRouter routes the call and Flex bridges it in a
conference of its own. TaskRouter's workspace events (stored first, like every callback) say
which worker took the call and, once Flex has written it into the task, which conference holds
it; so the live list names the agent, Warn and End work on Flex's conference exactly as on
callguard's own, the call is counted once from the parent's callbacks, and a weekly allowance is
used when a worker accepts."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from functools import partial
from typing import Any
from xml.etree import ElementTree

import pytest
import time_machine
from flask import Flask
from sqlalchemy import func, select

from restrictions import counting, events
from restrictions.models import AgentAction, Call, CallEvent
from restrictions.settings import Settings
from telephony.database import database
from telephony.redis_store import redis_client
from tests.calls import call_row, parse, status_event, twilio_now
from tests.fake_twilio import ACCOUNT_SID, FakeTwilio

WORKFLOW = "WW" + "1" * 32
WORKSPACE = "WS" + "2" * 32
TASK = "WT" + "3" * 32
WORKER = "WK" + "4" * 32
FLEX_CONFERENCE = "CF" + "5" * 32
WORKER_LEG = "CA" + "6" * 32
CUSTOMER = "+447400100001"
BASE = f"/2010-04-01/Accounts/{ACCOUNT_SID}"
TUESDAY = datetime(2026, 6, 2, 9, 30, tzinfo=UTC)
EVERY_DAY = [
    {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "00:00", "end": "23:59"}
]
DOWN = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The landlord's calls go to TaskRouter (callguard's ``<Enqueue workflowSid>``)."""
    return replace(settings, default_route=f"taskrouter:{WORKFLOW}")


class Flex:
    """TaskRouter's workspace events and Flex's conference callbacks for one caller's task, signed
    and with Twilio's parameters; each event has its own ``Sid`` and a ``Timestamp`` ``at``
    seconds after the call began, so they can be sent in any order, and again."""

    def __init__(self, twilio: Any, caller: str, task: dict[str, Any]) -> None:
        self.twilio, self.caller, self.task = twilio, caller, task
        self.began = int(datetime.now(UTC).timestamp()) - 60  # the caller rang a minute ago
        self.sent = 0

    def event(
        self,
        event_type: str,
        at: int,
        *,
        bridged: bool = False,
        contact_uri: str | None = "client:alex.agent",
        worker_name: str = "alex.agent",
    ) -> dict[str, str]:
        """The form TaskRouter posts to the Workspace's EventCallbackUrl."""
        self.sent += 1
        attributes = dict(self.task)
        if bridged:  # Flex has bridged the call: it writes its conference into the task
            attributes["conference"] = {
                "sid": FLEX_CONFERENCE,
                "participants": {"customer": self.caller, "worker": WORKER_LEG},
            }
        when = self.began + at
        params = {
            "EventType": event_type,
            "AccountSid": ACCOUNT_SID,
            "WorkspaceSid": WORKSPACE,
            "WorkspaceName": "Flex Task Assignment",
            "EventDescription": f"{event_type} for task {TASK}",
            "ResourceType": "Reservation" if event_type.startswith("reservation.") else "Task",
            "ResourceSid": TASK,
            "Sid": f"EV{self.sent:032x}",
            "Timestamp": str(when),
            "TimestampMs": str(when * 1000),
            "TaskSid": TASK,
            "TaskAttributes": json.dumps(attributes),
            "TaskAge": str(at),
            "TaskPriority": "0",
            "TaskAssignmentStatus": "assigned" if bridged else "reserved",
            "TaskQueueSid": "WQ" + "7" * 32,
            "TaskQueueName": "Everyone",
            "TaskChannelUniqueName": "voice",
            "WorkflowSid": WORKFLOW,
            "WorkflowName": "Assign to Anyone",
        }
        if event_type.startswith("reservation."):
            worker = {"contact_uri": contact_uri} if contact_uri else {}
            params |= {
                "ReservationSid": "WR" + f"{self.sent:032x}",
                "WorkerSid": WORKER,
                "WorkerName": worker_name,
                "WorkerAttributes": json.dumps({**worker, "routing": {"skills": []}}),
            }
        return params

    def post(self, params: dict[str, str]) -> Any:
        response = self.twilio.post("/twilio/taskrouter/events", params)
        assert response.status_code == 204, response.data
        return response

    def send(self, event_type: str, at: int, **kwargs: Any) -> dict[str, str]:
        params = self.event(event_type, at, **kwargs)
        self.post(params)
        return params

    def conference(
        self, event: str, participant: str | None, sequence: int, **extra: str
    ) -> dict[str, str]:
        """A conference callback for Flex's conference (named after the task), ``7 + sequence``
        seconds after the call began (Flex bridges it once a worker has accepted)."""
        params = {
            "AccountSid": ACCOUNT_SID,
            "ConferenceSid": FLEX_CONFERENCE,
            "FriendlyName": TASK,
            "StatusCallbackEvent": event,
            "SequenceNumber": str(sequence),
            "Timestamp": format_datetime(self.at(7 + sequence), usegmt=False),
            **extra,
        }
        if participant:
            params["CallSid"] = participant
        response = self.twilio.post("/twilio/conference/events", params)
        assert response.status_code == 204, response.data
        return params

    def at(self, seconds: int) -> datetime:
        return datetime.fromtimestamp(self.began + seconds, UTC)


def queued(twilio: Any, run_jobs: Callable[[], int] | None = None) -> tuple[str, dict[str, Any]]:
    """An inbound call queued for TaskRouter: its CallSid and the task's attributes as
    callguard's ``<Task>`` gave them (what TaskRouter then sends in ``TaskAttributes``)."""
    params = twilio.call_params(CUSTOMER)
    root = parse(twilio.post("/twilio/voice/incoming", params))
    task = root.find("./Enqueue/Task")
    assert task is not None and task.text, ElementTree.tostring(root)
    attributes = json.loads(task.text)
    assert attributes["call_sid"] == params["CallSid"]
    if run_jobs is not None:
        run_jobs()  # the worker records the call
    return params["CallSid"], attributes


@pytest.fixture
def flex_call(
    twilio: Any, run_jobs: Callable[[], int], make_customer: Callable[..., Any]
) -> Iterator[Flex]:
    make_customer()
    caller, attributes = queued(twilio, run_jobs)
    yield Flex(twilio, caller, attributes)


def listed(client: Any, who: Any, mine: bool = False) -> list[dict[str, Any]]:
    url = "/api/v1/calls/active" + ("?mine=1" if mine else "")
    response = client.get(url, headers=who.headers)
    assert response.status_code == 200
    calls: list[dict[str, Any]] = response.get_json()["calls"]
    return calls


def sweep(app: Flask) -> int:
    from handlers.contact import sweep_call_events

    with app.app_context():
        return sweep_call_events()


def taskrouter_events(app: Flask) -> list[CallEvent]:
    with database(app).sessions() as sess:
        return list(
            sess.scalars(
                select(CallEvent).where(CallEvent.source == "taskrouter").order_by(CallEvent.id)
            )
        )


# --- 1. the worker who accepts is the call's agent; Warn and End on Flex's conference ---------


def test_a_worker_accepts_the_agent_warns_into_flexs_conference_then_ends_the_call(
    app: Flask,
    client: Any,
    twilio: Any,
    run_jobs: Callable[[], int],
    fake_twilio: FakeTwilio,
    flex_call: Flex,
    agent: Any,
    make_staff: Callable[..., Any],
    supervisor: Any,
) -> None:
    other = make_staff("agent", "bo.agent")
    flex, caller = flex_call, flex_call.caller
    status_event(twilio, caller, "ringing", 1)
    status_event(twilio, caller, "in-progress", 2)
    run_jobs()
    flex.send("task.created", 1)
    flex.send("reservation.created", 2)
    assert call_row(app, caller).answered_at is None  # a worker offered it, nobody took it
    flex.send("reservation.accepted", 5)
    row = call_row(app, caller)
    assert row.agent_label == "client:alex.agent"
    assert row.answered_at == flex.at(5)  # TaskRouter's clock, not ours
    early = client.post(f"/api/v1/calls/{caller}/warn", headers=agent.headers)
    assert early.status_code == 409  # Flex has not said where the call is yet
    flex.send("task.updated", 6, bridged=True)  # Flex writes its conference into the task
    row = call_row(app, caller)
    assert (row.conference_sid, row.agent_call_sid) == (FLEX_CONFERENCE, WORKER_LEG)
    flex.conference("conference-start", None, 1)
    flex.conference("participant-join", caller, 2)
    flex.conference("participant-join", WORKER_LEG, 3)

    # the live list names the agent: theirs, and every supervisor's; not another agent's
    (card,) = listed(client, agent, mine=True)
    assert (card["call_sid"], card["agent"], card["state"]) == (
        caller,
        "client:alex.agent",
        "connected",
    )
    assert card["since"] == flex.at(5).isoformat()
    assert [c["call_sid"] for c in listed(client, supervisor)] == [caller]
    assert listed(client, other, mine=True) == []
    refused = client.post(f"/api/v1/calls/{caller}/warn", headers=other.headers)
    assert refused.status_code == 403
    assert fake_twilio.requests == []

    # Warn: an announcement into Flex's conference, pending until Twilio says it played
    warned = client.post(f"/api/v1/calls/{caller}/warn", headers=agent.headers)
    assert warned.status_code == 200, warned.get_json()
    assert warned.get_json()["outcome"] == "pending"
    (announce,) = fake_twilio.posts()
    assert announce.path == f"{BASE}/Conferences/{FLEX_CONFERENCE}.json"
    action_id = warned.get_json()["id"]
    assert announce.param("AnnounceUrl") == (
        f"https://calls.example.org/twilio/conference/announce/{action_id}?lang=en-GB&slow=0"
    )
    assert announce.param("AnnounceMethod") == "POST"
    flex.conference("announcement-end", None, 4)
    (card,) = listed(client, agent, mine=True)
    assert (card["warned"], card["warning"]) == (True, "ok")

    # End (a warning played: no reason needed): the closing words on the caller's leg, then
    # Flex's conference is completed, freeing the worker
    fake_twilio.reset()
    ended = client.post(f"/api/v1/calls/{caller}/end", headers=agent.headers)
    assert ended.status_code == 200, ended.get_json()
    assert ended.get_json()["outcome"] == "ok"
    closing, close = fake_twilio.posts()
    assert closing.path == f"{BASE}/Calls/{caller}.json"
    assert [e.tag for e in ElementTree.fromstring(closing.param("Twiml") or "")] == [
        "Say",
        "Say",
        "Hangup",
    ]
    assert close.path == f"{BASE}/Conferences/{FLEX_CONFERENCE}.json"
    assert close.param("Status") == "completed"
    assert listed(client, supervisor) == []

    # Flex and TaskRouter wind up; the parent's callbacks count the call once, with its length
    flex.conference("participant-leave", caller, 5)
    flex.conference("participant-leave", WORKER_LEG, 6)
    flex.conference("conference-end", None, 7)
    flex.send("reservation.wrapup", 95)
    flex.send("reservation.completed", 120)
    flex.send("task.completed", 121)
    completed = status_event(twilio, caller, "completed", 3, CallDuration="95")
    assert completed.status_code == 204
    status_event(twilio, caller, "completed", 3, CallDuration="95")  # Twilio's retry
    run_jobs()
    customer_id = call_row(app, caller).customer_id
    stats = counting.window(redis_client(app), f"customer:{customer_id}", datetime.now(UTC), 60)
    assert (stats.calls, stats.seconds) == (1, 95)
    with database(app).sessions() as sess:
        actions = list(sess.scalars(select(AgentAction).order_by(AgentAction.id)))
        assert [(a.kind, a.outcome, a.user.name) for a in actions] == [
            ("warn", "ok", "alex.agent"),
            ("end", "ok", "alex.agent"),
        ]
    assert len(taskrouter_events(app)) == 7


def test_a_worker_who_is_no_member_of_staff_leaves_the_buttons_to_supervisors(
    app: Flask,
    client: Any,
    flex_call: Flex,
    agent: Any,
    supervisor: Any,
    fake_twilio: FakeTwilio,
) -> None:
    flex, caller = flex_call, flex_call.caller
    flex.send("reservation.accepted", 3, contact_uri=None, worker_name="Temp Worker")
    flex.send("task.updated", 4, bridged=True)
    assert call_row(app, caller).agent_label == "worker:Temp Worker"
    assert listed(client, agent, mine=True) == []
    refused = client.post(f"/api/v1/calls/{caller}/warn", headers=agent.headers)
    assert refused.status_code == 403
    (card,) = listed(client, supervisor)
    assert card["agent"] == "worker:Temp Worker"
    warned = client.post(f"/api/v1/calls/{caller}/warn", headers=supervisor.headers)
    assert warned.status_code == 200, warned.get_json()
    assert [r.path for r in fake_twilio.posts()] == [f"{BASE}/Conferences/{FLEX_CONFERENCE}.json"]


# --- 2. late, twice, out of order, before the call is recorded, through an outage -------------


ORDERS = ["as-sent", "reversed", "twice", "before-the-call-is-recorded"]


@pytest.mark.parametrize("order", ORDERS)
def test_events_in_any_order_and_twice_come_to_the_same_call(
    app: Flask,
    twilio: Any,
    run_jobs: Callable[[], int],
    make_customer: Callable[..., Any],
    order: str,
) -> None:
    make_customer()
    caller, attributes = queued(twilio, None if order.startswith("before") else run_jobs)
    flex = Flex(twilio, caller, attributes)
    task_events = [
        flex.event("task.created", 1),
        flex.event("reservation.created", 2),
        flex.event("reservation.rejected", 3, contact_uri="client:bo.agent"),
        flex.event("reservation.created", 4),
        flex.event("reservation.accepted", 6),
        flex.event("task.updated", 7, bridged=True),
    ]
    sent: list[Callable[[], Any]] = [partial(flex.post, params) for params in task_events]
    sent += [  # Flex's conference: the caller joins, then the worker
        partial(flex.conference, "participant-join", caller, 2),
        partial(flex.conference, "participant-join", WORKER_LEG, 3),
    ]
    if order == "reversed":
        sent.reverse()
    for send in sent * (2 if order == "twice" else 1):
        send()
    if order.startswith("before"):
        with database(app).sessions() as sess:
            assert sess.scalar(select(Call).where(Call.call_sid == caller)) is None
        run_jobs()  # the worker records the call: the sweep applies what waited for it
        assert call_row(app, caller).agent_label is None
        sweep(app)
    row = call_row(app, caller)
    assert row.agent_label == "client:alex.agent"  # the accepting worker, not the one who declined
    assert (row.conference_sid, row.agent_call_sid) == (FLEX_CONFERENCE, WORKER_LEG)
    assert row.answered_at == flex.at(6)
    assert row.caller_joined_at is not None and row.person_present_since is not None
    assert row.status == "in-progress" and row.ended_at is None
    stored = taskrouter_events(app)
    assert len(stored) == 6  # each event once, however often it came
    assert all(e.processed_at is not None and e.call_sid == caller for e in stored)


def test_a_call_handed_to_another_worker_is_theirs_from_then_on_whatever_the_order(
    app: Flask,
    client: Any,
    flex_call: Flex,
    agent: Any,
    make_staff: Callable[..., Any],
) -> None:
    other = make_staff("agent", "bo.agent")
    handed_on = flex_call.event("reservation.accepted", 30, contact_uri="client:bo.agent")
    flex_call.post(handed_on)  # the later acceptance arrives first
    flex_call.send("reservation.accepted", 6)
    flex_call.send("task.updated", 7, bridged=True)
    row = call_row(app, flex_call.caller)
    assert row.agent_label == "client:bo.agent"
    assert row.answered_at == flex_call.at(6)  # connected since the first worker took it
    refused = client.post(f"/api/v1/calls/{flex_call.caller}/warn", headers=agent.headers)
    assert refused.status_code == 403
    warned = client.post(f"/api/v1/calls/{flex_call.caller}/warn", headers=other.headers)
    assert warned.status_code == 200, warned.get_json()


def test_a_taskrouter_event_kept_in_redis_is_applied_when_moved_across(
    app: Flask, app_with: Callable[..., Flask], twilio: Any, flex_call: Flex
) -> None:
    twilio.client = app_with(DATABASE_URL=DOWN).test_client()
    accepted = flex_call.send("reservation.accepted", 4)
    flex_call.post(accepted)  # TaskRouter's retry, during the outage
    flex_call.send("task.updated", 5, bridged=True)
    assert redis_client(app).xlen(events.BUFFER) == 3
    sweep(app)
    assert redis_client(app).xlen(events.BUFFER) == 0
    row = call_row(app, flex_call.caller)
    assert (row.agent_label, row.conference_sid) == ("client:alex.agent", FLEX_CONFERENCE)
    assert row.answered_at == flex_call.at(4)
    assert len(taskrouter_events(app)) == 2


# --- 3. conferences callguard did not create ---------------------------------------------------


def test_a_conference_callback_for_a_conference_no_call_knows_is_stored_and_changes_nothing(
    app: Flask, twilio: Any, flex_call: Flex
) -> None:
    stranger = {
        "AccountSid": ACCOUNT_SID,
        "ConferenceSid": "CF" + "9" * 32,
        "FriendlyName": "WT" + "9" * 32,
        "StatusCallbackEvent": "participant-join",
        "SequenceNumber": "1",
        "CallSid": "CA" + "9" * 32,
        "Timestamp": twilio_now(),
    }
    before = call_row(app, flex_call.caller)
    assert twilio.post("/twilio/conference/events", stranger).status_code == 204
    ended = {**stranger, "StatusCallbackEvent": "announcement-end", "SequenceNumber": "2"}
    del ended["CallSid"]
    assert twilio.post("/twilio/conference/events", ended).status_code == 204
    with database(app).sessions() as sess:
        assert sess.scalar(select(func.count()).select_from(Call)) == 1
        stored = list(
            sess.scalars(
                select(CallEvent).where(CallEvent.source == "conference").order_by(CallEvent.id)
            )
        )
        assert [(e.event, e.processed_at is not None) for e in stored] == [
            ("participant-join", True),
            ("announcement-end", True),
        ]
    after = call_row(app, flex_call.caller)
    assert (after.conference_sid, after.conference_log, after.answered_at) == (
        before.conference_sid,
        before.conference_log,
        before.answered_at,
    )
    # callguard's own conferences are still named as they must be
    broken = {**stranger, "FriendlyName": "cg-not-a-call"}
    assert twilio.post("/twilio/conference/events", broken).status_code == 400


def test_a_warning_flex_could_not_play_is_failed(
    app: Flask, client: Any, flex_call: Flex, agent: Any
) -> None:
    flex_call.send("reservation.accepted", 3)
    flex_call.send("task.updated", 4, bridged=True)
    warned = client.post(f"/api/v1/calls/{flex_call.caller}/warn", headers=agent.headers)
    assert warned.status_code == 200
    flex_call.conference("announcement-fail", None, 9, ReasonAnnouncementFailed="Timeout")
    with database(app).sessions() as sess:
        action = sess.scalar(select(AgentAction))
        assert action is not None and action.outcome == "failed"
        assert action.error is not None and "Timeout" in action.error


# --- 4. the weekly allowance ----------------------------------------------------------------


def test_the_weekly_allowance_is_used_once_when_a_worker_accepts(
    app: Flask,
    twilio: Any,
    run_jobs: Callable[[], int],
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
) -> None:
    customer = make_customer()
    restrict(customer, kind="limited_contact", windows=EVERY_DAY, max_calls_per_week=5)

    def used() -> int:
        since = TUESDAY - timedelta(days=1)
        return counting.allowance_used(redis_client(app), customer.id, since)

    with time_machine.travel(TUESDAY, tick=False):
        caller, attributes = queued(twilio, run_jobs)
        flex = Flex(twilio, caller, attributes)
        flex.send("task.created", 1)
        flex.send("reservation.created", 2)
        flex.send("reservation.rejected", 3, contact_uri="client:bo.agent")
        assert used() == 0  # queued and offered, nobody took it: not yet
        accepted = flex.send("reservation.accepted", 5)
        assert used() == 1
        flex.post(accepted)  # a retry
        flex.send("task.updated", 6, bridged=True)
        flex.conference("participant-join", caller, 1)
        flex.conference("participant-join", WORKER_LEG, 2)
        flex.send("task.completed", 60)
    assert used() == 1


def test_a_caller_who_left_before_a_worker_accepted_uses_no_allowance(
    app: Flask,
    twilio: Any,
    run_jobs: Callable[[], int],
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
) -> None:
    customer = make_customer()
    restrict(customer, kind="limited_contact", windows=EVERY_DAY, max_calls_per_week=5)
    with time_machine.travel(TUESDAY, tick=False):
        caller, attributes = queued(twilio, run_jobs)
        flex = Flex(twilio, caller, attributes)
        status_event(twilio, caller, "completed", 3, CallDuration="20")
        run_jobs()
        flex.send("reservation.accepted", 80)  # a late word: the caller had gone 20 s before
    assert counting.allowance_used(redis_client(app), customer.id, TUESDAY - timedelta(1)) == 0
    assert call_row(app, caller).answered_at is None


# --- 5. what TaskRouter may send ------------------------------------------------------------


def test_taskrouter_events_are_signed_keyed_and_only_about_tasks_stored(
    app: Flask, twilio: Any, flex_call: Flex
) -> None:
    accepted = flex_call.event("reservation.accepted", 3)
    unsigned = twilio.post("/twilio/taskrouter/events", accepted, signature="nope")
    assert unsigned.status_code == 403
    no_sid = {k: v for k, v in accepted.items() if k != "Sid"}
    missing = twilio.post("/twilio/taskrouter/events", no_sid)
    assert missing.status_code == 400 and "Sid" in missing.get_json()["error"]
    activity = {
        "EventType": "worker.activity.update",
        "AccountSid": ACCOUNT_SID,
        "WorkspaceSid": WORKSPACE,
        "Sid": "EV" + "a" * 32,
        "WorkerSid": WORKER,
        "WorkerActivityName": "Available",
        "Timestamp": str(flex_call.began),
    }
    assert twilio.post("/twilio/taskrouter/events", activity).status_code == 204
    chat = flex_call.event("task.created", 1)
    chat["TaskAttributes"] = json.dumps({"channelType": "web"})  # no call of ours
    assert twilio.post("/twilio/taskrouter/events", chat).status_code == 204
    broken = flex_call.event("task.created", 1)
    broken["TaskAttributes"] = "{not json"
    assert twilio.post("/twilio/taskrouter/events", broken).status_code == 204
    assert [(e.event, e.call_sid) for e in taskrouter_events(app)] == [
        ("task.created", None),
        ("task.created", None),
    ]
    assert call_row(app, flex_call.caller).agent_label is None
