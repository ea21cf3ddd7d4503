"""JSON API: a restriction's life after the decision: its notice and letter, reviews (policy
10.4), appeals (section 12), ending it, and what is due. Every step that sends the customer a
letter keeps that letter as it was sent (``restrictions.sent_letters``)."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request

from restrictions import appeals, due_list, sent_letters
from restrictions.errors import Invalid
from restrictions.lifecycle import get_restriction
from restrictions.models import Role
from telephony import letters
from telephony.api import bp, json_body, serialize
from telephony.auth import api_role, current_actor
from telephony.database import session

today = letters.today  # the landlord's clock (restrictions.policy_dates)


@bp.get("/restrictions/<id:restriction_id>")
@api_role(Role.AGENT)
def show_restriction(restriction_id: int) -> Any:
    return jsonify(serialize.restriction(get_restriction(session(), restriction_id)))


@bp.post("/restrictions/<id:restriction_id>/end")
@api_role(Role.SUPERVISOR)
def end(restriction_id: int) -> Any:
    sess = session()
    restriction = get_restriction(sess, restriction_id, for_decision=True)
    body = json_body()
    letters.send(
        sent_letters.end,
        sess,
        restriction,
        body,
    )
    sess.commit()
    return jsonify(serialize.restriction(restriction))


@bp.post("/restrictions/<id:restriction_id>/notice")
@api_role(Role.SUPERVISOR)
def notice(restriction_id: int) -> Any:
    """The written notice was sent (``{sent_on, method}``): it applies from then, and its
    decision letter is drawn as of that day and kept as sent."""
    sess = session()
    restriction = get_restriction(sess, restriction_id, for_decision=True)
    body = json_body()
    letters.send(
        sent_letters.record_notice,
        sess,
        restriction,
        body.get("sent_on"),
        body.get("method"),
    )
    sess.commit()
    return jsonify(serialize.restriction(restriction))


LETTERS = ("decision", "appeal", "review", "end", "lapse")


@bp.get("/restrictions/<id:restriction_id>/letter")
@api_role(Role.SUPERVISOR)
def letter(restriction_id: int) -> Any:
    """A letter about the restriction: the PDF as it was sent (a marked preview while it has
    not been), or ``?format=html`` for the preview. ``?about=decision`` (the default), ``appeal``
    (its latest appeal's outcome), ``review`` (its latest review's outcome), ``end`` or
    ``lapse``."""
    about = request.args.get("about", "decision")
    if about not in LETTERS:
        raise Invalid(f"about must be one of {', '.join(LETTERS)}, not {about[:40]!r}")
    restriction = get_restriction(session(), restriction_id)
    return letters.respond(restriction, about, request.args.get("format") == "html")


@bp.get("/letters/<id:letter_id>")
@api_role(Role.SUPERVISOR)
def sent_letter(letter_id: int) -> Any:
    """A letter as it was sent: the kept PDF, byte for byte."""
    return letters.respond_sent(sent_letters.get(session(), letter_id))


@bp.post("/restrictions/<id:restriction_id>/review")
@api_role(Role.SUPERVISOR)
def review(restriction_id: int) -> Any:
    """``{outcome: continue|vary|end, notes, next_review_on?, successor?}``."""
    sess = session()
    restriction = get_restriction(sess, restriction_id, for_decision=True)
    body = json_body()
    done, _ = letters.send(
        sent_letters.review,
        sess,
        restriction,
        body,
    )
    sess.commit()
    return jsonify(serialize.review(done, restriction))


@bp.get("/reviews")
@api_role(Role.SUPERVISOR)
def reviews() -> Any:
    """Restrictions due for review within 30 days, and overdue ones, oldest first."""
    items = due_list.reviews_due(session(), today())
    return jsonify(reviews=[serialize.due_item(i) for i in items])


@bp.post("/restrictions/<id:restriction_id>/appeals")
@api_role(Role.SUPERVISOR)
def lodge_appeal(restriction_id: int) -> Any:
    """``{lodged_on, grounds, late_reason?}`` → 201 with the appeal."""
    sess = session()
    restriction = get_restriction(sess, restriction_id, for_decision=True)
    body = json_body()
    appeal = appeals.lodge_appeal(sess, current_actor(), restriction, body, today=today())
    sess.commit()
    return jsonify(serialize.appeal(appeal)), 201


@bp.get("/appeals/<id:appeal_id>")
@api_role(Role.SUPERVISOR)
def show_appeal(appeal_id: int) -> Any:
    return jsonify(serialize.appeal(appeals.get_appeal(session(), appeal_id)))


@bp.post("/appeals/<id:appeal_id>/decision")
@api_role(Role.SUPERVISOR)
def decide_appeal(appeal_id: int) -> Any:
    """``{outcome: upheld|overturned|varied, notes, successor?, override_reason?}``, by someone
    who did not decide, review, vary or continue the restriction (an admin who did: with
    ``override_reason``, recorded)."""
    sess = session()
    appeal = appeals.get_appeal(sess, appeal_id, for_decision=True)
    get_restriction(sess, appeal.restriction_id, for_decision=True)
    body = json_body()
    letters.send(
        sent_letters.decide_appeal,
        sess,
        appeal,
        body,
    )
    sess.commit()
    return jsonify(serialize.appeal(appeal))


@bp.post("/restrictions/<id:restriction_id>/lapse-letter")
@api_role(Role.SUPERVISOR)
def lapse_letter(restriction_id: int) -> Any:
    """The letter telling the customer their restriction lapsed was sent (``{sent_on,
    method?}``): the lapse letter is drawn as of that day and kept as sent. The restriction,
    with the kept letter under ``letter``."""
    sess = session()
    restriction = get_restriction(sess, restriction_id, for_decision=True)
    body = json_body()
    kept = letters.send(
        sent_letters.lapse_letter_sent,
        sess,
        restriction,
        body,
    )
    sess.commit()
    return jsonify({**serialize.restriction(restriction), "letter": serialize.sent_letter(kept)})


@bp.get("/due")
@api_role(Role.SUPERVISOR)
def due() -> Response:
    """Letters to send, notices overdue, reviews due and overdue (with their escalations),
    appeals awaiting a decision, letters about lapsed restrictions."""
    return jsonify(due=[serialize.due_item(i) for i in due_list.due(session(), today())])
