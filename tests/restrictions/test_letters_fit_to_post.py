"""Letters a landlord can post: the customer's name and postal address where a DL window envelope
shows them, signed by the person who decided (their name, and their job title or role in words),
the named contact as a person with a direct line, dates only in words, the organisation's and the
Ombudsman's details in the letter's language, what staff wrote marked as theirs (and used in its
translation when there is one), and large print for a customer who asks for it. Every kind of
restriction, in every language, in every letter there is, builds and says so in its PDF.

The letters are built from the record (``restrictions.letters``) and drawn by
``telephony.letters`` (its template, under an app context of its own: no database is needed to
draw one). The address through the API, and the CLI's staff details, are in
tests/telephony/test_letters.py.
"""

from __future__ import annotations

import io
import re
import tomllib
from collections.abc import Iterator
from datetime import date
from typing import Any

import pypdf
import pytest
from flask import Flask
from pypdf.generic import ContentStream
from sqlalchemy import select
from sqlalchemy.orm import Session

import prompts
from restrictions import appeals, importing, kinds, letters, overdue, reviews
from restrictions.errors import Invalid
from restrictions.lifecycle import Actor, add_restriction, create_customer, end_restriction
from restrictions.models import AuditEntry, Customer, Restriction, User
from restrictions.settings import Settings, SettingsError, parse_settings
from restrictions.staff import create_user
from telephony import letters as drawn

DECIDED = date(2025, 12, 17)
SENT = date(2025, 12, 19)
TODAY = date(2026, 2, 2)
ADDRESS = ["Flat 2", "14 Mill Lane", "Littleover", "Derby", "DE23 6AB"]
# An escalated alert's reason, as the escalation form used to fill it in: ending in a timestamp.
REASON = (
    "Unacceptable level of contact (policy section 6): 14 calls within 60 minutes, "
    "up to 2025-12-15T16:45:00+00:00."
)
NOTES = "Listened to the recordings of 2026-01-20T09:30:00Z again; nothing has changed"
TRANSLATED = {
    "cy-GB": "Lefel annerbyniol o gysylltiad (polisi adran 6): 14 galwad o fewn 60 munud.",
    "pl-PL": "Niedopuszczalna częstotliwość kontaktu (punkt 6 zasad): 14 połączeń w ciągu "
    "60 minut.",
}
# The words the letters must use, spelt out here independently of the prompt files.
STAFF_WROTE = {
    "en-GB": "In our own words, as recorded by staff:",
    "cy-GB": "Yn ein geiriau ein hunain, fel y'u cofnodwyd gan staff:",
    "pl-PL": "Naszymi słowami, tak jak zapisali to pracownicy:",
}
SUPERVISOR_IN_WORDS = {
    "en-GB": "Customer Services Supervisor",
    "cy-GB": "Goruchwylydd Gwasanaethau Cwsmeriaid",
    "pl-PL": "Kierownik zespołu obsługi klienta",
}
AGENT_IN_WORDS = {
    "en-GB": "Customer Services Adviser",
    "cy-GB": "Cynghorydd Gwasanaethau Cwsmeriaid",
    "pl-PL": "Doradca ds. obsługi klienta",
}
TEAM_IN_WORDS = {
    "en-GB": "Customer Services Team",
    "cy-GB": "Tîm Gwasanaethau Cwsmeriaid",
    "pl-PL": "Dział Obsługi Klienta",
}
APPEALS_TO = {
    "en-GB": "The Head of Housing Services",
    "cy-GB": "Pennaeth y Gwasanaethau Tai",
    "pl-PL": "Kierownik Działu Usług Mieszkaniowych",
}
OMBUDSMAN = {
    "en-GB": "Housing Ombudsman Service",
    "cy-GB": "Gwasanaeth yr Ombwdsmon Tai",
    "pl-PL": "Rzecznik ds. Mieszkalnictwa",
}
# What the organisation's config file says, with its fixed strings given per language.
CONFIG = """
[organisation]
name = "Example Homes"
appeals_to = "The Head of Housing Services"
postal_address = "1 Example Street, Derby DE1 1AA"

[organisation.cy-GB]
name = "Cartrefi Enghreifftiol"
appeals_to = "Pennaeth y Gwasanaethau Tai"
postal_address = "1 Stryd Enghreifftiol, Derby DE1 1AA"

[organisation.pl-PL]
appeals_to = "Kierownik Działu Usług Mieszkaniowych"

[ombudsman.cy-GB]
name = "Gwasanaeth yr Ombwdsmon Tai"

[ombudsman.pl-PL]
name = "Rzecznik ds. Mieszkalnictwa"
"""
SETTINGS = parse_settings(tomllib.loads(CONFIG))
ISO_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}|\d{2}:\d{2}:\d{2}|T\d{2}:\d{2}")
MM = 72 / 25.4  # PDF points in a millimetre
A4_HEIGHT = 297 * MM


@pytest.fixture(scope="module")
def templates() -> Iterator[None]:
    """What draws a letter (telephony/templates) without the app's database or Redis."""
    with Flask("telephony").app_context():
        yield


# --- the record a letter is made from -----------------------------------------------------------


def staff(
    sess: Session,
    login: str,
    role: str,
    display_name: str | None = None,
    job_title: str | None = None,
) -> Actor:
    user, _ = create_user(sess, login, role, display_name=display_name, job_title=job_title)
    return Actor.of(user)


def customer(sess: Session, language: str = "en-GB", **fields: Any) -> Customer:
    fields.setdefault("postal_address", ADDRESS)
    made = create_customer(
        sess,
        Actor(None, "test"),
        reference="HMS-1",
        name="Pat Example",
        phone_numbers=["07400 100001"],
        language=language,
        **fields,
    )
    sess.commit()
    return made


def restrict(sess: Session, who: Customer, by: Actor, kind: str, **body: Any) -> Restriction:
    declared = kinds.get(kind)
    made = add_restriction(
        sess,
        by,
        who,
        {
            **declared.example,
            "kind": kind,
            "reason": REASON,
            "decided_on": DECIDED.isoformat(),
            "notice_sent_on": SENT.isoformat(),
            **body,
        },
        today=TODAY,
    )
    sess.commit()
    return made


def signed(sess: Session, restriction: Restriction, which: str) -> tuple[str, str]:
    """Record what the letter ``which`` is about, decided by someone else each time; who signs
    it: (their name, their job title or role in the letter's language; "" to be looked up)."""
    if which == "decision":
        return "Dana Price", "Tenancy Services Manager"
    if which == "appeal":
        officer = staff(sess, "ioan.g", "supervisor", display_name="Ioan Griffiths")
        lodged = {"grounds": "It was a misunderstanding", "lodged_on": "2026-01-05"}
        appeal = appeals.lodge_appeal(sess, Actor(None, "test"), restriction, lodged, today=TODAY)
        body = {"outcome": "upheld", "notes": NOTES}
        appeals.decide_appeal(sess, officer, appeal, body, today=TODAY)
        sess.commit()
        return "Ioan Griffiths", "supervisor"
    if which == "review":
        reviewer = staff(sess, "rev.1", "agent")  # no name for letters, no job title
        body = {"outcome": "continue", "notes": NOTES, "next_review_on": "2026-08-01"}
        reviews.review(sess, reviewer, restriction, body, today=TODAY)
        sess.commit()
        return "", "agent"
    if which == "end":
        ender = staff(sess, "end.1", "supervisor", display_name="Siân Rowlands")
        end_restriction(sess, ender, restriction, NOTES)
        sess.commit()
        return "Siân Rowlands", "supervisor"
    if which == "lapse":  # its review a month overdue: callguard ended it, the team signs
        restriction.review_due_on = date(2026, 1, 2)
        overdue.lapse(sess, restriction, 31, 30, TODAY)
        sess.commit()
        return "", "team"
    pytest.fail(f"a letter this test does not know how to bring about: {which}")


def role_in_words(role: str, language: str) -> str:
    return {"supervisor": SUPERVISOR_IN_WORDS, "agent": AGENT_IN_WORDS, "team": TEAM_IN_WORDS}[
        role
    ][language]


# --- reading the PDF ------------------------------------------------------------------------------


def pdf_text(data: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(data))
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())


def placed(data: bytes) -> list[tuple[str, float, float]]:
    """Each piece of text on the first page with where it starts: (text, mm from the left edge,
    mm from the top edge, of its baseline)."""
    found: list[tuple[str, float, float]] = []

    def visit(text: str, cm: Any, tm: Any, font: Any, size: Any) -> None:
        if text.strip():
            x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
            y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
            found.append((text.strip(), x / MM, (A4_HEIGHT - y) / MM))

    pypdf.PdfReader(io.BytesIO(data)).pages[0].extract_text(visitor_text=visit)
    return found


def font_sizes(data: bytes) -> set[float]:
    """Every font size the PDF sets (its content streams' Tf operators), in points."""
    reader = pypdf.PdfReader(io.BytesIO(data))
    sizes: set[float] = set()
    for page in reader.pages:
        for operands, operator in ContentStream(page.get_contents(), reader).operations:
            if operator == b"Tf":
                sizes.add(float(operands[1]))
    return sizes


# --- every kind, in every language, in every letter -----------------------------------------------


@pytest.mark.parametrize("which", letters.WHICH)
@pytest.mark.parametrize("language", prompts.languages())
@pytest.mark.parametrize("kind", [k.name for k in kinds.all_kinds()])
def test_every_letter_builds_and_is_fit_to_post(
    sess: Session, templates: None, kind: str, language: str, which: str
) -> None:
    decider = staff(
        sess,
        "dana.p",
        "supervisor",
        display_name="Dana Price",
        job_title="Tenancy Services Manager",
    )
    translations = {language: TRANSLATED[language]} if language in TRANSLATED else {}
    restriction = restrict(
        sess, customer(sess, language), decider, kind, reason_translations=translations
    )
    name, title = signed(sess, restriction, which)

    letter = letters.build(sess, restriction, which, SETTINGS, today=TODAY)
    data = drawn.render_pdf(letter)
    text = pdf_text(data)

    assert letter.which == which and letter.language == language
    assert data.startswith(b"%PDF-") and len(pypdf.PdfReader(io.BytesIO(data)).pages) >= 1
    for line in ["Pat Example", *ADDRESS]:
        assert line in text, line
    assert name in text
    assert (title if name == "Dana Price" else role_in_words(title, language)) in text
    assert "dana.p" not in text and "rev.1" not in text  # never a login
    assert not ISO_MOMENT.search(text), ISO_MOMENT.findall(text)
    assert not ISO_MOMENT.search(letter.text())
    assert OMBUDSMAN[language] in text
    if which in ("decision", "review"):  # they say how to appeal, and to whom
        assert APPEALS_TO[language] in text
    if which == "decision":
        assert STAFF_WROTE[language] in text
        assert (TRANSLATED[language] if language in TRANSLATED else "14 calls within") in text
    elif which == "lapse":  # callguard's own reason (a setting's name) is never given
        assert STAFF_WROTE[language] not in text and "lapse_after_days" not in text
    else:
        assert STAFF_WROTE[language] in text  # the notes, or why it ended
    if language != "en-GB":  # the fixed strings are translated: none is left in English
        for english in (
            "The Head of Housing Services",
            "Housing Ombudsman Service",
            "Unacceptable level of contact",
        ):
            assert english not in text, english
        assert "Example Homes" not in text or language == "pl-PL"  # cy-GB has a name of its own


# --- the window envelope --------------------------------------------------------------------------


def test_the_name_and_address_are_where_a_dl_window_shows_them(
    sess: Session, templates: None
) -> None:
    restriction = restrict(sess, customer(sess), Actor(None, "test"), "written_only")
    letter = letters.decision_letter(restriction, SETTINGS, today=TODAY)
    assert letter.recipient == ("Pat Example", *ADDRESS)
    where = {text: (x, y) for text, x, y in placed(drawn.render_pdf(letter))}

    for line in letter.recipient:
        x, y = where[line]
        assert 19 <= x <= 22, (line, x)  # the window is 20 mm in from the left edge
        assert 45 <= y <= 45 + 40, (line, y)  # and 45 mm down, 40 mm deep
    assert where["Pat Example"][1] < 52  # the name on its first line
    assert where["Pat Example"][1] < where["DE23 6AB"][1]
    # nothing else shows through the window: the sender is on the right, the rest below it
    for text, (x, y) in where.items():
        if text not in letter.recipient:
            assert x >= 110 or y > 45 + 40 or y < 45, text


def test_the_preview_places_the_window_with_css(sess: Session, templates: None) -> None:
    restriction = restrict(sess, customer(sess), Actor(None, "test"), "warning")
    page = drawn.render_html(letters.decision_letter(restriction, SETTINGS, today=TODAY))
    assert '<p class="recipient window">Pat Example<br>Flat 2<br>14 Mill Lane' in page
    css = (drawn.FONTS.parent / "letter.css").read_text()
    window = re.search(r"\.recipient\.window \{([^}]*)\}", css)
    assert window is not None
    assert "position: absolute" in window.group(1)
    assert "top: calc(45mm - 18mm)" in window.group(1)  # 45 mm from the top of the page
    assert "width: 90mm" in window.group(1)
    assert "@page { size: A4; margin: 18mm 20mm; }" in css


def test_a_letter_to_someone_without_an_address_still_builds(sess: Session) -> None:
    restriction = restrict(
        sess, customer(sess, postal_address=None), Actor(None, "test"), "warning"
    )
    assert letters.decision_letter(restriction, SETTINGS, today=TODAY).recipient == ("Pat Example",)


# --- who signs, and the named contact -------------------------------------------------------------


@pytest.mark.parametrize("language", prompts.languages())
def test_the_decider_signs_by_name_with_their_role_in_words_without_a_job_title(
    sess: Session, language: str
) -> None:
    who = customer(sess, language)
    named = restrict(
        sess, who, staff(sess, "a.b", "supervisor", display_name="Ann Bell"), "warning"
    )
    letter = letters.decision_letter(named, SETTINGS, today=TODAY)
    assert letter.signatory == ("Ann Bell", SUPERVISOR_IN_WORDS[language])
    assert letter.text().endswith(f"Ann Bell\n{SUPERVISOR_IN_WORDS[language]}\n{letter.signature}")

    titled = staff(sess, "c.d", "agent", display_name="Cai Davies", job_title="Tenancy Officer")
    letter = letters.decision_letter(restrict(sess, who, titled, "warning"), SETTINGS, today=TODAY)
    assert letter.signatory == ("Cai Davies", "Tenancy Officer")

    nobody = restrict(sess, who, Actor(None, "import"), "warning")
    letter = letters.decision_letter(nobody, SETTINGS, today=TODAY)
    assert letter.signatory == (TEAM_IN_WORDS[language],)


def test_the_signatory_is_in_the_pdf_and_the_preview(sess: Session, templates: None) -> None:
    decider = staff(sess, "d", "admin", display_name="Dana Price", job_title="Head of Tenancy")
    letter = letters.decision_letter(
        restrict(sess, customer(sess), decider, "warning"), SETTINGS, today=TODAY
    )
    assert "Yours sincerely, Dana Price Head of Tenancy Example Homes" in pdf_text(
        drawn.render_pdf(letter)
    )
    assert (
        '<p class="signatory"><b>Dana Price</b><br>Head of Tenancy<br>Example Homes</p>'
        in drawn.render_html(letter)
    )


@pytest.mark.parametrize(
    ("details", "says", "never"),
    [
        (
            {"display_name": "Jo Bloggs", "direct_line": "01332 000777"},
            "Your named contact is Jo Bloggs, on 01332 000777.",
            "phone us on",
        ),
        (
            {"display_name": "Jo Bloggs"},
            "Your named contact is Jo Bloggs. To reach them, phone us on 01332 000100",
            "000777",
        ),
        ({"direct_line": "01332 000777"}, "your named contact, on 01332 000777", "Jo Bloggs"),
        ({}, "To reach your named contact, phone us on 01332 000100", "is jo.bloggs"),
    ],
)
def test_a_staff_spoc_is_a_named_person_with_a_direct_line(
    sess: Session, details: dict[str, str], says: str, never: str
) -> None:
    create_user(
        sess,
        "jo.bloggs",
        "agent",
        display_name=details.get("display_name"),
        direct_line=details.get("direct_line"),
    )
    restriction = restrict(sess, customer(sess), Actor(None, "test"), "spoc", spoc="jo.bloggs")
    text = letters.decision_letter(restriction, SETTINGS, today=TODAY).text()
    assert says in text
    assert never not in text
    assert "jo.bloggs" not in text  # their login is never their name


@pytest.mark.parametrize(
    ("language", "says"),
    [
        ("en-GB", "your named contact, on 01332 000555"),
        ("cy-GB", "cyswllt penodol, ar 01332 000555"),
        ("pl-PL", "osobą kontaktową, pod numerem 01332 000555"),
    ],
)
def test_a_spoc_given_by_number_is_your_named_contact_on_that_number(
    sess: Session, language: str, says: str
) -> None:
    restriction = restrict(sess, customer(sess, language), Actor(None, "test"), "spoc")
    assert says in letters.decision_letter(restriction, SETTINGS, today=TODAY).text()


# --- plain dates, staff's words and their translations ------------------------------------------


@pytest.mark.parametrize(
    ("language", "written"),
    [
        ("en-GB", "up to 15 December 2025."),
        ("cy-GB", "up to 15 Rhagfyr 2025."),
        ("pl-PL", "up to 15 grudnia 2025."),
    ],
)
def test_an_escalated_reason_has_its_timestamp_as_a_date_in_words(
    sess: Session, language: str, written: str
) -> None:
    restriction = restrict(sess, customer(sess, language), Actor(None, "test"), "warning")
    text = letters.decision_letter(restriction, SETTINGS, today=TODAY).text()
    assert written in text
    assert "2025-12-15" not in text and "16:45" not in text


def test_a_moment_is_dated_on_the_landlords_clock() -> None:
    words = letters._Words("en-GB", {})
    assert letters.plain_dates("at 2026-06-30T23:30:00Z.", words, "Europe/London") == (
        "at 1 July 2026."  # half past midnight in London
    )
    assert letters.plain_dates("on 2026-06-30 and 2026-13-45", words, "Europe/London") == (
        "on 30 June 2026 and 2026-13-45"  # not a date: left as it is
    )


@pytest.mark.parametrize("language", prompts.languages())
def test_the_reason_is_marked_as_staffs_words_and_its_translation_is_used(
    sess: Session, language: str
) -> None:
    translated = restrict(
        sess,
        customer(sess, language),
        Actor(None, "test"),
        "warning",
        reason_translations={language: "Gweiddi ar y ffôn"},
    )
    why = letters.decision_letter(translated, SETTINGS, today=TODAY).sections[1]
    assert why.paragraphs[1:] == (STAFF_WROTE[language], "Gweiddi ar y ffôn")

    as_written = restrict(sess, translated.customer, Actor(None, "test"), "warning")
    why = letters.decision_letter(as_written, SETTINGS, today=TODAY).sections[1]
    assert why.paragraphs[1] == STAFF_WROTE[language]
    assert why.paragraphs[2].startswith("Unacceptable level of contact")


def test_a_translation_must_be_for_a_language_we_write_in(sess: Session) -> None:
    who = customer(sess)
    with pytest.raises(Invalid, match="reason_translations: 'fr-FR' is not one of"):
        restrict(sess, who, Actor(None, "test"), "warning", reason_translations={"fr-FR": "x"})
    with pytest.raises(Invalid, match="reason_translations.cy-GB"):
        restrict(sess, who, Actor(None, "test"), "warning", reason_translations={"cy-GB": 1})


# --- the organisation's fixed strings, per language -----------------------------------------------


def test_organisation_and_ombudsman_strings_may_be_given_per_language() -> None:
    welsh = SETTINGS.organisation.in_language("cy-GB")
    assert (welsh.name, welsh.appeals_to, welsh.email) == (
        "Cartrefi Enghreifftiol",
        "Pennaeth y Gwasanaethau Tai",
        "customer.services@example.org",  # what is not overridden stays
    )
    assert SETTINGS.organisation.in_language("en-GB").appeals_to == "The Head of Housing Services"
    assert SETTINGS.ombudsman.in_language("pl-PL").name == "Rzecznik ds. Mieszkalnictwa"
    assert SETTINGS.ombudsman.in_language("pl-PL").phone == "0300 111 3000"
    assert Settings().organisation.in_language("cy-GB") == Settings().organisation


@pytest.mark.parametrize(
    ("config", "error"),
    [
        ({"organisation": {"fr-FR": {"name": "x"}}}, "organisation.fr-FR: not a language"),
        ({"organisation": {"cy-GB": {"phone": "x"}}}, "organisation.cy-GB.phone: only name"),
        ({"ombudsman": {"cy-GB": {"name": 3}}}, "ombudsman.cy-GB.name must be text"),
    ],
)
def test_a_per_language_setting_that_cannot_be_used_is_a_settings_error(
    config: dict[str, Any], error: str
) -> None:
    with pytest.raises(SettingsError, match=re.escape(error)):
        parse_settings(config)


@pytest.mark.parametrize("language", ["cy-GB", "pl-PL"])
def test_without_a_translation_the_organisations_own_strings_are_used(
    sess: Session, language: str
) -> None:
    restriction = restrict(sess, customer(sess, language), Actor(None, "test"), "warning")
    text = letters.decision_letter(restriction, Settings(), today=TODAY).text()
    assert "The Head of Housing Services" in text and "Housing Ombudsman Service" in text


# --- large print ----------------------------------------------------------------------------------


@pytest.mark.parametrize("which", letters.WHICH)
def test_large_print_is_16_point_or_more_in_the_pdf_and_the_preview(
    sess: Session, templates: None, which: str
) -> None:
    decider = staff(sess, "dana.p", "supervisor", display_name="Dana Price")
    large = customer(sess, "cy-GB", adjustments={"large_print": True})
    restriction = restrict(sess, large, decider, "limited_contact")
    signed(sess, restriction, which)
    letter = letters.build(sess, restriction, which, SETTINGS, today=TODAY)
    assert letter.large_print
    assert drawn.font_size_pt(letter) >= 16

    data = drawn.render_pdf(letter)
    sizes = font_sizes(data)
    assert sizes and min(sizes) >= 16, sizes
    assert "Pat Example" in pdf_text(data) and "DE23 6AB" in pdf_text(data)

    page = drawn.render_html(letter)
    assert '<article class="letter large-print">' in page
    css = (drawn.FONTS.parent / "letter.css").read_text()
    large_rules = re.findall(r"\.large-print[^{]*\{[^}]*font-size: (\d+(?:\.\d+)?)pt", css)
    assert large_rules and min(float(size) for size in large_rules) >= 16
    assert re.search(r"\.large-print \{[^}]*font-size: 16pt", css)


def test_ordinary_print_is_smaller(sess: Session, templates: None) -> None:
    restriction = restrict(sess, customer(sess), Actor(None, "test"), "warning")
    letter = letters.decision_letter(restriction, SETTINGS, today=TODAY)
    assert not letter.large_print
    assert min(font_sizes(drawn.render_pdf(letter))) < 16
    assert "large-print" not in drawn.render_html(letter)


# --- the postal address in the CSV import ---------------------------------------------------------


HEADER = "reference,name,phone_numbers,language,postal_address"
IMPORTER = Actor(None, "import:customers.csv")


def imported(sess: Session, *lines: str, header: str = HEADER, by_row: bool = False) -> Customer:
    stream = io.StringIO("".join(f"{line}\n" for line in (header, *lines)))
    if by_row:  # as on any database but PostgreSQL, or when another writer got in between
        importer = importing._Importer(sess, IMPORTER, None)
        importer.row_by_row(importing._parsed(stream, lambda n: None))
    else:
        importing.import_customers(sess, stream, IMPORTER)
    sess.expire_all()
    found = sess.scalar(select(Customer).where(Customer.reference == "HMS-9"))
    assert found is not None
    return found


@pytest.mark.parametrize("by_row", [False, True])
def test_the_import_takes_the_postal_address_with_its_lines_separated_by_bars(
    sess: Session, by_row: bool
) -> None:
    row = "HMS-9,Ann Able,07400 100009,en-GB,{}"
    found = imported(sess, row.format("Flat 2 | 14 Mill Lane|Derby||DE23 6AB"), by_row=by_row)
    assert found.postal_address == ["Flat 2", "14 Mill Lane", "Derby", "DE23 6AB"]
    created = sess.scalars(select(AuditEntry).where(AuditEntry.action == "customer.created"))
    assert [e.after["postal_address"] for e in created if e.after] == [found.postal_address]

    found = imported(sess, row.format("3 New Road|Derby DE1 2AB"), by_row=by_row)
    assert found.postal_address == ["3 New Road", "Derby DE1 2AB"]
    updated = list(sess.scalars(select(AuditEntry).where(AuditEntry.action == "customer.updated")))
    assert len(updated) == 1 and updated[0].before and updated[0].after
    assert updated[0].before["postal_address"] == ["Flat 2", "14 Mill Lane", "Derby", "DE23 6AB"]
    assert updated[0].after["postal_address"] == ["3 New Road", "Derby DE1 2AB"]

    # a file without the column leaves the address; one with the column empty removes it
    found = imported(sess, "HMS-9,Ann Able,07400 100009,en-GB", header=HEADER.rsplit(",", 1)[0])
    assert found.postal_address == ["3 New Road", "Derby DE1 2AB"]
    found = imported(sess, row.format(""), by_row=by_row)
    assert found.postal_address is None


def test_an_address_that_cannot_be_posted_is_a_bad_row(sess: Session) -> None:
    stream = io.StringIO(
        f"{HEADER}\nHMS-9,Ann Able,07400 100009,en-GB,{'|'.join(['line'] * 9)}\n"
        f"HMS-8,Bo Bell,07400 100008,en-GB,{'x' * 101}\n"
    )
    report = importing.import_customers(sess, stream, IMPORTER)
    assert report.created == 0
    assert [line for line, _ in report.skipped] == [2, 3]
    assert "at most 8 lines" in report.skipped[0][1]
    assert "longer than 100 characters" in report.skipped[1][1]


def test_the_user_details_letters_use_are_kept(sess: Session) -> None:
    user, _ = create_user(
        sess,
        "jo.bloggs",
        "agent",
        display_name=" Jo Bloggs ",
        job_title="Tenancy Officer",
        direct_line="01332 000777",
    )
    sess.commit()
    found = sess.scalar(select(User).where(User.name == "jo.bloggs"))
    assert found is user
    assert (user.display_name, user.job_title, user.direct_line) == (
        "Jo Bloggs",
        "Tenancy Officer",
        "+441332000777",
    )
    with pytest.raises(Invalid):
        create_user(sess, "x.y", "agent", direct_line="not a number")
