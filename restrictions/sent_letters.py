"""Letters kept as sent: every letter that goes to a customer is rendered once, when it is sent,
and kept unchanged (``SentLetter``): its PDF and the PDF's SHA-256, the template it was drawn
with, what it is about, its language, how it was sent, and who recorded it and when.

The steps that send a letter are here, each doing the domain's step and keeping its letter in
the same transaction (either both happen or neither does): recording a decision's notice (its
decision letter, or the urgent notice of one applied at once), a review and an appeal decision
(their outcome letters), ending a restriction by a decision of its own (the end letter), and
the letter about a restriction that lapsed (the lapse letter).
The JSON API and the pages call these, never the bare steps.

Drawing the PDF is the web layer's (``telephony.letters``): it is handed in as ``render``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from restrictions import appeals, letters, notices, overdue, reviews
from restrictions.errors import Invalid, NotFound
from restrictions.lifecycle import NOTICE_METHODS, Actor, audit, end_restriction
from restrictions.models import Appeal, Restriction, Review, SentLetter
from restrictions.settings import Settings

KINDS = ("decision", "urgent_notice", "review", "appeal", "end", "lapse")
KIND_NAMES = {
    "decision": "Decision letter",
    "urgent_notice": "Urgent notice (applied at once)",
    "review": "Review outcome",
    "appeal": "Appeal outcome",
    "end": "End of the restriction",
    "lapse": "Lapse of the restriction",
}
METHODS = NOTICE_METHODS


@dataclass(frozen=True)
class Rendered:
    """A letter drawn for sending: the PDF, and the version of the template that drew it."""

    pdf: bytes
    template_version: str


Render = Callable[[letters.Letter], Rendered]


def digest(pdf: bytes) -> str:
    return hashlib.sha256(pdf).hexdigest()


def _method(value: Any, field: str = "letter_method") -> str:
    """How a letter went: post (when not said), email, hand or portal."""
    if value is None or value == "":
        return "post"
    if value not in METHODS:
        raise Invalid(f"{field} must be one of {', '.join(METHODS)}, not {value!r}")
    return str(value)


def snapshot(row: SentLetter) -> dict[str, Any]:
    return {
        "id": row.id,
        "kind": row.kind,
        "restriction_id": row.restriction_id,
        "review_id": row.review_id,
        "appeal_id": row.appeal_id,
        "language": row.language,
        "letter_on": row.letter_on.isoformat(),
        "sent_on": row.sent_on.isoformat(),
        "method": row.method,
        "template_version": row.template_version,
        "sha256": row.sha256,
    }


def keep(
    sess: Session,
    actor: Actor,
    restriction: Restriction,
    kind: str,
    render: Render,
    settings: Settings,
    *,
    sent_on: date,
    method: str,
    review: Review | None = None,
    appeal: Appeal | None = None,
) -> SentLetter:
    """Draw the letter ``kind`` about ``restriction`` as it is on ``sent_on`` and keep it."""
    if kind not in KINDS:
        raise Invalid(f"a letter must be one of {', '.join(KINDS)}, not {kind!r}")
    which = "decision" if kind == "urgent_notice" else kind
    letter = letters.build(sess, restriction, which, settings, today=sent_on)
    rendered = render(letter)
    row = SentLetter(
        customer_id=restriction.customer_id,
        restriction_id=restriction.id,
        review_id=review.id if review is not None else None,
        appeal_id=appeal.id if appeal is not None else None,
        kind=kind,
        language=letter.language,
        title=letter.title,
        letter_on=letter.date,
        sent_on=sent_on,
        method=_method(method, "method"),
        template_version=rendered.template_version,
        pdf=rendered.pdf,
        sha256=digest(rendered.pdf),
        recorded_by_id=actor.user_id,
        recorded_by=actor.label,
    )
    sess.add(row)
    sess.flush()
    audit(
        sess,
        actor,
        f"letter.sent.{kind}",
        "sent_letter",
        row.id,
        customer_id=restriction.customer_id,
        after=snapshot(row),
    )
    return row


def _notice_kind(restriction: Restriction) -> str:
    return "urgent_notice" if restriction.apply_now else "decision"


# --- the steps that send a letter -----------------------------------------------------------------


def record_notice(
    sess: Session,
    actor: Actor,
    restriction: Restriction,
    sent_on: Any,
    method: Any,
    *,
    today: date,
    settings: Settings,
    render: Render,
) -> SentLetter:
    """The notice went (``{sent_on, method}``, no earlier than the decision and no later than
    today): the decision letter is drawn as it is then, dated ``sent_on``, and kept."""
    notices.record_notice(sess, actor, restriction, sent_on, method, today=today)
    assert restriction.notice_sent_on is not None and restriction.notice_method is not None
    return keep(
        sess,
        actor,
        restriction,
        _notice_kind(restriction),
        render,
        settings,
        sent_on=restriction.notice_sent_on,
        method=restriction.notice_method,
    )


def notice_given_when_decided(
    sess: Session, actor: Actor, restriction: Restriction, *, settings: Settings, render: Render
) -> SentLetter | None:
    """A restriction recorded with its notice already sent (``notice_sent_on``): its decision
    letter, kept as of that day. None when its notice is still to be sent."""
    if restriction.notice_sent_on is None:
        return None
    return keep(
        sess,
        actor,
        restriction,
        _notice_kind(restriction),
        render,
        settings,
        sent_on=restriction.notice_sent_on,
        method=restriction.notice_method or "post",
    )


def review(
    sess: Session,
    actor: Actor,
    restriction: Restriction,
    body: Mapping[str, Any],
    *,
    today: date,
    settings: Settings,
    render: Render,
) -> tuple[Review, SentLetter]:
    """The review (``reviews.review``) and its outcome letter, sent today by
    ``letter_method`` (post when not said); a successor recorded with its notice sent has its
    decision letter kept too."""
    method = _method(body.get("letter_method"))
    done = reviews.review(sess, actor, restriction, body, today=today)
    kept = keep(
        sess,
        actor,
        restriction,
        "review",
        render,
        settings,
        sent_on=today,
        method=method,
        review=done,
    )
    _successor_notice(sess, actor, done.successor_id, settings, render)
    return done, kept


def decide_appeal(
    sess: Session,
    actor: Actor,
    appeal: Appeal,
    body: Mapping[str, Any],
    *,
    today: date,
    settings: Settings,
    render: Render,
) -> tuple[Appeal, SentLetter]:
    """The appeal's decision (``appeals.decide_appeal``) and its outcome letter, sent today by
    ``letter_method`` (post when not said)."""
    method = _method(body.get("letter_method"))
    appeals.decide_appeal(sess, actor, appeal, body, today=today)
    kept = keep(
        sess,
        actor,
        appeal.restriction,
        "appeal",
        render,
        settings,
        sent_on=today,
        method=method,
        appeal=appeal,
    )
    _successor_notice(sess, actor, appeal.successor_id, settings, render)
    return appeal, kept


def end(
    sess: Session,
    actor: Actor,
    restriction: Restriction,
    body: Mapping[str, Any],
    *,
    today: date,
    settings: Settings,
    render: Render,
) -> SentLetter:
    """End the restriction by a decision of its own (``{reason, letter_method?}``) and keep the
    letter that tells the customer, sent today."""
    method = _method(body.get("letter_method"))
    end_restriction(sess, actor, restriction, body.get("reason"))
    return keep(sess, actor, restriction, "end", render, settings, sent_on=today, method=method)


def lapse_letter_sent(
    sess: Session,
    actor: Actor,
    restriction: Restriction,
    body: Mapping[str, Any],
    *,
    today: date,
    settings: Settings,
    render: Render,
) -> SentLetter:
    """The letter telling the customer that the restriction lapsed was sent (``{sent_on,
    method?}``, ``letter_method`` as another name for ``method``; post when not said): recorded
    (``overdue.record_lapse_letter``: between the lapse and today, once) and the lapse letter
    drawn as it is then, dated ``sent_on``, and kept."""
    method = _lapse_method(body)
    overdue.record_lapse_letter(sess, actor, restriction, body.get("sent_on"), today=today)
    assert restriction.lapse_letter_sent_on is not None
    return keep(
        sess,
        actor,
        restriction,
        "lapse",
        render,
        settings,
        sent_on=restriction.lapse_letter_sent_on,
        method=method,
    )


def _lapse_method(body: Mapping[str, Any]) -> str:
    given = {f: body[f] for f in ("method", "letter_method") if body.get(f) not in (None, "")}
    methods = {field: _method(value, field) for field, value in given.items()}
    if len(set(methods.values())) > 1:
        raise Invalid("method and letter_method differ: give one of them")
    return next(iter(methods.values()), "post")


def _successor_notice(
    sess: Session, actor: Actor, successor_id: int | None, settings: Settings, render: Render
) -> None:
    successor = sess.get(Restriction, successor_id) if successor_id is not None else None
    if successor is not None:
        notice_given_when_decided(sess, actor, successor, settings=settings, render=render)


# --- finding them ---------------------------------------------------------------------------------


def get(sess: Session, letter_id: int) -> SentLetter:
    found = sess.get(SentLetter, letter_id)
    if found is None:
        raise NotFound(f"no sent letter with id {letter_id}")
    return found


def for_customer(sess: Session, customer_id: int) -> list[SentLetter]:
    """Every letter sent to the customer, newest first (the PDFs are not loaded)."""
    return list(
        sess.scalars(
            select(SentLetter)
            .where(SentLetter.customer_id == customer_id)
            .order_by(SentLetter.sent_on.desc(), SentLetter.id.desc())
        )
    )


def sent_copy(sess: Session, restriction: Restriction, which: str) -> SentLetter | None:
    """The letter ``which`` (decision, appeal, review, end or lapse) as it was sent, when it was:
    the decision letter (or urgent notice), the outcome letter of the latest review or of the
    latest decided appeal, the end letter, the lapse letter. NotFound when there is no review or
    decided appeal."""
    query = select(SentLetter).where(SentLetter.restriction_id == restriction.id)
    if which == "decision":
        query = query.where(SentLetter.kind.in_(("decision", "urgent_notice")))
    elif which == "review":
        query = query.where(SentLetter.review_id == letters.latest_review(sess, restriction).id)
    elif which == "appeal":
        latest = letters.latest_decided_appeal(sess, restriction)
        query = query.where(SentLetter.appeal_id == latest.id)
    elif which in ("end", "lapse"):
        query = query.where(SentLetter.kind == which)
    else:
        raise Invalid(f"letter must be one of {', '.join(letters.WHICH)}, not {which!r}")
    return sess.scalars(query.order_by(SentLetter.id.desc()).limit(1)).first()
