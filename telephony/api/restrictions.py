"""JSON API: a restriction's life after the decision: its notice and letter, reviews (policy
10.4), appeals (section 12), ending it, and what is due."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Response, jsonify, request

from restrictions import decisions
from restrictions.errors import Invalid
from restrictions.lifecycle import end_restriction, get_restriction
from restrictions.models import Role
from telephony import current_settings, letters
from telephony.api import bp, json_body, serialize
from telephony.auth import api_role, current_actor
from telephony.database import session


def today() -> Any:
    """Today on the landlord's clock (Europe/London)."""
    from zoneinfo import ZoneInfo

    return datetime.now(UTC).astimezone(ZoneInfo(current_settings().timezone)).date()


@bp.get("/restrictions/<id:restriction_id>")
@api_role(Role.AGENT)
def show_restriction(restriction_id: int) -> Any:
    return jsonify(serialize.restriction(get_restriction(session(), restriction_id)))


@bp.post("/restrictions/<id:restriction_id>/end")
@api_role(Role.SUPERVISOR)
def end(restriction_id: int) -> Any:
    body = json_body()
    sess = session()
    restriction = get_restriction(sess, restriction_id, for_decision=True)
    end_restriction(sess, current_actor(), restriction, body.get("reason"))
    sess.commit()
    return jsonify(serialize.restriction(restriction))


@bp.post("/restrictions/<id:restriction_id>/notice")
@api_role(Role.SUPERVISOR)
def notice(restriction_id: int) -> Any:
    """The written notice was sent (``{sent_on, method}``): it applies from then."""
    body = json_body()
    sess = session()
    restriction = get_restriction(sess, restriction_id, for_decision=True)
    decisions.record_notice(
        sess, current_actor(), restriction, body.get("sent_on"), body.get("method"), today=today()
    )
    sess.commit()
    return jsonify(serialize.restriction(restriction))


LETTERS = ("decision", "appeal", "review")


@bp.get("/restrictions/<id:restriction_id>/letter")
@api_role(Role.SUPERVISOR)
def letter(restriction_id: int) -> Any:
    """A letter about the restriction: a PDF, or ``?format=html`` for the preview.
    ``?about=decision`` (the default), ``appeal`` (its latest appeal's outcome) or ``review``
    (its latest review's outcome)."""
    about = request.args.get("about", "decision")
    if about not in LETTERS:
        raise Invalid(f"about must be one of {', '.join(LETTERS)}, not {about[:40]!r}")
    restriction = get_restriction(session(), restriction_id)
    return letters.respond(restriction, about, request.args.get("format") == "html")


@bp.post("/restrictions/<id:restriction_id>/review")
@api_role(Role.SUPERVISOR)
def review(restriction_id: int) -> Any:
    """``{outcome: continue|vary|end, notes, next_review_on?, successor?}``."""
    body = json_body()
    sess = session()
    restriction = get_restriction(sess, restriction_id, for_decision=True)
    done = decisions.review(sess, current_actor(), restriction, body, today=today())
    sess.commit()
    return jsonify(serialize.review(done, restriction))


@bp.get("/reviews")
@api_role(Role.SUPERVISOR)
def reviews() -> Any:
    """Restrictions due for review within 30 days, and overdue ones, oldest first."""
    items = decisions.reviews_due(session(), today())
    return jsonify(reviews=[serialize.due_item(i) for i in items])


@bp.post("/restrictions/<id:restriction_id>/appeals")
@api_role(Role.SUPERVISOR)
def lodge_appeal(restriction_id: int) -> Any:
    """``{lodged_on, grounds, late_reason?}`` → 201 with the appeal."""
    body = json_body()
    sess = session()
    restriction = get_restriction(sess, restriction_id, for_decision=True)
    appeal = decisions.lodge_appeal(sess, current_actor(), restriction, body, today=today())
    sess.commit()
    return jsonify(serialize.appeal(appeal)), 201


@bp.get("/appeals/<id:appeal_id>")
@api_role(Role.SUPERVISOR)
def show_appeal(appeal_id: int) -> Any:
    return jsonify(serialize.appeal(decisions.get_appeal(session(), appeal_id)))


@bp.post("/appeals/<id:appeal_id>/decision")
@api_role(Role.SUPERVISOR)
def decide_appeal(appeal_id: int) -> Any:
    """``{outcome: upheld|overturned|varied, notes, successor?}``, by someone who did not decide
    the restriction."""
    body = json_body()
    sess = session()
    appeal = decisions.get_appeal(sess, appeal_id, for_decision=True)
    get_restriction(sess, appeal.restriction_id, for_decision=True)
    decisions.decide_appeal(sess, current_actor(), appeal, body, today=today())
    sess.commit()
    return jsonify(serialize.appeal(appeal))


@bp.get("/due")
@api_role(Role.SUPERVISOR)
def due() -> Response:
    """Letters to send, notices overdue, reviews due and overdue, appeals awaiting a decision."""
    return jsonify(due=[serialize.due_item(i) for i in decisions.due(session(), today())])
