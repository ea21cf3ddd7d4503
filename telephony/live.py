"""Agents' controls on live calls, shared by the JSON API and the agent console: check and
record the press, then have Twilio carry it out (through the gateway), recording the outcome."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

import prompts
from restrictions import adjustments, agent_actions, kinds
from restrictions.models import AgentAction, Call, Customer, User
from restrictions.speech import Listener, danger, say
from telephony import current_settings, metrics, twilio_gateway, twiml
from telephony.urls import announce_url


def speech_for(call: Call, key: str) -> prompts.Speech:
    """The caller's language and speech rate apply to what they hear."""
    return say(key, Listener.of(call.customer), current_settings())


def warn(sess: Session, user: User, call_sid: str) -> AgentAction:
    """Play the scripted warning to both parties (a conference announcement); the call goes on."""
    action = agent_actions.record_press(sess, user, call_sid, agent_actions.WARN)
    sess.commit()
    url = announce_url(action.id, Listener.of(action.call.customer))
    conference_sid = action.call.conference_sid
    assert conference_sid is not None
    try:
        agent_actions.carry_out(
            sess, user, action, lambda: twilio_gateway.announce_to_conference(conference_sid, url)
        )
    except Exception:
        metrics.agent_action(agent_actions.WARN, "failed")
        raise
    metrics.agent_action(agent_actions.WARN, "sent")  # played or not: the console is told
    sess.refresh(action)  # Twilio may have said it played already
    return action


CALLER_GONE = "the caller had already left; their conference was closed, freeing the agent"


def end(sess: Session, user: User, call_sid: str, reason: Any) -> AgentAction:
    """Play the closing statement to the caller alone, disconnect them, then free the agent. A
    caller who has already gone (Twilio says the call is over, 21220) cannot hear it: the
    conference is closed all the same, so nobody is left in it."""
    action = agent_actions.record_press(sess, user, call_sid, agent_actions.END, reason)
    sess.commit()
    call = action.call
    listener = Listener.of(call.customer)
    closing = twiml.closing_then_hangup(
        speech_for(call, "closing"), danger(listener, current_settings())
    )
    conference_sid = call.conference_sid
    assert conference_sid is not None
    caller_gone = call.ended_at is not None

    def do() -> None:
        nonlocal caller_gone
        if not caller_gone:
            try:
                twilio_gateway.replace_call_twiml(
                    call.call_sid, closing, "play the closing statement"
                )
            except twilio_gateway.GatewayError as exc:
                if exc.code != twilio_gateway.CALL_NOT_IN_PROGRESS:
                    raise
                caller_gone = True
        try:
            twilio_gateway.end_conference(conference_sid)
        except twilio_gateway.GatewayError as exc:
            if exc.code != twilio_gateway.NOT_FOUND:
                raise  # 20404: the conference had ended already (the caller's leaving did it)

    try:
        agent_actions.carry_out(sess, user, action, do)
    except Exception:
        metrics.agent_action(agent_actions.END, "failed")
        raise
    metrics.agent_action(agent_actions.END, "caller_gone" if caller_gone else "ok")
    if caller_gone:
        action.detail = CALLER_GONE
        sess.commit()
    return action


def press(sess: Session, user: User, call_sid: str, kind: str, reason: Any = None) -> AgentAction:
    """Warn or End, as the agent pressed it (the API and the console both come here)."""
    if kind == agent_actions.WARN:
        return warn(sess, user, call_sid)
    return end(sess, user, call_sid, reason)


def card(
    call: Call, customer: Customer | None, warned: bool, warning: str | None = None
) -> dict[str, Any]:
    """What an agent needs to see about a live call: ``state`` is ``connected`` (Warn and End
    work) or ``waiting`` (the caller is being put through); ``warning`` is the latest Warn's
    outcome (``pending`` while Twilio has not said it played, ``ok``, ``failed``)."""
    flags = list((call.flags or {}).get("flags", []))
    restrictions = []
    if customer is not None:
        for r in customer.restrictions:
            if r.ended_at is None:
                kind = kinds.find(r.kind)
                restrictions.append(
                    {
                        "kind": r.kind,
                        "label": kind.label if kind else r.kind,
                        "since": r.decided_at.date().isoformat(),
                        **dict(r.details or {}),
                    }
                )
    return {
        "call_sid": call.call_sid,
        "from": call.from_e164 or call.from_number or "withheld",
        "caller_name": call.caller_name,
        "customer": {
            "reference": customer.reference,
            "name": customer.name,
            "language": customer.language,
            # never the sensitive note: the console is for agents
            "adjustments": adjustments.of(customer).public(),
            "adjustment_texts": adjustments.of(customer).words(customer.language),
        }
        if customer
        else None,
        "identified": call.identified,
        "flags": flags,
        "flag_texts": [kinds.describe_flag(f) for f in flags],
        "restrictions": restrictions,
        "route": call.route,
        "agent": call.agent_label,
        "state": "connected" if call.answered_at is not None else "waiting",
        "since": call.answered_at.isoformat() if call.answered_at else None,
        "started": call.started_at.isoformat(),
        "warned": warned,
        "warning": warning,
    }
