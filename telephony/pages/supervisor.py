"""Supervisor pages: the alert queue, an alert with its evidence, dismiss and escalate (the
customer's record and a restriction's life are in ``telephony.pages.customers``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import DateField, SelectChoice, SelectField, TextAreaField
from wtforms.validators import DataRequired, Optional

from restrictions import alerts as domain
from restrictions import kinds
from restrictions.errors import DomainError
from restrictions.letters import date_in_words
from restrictions.models import ContactAlert, Role
from telephony import current_settings, letters
from telephony.auth import current_actor, page_role
from telephony.database import session

bp = Blueprint("supervisor", __name__, url_prefix="/supervisor")


class DismissForm(FlaskForm):  # type: ignore[misc]
    reason = TextAreaField("Why no action is needed", validators=[DataRequired()])


class RestrictionForm(FlaskForm):  # type: ignore[misc]
    """What every restriction has; each kind's own fields are drawn from its declaration
    (``kind_fields`` in the template) and read back by ``body``."""

    kind = SelectField("Restriction", validators=[DataRequired()])
    reason = TextAreaField("Reason (as it will appear in the letter)", validators=[DataRequired()])
    notice_sent_on = DateField("Written notice sent on", validators=[Optional()])

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kind.choices = [SelectChoice("", "Choose a restriction…")] + [
            SelectChoice(k.name, k.label) for k in kinds.all_kinds()
        ]

    def body(self, form: Mapping[str, str]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": self.kind.data,
            "reason": self.reason.data,
            "notice_sent_on": self.notice_sent_on.data,
        }
        kind = kinds.find(self.kind.data or "")
        for f in kind.fields if kind else ():
            body[f.name] = field_value(f, kind.name if kind else "", form)
        return body


def input_name(kind: str, field: kinds.Field, part: str = "") -> str:
    return f"{kind}-{field.name}" + (f"-{part}" if part else "")


def field_value(field: kinds.Field, kind: str, form: Mapping[str, str]) -> Any:
    """A kind's field as the API would take it, from the form's inputs."""
    if field.type is kinds.FieldType.WINDOWS:
        days = (form.get(input_name(kind, field, "days")) or "").replace(",", " ").split()
        start = form.get(input_name(kind, field, "start")) or ""
        end = form.get(input_name(kind, field, "end")) or ""
        if not (days or start or end):
            return None
        return [{"days": days, "start": start, "end": end}]
    raw = (form.get(input_name(kind, field)) or "").strip()
    if field.type is kinds.FieldType.COUNT:
        return int(raw) if raw.isdigit() else (raw or None)
    return raw or None


@bp.app_context_processor
def _kinds() -> dict[str, Any]:
    return {"restriction_kinds": kinds.all_kinds(), "kind_input": input_name}


def _alert(alert_id: int, *, for_decision: bool = False) -> ContactAlert:
    try:
        return domain.get_alert(session(), alert_id, for_decision=for_decision)
    except DomainError:
        abort(404)


@bp.route("/alerts")
@page_role(Role.SUPERVISOR)
def alerts() -> Any:
    status = request.args.get("status") or None
    rule = request.args.get("rule") or None
    try:
        found = domain.list_alerts(session(), status=status, rule=rule)
    except DomainError as exc:
        flash(exc.message, "error")
        found = []
    rules = [r.name for r in current_settings().contact_rules]
    return render_template(
        "supervisor/alerts.html", alerts=found, status=status, rule=rule, rules=rules
    )


@bp.route("/alerts/<id:alert_id>")
@page_role(Role.SUPERVISOR)
def alert(alert_id: int) -> Any:
    found = _alert(alert_id)
    days = domain.daily_calls(
        session(),
        customer_id=found.customer_id,
        e164=found.phone_e164,
        today=datetime.now(UTC),
        tz=current_settings().timezone,
    )
    return render_template(
        "supervisor/alert.html",
        alert=found,
        days=days,
        peak=max([n for _, n in days] + [1]),
        form=DismissForm(),
    )


@bp.route("/alerts/<id:alert_id>/dismiss", methods=["POST"])
@page_role(Role.SUPERVISOR)
def dismiss(alert_id: int) -> Any:
    form = DismissForm()
    found = _alert(alert_id, for_decision=True)
    if not form.validate_on_submit():
        flash("Say why no action is needed before dismissing.", "error")
        return redirect(url_for("supervisor.alert", alert_id=alert_id))
    sess = session()
    try:
        domain.dismiss(sess, current_actor(), found, form.reason.data)
        sess.commit()
    except DomainError as exc:
        sess.rollback()
        flash(exc.message, "error")
        return redirect(url_for("supervisor.alert", alert_id=alert_id))
    flash(f"Alert {alert_id} dismissed.", "info")
    return redirect(url_for("supervisor.alerts"))


def _prefilled_reason(found: ContactAlert) -> str:
    ev = found.evidence or {}
    limit = found.rule or {}
    what = (
        f"{ev.get('calls_in_window', len(ev.get('calls', [])))} calls"
        if limit.get("max_calls")
        else f"{(ev.get('talk_seconds', 0)) // 60} minutes of calls"
    )
    return (
        f"Unacceptable level of contact (policy section 6): {what} within "
        f"{limit.get('window_minutes')} minutes{_up_to(ev.get('window_end'))}."
    )


def _up_to(window_end: Any) -> str:
    """When the window ended, as the letter may print it: a date in words and a time on the
    landlord's clock, never an ISO timestamp ("" when the evidence has none)."""
    try:
        end = datetime.fromisoformat(str(window_end))
    except ValueError:
        return ""
    if end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    local = end.astimezone(ZoneInfo(current_settings().timezone))
    return f", up to {date_in_words(local.date(), 'en-GB')} at {local:%H:%M}"


@bp.route("/alerts/<id:alert_id>/escalate", methods=["GET", "POST"])
@page_role(Role.SUPERVISOR)
def escalate(alert_id: int) -> Any:
    found = _alert(alert_id, for_decision=request.method == "POST")
    form = RestrictionForm()
    if request.method == "GET":
        form.reason.data = _prefilled_reason(found)
    if form.validate_on_submit():
        sess = session()
        try:
            restriction = domain.escalate(sess, current_actor(), found, form.body(request.form))
            letters.keep_notice_given(sess, current_actor(), restriction)
            sess.commit()
        except DomainError as exc:
            sess.rollback()
            flash(exc.message, "error")
            return render_template("supervisor/escalate.html", alert=found, form=form), 422
        reference = restriction.customer.reference
        flash(f"{kinds.get(restriction.kind).label} recorded for {reference}.", "info")
        return redirect(url_for("supervisor.customer", reference=reference))
    return render_template("supervisor/escalate.html", alert=found, form=form)
