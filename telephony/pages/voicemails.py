"""Voicemails for staff: an agent sees the messages left for them as a customer's named contact
(SPOC), a supervisor all of them; each with a player (the audio is streamed through callguard)
and a Mark handled button."""

from __future__ import annotations

from typing import Any

from flask import flash, g, redirect, render_template, request, url_for
from flask_wtf import FlaskForm

from restrictions import voicemails as domain
from restrictions.models import Role, Voicemail
from telephony.api.voicemails import audio_response
from telephony.auth import current_actor, page_role
from telephony.database import session
from telephony.pages.refusals import back_to, if_refused, page_blueprint

bp = page_blueprint("voicemails", __name__)


@bp.app_template_global()
def customer_voicemails(customer_id: int) -> list[Voicemail]:
    """A customer's newest voicemails, for their record page."""
    return domain.for_customer(session(), customer_id)


def _voicemail(voicemail_id: int) -> Voicemail:
    """The voicemail, if this member of staff may hear it (else the 404 or 403 page)."""
    return domain.get_voicemail(session(), voicemail_id, g.user)


@bp.route("/voicemails")
@page_role(Role.AGENT)
def listing() -> Any:
    status = request.args.get("status") or None
    if status not in (None, *domain.STATUSES):
        status = None
    found = domain.list_voicemails(session(), g.user, status=status)
    return render_template(
        "voicemails.html",
        voicemails=found,
        status=status,
        everyone=g.user.role_enum.may(Role.SUPERVISOR),
        form=FlaskForm(),
    )


@bp.route("/voicemails/<id:voicemail_id>/audio")
@page_role(Role.AGENT)
def audio(voicemail_id: int) -> Any:
    return audio_response(_voicemail(voicemail_id))


@bp.route("/voicemails/<id:voicemail_id>/handled", methods=["POST"])
@page_role(Role.AGENT)
def handled(voicemail_id: int) -> Any:
    if not FlaskForm().validate_on_submit():
        flash("The form expired; try again.", "error")
        return redirect(url_for("voicemails.listing"))
    sess = session()
    voicemail = domain.get_voicemail(sess, voicemail_id, g.user, for_decision=True)
    if_refused(back_to(url_for("voicemails.listing")), unless=[403, 404])
    domain.mark_handled(sess, current_actor(), voicemail)
    sess.commit()
    flash(f"Voicemail {voicemail_id} marked handled.", "info")
    return redirect(url_for("voicemails.listing"))
