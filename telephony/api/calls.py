"""JSON API: live calls, and agents' Warn and End."""

from __future__ import annotations

from typing import Any

from flask import g, jsonify, request
from sqlalchemy import select

from restrictions import agent_actions, attach
from restrictions.calls import require_call
from restrictions.errors import Invalid
from restrictions.lifecycle import get_customer
from restrictions.models import AgentAction, Role
from telephony import live
from telephony.api import bp, error, json_body, serialize
from telephony.auth import api_role, current_actor
from telephony.config import current_settings
from telephony.database import session
from telephony.redis_store import redis_client
from telephony.twilio_gateway import GatewayError


def cards(mine_only: bool) -> list[dict[str, Any]]:
    sess = session()
    calls = agent_actions.live_calls(sess, g.user if mine_only else None)
    latest: dict[int, str] = {}  # each call's latest Warn and how it went
    played: set[int] = set()  # calls with a Warn that played: End needs no reason
    if calls:
        for call_id, outcome in sess.execute(
            select(AgentAction.call_id, AgentAction.outcome)
            .where(
                AgentAction.call_id.in_([c.id for c in calls]),
                AgentAction.kind == "warn",
            )
            .order_by(AgentAction.id)
        ):
            latest[call_id] = outcome
            if outcome == "ok":
                played.add(call_id)
    return [live.card(c, c.customer, c.id in played, latest.get(c.id)) for c in calls]


@bp.get("/calls/active")
@api_role(Role.AGENT)
def active_calls() -> Any:
    """Live calls; ``?mine=1`` for the calling agent's own and the contact centre's."""
    return jsonify(calls=cards(mine_only=request.args.get("mine") == "1"))


def _press(kind: str, call_sid: str) -> Any:
    sess = session()
    require_call(sess, call_sid)  # a 404 before the body's 422
    body = json_body(required=False)
    try:
        action = live.press(sess, g.user, call_sid, kind, body.get("reason"))
    except GatewayError as exc:
        return error(str(exc), 502)
    return jsonify(serialize.agent_action(action))


@bp.post("/calls/<sid:call_sid>/warn")
@api_role(Role.AGENT)
def warn_call(call_sid: str) -> Any:
    return _press("warn", call_sid)


@bp.post("/calls/<sid:call_sid>/end")
@api_role(Role.AGENT)
def end_call(call_sid: str) -> Any:
    return _press("end", call_sid)


@bp.post("/calls/<sid:call_sid>/attach")
@api_role(Role.SUPERVISOR)
def attach_call(call_sid: str) -> Any:
    """An unidentified call was the customer's (and, with ``number``, its number is theirs and
    so are its past calls): its counts and alerts move to them, on the audit trail."""
    sess = session()
    require_call(sess, call_sid)  # a 404 before the body's 422
    body = json_body()  # its shape: AttachCall (telephony.api.shapes.bodies)
    reference, with_number = body["customer"], body.get("number", False)
    if not reference.strip():
        raise Invalid("customer is required: the customer's reference")
    done = attach.attach_call(
        sess,
        redis_client(),
        current_settings(),
        current_actor(),
        call_sid,
        get_customer(sess, reference),
        reason=body.get("reason"),
        with_number=with_number,
    )
    sess.commit()
    return jsonify(serialize.attached(done))
