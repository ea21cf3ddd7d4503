"""Decision letters through the API (``GET /api/v1/restrictions/<id>/letter``): a PDF, or the HTML
preview, in the customer's language, stating everything the policy requires; and the appeal and
review letters through ``telephony.letters.respond``."""

from __future__ import annotations

import html
import io
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pypdf
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

import prompts
from restrictions import appeals, reviews
from restrictions.calendar import add_months, add_working_days
from restrictions.errors import NotFound
from restrictions.lifecycle import Actor
from restrictions.models import ContactAlert, Customer, Restriction, User
from telephony import letters
from telephony.database import database
from tests.conftest import Staff

TEST = Actor(None, "test")
DECIDED = date(2025, 12, 17)
SENT = date(2025, 12, 19)  # the letter's date; 20 working days on is past Christmas and New Year
REASON = "Swore at the repairs operative on 3 December and again on 10 December (policy 4.3)"
WINDOWS = [{"days": ["thu", "tue"], "start": "10:00", "end": "12:00"}]
LANGUAGES = ("en-GB", "cy-GB", "pl-PL")
KINDS: dict[str, dict[str, Any]] = {
    "spoc": {"spoc": "+441332000555"},
    "limited_contact": {"windows": WINDOWS, "max_calls_per_week": 3},
    "representative_only": {"representative": "Derby Advocacy Service"},
    "no_engagement": {"issue": "the 2019 boundary fence dispute"},
}
# What each letter must say, spelt out here in each language, independently of the prompt files.
MONTHS = {
    "en-GB": "January February March April May June July August September October November "
    "December",
    "cy-GB": "Ionawr Chwefror Mawrth Ebrill Mai Mehefin Gorffennaf Awst Medi Hydref Tachwedd "
    "Rhagfyr",
    "pl-PL": "stycznia lutego marca kwietnia maja czerwca lipca sierpnia września października "
    "listopada grudnia",
}
FROM = {
    "en-GB": "This applies from {}.",
    "cy-GB": "Mae hyn yn berthnasol o {} ymlaen.",
    "pl-PL": "Obowiązuje to od {}.",
}
FROM_SENDING = {
    "en-GB": "This applies from the day this letter is sent.",
    "cy-GB": "Mae hyn yn berthnasol o'r diwrnod yr anfonir y llythyr hwn.",
    "pl-PL": "Obowiązuje to od dnia wysłania tego listu.",
}
REVIEW = {
    "en-GB": "We will review this decision by {} at the latest",
    "cy-GB": "Byddwn yn adolygu'r penderfyniad hwn erbyn {} fan bellaf",
    "pl-PL": "Ponownie rozpatrzymy tę decyzję najpóźniej do {}",
}
LAST_DAY = {
    "en-GB": "Your appeal must reach us by {} at the latest",
    "cy-GB": "Rhaid i'ch apêl ein cyrraedd erbyn {} fan bellaf",
    "pl-PL": "Odwołanie musi do nas dotrzeć najpóźniej do dnia {}",
}
ALLOWANCE = {
    "en-GB": "The most calls you can make to us in one week, Monday to Sunday, is 3.",
    "cy-GB": "Y nifer mwyaf o alwadau y gallwch eu gwneud i ni mewn un wythnos, o ddydd Llun i "
    "ddydd Sul, yw 3.",
    "pl-PL": "Maksymalna liczba połączeń, które mogą Państwo wykonać do nas w ciągu jednego "
    "tygodnia (od poniedziałku do niedzieli), wynosi 3.",
}
EMERGENCY = {
    "en-GB": "For an emergency repair, phone 01332 000999 at any time.",
    "cy-GB": "Ar gyfer atgyweiriad brys, ffoniwch 01332 000999 unrhyw bryd.",
    "pl-PL": "W sprawie pilnej naprawy prosimy dzwonić o dowolnej porze pod numer 01332 000999.",
}
DANGER = {
    "en-GB": "If you or anyone else is in danger, dial 999.",
    "cy-GB": "Os ydych chi neu unrhyw un arall mewn perygl, ffoniwch 999.",
    "pl-PL": "Jeśli Państwu lub komukolwiek innemu grozi niebezpieczeństwo, prosimy dzwonić pod "
    "numer 999.",
}


def in_words(day: date, language: str) -> str:
    return f"{day.day} {MONTHS[language].split()[day.month - 1]} {day.year}"


def london_today() -> date:
    return datetime.now(UTC).astimezone(ZoneInfo("Europe/London")).date()


def pdf_text(data: bytes) -> str:
    """The PDF's words, with its line breaks as spaces."""
    reader = pypdf.PdfReader(io.BytesIO(data))
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())


def html_text(page: str) -> str:
    """The preview's words, as a reader sees them."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def required(language: str, kind: str, effect: date, letter_day: date) -> list[str]:
    """Everything a decision letter must state (policy 10.2), for one kind, in one language."""
    shown = {
        "spoc": ["01332 000555"],
        "limited_contact": [prompts.describe_windows(WINDOWS, language), ALLOWANCE[language]],
        "representative_only": ["Derby Advocacy Service"],
        "no_engagement": ["the 2019 boundary fence dispute"],
    }[kind]
    last_day = add_working_days(letter_day, appeals.APPEAL_WORKING_DAYS)
    return [
        REASON,
        *shown,
        FROM[language].format(in_words(effect, language)),
        REVIEW[language].format(in_words(add_months(effect, 12), language)),
        "The Head of Housing Services",
        "appeals@example.org",
        LAST_DAY[language].format(in_words(last_day, language)),
        "Housing Ombudsman Service",
        "0300 111 3000",
        EMERGENCY[language],
        DANGER[language],
    ]


def letter_of(client: FlaskClient, staff: Staff, restriction_id: int, query: str = "") -> Any:
    return client.get(f"/api/v1/restrictions/{restriction_id}/letter{query}", headers=staff.headers)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("language", LANGUAGES)
def test_the_decision_letter_pdf_states_everything_in_the_customers_language(
    client: FlaskClient,
    supervisor: Staff,
    make_customer: Callable[..., Customer],
    restrict: Callable[..., Restriction],
    language: str,
    kind: str,
) -> None:
    restriction = restrict(
        make_customer(language=language),
        kind=kind,
        reason=REASON,
        decided_on=DECIDED.isoformat(),
        notice_sent_on=SENT.isoformat(),
        **KINDS[kind],
    )
    response = letter_of(client, supervisor, restriction.id)

    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"] == (
        f'inline; filename="decision-letter-HMS-0001-{restriction.id}.pdf"'
    )
    assert response.data.startswith(b"%PDF-")
    text = pdf_text(response.data)
    assert add_working_days(SENT, 20) == date(2026, 1, 21)
    for expected in required(language, kind, SENT, SENT):
        assert expected in text, expected
    assert in_words(SENT, language) in text  # the letter's date


@pytest.mark.parametrize("language", LANGUAGES)
def test_before_its_notice_it_applies_from_the_day_the_letter_is_sent(
    client: FlaskClient,
    supervisor: Staff,
    make_customer: Callable[..., Customer],
    restrict: Callable[..., Restriction],
    language: str,
) -> None:
    restriction = restrict(
        make_customer(language=language), kind="written_only", notice_sent_on=None
    )
    text = pdf_text(letter_of(client, supervisor, restriction.id).data)
    today = london_today()
    assert FROM_SENDING[language] in text
    assert in_words(today, language) in text  # dated today, on the landlord's clock
    last_day = add_working_days(today, appeals.APPEAL_WORKING_DAYS)
    assert LAST_DAY[language].format(in_words(last_day, language)) in text
    assert REVIEW[language].format(in_words(add_months(today, 12), language)) in text


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_html_preview_says_the_same_and_escapes_what_staff_wrote(
    client: FlaskClient,
    supervisor: Staff,
    make_customer: Callable[..., Customer],
    restrict: Callable[..., Restriction],
    language: str,
) -> None:
    reason = "Wrote <script>alert('x')</script> & <b>shouted</b> at staff"
    restriction = restrict(
        make_customer(language=language, name="Pat <i>Example</i>"),
        kind="limited_contact",
        reason=reason,
        decided_on=DECIDED.isoformat(),
        notice_sent_on=SENT.isoformat(),
        **KINDS["limited_contact"],
    )
    preview = letter_of(client, supervisor, restriction.id, "?format=html")

    assert preview.status_code == 200
    assert preview.mimetype == "text/html"
    assert preview.headers["Cache-Control"] == "no-store"
    page = preview.get_data(as_text=True)
    assert f'<html lang="{language}">' in page
    assert "<script>" not in page and "<b>shouted" not in page and "<i>" not in page
    assert "Wrote &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &lt;b&gt;shouted" in page
    words = html_text(page)
    pdf = pdf_text(letter_of(client, supervisor, restriction.id).data)
    for expected in [reason, "Pat <i>Example</i>"] + required(
        language, "limited_contact", SENT, SENT
    )[1:]:
        assert expected in words, expected
        assert expected in pdf, expected  # the PDF draws the same words, as text


def test_an_unknown_restriction_is_404(client: FlaskClient, supervisor: Staff) -> None:
    response = letter_of(client, supervisor, 999999)
    assert response.status_code == 404
    assert response.get_json() == {"error": "no restriction with id 999999"}


def test_agents_may_not_have_letters(
    client: FlaskClient,
    agent: Staff,
    make_customer: Callable[..., Customer],
    restrict: Callable[..., Restriction],
) -> None:
    restriction = restrict(make_customer(), kind="written_only")
    assert letter_of(client, agent, restriction.id).status_code == 403
    anonymous = client.get(f"/api/v1/restrictions/{restriction.id}/letter")
    assert anonymous.status_code == 401


# --- the appeal and review letters (not routed yet) -----------------------------------------------


def test_the_appeal_letter_gives_the_outcome_of_the_latest_decided_appeal(
    app: Flask, make_customer: Callable[..., Customer], restrict: Callable[..., Restriction]
) -> None:
    made = restrict(
        make_customer(language="cy-GB"),
        kind="spoc",
        spoc="+441332000555",
        decided_on=DECIDED.isoformat(),
        notice_sent_on=SENT.isoformat(),
    )
    today = london_today()
    with database(app).sessions() as sess:
        restriction = sess.get(Restriction, made.id)
        assert restriction is not None
        with pytest.raises(NotFound):
            letters.respond(restriction, "appeal", False)
        appeal = appeals.lodge_appeal(
            sess, TEST, restriction, {"grounds": "Unfair", "lodged_on": "2026-01-05"}, today=today
        )
        appeals.decide_appeal(
            sess, TEST, appeal, {"outcome": "upheld", "notes": "Mae'n deg"}, today=today
        )
        sess.commit()

        response = letters.respond(restriction, "appeal", False)
        assert response.mimetype == "application/pdf"
        assert response.headers["Content-Disposition"] == (
            f'inline; filename="appeal-letter-HMS-0001-{made.id}.pdf"'
        )
        text = pdf_text(response.get_data())
        for expected in (
            "Canlyniad eich apêl",
            f"Ar {in_words(date(2026, 1, 5), 'cy-GB')} fe wnaethoch apelio",
            "Rydym wedi penderfynu bod y penderfyniad gwreiddiol yn sefyll.",
            "01332 000555",
            "Mae'n deg",
            "Housing Ombudsman Service",
            EMERGENCY["cy-GB"],
            DANGER["cy-GB"],
        ):
            assert expected in text, expected

        preview = letters.respond(restriction, "appeal", True)
        assert preview.mimetype == "text/html"
        assert "Canlyniad eich apêl" in preview.get_data(as_text=True)


def test_the_review_letter_gives_the_outcome_of_the_latest_review(
    app: Flask, make_customer: Callable[..., Customer], restrict: Callable[..., Restriction]
) -> None:
    made = restrict(
        make_customer(language="pl-PL"),
        kind="no_engagement",
        issue="the 2019 boundary fence dispute",
        decided_on=DECIDED.isoformat(),
        notice_sent_on=SENT.isoformat(),
    )
    today = london_today()
    with database(app).sessions() as sess:
        restriction = sess.get(Restriction, made.id)
        assert restriction is not None
        with pytest.raises(NotFound):
            letters.respond(restriction, "review", True)
        reviews.review(
            sess,
            TEST,
            restriction,
            {"outcome": "continue", "notes": "Nadal potrzebne"},
            today=today,
        )
        sess.commit()

        text = pdf_text(letters.respond(restriction, "review", False).get_data())
        last_day = add_working_days(today, appeals.APPEAL_WORKING_DAYS)
        for expected in (
            "Wynik ponownego rozpatrzenia decyzji",
            "Postanowiliśmy, że na razie ustalenia muszą nadal obowiązywać:",
            "the 2019 boundary fence dispute",
            "Nadal potrzebne",
            in_words(add_months(today, 12), "pl-PL"),
            LAST_DAY["pl-PL"].format(in_words(last_day, "pl-PL")),
            "Housing Ombudsman Service",
            DANGER["pl-PL"],
        ):
            assert expected in text, expected


def test_the_endpoint_gives_the_appeal_and_review_letters_once_decided(
    client: FlaskClient,
    supervisor: Staff,
    make_customer: Callable[..., Customer],
    restrict: Callable[..., Restriction],
) -> None:
    restriction = restrict(make_customer(), kind="written_only")
    for about in ("appeal", "review"):
        response = letter_of(client, supervisor, restriction.id, f"?about={about}")
        assert response.status_code == 404, about
        assert "error" in response.get_json()
    unknown = letter_of(client, supervisor, restriction.id, "?about=apology")
    assert unknown.status_code == 422

    review = client.post(
        f"/api/v1/restrictions/{restriction.id}/review",
        json={"outcome": "end", "notes": "Calm for a year"},
        headers=supervisor.headers,
    )
    assert review.status_code == 200, review.get_json()
    response = letter_of(client, supervisor, restriction.id, "?about=review")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == (
        f'inline; filename="review-letter-HMS-0001-{restriction.id}.pdf"'
    )
    text = pdf_text(response.data)
    assert "The outcome of our review" in text and "Calm for a year" in text
    assert "We have decided to end the arrangements." in text


# --- letters fit to post: the address, the signatory, the escalation's words ----------------------

ADDRESS = ["Flat 2", "14 Mill Lane", "Derby", "DE23 6AB"]


def test_the_postal_address_goes_in_and_out_through_the_api_and_into_the_letter(
    client: FlaskClient, supervisor: Staff
) -> None:
    new = {"reference": "HMS-7", "name": "Pat Example", "phone_numbers": ["07400 100007"]}
    created = client.post(
        "/api/v1/customers",
        json={**new, "postal_address": [" Flat 2", "14  Mill Lane", "", "Derby", "DE23 6AB"]},
        headers=supervisor.headers,
    )
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["postal_address"] == ADDRESS  # trimmed, empty lines dropped
    shown = client.get("/api/v1/customers/HMS-7", headers=supervisor.headers).get_json()
    assert shown["postal_address"] == ADDRESS

    restricted = client.post(
        "/api/v1/customers/HMS-7/restrictions",
        json={
            "kind": "written_only",
            "reason": "Abusive calls",
            "decided_on": DECIDED.isoformat(),
            "notice_sent_on": SENT.isoformat(),
        },
        headers=supervisor.headers,
    )
    assert restricted.status_code == 201, restricted.get_json()
    text = pdf_text(letter_of(client, supervisor, restricted.get_json()["id"]).data)
    assert "Pat Example Flat 2 14 Mill Lane Derby DE23 6AB" in text

    def patch(body: dict[str, Any]) -> Any:
        return client.patch("/api/v1/customers/HMS-7", json=body, headers=supervisor.headers)

    moved = patch({"postal_address": ["3 New Road", "Derby DE1 2AB"]})
    assert moved.status_code == 200 and moved.get_json()["postal_address"] == [
        "3 New Road",
        "Derby DE1 2AB",
    ]
    kept = patch({"name": "Pat Example", "postal_address": None})  # null: as it is
    assert kept.get_json()["postal_address"] == ["3 New Road", "Derby DE1 2AB"]
    assert patch({"postal_address": []}).get_json()["postal_address"] == []  # removed
    for bad in (["line"] * 9, "1 High St", [3], ["x" * 101], ["1 High St\nDerby"]):
        refused = patch({"postal_address": bad})
        assert refused.status_code == 422, bad
        assert "postal_address" in refused.get_json()["error"]


def test_the_openapi_document_describes_the_new_fields(
    client: FlaskClient, supervisor: Staff
) -> None:
    document = client.get("/api/v1/openapi.json", headers=supervisor.headers).get_json()
    schemas = document["components"]["schemas"]
    for name in ("NewCustomer", "CustomerChanges"):
        given = schemas[name]["properties"]["postal_address"]
        address = next(s for s in given.get("anyOf", [given]) if s.get("type") == "array")
        assert address["maxItems"] == 8
        assert address["items"]["maxLength"] == 100
    assert "postal_address" in schemas["Customer"]["required"]
    given = schemas["NewRestriction-warning"]["properties"]["reason_translations"]
    translations = given["anyOf"][0]  # or null: none
    assert translations["propertyNames"] == {"enum": list(prompts.languages())}
    assert "reason_translations" in schemas["Restriction"]["properties"]


def test_users_add_takes_what_letters_call_them(app: Flask, runner: Any) -> None:
    from telephony.cli import main

    args = ["users", "add", "jo.bloggs", "--role", "agent", "--no-password"]
    args += ["--display-name", "Jo Bloggs", "--job-title", "Tenancy Officer"]
    result = runner.invoke(main, [*args, "--direct-line", "01332 000777"])
    assert result.exit_code == 0, result.output
    with database(app).sessions() as sess:
        user = sess.scalar(select(User).where(User.name == "jo.bloggs"))
        assert user is not None
        assert (user.display_name, user.job_title, user.direct_line) == (
            "Jo Bloggs",
            "Tenancy Officer",
            "+441332000777",
        )
    bad = runner.invoke(main, ["users", "add", "kim", "--role", "agent", "--direct-line", "abc"])
    assert bad.exit_code == 1


def test_the_decision_letter_is_signed_by_the_decider_and_names_the_spoc(
    app: Flask,
    client: FlaskClient,
    supervisor: Staff,
    make_customer: Callable[..., Customer],
) -> None:
    with database(app).sessions() as sess:
        contact = sess.get(User, supervisor.user.id)
        assert contact is not None
        contact.display_name, contact.job_title = "Sam Carter", "Tenancy Services Manager"
        contact.direct_line = "+441332000777"
        sess.commit()
    make_customer(language="cy-GB")
    made = client.post(
        "/api/v1/customers/HMS-0001/restrictions",
        json={"kind": "spoc", "spoc": supervisor.user.name, "reason": "Galwadau dro ar ôl tro"},
        headers=supervisor.headers,
    )
    assert made.status_code == 201, made.get_json()
    text = pdf_text(letter_of(client, supervisor, made.get_json()["id"]).data)
    assert "Eich cyswllt penodol yw Sam Carter, ar 01332 000777." in text
    assert "Yn gywir, Sam Carter Tenancy Services Manager Example Homes" in text
    assert supervisor.user.name not in text


@pytest.mark.parametrize(
    ("window_end", "says"),
    [
        ("2025-12-15T16:45:00+00:00", "up to 15 December 2025 at 16:45."),
        ("2026-06-30T23:30:00+00:00", "up to 1 July 2026 at 00:30."),  # on the landlord's clock
    ],
)
def test_an_escalated_alerts_reason_is_prefilled_without_a_timestamp(
    app: Flask, window_end: str, says: str
) -> None:
    from telephony.pages.supervisor import _prefilled_reason

    alert = ContactAlert(
        rule={"name": "calls-per-hour", "window_minutes": 60, "max_calls": 5},
        evidence={"calls_in_window": 14, "window_end": window_end},
    )
    reason = _prefilled_reason(alert)
    assert reason == (
        f"Unacceptable level of contact (policy section 6): 14 calls within 60 minutes, {says}"
    )
    assert not re.search(r"\d{4}-\d{2}-\d{2}", reason)
