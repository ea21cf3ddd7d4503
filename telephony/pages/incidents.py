"""Supervisor's incident queue: agents' Warn and End presses, newest first."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import TextAreaField
from wtforms.validators import Optional

from restrictions import agent_actions
from restrictions.errors import DomainError
from restrictions.models import Role
from telephony.auth import page_role
from telephony.database import session
from telephony.pages.words import plain_message

bp = Blueprint("incidents", __name__, url_prefix="/supervisor/incidents")


class ReviewForm(FlaskForm):  # type: ignore[misc]
    note = TextAreaField("Review note (optional)", validators=[Optional()])


@bp.route("/")
@page_role(Role.SUPERVISOR)
def queue() -> Any:
    kind = request.args.get("kind") or None
    outcome = request.args.get("outcome") or None
    found = agent_actions.incidents(
        session(), kind=kind, outcome=outcome, unreviewed=request.args.get("unreviewed") == "1"
    )
    return render_template(
        "supervisor/incidents.html",
        incidents=found,
        kind=kind,
        outcome=outcome,
        review_form=lambda a: ReviewForm(formdata=None, prefix=f"review-{a.id}"),
    )


@bp.route("/<id:action_id>/reviewed", methods=["POST"])
@page_role(Role.SUPERVISOR)
def reviewed(action_id: int) -> Any:
    form = ReviewForm(prefix=f"review-{action_id}")
    if not form.validate_on_submit():
        flash("The form expired; try again.", "error")
        return redirect(url_for("incidents.queue"))
    sess = session()
    try:
        agent_actions.mark_reviewed(sess, g.user, action_id, form.note.data or None)
        sess.commit()
    except DomainError as exc:
        sess.rollback()
        flash(plain_message(exc.message), "error")
        return redirect(url_for("incidents.queue", _anchor=f"incident-{action_id}"))
    flash(f"Incident {action_id} reviewed.", "info")
    return redirect(url_for("incidents.queue"))
