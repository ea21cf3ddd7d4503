"""A contact centre on TaskRouter (and Flex): a ``taskrouter:`` route queues the caller as a task
that carries callguard's decision; the caller hears hold words with the emergency offer while
queued; leaving the queue is never a dead end; and the decision is there for Studio and other
systems to ask for."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree

import pytest
from flask import Flask

from restrictions.settings import Settings
from restrictions.tasks import MAX_BYTES
from tests.calls import call_row, parse, spoken, status_event

WORKFLOW = "WW" + "1" * 32
CUSTOMER = "+447400100001"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return replace(settings, default_route=f"taskrouter:{WORKFLOW}")


def enqueued(root: ElementTree.Element) -> tuple[ElementTree.Element, dict[str, Any]]:
    enqueue = root.find("Enqueue")
    assert enqueue is not None, ElementTree.tostring(root)
    task = enqueue.find("Task")
    assert task is not None and task.text
    return enqueue, json.loads(task.text)


def path_of(url: str | None) -> str:
    parts = urlsplit(url or "")
    assert parts.scheme == "https" and parts.netloc == "calls.example.org"
    return f"{parts.path}?{parts.query}"


def test_a_warned_welsh_caller_is_queued_as_a_task_that_carries_the_decision(
    app: Flask,
    twilio: Any,
    run_jobs: Callable[[], int],
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
) -> None:
    customer = make_customer(language="cy-GB", adjustments={"slow_speech": True})
    restrict(customer, kind="warning")
    restrict(customer, kind="no_engagement", issue="the fence")
    params = twilio.call_params(CUSTOMER)
    root = parse(twilio.post("/twilio/voice/incoming", params))
    assert [e.tag for e in root] == ["Say", "Enqueue"]
    assert root.find("Dial") is None  # TaskRouter bridges, not callguard
    enqueue, task = enqueued(root)
    assert enqueue.get("workflowSid") == WORKFLOW
    assert enqueue.get("waitUrlMethod") == "POST" and enqueue.get("method") == "POST"
    assert "/twilio/voice/queue/wait?" in (enqueue.get("waitUrl") or "")
    assert "/twilio/voice/queue/result?" in (enqueue.get("action") or "")
    assert "lang=cy-GB" in (enqueue.get("action") or "")
    decided = task["callguard"]
    assert task["call_sid"] == params["CallSid"] == decided["call_sid"]
    assert task["name"] == "Pat Example" and task["from"] == CUSTOMER
    assert decided["customer"] == {"reference": "HMS-0001", "name": "Pat Example"}
    assert (decided["language"], decided["slow_speech"]) == ("cy-GB", True)
    assert {r["kind"] for r in decided["restrictions"]} == {"warning", "no_engagement"}
    assert "no_engagement:the fence" in decided["flags"]
    assert any("the fence" in t for t in decided["flag_texts"])
    assert decided["route"] == "default" and decided["spoc"] is None
    assert len(json.dumps(task)) <= MAX_BYTES
    # the call is recorded and counted like any other, from the parent call's callbacks
    run_jobs()
    assert call_row(app, params["CallSid"]).route_destination == f"taskrouter:{WORKFLOW}"
    status_event(twilio, params["CallSid"], "completed", 3, CallDuration="75")
    run_jobs()
    assert call_row(app, params["CallSid"]).duration_seconds == 75


def test_a_spocs_caller_is_queued_with_their_spoc_as_the_first_target(
    twilio: Any,
    make_staff: Callable[..., Any],
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
) -> None:
    make_staff("agent", "jo.bloggs")
    restrict(make_customer(), kind="spoc", spoc="jo.bloggs")
    root = parse(twilio.incoming(CUSTOMER))
    enqueue, task = enqueued(root)
    assert task["callguard"]["spoc"] == {"contact_uri": "client:jo.bloggs"}
    assert task["callguard"]["route"] == "spoc"
    assert enqueue.find("Task").get("priority") == "10"  # type: ignore[union-attr]
    assert "kind=spoc" in (enqueue.get("action") or "")


def test_a_message_that_ends_the_call_never_reaches_taskrouter(
    twilio: Any, make_customer: Callable[..., Any], restrict: Callable[..., Any]
) -> None:
    restrict(make_customer(), kind="written_only")
    root = parse(twilio.incoming(CUSTOMER))
    assert root.find("Enqueue") is None and "in writing only" in spoken(root)


def test_waiting_in_the_queue_offers_emergency_repairs_and_1_leaves_for_the_emergency_line(
    twilio: Any, make_customer: Callable[..., Any]
) -> None:
    make_customer(language="pl-PL")
    params = twilio.call_params(CUSTOMER)
    enqueue, _ = enqueued(parse(twilio.post("/twilio/voice/incoming", params)))
    wait = parse(twilio.post(path_of(enqueue.get("waitUrl")), {"CallSid": params["CallSid"]}))
    gather = wait.find("Gather")
    assert gather is not None and gather.get("numDigits") == "1"
    say = gather.find("Say")
    assert say is not None and say.get("language") == "pl-PL"
    assert wait.find("Pause") is not None
    key = path_of(gather.get("action"))
    again = parse(twilio.post(key, {"CallSid": params["CallSid"], "Digits": "5"}))
    assert again.find("Redirect") is not None  # back to waiting
    left = parse(twilio.post(key, {"CallSid": params["CallSid"], "Digits": "1"}))
    assert [e.tag for e in left] == ["Leave"]
    result = path_of(enqueue.get("action"))
    out = parse(twilio.post(result, {"CallSid": params["CallSid"], "QueueResult": "leave"}))
    dial = out.find("Dial")
    assert dial is not None and (dial.text or "").strip() == "+441332000999"
    assert dial.get("timeout") and dial.get("action")


@pytest.mark.parametrize(
    ("result", "heard"),
    [
        ("bridged", None),
        ("hangup", None),
        ("leave", "nobody from our team is free"),
        ("queue-full", "nobody from our team is free"),
        ("system-error", "nobody from our team is free"),
    ],
)
def test_leaving_the_queue_is_never_a_dead_end(
    twilio: Any, make_customer: Callable[..., Any], result: str, heard: str | None
) -> None:
    make_customer()
    params = twilio.call_params(CUSTOMER)
    enqueue, _ = enqueued(parse(twilio.post("/twilio/voice/incoming", params)))
    form = {"CallSid": params["CallSid"], "QueueResult": result, "QueueTime": "31"}
    out = parse(twilio.post(path_of(enqueue.get("action")), form))
    if heard is None:
        assert [e.tag for e in out] == ["Hangup"]
    else:
        assert heard in spoken(out) and "press 1" in spoken(out) and "999" in spoken(out)


def test_a_spocs_caller_whose_task_times_out_may_leave_a_message(
    twilio: Any,
    make_staff: Callable[..., Any],
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
) -> None:
    make_staff("agent", "jo.bloggs")
    restrict(make_customer(), kind="spoc", spoc="jo.bloggs")
    params = twilio.call_params(CUSTOMER)
    enqueue, _ = enqueued(parse(twilio.post("/twilio/voice/incoming", params)))
    form = {"CallSid": params["CallSid"], "QueueResult": "leave"}
    out = parse(twilio.post(path_of(enqueue.get("action")), form))
    assert out.find("Record") is not None and out.find("Enqueue") is None


def test_when_anything_fails_the_fallback_still_hands_the_call_to_taskrouter(
    app: Flask, twilio: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from telephony import inbound

    def broken(*args: Any, **kwargs: Any) -> str:
        raise RuntimeError("a bug")

    monkeypatch.setattr(inbound, "answer", broken)
    root = parse(twilio.incoming(CUSTOMER))
    enqueue, task = enqueued(root)
    assert enqueue.get("workflowSid") == WORKFLOW and task["callguard"]["fallback"] is True
    assert root.find("Dial") is None


# --- the decision for Studio, Functions and other systems ----------------------------------------


def test_other_systems_ask_for_a_callers_decision_with_an_integration_token(
    client: Any,
    make_staff: Callable[..., Any],
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
) -> None:
    restrict(make_customer(), kind="warning")
    housing = make_staff("integration", "housing.system")
    agent = make_staff("agent")
    answer = client.get(f"/api/v1/callers/{CUSTOMER}", headers=housing.headers)
    assert answer.status_code == 200, answer.get_json()
    found = answer.get_json()
    assert found["customer"]["reference"] == "HMS-0001" and found["route"] == "default"
    assert found["destination"] == f"taskrouter:{WORKFLOW}" and not found["ends_call"]
    assert found["task_attributes"]["callguard"]["restrictions"][0]["kind"] == "warning"
    assert client.get(f"/api/v1/callers/{CUSTOMER}", headers=agent.headers).status_code == 403
    bad = client.get("/api/v1/callers/07400100001", headers=housing.headers)
    assert bad.status_code == 422 and "E.164" in bad.get_json()["error"]
    # an integration may do nothing else
    assert client.get("/api/v1/calls/active", headers=housing.headers).status_code == 403


def test_a_studio_flow_gets_the_decision_as_json_from_a_signed_request(
    twilio: Any, make_customer: Callable[..., Any], restrict: Callable[..., Any]
) -> None:
    restrict(make_customer(), kind="written_only")
    studio = {"From": CUSTOMER, "CallSid": "CA" + "5" * 32, "FlowSid": "FW" + "0" * 32}
    answer = twilio.post("/twilio/studio/caller", studio)
    assert answer.status_code == 200 and answer.mimetype == "application/json"
    found = answer.get_json()
    assert found["ends_call"] is True and "in writing only" in found["words"]
    assert found["twiml_url"] == "https://calls.example.org/twilio/voice/incoming"
    unsigned = twilio.client.post("/twilio/studio/caller", data=studio)
    assert unsigned.status_code == 403
