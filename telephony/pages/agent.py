"""The agent console: live calls, each with the caller's flags and Warn / End controls.

The page polls ``/agent/live.json`` every second (session-authenticated; the JSON API is for
bearer tokens) and posts presses with the CSRF token in a header.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify, render_template, request

from restrictions.errors import DomainError
from restrictions.models import Role
from telephony import live
from telephony.api.calls import cards
from telephony.auth import page_role
from telephony.database import session
from telephony.errors import json_error
from telephony.inputs import json_object
from telephony.twilio_gateway import GatewayError

bp = Blueprint("agent", __name__, url_prefix="/agent")


@bp.route("/")
@page_role(Role.AGENT)
def console() -> Any:
    return render_template("agent/console.html")


@bp.route("/live.json")
@page_role(Role.AGENT)
def live_json() -> Any:
    return jsonify(calls=cards(mine_only=request.args.get("all") != "1"))


@bp.route("/calls/<sid:call_sid>/<any(warn, end):kind>", methods=["POST"])
@page_role(Role.AGENT)
def press(call_sid: str, kind: str) -> Any:
    sess = session()
    try:
        body = json_object(required=False)
        action = live.press(sess, g.user, call_sid, kind, body.get("reason"))
    except DomainError as exc:
        sess.rollback()
        return json_error(exc.message, exc.status)
    except GatewayError as exc:
        return json_error(str(exc), 502)
    return jsonify(outcome=action.outcome, kind=action.kind, detail=action.detail)
