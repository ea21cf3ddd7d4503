"""Letters to the customer (decision, appeal decision, review outcome): HTML and PDF.

The content is built in ``restrictions.letters``; here it is laid out by one Jinja2 template
(``letters/letter.html``, which escapes everything) and, for the PDF, that HTML is drawn by fpdf2
(pure Python) with DejaVu Sans embedded, so Welsh and Polish letters print as written.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from flask import Response, has_request_context, render_template, url_for
from fpdf import FPDF, TextStyle
from sqlalchemy.orm import object_session

from restrictions import letters
from restrictions.models import Restriction
from telephony import current_settings
from telephony.database import session

FONTS = Path(__file__).resolve().parent / "static" / "fonts"
FONT = "DejaVu"
TEMPLATE = "letters/letter.html"
STYLESHEET = "/static/letter.css"  # where url_for puts it, for a letter made outside a request
# fontTools logs each font subset at INFO, some forty lines a letter: only its warnings matter.
logging.getLogger("fontTools").setLevel(logging.WARNING)


def today() -> date:
    """Today on the landlord's clock (Europe/London unless configured otherwise)."""
    return datetime.now(UTC).astimezone(ZoneInfo(current_settings().timezone)).date()


def render_html(letter: letters.Letter, *, pdf: bool = False) -> str:
    """The letter as HTML: a page of its own (styled by static/letter.css: the CSP allows no
    inline style), or (``pdf``) the body fpdf2 draws."""
    stylesheet = url_for("static", filename="letter.css") if has_request_context() else STYLESHEET
    return render_template(TEMPLATE, letter=letter, pdf=pdf, stylesheet=stylesheet)


@cache
def _tag_styles() -> dict[str, TextStyle]:
    return {
        "h1": TextStyle(
            font_family=FONT, font_style="B", font_size_pt=15, color="#000000", t_margin=4
        ),
        "h2": TextStyle(
            font_family=FONT, font_style="B", font_size_pt=12, color="#000000", t_margin=3
        ),
    }


def render_pdf(letter: letters.Letter) -> bytes:
    """The letter as an A4 PDF, drawn from the same template as the preview."""
    pdf = FPDF(format="A4")
    pdf.set_title(letter.title)
    pdf.set_lang(letter.language)
    pdf.set_creator("callguard")
    pdf.add_font(FONT, "", FONTS / "DejaVuSans.ttf")
    pdf.add_font(FONT, "B", FONTS / "DejaVuSans-Bold.ttf")
    pdf.set_margins(20, 18, 20)
    pdf.set_auto_page_break(True, margin=18)
    pdf.add_page()
    pdf.set_font(FONT, size=10.5)
    pdf.write_html(render_html(letter, pdf=True), tag_styles=_tag_styles())
    return bytes(pdf.output())


def filename(restriction: Restriction, which: str) -> str:
    """A safe file name: ``decision-letter-HMS-0001-12.pdf``."""
    reference = re.sub(r"[^A-Za-z0-9_-]+", "-", restriction.customer.reference).strip("-")
    return f"{which}-letter-{reference or 'customer'}-{restriction.id}.pdf"


def respond(restriction: Restriction, which: str, html: bool) -> Response:
    """The letter as a response: ``application/pdf``, or the HTML preview. ``which`` is
    ``decision``, ``appeal`` (the latest decided appeal) or ``review`` (the latest review); with
    nothing of that kind to write about, ``restrictions.errors.NotFound``."""
    sess = object_session(restriction) or session()
    letter = letters.build(sess, restriction, which, current_settings(), today=today())
    headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
    if html:  # under the pages' Content-Security-Policy (telephony/security.py)
        return Response(render_html(letter), mimetype="text/html", headers=headers)
    headers["Content-Disposition"] = f'inline; filename="{filename(restriction, which)}"'
    return Response(render_pdf(letter), mimetype="application/pdf", headers=headers)
