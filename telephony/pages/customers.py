"""Supervisor pages for a restriction's whole life: find a customer, read every restriction in
words, act on it (the customer's details, a new restriction, its notice and letter, reviews,
ending it, appeals) and see what is due.

The rules are the domain's: each action calls the same function the JSON API calls, with today
on the landlord's clock, and shows the domain's own message when it refuses. What is here is
reading forms, choosing words and dates for people, and redirecting back.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session, selectinload
from wtforms import BooleanField, DateField, SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Optional

import prompts
from restrictions import (
    adjustments,
    appeals,
    attach,
    due_list,
    export,
    kinds,
    lifecycle,
    sent_letters,
    sharing,
)
from restrictions.errors import Invalid
from restrictions.lifecycle import (
    NOTICE_METHODS,
    add_restriction,
    create_customer,
    get_customer,
    get_restriction,
    update_customer,
)
from restrictions.models import Appeal, Customer, PhoneNumber, Restriction, Review, Role
from restrictions.phone import to_e164
from restrictions.records import customer_record
from telephony import letters
from telephony.auth import current_actor, page_role
from telephony.config import current_settings
from telephony.database import session
from telephony.pages.refusals import back_to, if_refused
from telephony.pages.supervisor import RestrictionForm, bp, terms
from telephony.pages.words import language_name
from telephony.redis_store import redis_client

PER_PAGE = 25
MAX_QUERY = 200
NOTICE_METHOD_NAMES = {
    "post": "Post",
    "email": "Email",
    "hand": "By hand",
    "portal": "Customer portal",
}
STATE_NAMES = {"awaiting_notice": "Awaiting notice", "active": "In force", "ended": "Ended"}
OUTCOME_NAMES = {"upheld": "Upheld", "overturned": "Overturned", "varied": "Varied"}
LETTERS = {  # the letters about a restriction a supervisor can open (?about= on its letter page)
    "decision": "Decision letter",
    "review": "Review outcome letter",
    "appeal": "Appeal outcome letter",
    "end": "End letter",
    "lapse": "Lapse letter",
}
REVIEW_NAMES = {"continue": "Continued", "vary": "Varied", "end": "Ended"}
DUE_SECTIONS = (
    ("notice_overdue", "Notices overdue"),
    ("letter", "Letters to send"),
    ("review_overdue", "Reviews overdue"),
    ("review_due", "Reviews due within 30 days"),
    ("appeal", "Appeals awaiting a decision"),
    ("lapse_letter", "Lapsed: letters to send"),
)
_NUMBER_LIKE = re.compile(r"^[0-9+()\-. ]+$")


# --- the landlord's clock, and dates in one style -----------------------------------------------


def london() -> ZoneInfo:
    return ZoneInfo(current_settings().timezone)


def today() -> date:
    """Today on the landlord's clock (Europe/London), as the API decides with."""
    return letters.today()


@bp.app_template_filter("day")
def day(value: date | datetime | None) -> str:
    """A day as people read it, on the landlord's clock: "26 Nov 2026"."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.astimezone(london()).date()
    return f"{value.day} {value:%b %Y}"


def _days(n: int) -> str:
    return f"{n} day" if n == 1 else f"{n} days"


# --- forms ---------------------------------------------------------------------------------------


class CustomerForm(FlaskForm):  # type: ignore[misc]
    name = StringField("Name", validators=[DataRequired()])
    numbers = StringField("Phone numbers, separated by ;", validators=[DataRequired()])
    language = SelectField("Language", validators=[DataRequired()])
    slow_speech = BooleanField("Slower speech (a reasonable adjustment)")
    large_print = BooleanField("Large print for anything written to them")
    preferred_contact = SelectField(
        "Prefers to be contacted",
        choices=[SelectChoice("", "No preference")]
        + [SelectChoice(c, w.capitalize()) for c, w in adjustments.CONTACT_WORDS.items()],
        validators=[Optional()],
    )
    representative_name = StringField("Representative or support worker", [Optional()])
    representative_contact = StringField("How to reach them", [Optional()])
    representative_role = SelectField(
        "They are their",
        choices=[SelectChoice(r, w) for r, w in adjustments.ROLE_WORDS.items()],
        validators=[Optional()],
    )
    interpreter = StringField("Interpreter needed (for example Polish, BSL)", [Optional()])
    sensitive_note = TextAreaField(
        "Sensitive note: supervisors only (health details go here; agents never see it and the "
        "audit trail records only that it changed)",
        [Optional()],
    )

    def adjustments_body(self) -> dict[str, Any]:
        """The typed adjustments as the form gives them (restrictions.adjustments checks them)."""
        name = (self.representative_name.data or "").strip()
        contact = (self.representative_contact.data or "").strip()
        return {
            "slow_speech": bool(self.slow_speech.data),
            "large_print": bool(self.large_print.data),
            "preferred_contact": self.preferred_contact.data or None,
            "representative": {
                "name": name,
                "contact": contact,
                "role": self.representative_role.data or "representative",
            }
            if name or contact
            else None,
            "interpreter": self.interpreter.data or None,
            "sensitive_note": self.sensitive_note.data or None,
        }

    postal_address = TextAreaField("Postal address, a line each (for letters)")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.language.choices = [
            SelectChoice(code, language_name(code)) for code in prompts.languages()
        ]


def _adjustment_fields(adjusted: adjustments.Adjustments) -> dict[str, Any]:
    """The details form's adjustment fields, filled in as stored."""
    representative = adjusted.representative
    return {
        "slow_speech": adjusted.slow_speech,
        "large_print": adjusted.large_print,
        "preferred_contact": adjusted.preferred_contact or "",
        "representative_name": representative.name if representative else "",
        "representative_contact": representative.contact if representative else "",
        "representative_role": representative.role if representative else "representative",
        "interpreter": adjusted.interpreter or "",
        "sensitive_note": adjusted.sensitive_note or "",
    }


class NewCustomerForm(CustomerForm):
    reference = StringField("Reference (the housing system's)", validators=[DataRequired()])


def _letter_method() -> SelectField:
    """How the letter this step sends goes (post when not said)."""
    return SelectField(
        "How the letter goes",
        choices=[SelectChoice(m, NOTICE_METHOD_NAMES.get(m, m)) for m in NOTICE_METHODS],
        default="post",
        validators=[DataRequired()],
    )


def _numbers(text: str | None) -> list[str]:
    return [n.strip() for n in (text or "").split(";") if n.strip()]


class NewRestrictionForm(RestrictionForm):
    decided_on = DateField("Decided on (today if left blank)", validators=[Optional()])
    apply_now = BooleanField("Apply at once, before the notice is sent (danger, policy 4.6)")
    urgent_reason = TextAreaField("Why it must apply at once", validators=[Optional()])

    def body(self, form: Mapping[str, str]) -> dict[str, Any]:
        body: dict[str, Any] = super().body(form)
        body["decided_on"] = self.decided_on.data
        body["apply_now"] = bool(self.apply_now.data)
        body["urgent_reason"] = self.urgent_reason.data or None
        return body


class NoticeForm(FlaskForm):  # type: ignore[misc]
    sent_on = DateField("Notice sent on", validators=[DataRequired()])
    method = SelectField(
        "Sent by",
        choices=[SelectChoice(m, NOTICE_METHOD_NAMES.get(m, m)) for m in NOTICE_METHODS],
        validators=[DataRequired()],
    )


class LapseLetterForm(NoticeForm):
    sent_on = DateField("Letter sent on", validators=[DataRequired()])


class ReviewForm(FlaskForm):  # type: ignore[misc]
    outcome = SelectField(
        "Outcome",
        choices=[SelectChoice("continue", "Continue it"), SelectChoice("end", "End it")],
        validators=[DataRequired()],
    )
    notes = TextAreaField("Review notes", validators=[DataRequired()])
    next_review_on = DateField(
        "Next review by (if it continues; 12 months on if left blank)", validators=[Optional()]
    )
    letter_method = _letter_method()


class EndForm(FlaskForm):  # type: ignore[misc]
    reason = TextAreaField("Why it ends", validators=[DataRequired()])
    letter_method = _letter_method()


class AppealForm(FlaskForm):  # type: ignore[misc]
    lodged_on = DateField("Appeal lodged on", validators=[Optional()])
    grounds = TextAreaField("Grounds of appeal", validators=[DataRequired()])
    late_reason = TextAreaField(
        "Why it is accepted late (only if lodged after the last day to appeal)",
        validators=[Optional()],
    )


class AttachNumberForm(FlaskForm):  # type: ignore[misc]
    number = StringField("Their number, with its past calls", validators=[DataRequired()])
    reason = TextAreaField("How it is known to be theirs (optional)", validators=[Optional()])


class AttachCallForm(FlaskForm):  # type: ignore[misc]
    reason = TextAreaField("How it is known to be theirs", validators=[DataRequired()])
    number = BooleanField("Its number is theirs too (with all its past calls)")


class AppealDecisionForm(FlaskForm):  # type: ignore[misc]
    outcome = SelectField(
        "Decision",
        choices=[
            SelectChoice("upheld", "Upheld: the restriction stays"),
            SelectChoice("overturned", "Overturned: it ends"),
        ],
        validators=[DataRequired()],
    )
    notes = TextAreaField("Reasons for the decision", validators=[DataRequired()])
    letter_method = _letter_method()
    override_reason = TextAreaField(
        "Admins only, if you took part in the restriction: why you decide the appeal all the "
        "same (recorded)",
        validators=[Optional()],
    )


class VaryForm(RestrictionForm):
    """Varying a restriction, at a review or on appeal: it ends and a successor with new terms
    replaces it (the new restriction's fields, as on the customer's page)."""

    notes = TextAreaField(
        "Why it varies (review notes, or the reasons for the decision)",
        validators=[DataRequired()],
    )
    letter_method = _letter_method()
    override_reason = TextAreaField(
        "Admins only, if you took part in the restriction: why you decide the appeal all the "
        "same (recorded)",
        validators=[Optional()],
    )

    def vary_body(self, outcome: str, form: Mapping[str, str]) -> dict[str, Any]:
        return {
            "outcome": outcome,
            "notes": self.notes.data,
            "letter_method": self.letter_method.data,
            "override_reason": self.override_reason.data or None,
            "successor": self.body(form),
        }


class Forms:
    """The page's forms, each with its own prefix (so ids never clash); the one just submitted,
    when it failed, comes back with what was typed and its errors."""

    def __init__(
        self, customer: Customer, bound: tuple[str, FlaskForm] | None, opened: str | None = None
    ) -> None:
        self.customer = customer
        self.bound = bound
        self.opened = opened  # ?open=<key>: a link (the Due list's) asks for that form open

    def open(self, key: str) -> bool:
        if self.bound is not None:
            return self.bound[0] == key
        return self.opened == key

    def _get(self, factory: Callable[..., FlaskForm], key: str, **data: Any) -> FlaskForm:
        if self.bound is not None and self.bound[0] == key:
            return self.bound[1]
        return factory(formdata=None, prefix="" if key == "new" else key, **data)

    def details(self) -> FlaskForm:
        c = self.customer
        return self._get(
            CustomerForm,
            "customer",
            name=c.name,
            numbers="; ".join(n.e164 for n in c.numbers),
            language=c.language,
            **_adjustment_fields(adjustments.of(c)),
            postal_address="\n".join(c.postal_address or []),
        )

    def new(self) -> FlaskForm:
        return self._get(NewRestrictionForm, "new")

    def notice(self, r: Restriction) -> FlaskForm:
        return self._get(NoticeForm, f"notice-{r.id}", sent_on=today(), method="post")

    def lapse_letter(self, r: Restriction) -> FlaskForm:
        return self._get(LapseLetterForm, f"lapse-{r.id}", sent_on=today(), method="post")

    def review(self, r: Restriction) -> FlaskForm:
        return self._get(ReviewForm, f"review-{r.id}", letter_method="post")

    def end(self, r: Restriction) -> FlaskForm:
        return self._get(EndForm, f"end-{r.id}", letter_method="post")

    def appeal(self, r: Restriction) -> FlaskForm:
        return self._get(AppealForm, f"appeal-{r.id}", lodged_on=today())

    def decide(self, a: Appeal) -> FlaskForm:
        return self._get(AppealDecisionForm, f"decide-{a.id}", letter_method="post")

    def sharing(self, r: Restriction) -> FlaskForm:
        return self._get(SharingForm, f"sharing-{r.id}", shared_on=today())

    def attach_number(self) -> FlaskForm:
        return self._get(AttachNumberForm, "attach-number")

    def attach_call(self, call_sid: str) -> FlaskForm:
        return self._get(AttachCallForm, f"attach-{call_sid}")


# --- a restriction in words ----------------------------------------------------------------------


@dataclass(frozen=True)
class AppealView:
    appeal: Appeal
    outcome: str  # "Awaiting a decision" or the outcome in words
    overdue_days: int  # a decision past its due date


@dataclass(frozen=True)
class RestrictionView:
    restriction: Restriction
    label: str
    state: str
    details: list[tuple[str, str]]
    notice: str
    notice_overdue: bool
    takes_effect: str
    review: str
    review_overdue_days: int
    appeals: list[AppealView]
    reviews: list[Review]
    open_appeal: Appeal | None


def describe(r: Restriction, reviews: list[Review], on: date) -> RestrictionView:
    kind = kinds.find(r.kind)
    details = terms(r)
    ended = r.ended_at is not None
    notice_overdue = (
        not ended
        and r.notice_sent_on is None
        and r.notice_due_on is not None
        and r.notice_due_on < on
    )
    if r.notice_sent_on is not None:
        method = NOTICE_METHOD_NAMES.get(r.notice_method or "", r.notice_method or "")
        notice = f"Sent on {day(r.notice_sent_on)}" + (f" by {method.lower()}" if method else "")
    elif ended:
        notice = "Never sent"
    elif notice_overdue:
        notice = f"Notice overdue: it was due by {day(r.notice_due_on)}"
    elif r.notice_due_on is not None:
        notice = f"Not sent yet: applied at once, so it is due by {day(r.notice_due_on)}"
    else:
        notice = "Awaiting notice: it applies from the day the notice is sent"
    effect = r.takes_effect_on
    takes_effect = day(effect) if effect else "When the notice is sent"
    review_overdue_days = 0
    if ended:
        review = "No review: it has ended"
    elif r.review_due_on is None:
        review = "12 months after it takes effect"
    elif r.review_due_on < on:
        review_overdue_days = (on - r.review_due_on).days
        review = (
            f"Review overdue by {_days(review_overdue_days)} (it was due {day(r.review_due_on)})"
        )
    else:
        review = day(r.review_due_on)
    appeals = []
    for a in r.appeals:
        if a.outcome is None:
            late = max(0, (on - a.due_on).days)
            appeals.append(AppealView(a, "Awaiting a decision", late))
        else:
            appeals.append(AppealView(a, OUTCOME_NAMES.get(a.outcome, a.outcome), 0))
    return RestrictionView(
        restriction=r,
        label=kind.label if kind else r.kind,
        state=STATE_NAMES.get(r.state, r.state),
        details=details,
        notice=notice,
        notice_overdue=notice_overdue,
        takes_effect=takes_effect,
        review=review,
        review_overdue_days=review_overdue_days,
        appeals=appeals,
        reviews=reviews,
        open_appeal=next((a for a in r.appeals if a.outcome is None), None),
    )


# --- finding a customer --------------------------------------------------------------------------


def _as_number(text: str) -> str | None:
    """The query as an E.164 number, when it is written as a whole phone number."""
    if not _NUMBER_LIKE.match(text) or sum(ch.isdigit() for ch in text) < 7:
        return None
    try:
        return to_e164(text)
    except Invalid:
        return None


def search(text: str) -> Select[Customer]:
    """Customers whose name or reference holds the text, or who have the number typed (in any
    UK format: its E.164 form), or part of it."""
    query = select(Customer)
    text = text.strip()
    if not text:
        return query
    conditions = [
        Customer.name.icontains(text, autoescape=True),
        Customer.reference.icontains(text, autoescape=True),
    ]
    e164 = _as_number(text)
    if e164 is not None:
        conditions.append(Customer.numbers.any(PhoneNumber.e164 == e164))
    elif _NUMBER_LIKE.match(text):
        digits = re.sub(r"\D", "", text).lstrip("0")
        if len(digits) >= 4:
            conditions.append(Customer.numbers.any(PhoneNumber.e164.contains(digits)))
    return query.where(or_(*conditions))


@bp.route("/customers")
@page_role(Role.SUPERVISOR)
def customers() -> Any:
    sess = session()
    text = (request.args.get("q") or "").strip()[:MAX_QUERY]
    query = search(text)
    total = sess.scalar(select(func.count()).select_from(query.subquery())) or 0
    pages = max(1, -(-total // PER_PAGE))
    page = min(max(1, request.args.get("page", 1, type=int) or 1), pages)
    found = sess.scalars(
        query.options(selectinload(Customer.numbers), selectinload(Customer.restrictions))
        .order_by(Customer.name, Customer.reference, Customer.id)
        .limit(PER_PAGE)
        .offset((page - 1) * PER_PAGE)
    ).all()
    return render_template(
        "supervisor/customers.html",
        customers=found,
        q=text,
        page=page,
        pages=pages,
        total=total,
        state_names=STATE_NAMES,
        kind_labels={k.name: k.label for k in kinds.all_kinds()},
    )


# --- a customer's record, with its restrictions in words and their actions ---------------------


def _customer(reference: str) -> Customer:
    """The customer (none: the 404 page, as every look-up here)."""
    return get_customer(session(), reference)


def _restriction(restriction_id: int, *, for_decision: bool = False) -> Restriction:
    return get_restriction(session(), restriction_id, for_decision=for_decision)


def _page(found: Customer, bound: tuple[str, FlaskForm] | None = None, status: int = 200) -> Any:
    sess = session()
    on = today()
    ids = [r.id for r in found.restrictions]
    reviews: dict[int, list[Review]] = {}
    if ids:
        for rv in sess.scalars(
            select(Review).where(Review.restriction_id.in_(ids)).order_by(Review.id)
        ):
            reviews.setdefault(rv.restriction_id, []).append(rv)
    views = [describe(r, reviews.get(r.id, []), on) for r in reversed(found.restrictions)]
    return (
        render_template(
            "supervisor/customer.html",
            record=customer_record(sess, found),
            restrictions=views,
            forms=Forms(found, bound, request.args.get("open") if bound is None else None),
            review_names=REVIEW_NAMES,
            adjusted=adjustments.of(found),  # the sensitive note too: this page is supervisors'
            lawful_bases=sharing.LAWFUL_BASES,
            sent_letters=sent_letters.for_customer(sess, found.id),
            letter_kinds=sent_letters.KIND_NAMES,
            method_names=NOTICE_METHOD_NAMES,
            letter_names=LETTERS,
            today=on,
            unattached=attach.unattached_calls(sess),
        ),
        status,
    )


@bp.route("/customers/new", methods=["GET", "POST"])
@page_role(Role.SUPERVISOR)
def new_customer() -> Any:
    """Add a customer: reference, name, numbers, language, typed adjustments and postal address,
    as the API's ``POST /customers`` takes them."""
    form = NewCustomerForm(prefix="customer")
    if request.method == "GET":
        return render_template("supervisor/new_customer.html", form=form)
    if not form.validate_on_submit():
        if form.meta.csrf and form.csrf_token.errors:
            flash("The form had expired; please try again.", "error")
        return render_template("supervisor/new_customer.html", form=form), 422
    sess = session()
    if_refused(
        lambda status: (render_template("supervisor/new_customer.html", form=form), status),
        form=form,
    )
    made = create_customer(
        sess,
        current_actor(),
        reference=(form.reference.data or "").strip(),
        name=form.name.data,
        phone_numbers=_numbers(form.numbers.data),
        language=form.language.data,
        adjustments=form.adjustments_body(),
        postal_address=(form.postal_address.data or "").splitlines(),
    )
    sess.commit()
    flash(f"{made.name} added as {made.reference}.", "info")
    return redirect(url_for("supervisor.customer", reference=made.reference))


@bp.route("/customers/<path:reference>")
@page_role(Role.SUPERVISOR)
def customer(reference: str) -> Any:
    return _page(_customer(reference))


Action = Callable[[Session], list[tuple[str, str]]]


def _act(reference: str, key: str, form: FlaskForm, action: Action, anchor: str) -> Any:
    """Validate the form and do the action; on success commit, flash what was done and go back
    to the customer; otherwise show the page again with the form as typed, its errors beside
    the fields and the domain's message as a flash (telephony.pages.refusals)."""
    sess = session()
    if not form.validate_on_submit():
        if form.meta.csrf and form.csrf_token.errors:
            flash("The form had expired; please try again.", "error")
        return _page(get_customer(sess, reference), (key, form), 422)
    if_refused(lambda status: _page(get_customer(sess, reference), (key, form), status), form=form)
    messages = action(sess)
    sess.commit()
    for message, category in messages:
        flash(message, category)
    return redirect(url_for("supervisor.customer", reference=reference, _anchor=anchor))


@bp.route("/customers/<path:reference>/details", methods=["POST"])
@page_role(Role.SUPERVISOR)
def edit_customer(reference: str) -> Any:
    found = _customer(reference)
    form = CustomerForm(prefix="customer")

    def action(sess: Session) -> list[tuple[str, str]]:
        numbers = _numbers(form.numbers.data)
        changed = update_customer(
            sess,
            current_actor(),
            found,
            name=form.name.data,
            phone_numbers=numbers,
            language=form.language.data,
            adjustments=form.adjustments_body(),
            postal_address=(form.postal_address.data or "").splitlines(),
        )
        return [("Details saved." if changed else "Nothing had changed.", "info")]

    return _act(reference, "customer", form, action, "details")


@bp.route("/customers/<path:reference>/restrictions", methods=["POST"])
@page_role(Role.SUPERVISOR)
def new_restriction(reference: str) -> Any:
    found = _customer(reference)
    form = NewRestrictionForm()

    def action(sess: Session) -> list[tuple[str, str]]:
        r = add_restriction(sess, current_actor(), found, form.body(request.form), today=today())
        letters.keep_notice_given(sess, current_actor(), r)  # recorded as sent already
        done = f"{kinds.get(r.kind).label} recorded for {found.reference}."
        return [(done, "info")] + [(w, "warning") for w in lifecycle.clashes(r)]

    return _act(reference, "new", form, action, "restrictions")


@bp.route("/restrictions/<id:restriction_id>/notice", methods=["POST"])
@page_role(Role.SUPERVISOR)
def record_notice(restriction_id: int) -> Any:
    r = _restriction(restriction_id, for_decision=True)
    key = f"notice-{r.id}"
    form = NoticeForm(prefix=key)

    def action(sess: Session) -> list[tuple[str, str]]:
        letters.send(
            sent_letters.record_notice,
            sess,
            r,
            form.sent_on.data,
            form.method.data,
        )
        return [(f"Notice recorded: it applies from {day(r.takes_effect_on)}.", "info")]

    return _act(r.customer.reference, key, form, action, f"restriction-{r.id}")


@bp.route("/restrictions/<id:restriction_id>/lapse-letter", methods=["POST"])
@page_role(Role.SUPERVISOR)
def record_lapse_letter(restriction_id: int) -> Any:
    """The letter telling the customer their restriction lapsed went: it is drawn and kept."""
    r = _restriction(restriction_id, for_decision=True)
    key = f"lapse-{r.id}"
    form = LapseLetterForm(prefix=key)

    def action(sess: Session) -> list[tuple[str, str]]:
        letters.send(
            sent_letters.lapse_letter_sent,
            sess,
            r,
            {"sent_on": form.sent_on.data, "method": form.method.data},
        )
        return [("The letter about the lapse is recorded and kept as sent.", "info")]

    return _act(r.customer.reference, key, form, action, f"restriction-{r.id}")


@bp.route("/restrictions/<id:restriction_id>/letter")
@page_role(Role.SUPERVISOR)
def letter(restriction_id: int) -> Any:
    """A letter about the restriction, ``?about=`` decision (the default), review (its latest
    review's outcome), appeal (its latest decided appeal's outcome), end or lapse: the HTML
    preview, or ``?download=1`` for the PDF, which is the letter as it was sent once it was."""
    about = request.args.get("about") or "decision"
    if about not in LETTERS:
        abort(404)
    r = _restriction(restriction_id)
    if_refused(  # a letter it has none of yet: said, on the customer's page
        back_to(
            url_for(
                "supervisor.customer", reference=r.customer.reference, _anchor=f"restriction-{r.id}"
            )
        )
    )
    return letters.respond(r, about, html=request.args.get("download") != "1")


@bp.route("/letters/<id:letter_id>")
@page_role(Role.SUPERVISOR)
def sent_letter(letter_id: int) -> Any:
    """A letter as it was sent: the kept PDF, byte for byte."""
    return letters.respond_sent(sent_letters.get(session(), letter_id))


@bp.route("/restrictions/<id:restriction_id>/review", methods=["POST"])
@page_role(Role.SUPERVISOR)
def review(restriction_id: int) -> Any:
    r = _restriction(restriction_id, for_decision=True)
    key = f"review-{r.id}"
    form = ReviewForm(prefix=key)

    def action(sess: Session) -> list[tuple[str, str]]:
        body = {
            "outcome": form.outcome.data,
            "notes": form.notes.data,
            "next_review_on": form.next_review_on.data,
            "letter_method": form.letter_method.data,
        }
        done, _ = letters.send(
            sent_letters.review,
            sess,
            r,
            body,
        )
        if done.outcome == "continue":
            return [
                (
                    f"Review recorded: it continues, next review by {day(done.next_review_on)}.",
                    "info",
                )
            ]
        return [("Review recorded: the restriction has ended.", "info")]

    return _act(r.customer.reference, key, form, action, f"restriction-{r.id}")


@bp.route("/restrictions/<id:restriction_id>/end", methods=["POST"])
@page_role(Role.SUPERVISOR)
def end(restriction_id: int) -> Any:
    r = _restriction(restriction_id, for_decision=True)
    key = f"end-{r.id}"
    form = EndForm(prefix=key)

    def action(sess: Session) -> list[tuple[str, str]]:
        letters.send(
            sent_letters.end,
            sess,
            r,
            {"reason": form.reason.data, "letter_method": form.letter_method.data},
        )
        return [(f"Restriction {r.id} ended.", "info")]

    return _act(r.customer.reference, key, form, action, f"restriction-{r.id}")


@bp.route("/restrictions/<id:restriction_id>/appeals", methods=["POST"])
@page_role(Role.SUPERVISOR)
def lodge_appeal(restriction_id: int) -> Any:
    r = _restriction(restriction_id, for_decision=True)
    key = f"appeal-{r.id}"
    form = AppealForm(prefix=key)

    def action(sess: Session) -> list[tuple[str, str]]:
        body = {
            "lodged_on": form.lodged_on.data,
            "grounds": form.grounds.data,
            "late_reason": form.late_reason.data or None,
        }
        appeal = appeals.lodge_appeal(sess, current_actor(), r, body, today=today())
        return [(f"Appeal lodged: a decision is due by {day(appeal.due_on)}.", "info")]

    return _act(r.customer.reference, key, form, action, f"restriction-{r.id}")


@bp.route("/appeals/<id:appeal_id>/decision", methods=["POST"])
@page_role(Role.SUPERVISOR)
def decide_appeal(appeal_id: int) -> Any:
    sess = session()
    appeal = appeals.get_appeal(sess, appeal_id, for_decision=True)
    r = _restriction(appeal.restriction_id, for_decision=True)
    key = f"decide-{appeal.id}"
    form = AppealDecisionForm(prefix=key)

    def action(sess: Session) -> list[tuple[str, str]]:
        body = {
            "outcome": form.outcome.data,
            "notes": form.notes.data,
            "letter_method": form.letter_method.data,
            "override_reason": form.override_reason.data or None,
        }
        letters.send(
            sent_letters.decide_appeal,
            sess,
            appeal,
            body,
        )
        what = "the restriction has ended" if r.ended_at else "the restriction stays"
        return [(f"Appeal {appeal.id} {appeal.outcome}: {what}.", "info")]

    return _act(r.customer.reference, key, form, action, f"restriction-{r.id}")


# --- varying a restriction: at a review, or on appeal ---------------------------------------------


def _vary_page(
    r: Restriction, form: VaryForm, *, appeal: Appeal | None = None, status: int = 200
) -> Any:
    return (
        render_template(
            "supervisor/vary.html",
            restriction=r,
            label=kinds.get(r.kind).label if kinds.find(r.kind) else r.kind,
            terms=terms(r),
            appeal=appeal,
            form=form,
        ),
        status,
    )


def _vary(r: Restriction, appeal: Appeal | None, send: Callable[[Session, VaryForm], Any]) -> Any:
    """Show the form to vary ``r`` (its kind and reason to start from), or take it: the domain
    ends ``r`` and records its successor, and the outcome letter is kept as sent."""
    form = VaryForm()
    if request.method == "GET":
        form.kind.data = r.kind
        form.reason.data = r.reason
        return _vary_page(r, form, appeal=appeal)
    if not form.validate_on_submit():
        if form.meta.csrf and form.csrf_token.errors:
            flash("The form had expired; please try again.", "error")
        return _vary_page(r, form, appeal=appeal, status=422)
    sess = session()
    if_refused(lambda status: _vary_page(r, form, appeal=appeal, status=status), form=form)
    successor_id = send(sess, form)
    sess.commit()
    successor = _restriction(successor_id)
    flash(
        f"Restriction {r.id} varied: {kinds.get(successor.kind).label} (restriction "
        f"{successor.id}) replaces it.",
        "info",
    )
    for warning in lifecycle.clashes(successor):
        flash(warning, "warning")
    return redirect(
        url_for(
            "supervisor.customer",
            reference=successor.customer.reference,
            _anchor=f"restriction-{successor.id}",
        )
    )


@bp.route("/restrictions/<id:restriction_id>/vary", methods=["GET", "POST"])
@page_role(Role.SUPERVISOR)
def vary(restriction_id: int) -> Any:
    """A review whose outcome is to vary the restriction (the API's review ``vary``)."""
    r = _restriction(restriction_id, for_decision=request.method == "POST")

    def send(sess: Session, form: VaryForm) -> Any:
        done, _ = letters.send(
            sent_letters.review,
            sess,
            r,
            form.vary_body("vary", request.form),
        )
        return done.successor_id

    return _vary(r, None, send)


@bp.route("/appeals/<id:appeal_id>/vary", methods=["GET", "POST"])
@page_role(Role.SUPERVISOR)
def vary_on_appeal(appeal_id: int) -> Any:
    """An appeal decided ``varied``: the restriction ends and a successor replaces it."""
    posting = request.method == "POST"
    appeal = appeals.get_appeal(session(), appeal_id, for_decision=posting)
    r = _restriction(appeal.restriction_id, for_decision=posting)

    def send(sess: Session, form: VaryForm) -> Any:
        letters.send(
            sent_letters.decide_appeal,
            sess,
            appeal,
            form.vary_body("varied", request.form),
        )
        return appeal.successor_id

    return _vary(r, appeal, send)


# --- attaching calls nobody was attached to, and subject access ---------------------------------


def _attached(done: attach.Attached) -> list[tuple[str, str]]:
    said = [
        (
            f"{len(done.calls)} call{'' if len(done.calls) == 1 else 's'} attached to "
            f"{done.customer.reference}"
            + (f", and {done.number} added to their numbers." if done.number else "."),
            "info",
        )
    ]
    if done.merged:
        ids = ", ".join(str(a.id) for a in done.merged)
        said.append((f"The number's open alerts ({ids}) were closed as merged.", "info"))
    if done.opened:
        ids = ", ".join(str(a.id) for a in done.opened)
        said.append((f"Their calls across their numbers opened alerts {ids}.", "warning"))
    return said


@bp.route("/customers/<path:reference>/numbers", methods=["POST"])
@page_role(Role.SUPERVISOR)
def attach_number(reference: str) -> Any:
    found = _customer(reference)
    form = AttachNumberForm(prefix="attach-number")

    def action(sess: Session) -> list[tuple[str, str]]:
        done = attach.attach_number(
            sess,
            redis_client(),
            current_settings(),
            current_actor(),
            found,
            form.number.data,
            reason=form.reason.data or None,
        )
        return _attached(done)

    return _act(reference, "attach-number", form, action, "details")


@bp.route("/customers/<path:reference>/calls/<sid:call_sid>/attach", methods=["POST"])
@page_role(Role.SUPERVISOR)
def attach_call(reference: str, call_sid: str) -> Any:
    found = _customer(reference)
    key = f"attach-{call_sid}"
    form = AttachCallForm(prefix=key)

    def action(sess: Session) -> list[tuple[str, str]]:
        done = attach.attach_call(
            sess,
            redis_client(),
            current_settings(),
            current_actor(),
            call_sid,
            found,
            reason=form.reason.data,
            with_number=bool(form.number.data),
        )
        return _attached(done)

    return _act(reference, key, form, action, "unattached-calls")


@bp.route("/customers/<path:reference>/export")
@page_role(Role.SUPERVISOR)
def export_customer(reference: str) -> Any:
    """Everything held about the customer (subject access), as the CLI's ZIP; the export is
    on the audit trail."""
    found = _customer(reference)
    sess = session()
    data = export.export_zip(
        sess, found, current_settings(), actor=current_actor(), render_letter=letters.render_pdf
    )
    sess.commit()
    name = export.filename(found, today())
    return Response(
        data,
        mimetype="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# --- sharing with other agencies (policy 10.1) ---------------------------------------------------


class SharingForm(FlaskForm):  # type: ignore[misc]
    shared_with = StringField("Shared with (the agency, and whom there)", [DataRequired()])
    shared_on = DateField("Shared on", validators=[DataRequired()])
    purpose = TextAreaField("Why it was shared", validators=[DataRequired()])
    lawful_basis = SelectField(
        "Lawful basis (UK GDPR Article 6(1))",
        choices=[SelectChoice(b, words) for b, words in sharing.LAWFUL_BASES.items()],
        validators=[DataRequired()],
    )


@bp.route("/restrictions/<id:restriction_id>/sharing", methods=["POST"])
@page_role(Role.SUPERVISOR)
def record_sharing(restriction_id: int) -> Any:
    r = _restriction(restriction_id, for_decision=True)
    key = f"sharing-{r.id}"
    form = SharingForm(prefix=key)

    def action(sess: Session) -> list[tuple[str, str]]:
        body = {
            "shared_with": form.shared_with.data,
            "shared_on": form.shared_on.data,
            "purpose": form.purpose.data,
            "lawful_basis": form.lawful_basis.data,
        }
        done = sharing.record_sharing(sess, current_actor(), r, body, today=today())
        return [(f"Sharing with {done.shared_with} recorded.", "info")]

    return _act(r.customer.reference, key, form, action, f"restriction-{r.id}")


# --- what is due ---------------------------------------------------------------------------------


DUE_ACTIONS = {  # what is due -> the form on the customer's page that does it
    "letter": ("notice", "Record the notice"),
    "notice_overdue": ("notice", "Record the notice"),
    "review_due": ("review", "Review it"),
    "review_overdue": ("review", "Review it"),
    "lapse_letter": ("lapse", "Record the letter about the lapse"),
    "appeal": ("decide", "Decide the appeal"),
}


def due_action(item: due_list.DueItem) -> tuple[str, str]:
    """The link that does what is due (the customer's page, the form opened, at its
    restriction) and its words."""
    form, words = DUE_ACTIONS[item.what]
    r = item.restriction
    key = f"decide-{item.appeal.id}" if item.appeal is not None else f"{form}-{r.id}"
    url = url_for(
        "supervisor.customer",
        reference=r.customer.reference,
        open=key,
        _anchor=f"restriction-{r.id}",
    )
    return url, words


@bp.route("/due")
@page_role(Role.SUPERVISOR)
def due() -> Any:
    items = due_list.due(session(), today())
    sections = [
        (title, [(i, *due_action(i)) for i in items if i.what == what])
        for what, title in DUE_SECTIONS
    ]
    return render_template(
        "supervisor/due.html",
        sections=sections,
        kind_labels={k.name: k.label for k in kinds.all_kinds()},
    )
