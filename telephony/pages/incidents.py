"""Supervisor's incident queue: agents' Warn and End presses, newest first."""

from __future__ import annotations

from typing import Any

from flask import flash, g, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import TextAreaField
from wtforms.validators import Optional

from restrictions import agent_actions
from restrictions.models import Role
from telephony.auth import page_role
from telephony.database import session
from telephony.pages.refusals import back_to, if_refused, page_blueprint

bp = page_blueprint("incidents", __name__, url_prefix="/supervisor/incidents")


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
    if_refused(back_to(url_for("incidents.queue", _anchor=f"incident-{action_id}")))
    agent_actions.mark_reviewed(sess, g.user, action_id, form.note.data or None)
    sess.commit()
    flash(f"Incident {action_id} reviewed.", "info")
    return redirect(url_for("incidents.queue"))
