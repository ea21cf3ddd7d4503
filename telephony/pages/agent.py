"""The agent console: live calls, each with the caller's flags and Warn / End controls, a
running timer and a wrap-up note; and a customer's page as an agent may read it.

The page polls ``/agent/live.json`` every second (session-authenticated; the JSON API is for
bearer tokens) and posts presses and notes with the CSRF token in a header. In the zero-setup
demonstration (SQLite and the in-process Redis, or ``DEMO`` set) the console can also play a
call arriving and the agent being put through: Warn and End on it are recorded as simulated.
"""

from __future__ import annotations

from typing import Any

from flask import (
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import select

from restrictions import adjustments, agent_actions, kinds
from restrictions.lifecycle import get_customer
from restrictions.models import Call, Role
from telephony import live
from telephony.api.calls import cards
from telephony.auth import page_role
from telephony.database import session
from telephony.errors import json_error
from telephony.inputs import json_object
from telephony.pages.refusals import back_to, if_refused, page_blueprint, refused_as_json
from telephony.twilio_gateway import GatewayError

bp = page_blueprint("agent", __name__, url_prefix="/agent")

RECENT_CALLS = 20
STATE_NAMES = {"awaiting_notice": "Awaiting notice", "active": "In force"}


def demo_mode() -> bool:
    """The zero-setup demonstration: ``DEMO`` set, or the SQLite database with the in-process
    Redis (never a deployment's PostgreSQL and Redis)."""
    config = current_app.config
    if config.get("DEMO"):
        return True
    if config.get("TESTING"):
        return False
    url = str(config.get("DATABASE_URL") or "")
    redis = config.get("REDIS_URL") or config.get("REDIS_SENTINELS")
    return url.startswith("sqlite") and not redis


@bp.route("/")
@page_role(Role.AGENT)
def console() -> Any:
    return render_template("agent/console.html", demo=demo_mode())


@bp.route("/live.json")
@page_role(Role.AGENT)
def live_json() -> Any:
    return jsonify(calls=cards(mine_only=request.args.get("all") != "1"))


@bp.route("/calls/<sid:call_sid>/<any(warn, end):kind>", methods=["POST"])
@page_role(Role.AGENT)
def press(call_sid: str, kind: str) -> Any:
    sess = session()
    refused_as_json()
    body = json_object(required=False)
    try:
        action = live.press(sess, g.user, call_sid, kind, body.get("reason"))
    except GatewayError as exc:
        return json_error(str(exc), 502)
    return jsonify(outcome=action.outcome, kind=action.kind, detail=action.detail)


@bp.route("/calls/<sid:call_sid>/wrap-up", methods=["POST"])
@page_role(Role.AGENT)
def wrap_up(call_sid: str) -> Any:
    """Save the wrap-up note: JSON from the console (answers JSON), or the customer page's form
    (back to that page)."""
    sess = session()
    from_form = not request.is_json
    if from_form:
        back = request.form.get("back", "")
        back_url = url_for("agent.customer", reference=back) if back else url_for(".console")
        if_refused(back_to(back_url), unless=[404])
        note = request.form.get("note")
    else:
        refused_as_json()
        note = json_object().get("note")
    call = live.save_wrap_up_note(sess, g.user, call_sid, note)
    sess.commit()
    if not from_form:
        return jsonify(call_sid=call.call_sid, wrap_up_note=call.wrap_up_note)
    flash("Wrap-up note saved.", "info")
    if call.customer is not None:
        return redirect(url_for("agent.customer", reference=call.customer.reference))
    return redirect(url_for("agent.console"))


@bp.route("/customers/<path:reference>")
@page_role(Role.AGENT)
def customer(reference: str) -> Any:
    """What an agent may read about a customer: never the sensitive note."""
    sess = session()
    found = get_customer(sess, reference)  # none: the 404 page (telephony.pages.refusals)
    restrictions = []
    for r in reversed(found.restrictions):
        if r.ended_at is not None:
            continue
        kind = kinds.find(r.kind)
        spoc = kinds.person_of(r.kind, r.details)
        restrictions.append(
            {
                "id": r.id,
                "label": kind.label if kind else r.kind,
                "state": STATE_NAMES.get(r.state, r.state),
                "terms": live.restriction_terms(sess, r),
                "spoc_name": live.staff_name(sess, str(spoc)) if spoc else None,
                "decided_on": r.decided_on,
                "under_appeal": any(a.outcome is None for a in r.appeals),
            }
        )
    calls = list(
        sess.scalars(
            select(Call)
            .where(Call.customer_id == found.id)
            .order_by(Call.started_at.desc(), Call.id.desc())
            .limit(RECENT_CALLS)
        )
    )
    return render_template(
        "agent/customer.html",
        customer=found,
        language=adjustments.language_name(found.language),
        # only what any member of staff may see: public(), never the sensitive note
        adjustments=adjustments.of(found).words(),  # never the sensitive note
        restrictions=restrictions,
        calls=calls,
        may_note={c.id for c in calls if agent_actions.may_press(g.user, c)},
    )


# --- the demonstration ----------------------------------------------------------------------------


@bp.route("/demo/calls", methods=["POST"])
@page_role(Role.AGENT)
def simulate_call() -> Any:
    """A demonstration caller starts waiting (no call is placed)."""
    if not demo_mode():
        abort(404)
    sess = session()
    call = live.simulate_call(sess, g.user)
    sess.commit()
    return jsonify(call_sid=call.call_sid, simulated=True), 201


@bp.route("/demo/calls/<sid:call_sid>/join", methods=["POST"])
@page_role(Role.AGENT)
def simulate_join(call_sid: str) -> Any:
    """The agent is put through to the demonstration caller."""
    if not demo_mode():
        abort(404)
    sess = session()
    refused_as_json()
    call = live.simulate_join(sess, g.user, call_sid)
    sess.commit()
    return jsonify(call_sid=call.call_sid, state="connected")
