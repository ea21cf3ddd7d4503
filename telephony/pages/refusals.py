"""When the domain refuses, on a page: the one answer to a DomainError for every page blueprint.

A view calls the domain and lets its DomainError go. ``page_blueprint`` makes each page
blueprint with ``answer`` as its handler for them (as the JSON API has its own, in
``telephony.api``), which rolls the session back and answers:

- as the view said beforehand, with ``if_refused(answer, form=...)``: the refusal beside the
  fields of ``form`` it names (``errors``, by field, as ``restrictions.staff`` gives them), and
  so listed at the form's top, or else as a flash; then ``answer(status)``, with the refusal's
  status: the page again with the form as typed, or a redirect back (``back_to``);
- as JSON, ``{"error": "..."}``, where the view said ``refused_as_json()`` (the console's calls);
- otherwise as an error page: not found and forbidden as every other page's 404 and 403 (what
  ``abort`` gives), anything else the domain's message in words, with its status (409, 422, ...),
  never a 500.

What a view says holds for the rest of its request; so it says it after the look-ups whose
refusal is a 404 (``get_customer`` and the like) and before the change that may be refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, flash, g, redirect, render_template
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import Forbidden, NotFound

from restrictions.errors import DomainError
from telephony.database import session
from telephony.errors import PAGE_ERRORS, json_error, page_error
from telephony.pages.words import plain_message

Answer = Callable[[int], ResponseReturnValue]

_SAID = "if_refused"  # on ``g``: what this request's view said to answer with
_AS_ABORT = {403: Forbidden, 404: NotFound}  # the site's own pages for these
REFUSED_TITLE = "That cannot be done"


@dataclass(frozen=True)
class _Said:
    answer: Answer | None  # None: JSON
    form: Any = None  # the FlaskForm shown again, its fields to tie the refusal to
    unless: frozenset[int] = frozenset()  # statuses answered with the error page all the same


def if_refused(answer: Answer, *, form: Any = None, unless: Iterable[int] = ()) -> None:
    """From here on in this request, a refusal is ``answer(status)`` after its message is put
    beside the fields of ``form`` it is about (or flashed); a status in ``unless`` gets the
    error page instead (a 404 for a call that is not there, say)."""
    setattr(g, _SAID, _Said(answer, form, frozenset(unless)))


def refused_as_json() -> None:
    """From here on in this request, a refusal is ``{"error": "..."}`` with its status."""
    setattr(g, _SAID, _Said(None))


def back_to(url: str) -> Answer:
    """An ``answer`` for ``if_refused``: back to ``url``, the refusal flashed."""
    return lambda _status: redirect(url)


def tell(form: Any, exc: DomainError) -> None:
    """The refusal beside each field of ``form`` it names, when it names only fields of the
    form (so the form's error summary lists them); else the domain's message as a flash."""
    errors = getattr(exc, "errors", None)
    if form is not None and isinstance(errors, dict) and all(name in form for name in errors):
        for name, message in errors.items():
            field = form[name]
            if not isinstance(field.errors, list):  # a form not validated: a tuple
                field.errors = list(field.errors)
            field.errors.append(plain_message(message))
    else:
        flash(plain_message(exc.message), "error")


def answer(exc: DomainError) -> ResponseReturnValue:
    """The page's answer to a refusal: see the module's docstring."""
    session().rollback()
    said: _Said | None = g.get(_SAID)
    if said is not None and exc.status not in said.unless:
        if said.answer is None:
            return json_error(exc.message, exc.status)
        tell(said.form, exc)
        return said.answer(exc.status)
    return refused_page(exc)


def refused_page(exc: DomainError) -> Response:
    """A refusal nobody said how to answer: the site's 404 or 403 page, or a page of the site
    with the domain's message (escaped, as every template's text) and its status."""
    if exc.status in _AS_ABORT:
        return page_error(_AS_ABORT[exc.status]())
    title = PAGE_ERRORS[exc.status][0] if exc.status in PAGE_ERRORS else REFUSED_TITLE
    message = plain_message(exc.message)
    message = message[:1].upper() + message[1:]
    body = render_template("error.html", title=title, message=message, status=exc.status)
    return Response(body, status=exc.status, mimetype="text/html")


def page_blueprint(name: str, import_name: str, **options: Any) -> Blueprint:
    """A blueprint of pages: ``answer`` answers the domain's refusals on each of its views."""
    bp = Blueprint(name, import_name, **options)
    bp.register_error_handler(DomainError, answer)
    return bp
