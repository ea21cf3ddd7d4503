"""Supervisor pages: the alert queue, an alert with its evidence, dismiss and escalate (the
customer's record and a restriction's life are in ``telephony.pages.customers``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import DateField, SelectChoice, SelectField, TextAreaField
from wtforms.validators import DataRequired, Optional

import prompts
from restrictions import alerts as domain
from restrictions import kinds, validation
from restrictions.letters import date_in_words
from restrictions.models import ContactAlert, Restriction, Role
from telephony import letters
from telephony.auth import current_actor, page_role
from telephony.config import current_settings
from telephony.database import session
from telephony.pages.refusals import back_to, if_refused, page_blueprint

bp = page_blueprint("supervisor", __name__, url_prefix="/supervisor")


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


# Permitted times offered as rows of inputs (the first unnumbered, then "-2", "-3", …); with
# script the empty ones hide behind "Add another time" (kind_fields.js).
WINDOW_ROWS = 4


def input_name(kind: str, field: kinds.Field, part: str = "", row: int = 1) -> str:
    return f"{kind}-{field.name}" + (f"-{part}" if part else "") + (f"-{row}" if row > 1 else "")


def windows_value(field: kinds.Field, kind: str, form: Mapping[str, str]) -> Any:
    """Every row of permitted times that was filled in (a row partly filled is handed on for
    the domain to refuse in its words), in order; None when none was."""
    found = []
    for row in range(1, validation.MAX_WINDOWS + 1):
        days = (form.get(input_name(kind, field, "days", row)) or "").replace(",", " ").split()
        start = (form.get(input_name(kind, field, "start", row)) or "").strip()
        end = (form.get(input_name(kind, field, "end", row)) or "").strip()
        if days or start or end:
            found.append({"days": days, "start": start, "end": end})
    return found or None


def field_value(field: kinds.Field, kind: str, form: Mapping[str, str]) -> Any:
    """A kind's field as the API would take it, from the form's inputs."""
    if field.type is kinds.FieldType.WINDOWS:
        return windows_value(field, kind, form)
    raw = (form.get(input_name(kind, field)) or "").strip()
    if field.type is kinds.FieldType.COUNT:
        return int(raw) if raw.isdigit() else (raw or None)
    return raw or None


@bp.app_context_processor
def _kinds() -> dict[str, Any]:
    return {
        "restriction_kinds": kinds.all_kinds(),
        "kind_input": input_name,
        "window_rows": WINDOW_ROWS,
    }


def field_text(field: kinds.Field, value: Any) -> str:
    """A kind's field in words, as stored."""
    if value in (None, "", []):
        return "not set"
    if field.type is kinds.FieldType.WINDOWS:
        return prompts.describe_windows(value, "en-GB")
    if field.type is kinds.FieldType.CONTACT and str(value).startswith("client:"):
        return f"{str(value).removeprefix('client:')} (staff user)"
    return str(value)


def terms(r: Restriction) -> list[tuple[str, str]]:
    """A restriction's own terms in words: each of its kind's fields, labelled."""
    kind = kinds.find(r.kind)
    return [
        (f.label, field_text(f, (r.details or {}).get(f.name)))
        for f in (kind.fields if kind else ())
    ]


def kind_label(r: Restriction) -> str:
    kind = kinds.find(r.kind)
    return kind.label if kind else r.kind


def _alert(alert_id: int, *, for_decision: bool = False) -> ContactAlert:
    """The alert (none: the 404 page)."""
    return domain.get_alert(session(), alert_id, for_decision=for_decision)


@bp.route("/alerts")
@page_role(Role.SUPERVISOR)
def alerts() -> Any:
    status = request.args.get("status") or None
    rule = request.args.get("rule") or None
    rules = [r.name for r in current_settings().contact_rules]

    def page(found: list[ContactAlert]) -> Any:
        return render_template(
            "supervisor/alerts.html", alerts=found, status=status, rule=rule, rules=rules
        )

    if_refused(lambda _status: page([]))  # a filter it does not know: said, and none listed
    return page(domain.list_alerts(session(), status=status, rule=rule))


@bp.route("/alerts/<id:alert_id>")
@page_role(Role.SUPERVISOR)
def alert(alert_id: int) -> Any:
    found = _alert(alert_id)
    days = [
        (date.fromisoformat(on), n)
        for on, n in domain.daily_calls(
            session(),
            customer_id=found.customer_id,
            e164=found.phone_e164,
            today=datetime.now(UTC),
            tz=current_settings().timezone,
        )
    ]
    in_force = [
        (kind_label(r), terms(r), r)
        for r in (found.customer.restrictions if found.customer else [])
        if r.state == "active"
    ]
    return render_template(
        "supervisor/alert.html",
        alert=found,
        in_force=in_force,
        days=days,
        peak=max([n for _, n in days] + [1]),  # the chart's scale
        busiest=max([n for _, n in days] + [0]),
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
    if_refused(back_to(url_for("supervisor.alert", alert_id=alert_id)))
    domain.dismiss(sess, current_actor(), found, form.reason.data)
    sess.commit()
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
        if_refused(
            lambda _status: (
                render_template("supervisor/escalate.html", alert=found, form=form),
                422,
            ),
            form=form,
        )
        restriction = domain.escalate(sess, current_actor(), found, form.body(request.form))
        letters.keep_notice_given(sess, current_actor(), restriction)
        sess.commit()
        reference = restriction.customer.reference
        flash(f"{kinds.get(restriction.kind).label} recorded for {reference}.", "info")
        return redirect(url_for("supervisor.customer", reference=reference))
    return render_template("supervisor/escalate.html", alert=found, form=form)
