"""Letters to the customer (decision, appeal decision, review outcome, end): HTML and PDF.

A letter that was sent is kept as it was sent (``restrictions.sent_letters``): downloading it
gives those bytes. Anything else (the HTML preview, or a letter not sent yet) is a preview drawn
from today's record, and says so across its top.

The content is built in ``restrictions.letters``; here it is laid out by one Jinja2 template
(``letters/letter.html``, which escapes everything) and, for the PDF, that HTML is drawn by fpdf2
(pure Python) with DejaVu Sans embedded, so Welsh and Polish letters print as written.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
from collections.abc import Callable
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import fpdf
from flask import Response, has_request_context, render_template, url_for
from fpdf import FPDF, TextStyle, XPos, YPos
from sqlalchemy.orm import Session, object_session

import prompts
from restrictions import letters, policy_dates, sent_letters
from restrictions.lifecycle import Actor
from restrictions.models import Restriction, SentLetter
from telephony.auth import current_actor
from telephony.config import current_settings
from telephony.database import session

FONTS = Path(__file__).resolve().parent / "static" / "fonts"
TEMPLATES = Path(__file__).resolve().parent / "templates" / "letters"
FONT = "DejaVu"
TEMPLATE = "letters/letter.html"
STYLESHEET = "/static/letter.css"  # where url_for puts it, for a letter made outside a request
# fontTools logs each font subset at INFO, some forty lines a letter: only its warnings matter.
logging.getLogger("fontTools").setLevel(logging.WARNING)

T = TypeVar("T")


def today() -> date:
    """Today on the landlord's clock (Europe/London unless configured otherwise)."""
    return policy_dates.today(current_settings().timezone)


def render_html(letter: letters.Letter, *, pdf: bool = False) -> str:
    """The letter as HTML: a page of its own (styled by static/letter.css: the CSP allows no
    inline style), or (``pdf``) the body fpdf2 draws."""
    stylesheet = url_for("static", filename="letter.css") if has_request_context() else STYLESHEET
    return render_template(TEMPLATE, letter=letter, pdf=pdf, stylesheet=stylesheet)


# The page, in mm on A4 (210 x 297), as static/letter.css places the preview: its margins; the
# window of a DL window envelope (the letter folded in three), through which the customer's name
# and postal address show, 20 mm from the left and 45 mm from the top; the sender's column on the
# right, clear of the window; where the letter's text begins, below the window.
PAGE_WIDTH = 210
MARGIN_TOP, MARGIN_SIDE = 18, 20
WINDOW_X, WINDOW_Y, WINDOW_WIDTH, WINDOW_HEIGHT = 20, 45, 90, 40
SENDER_WIDTH = 75
BODY_GAP = 7  # between the window (or a long sender block) and the text
# Font sizes in points: the letter's text and its headings (h1, h2); large print (the customer's
# adjustments ask for it) is nothing smaller than 16 pt.
FONT_PT = {False: 10.5, True: 16.0}
SENDER_PT = {False: 9.0, True: 16.0}  # the letterhead, in its column (large print: below)
HEADING_PT = {False: (15.0, 12.0), True: (20.0, 18.0)}
LINE_SPACING = 1.25  # a line's height, in font sizes


@cache
def _tag_styles(large_print: bool = False) -> dict[str, TextStyle]:
    h1, h2 = HEADING_PT[large_print]
    return {
        "h1": TextStyle(
            font_family=FONT, font_style="B", font_size_pt=h1, color="#000000", t_margin=4
        ),
        "h2": TextStyle(
            font_family=FONT, font_style="B", font_size_pt=h2, color="#000000", t_margin=3
        ),
    }


def font_size_pt(letter: letters.Letter) -> float:
    """The size of the letter's text in its PDF (its headings are larger)."""
    return FONT_PT[letter.large_print]


def _head(pdf: FPDF, letter: letters.Letter) -> float:
    """The top of the first page, drawn where an envelope needs it: the customer's name and
    address in the window, the sender in the right-hand column beside it (in large print, too
    wide for the column, right-aligned below the window). Where the text may begin (mm)."""
    line = pdf.font_size * LINE_SPACING  # mm
    pdf.set_xy(WINDOW_X, WINDOW_Y)
    for text in letter.recipient:
        pdf.multi_cell(WINDOW_WIDTH, line, text, align="L", new_x=XPos.LEFT, new_y=YPos.NEXT)
    window_end = max(WINDOW_Y + WINDOW_HEIGHT, pdf.get_y())
    if letter.large_print:
        width = PAGE_WIDTH - 2 * MARGIN_SIDE
        pdf.set_xy(MARGIN_SIDE, window_end + BODY_GAP)
    else:
        width = SENDER_WIDTH
        pdf.set_xy(PAGE_WIDTH - MARGIN_SIDE - SENDER_WIDTH, MARGIN_TOP)
    size = SENDER_PT[letter.large_print]
    line = size / pdf.k * LINE_SPACING
    for i, text in enumerate(letter.sender):
        pdf.set_font(FONT, "B" if i == 0 else "", size)
        pdf.multi_cell(width, line, text, align="R", new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_font(FONT, "", font_size_pt(letter))
    return max(window_end, pdf.get_y()) + BODY_GAP


def render_pdf(letter: letters.Letter) -> bytes:
    """The letter as an A4 PDF: the sender and the window envelope's address placed on the first
    page, then the rest drawn from the same template as the preview."""
    pdf = FPDF(format="A4")
    pdf.set_title(letter.title)
    pdf.set_lang(letter.language)
    pdf.set_creator("callguard")
    pdf.add_font(FONT, "", FONTS / "DejaVuSans.ttf")
    pdf.add_font(FONT, "B", FONTS / "DejaVuSans-Bold.ttf")
    pdf.set_margins(MARGIN_SIDE, MARGIN_TOP, MARGIN_SIDE)
    pdf.set_auto_page_break(True, margin=MARGIN_TOP)
    pdf.add_page()
    pdf.set_font(FONT, size=font_size_pt(letter))
    pdf.set_xy(MARGIN_SIDE, _head(pdf, letter))
    pdf.write_html(render_html(letter, pdf=True), tag_styles=_tag_styles(letter.large_print))
    return bytes(pdf.output())


@cache
def template_version(language: str) -> str:
    """What drew a letter: the letter templates, the language's words and fpdf2, as one
    fingerprint (``letters@<sha256 prefix>/fpdf2-<version>``); it changes when any of them does."""
    fingerprint = hashlib.sha256()
    for path in sorted(TEMPLATES.rglob("*")):
        if path.is_file():
            fingerprint.update(path.relative_to(TEMPLATES).as_posix().encode() + b"\0")
            fingerprint.update(path.read_bytes())
    words = prompts.catalogue(prompts.resolve(language))["letter"]
    fingerprint.update(json.dumps(words, sort_keys=True, ensure_ascii=False).encode())
    return f"letters@{fingerprint.hexdigest()[:16]}/fpdf2-{fpdf.FPDF_VERSION}"


def render_for_sending(letter: letters.Letter) -> sent_letters.Rendered:
    """The letter drawn once, as it is sent (``restrictions.sent_letters`` keeps it)."""
    return sent_letters.Rendered(render_pdf(letter), template_version(letter.language))


def send(step: Callable[..., T], sess: Session, *args: Any) -> T:
    """Run a step of ``restrictions.sent_letters`` (it sends a letter and keeps it as sent) as
    the signed-in member of staff, today on the landlord's clock, the letter drawn as it goes:
    ``letters.send(sent_letters.end, sess, restriction, body)``. The caller commits."""
    return step(
        sess,
        current_actor(),
        *args,
        today=today(),
        settings=current_settings(),
        render=render_for_sending,
    )


def keep_notice_given(sess: Session, actor: Actor, restriction: Restriction) -> None:
    """A restriction recorded with its notice already sent: keep its decision letter as sent."""
    sent_letters.notice_given_when_decided(
        sess, actor, restriction, settings=current_settings(), render=render_for_sending
    )


def filename(restriction: Restriction, which: str) -> str:
    """A safe file name: ``decision-letter-HMS-0001-12.pdf``."""
    reference = re.sub(r"[^A-Za-z0-9_-]+", "-", restriction.customer.reference).strip("-")
    return f"{which}-letter-{reference or 'customer'}-{restriction.id}.pdf"


def _headers() -> dict[str, str]:
    return {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def respond_sent(kept: SentLetter, name: str | None = None) -> Response:
    """A letter as it was sent: the kept bytes, byte for byte, with their SHA-256."""
    headers = _headers()
    if name is None:
        which = kept.kind.replace("_", "-")
        name = filename(kept.restriction, which).removesuffix(".pdf") + f"-{kept.id}.pdf"
    headers["Content-Disposition"] = f'inline; filename="{name}"'
    headers["X-Letter"] = "sent"
    headers["X-Letter-Id"] = str(kept.id)
    headers["X-Letter-SHA256"] = kept.sha256
    headers["ETag"] = f'"{kept.sha256}"'
    return Response(kept.pdf, mimetype="application/pdf", headers=headers)


def preview_banner(kept: SentLetter | None) -> str:
    if kept is None:
        return "PREVIEW: not sent. This is drawn from today's record; it is not a letter as sent."
    return (
        f"PREVIEW drawn from today's record, not the letter as sent: the letter sent on "
        f"{letters.date_in_words(kept.sent_on, 'en-GB')} is kept, and its PDF download is that"
        " letter."
    )


def respond(restriction: Restriction, which: str, html: bool) -> Response:
    """The letter as a response. The PDF of a letter that was sent is the letter as it was
    sent; the HTML, and the PDF of a letter not sent yet, are previews drawn from today's record
    and marked as such. ``which`` is ``decision``, ``appeal`` (the latest decided appeal),
    ``review`` (the latest review) or ``end``; with nothing of that kind to write about,
    ``restrictions.errors.NotFound``."""
    sess = object_session(restriction) or session()
    kept = sent_letters.sent_copy(sess, restriction, which)
    if kept is not None and not html:
        return respond_sent(kept, filename(restriction, which))
    letter = letters.build(sess, restriction, which, current_settings(), today=today())
    letter = dataclasses.replace(letter, preview=preview_banner(kept))
    headers = {**_headers(), "X-Letter": "preview"}
    if html:  # under the pages' Content-Security-Policy (telephony/security.py)
        return Response(render_html(letter), mimetype="text/html", headers=headers)
    headers["Content-Disposition"] = f'inline; filename="{filename(restriction, which)}"'
    return Response(render_pdf(letter), mimetype="application/pdf", headers=headers)
