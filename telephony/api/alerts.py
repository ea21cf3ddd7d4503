"""JSON API: excessive-contact alerts (supervisors)."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request

from restrictions import alerts as domain
from restrictions.models import ContactAlert, Role
from telephony import letters
from telephony.api import bp, json_body, serialize
from telephony.auth import api_role, current_actor
from telephony.database import session


def alert_json(a: ContactAlert) -> dict[str, Any]:
    return {
        "id": a.id,
        "status": a.status,
        "rule": a.rule_name,
        "limit": a.rule,
        "customer": a.customer.reference if a.customer else None,
        "number": a.phone_e164,
        "opened_at": a.opened_at.isoformat(),
        "evidence": a.evidence,
        "closed_at": a.closed_at.isoformat() if a.closed_at else None,
        "closed_by": a.closed_by.name if a.closed_by else None,
        "reason": a.close_reason,
        "restriction_id": a.restriction_id,
    }


@bp.get("/alerts")
@api_role(Role.SUPERVISOR)
def list_alerts() -> Any:
    found = domain.list_alerts(
        session(),
        status=request.args.get("status"),
        rule=request.args.get("rule"),
        customer=request.args.get("customer"),
    )
    return jsonify(alerts=[alert_json(a) for a in found])


@bp.get("/alerts/<id:alert_id>")
@api_role(Role.SUPERVISOR)
def show_alert(alert_id: int) -> Any:
    return jsonify(alert_json(domain.get_alert(session(), alert_id)))


@bp.post("/alerts/<id:alert_id>/dismiss")
@api_role(Role.SUPERVISOR)
def dismiss_alert(alert_id: int) -> Any:
    sess = session()
    alert = domain.get_alert(sess, alert_id, for_decision=True)  # a 404 before the body's 422
    alert = domain.dismiss(sess, current_actor(), alert, json_body().get("reason"))
    sess.commit()
    return jsonify(alert_json(alert))


@bp.post("/alerts/<id:alert_id>/escalate")
@api_role(Role.SUPERVISOR)
def escalate_alert(alert_id: int) -> Any:
    """A person chooses the restriction; the body is the same as creating one."""
    sess = session()
    alert = domain.get_alert(sess, alert_id, for_decision=True)
    body = json_body()
    restriction = domain.escalate(sess, current_actor(), alert, body)
    letters.keep_notice_given(sess, current_actor(), restriction)
    sess.commit()
    return jsonify(serialize.restriction(restriction)), 201
