"""A restriction kind is one declaration and a language is one file: adding either at runtime is
enough for routing, validation, what callers hear, what agents see, the letters, the supervisor's
form and the API's description. Every kind here is declared in this file alone: its fields (with
their roles), its letter wording and its prompt are the only things added."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

import prompts
from restrictions import kinds
from restrictions.destination import Destination
from restrictions.errors import Invalid
from restrictions.kinds import Effect, Field, FieldType, Kind, Role
from restrictions.lifecycle import Actor, add_restriction, create_customer
from restrictions.routing import ActiveRestriction, CallerProfile, RoutingSettings, decide
from restrictions.settings import Settings
from restrictions.speech import Listener, say

ROUTING = RoutingSettings(Destination.parse("dial:+441332000100"), "+441332000999")
NOW = datetime(2026, 6, 2, 10, 30, tzinfo=UTC)
TEST = Actor(None, "test")

EMAIL_ONLY = Kind(
    name="email_only",
    label="E-mail only",
    flag="E-mail only, to {value}",
    flag_detail="address",
    effect=Effect.ENDS_CALL,
    precedence=15,  # after representative only (10), before writing only (20)
    message="email_only",
    fields=(Field("address", "E-mail address to use", max_length=200),),
)
# Calls put through to a housing officer, named by a field of its own whose role is the person.
OFFICER_ONLY = Kind(
    name="officer_only",
    label="Housing officer only",
    flag="Calls go to their housing officer",
    effect=Effect.PERSON,
    precedence=35,  # after limited contact (30), before a single point of contact (40)
    fields=(Field("officer", "Housing officer", FieldType.CONTACT, role=Role.PERSON),),
    example={"officer": "+441332000777", "reason": "Repeated calls about one repair (5.1)"},
)
LETTER = {
    "email_only": "Please write to us only by e-mail, at {address}. {language}",
    "officer_only": "Your housing officer will deal with your calls. {officer}",
}


@pytest.fixture
def email_only(tmp_path: Path) -> Iterator[Kind]:
    """The kind, its one prompt per language file, and a new language (Scots, ``sco-GB``)."""
    extra = tmp_path / "prompts"
    extra.mkdir()
    for language in prompts.languages():
        source = prompts.DIRECTORIES[0] / f"{language}.toml"
        text = source.read_text(encoding="utf-8")
        text = re.sub(
            r"^\[say\]\n",
            '[say]\nemail_only = "Please e-mail us at {address}. ' + language + '"\n',
            text,
            count=1,
            flags=re.M,
        )
        kinds_table = "".join(
            f'{name} = "{wording.replace("{language}", language)}"\n'
            for name, wording in LETTER.items()
        )
        text = re.sub(r"^\[letter\.kinds\]\n", "[letter.kinds]\n" + kinds_table, text, flags=re.M)
        (extra / f"{language}.toml").write_text(text, encoding="utf-8")
    scots = (extra / "en-GB.toml").read_text(encoding="utf-8")
    scots = scots.replace('language = "en-GB"', 'language = "sco-GB"')
    scots = re.sub(r'^name = ".*"', 'name = "Scots (Lallans)"', scots, count=1, flags=re.M)
    scots = scots.replace('goodbye = "Thank you for calling. Goodbye."', 'goodbye = "Cheerio."')
    (extra / "sco-GB.toml").write_text(scots, encoding="utf-8")
    prompts.add_directory(extra)
    kinds.register(EMAIL_ONLY)
    kinds.register(OFFICER_ONLY)
    yield EMAIL_ONLY
    kinds.unregister(EMAIL_ONLY.name)
    kinds.unregister(OFFICER_ONLY.name)
    prompts.DIRECTORIES.remove(extra)
    prompts.reload()
    shutil.rmtree(extra)


def profile(*restrictions: ActiveRestriction, language: str = "en-GB") -> CallerProfile:
    return CallerProfile(1, "HMS-1", "Pat", language, False, restrictions)


def active(rid: int, kind: str, **details: Any) -> ActiveRestriction:
    return ActiveRestriction(rid, kind, details, datetime(2026, 1, 5, tzinfo=UTC))


def test_routing_applies_a_new_kind_in_its_precedence(email_only: Kind) -> None:
    route = decide(profile(active(1, "email_only", address="help@example.org")), NOW, ROUTING)
    assert (route.kind, route.ends_call, route.message) == ("email_only", True, "email_only")
    assert route.message_params == {"address": "help@example.org", "letter": False}
    assert route.flags == ("email_only:help@example.org",)
    beats_writing = decide(
        profile(active(1, "written_only"), active(2, "email_only", address="a@b.org")),
        NOW,
        ROUTING,
    )
    assert (beats_writing.kind, beats_writing.restriction_id) == ("email_only", 2)
    loses_to_representative = decide(
        profile(
            active(1, "representative_only", representative="Advocacy"), active(2, "email_only")
        ),
        NOW,
        ROUTING,
    )
    assert loses_to_representative.kind == "representative_only"


def test_agents_see_the_new_kinds_flag_in_words(email_only: Kind) -> None:
    assert kinds.describe_flag("email_only:help@example.org") == "E-mail only, to help@example.org"


def test_validation_uses_the_new_kinds_fields(sess: Session, email_only: Kind) -> None:
    customer = create_customer(
        sess, TEST, reference="HMS-1", name="Pat", phone_numbers=["+447400100001"]
    )
    with pytest.raises(Invalid, match="address is required"):
        add_restriction(sess, TEST, customer, {"kind": "email_only", "reason": "Abuse (4.2)"})
    with pytest.raises(Invalid, match="address is longer than 200"):
        add_restriction(
            sess, TEST, customer, {"kind": "email_only", "reason": "r", "address": "a" * 201}
        )
    made = add_restriction(
        sess, TEST, customer, {"kind": "email_only", "reason": "r", "address": " a@b.org "}
    )
    assert (made.kind, made.details) == ("email_only", {"address": "a@b.org"})


def test_an_unknown_kind_is_refused_with_the_kinds_there_are(
    sess: Session, email_only: Kind
) -> None:
    customer = create_customer(
        sess, TEST, reference="HMS-1", name="Pat", phone_numbers=["+447400100001"]
    )
    with pytest.raises(Invalid, match="email_only") as refused:
        add_restriction(sess, TEST, customer, {"kind": "fax_only", "reason": "r"})
    assert "fax_only" in refused.value.message


def test_the_new_kinds_message_is_spoken_in_every_language(email_only: Kind) -> None:
    for language in prompts.languages():
        words = say("email_only", Listener(language), Settings(), address="a@b.org")
        assert words.text.startswith("Please e-mail us at a@b.org.")
        assert words.language == language
    assert say("email_only", Listener("cy-GB"), Settings(), address="x").text.endswith("cy-GB")


def test_a_new_language_is_one_file(sess: Session, email_only: Kind) -> None:
    assert "sco-GB" in prompts.languages()
    assert prompts.display_name("sco-GB") == "Scots (Lallans)"  # its name for staff, from its file
    customer = create_customer(
        sess,
        TEST,
        reference="HMS-2",
        name="Morag",
        phone_numbers=["+447400100002"],
        language="sco-GB",
    )
    assert customer.language == "sco-GB"
    assert say("goodbye", Listener.of(customer), Settings()).text == "Cheerio."
    with pytest.raises(Invalid, match="sco-GB"):
        create_customer(
            sess, TEST, reference="HMS-3", name="X", phone_numbers=["+447400100003"], language="xx"
        )


def test_the_supervisors_form_offers_the_new_kind_and_its_fields(
    email_only: Kind,
    client: FlaskClient,
    make_staff: Callable[..., Any],
    make_customer: Callable[..., Any],
) -> None:
    from restrictions.models import ContactAlert
    from telephony.database import database

    customer = make_customer()
    with database(client.application).sessions() as db:
        alert = ContactAlert(
            subject=f"customer:{customer.id}", customer_id=customer.id, rule_name="r"
        )
        db.add(alert)
        db.commit()
        alert_id = alert.id
    staff = make_staff("supervisor", "sam")
    sign_in = client.get("/sign-in").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', sign_in)
    assert token is not None
    client.post(
        "/sign-in",
        data={"csrf_token": token.group(1), "name": "sam", "password": staff.password},
    )
    page = client.get(f"/supervisor/alerts/{alert_id}/escalate").get_data(as_text=True)
    assert '<option value="email_only">E-mail only</option>' in page
    assert 'name="email_only-address"' in page and "E-mail address to use" in page
    form_token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert form_token is not None
    recorded = client.post(
        f"/supervisor/alerts/{alert_id}/escalate",
        data={
            "csrf_token": form_token.group(1),
            "kind": "email_only",
            "reason": "Abusive e-mails (4.2)",
            "email_only-address": "help@example.org",
        },
    )
    assert recorded.status_code == 302
    with database(client.application).sessions() as db:
        from sqlalchemy import select

        from restrictions.models import Restriction

        made = db.scalar(select(Restriction).where(Restriction.kind == "email_only"))
        assert made is not None and made.details == {"address": "help@example.org"}


def test_the_new_kinds_letters_are_written_in_every_language_from_their_fields(
    sess: Session, email_only: Kind
) -> None:
    from datetime import date

    from restrictions import letters

    customer = create_customer(
        sess, TEST, reference="HMS-4", name="Pat", phone_numbers=["+447400100004"]
    )
    by_email = add_restriction(
        sess, TEST, customer, {"kind": "email_only", "reason": "r", "address": "help@example.org"}
    )
    by_officer = add_restriction(
        sess, TEST, customer, {"kind": "officer_only", **OFFICER_ONLY.example}
    )
    sess.commit()
    assert "sco-GB" in prompts.languages()
    for language in prompts.languages():
        customer.language = language
        for made in (by_email, by_officer):
            letter = letters.build(sess, made, "decision", Settings(), today=date(2026, 6, 2))
            assert letter.language == language
            assert "{" not in letter.text() and "}" not in letter.text()
        email = letters.build(sess, by_email, "decision", Settings(), today=date(2026, 6, 2))
        marker = "en-GB" if language == "sco-GB" else language  # Scots is English's file, copied
        assert f"Please write to us only by e-mail, at help@example.org. {marker}" in email.text()
        officer = letters.build(sess, by_officer, "decision", Settings(), today=date(2026, 6, 2))
        reach = prompts.catalogue(language)["letter"]["contact_number"].split("{")[0]
        assert f"Your housing officer will deal with your calls. {reach}" in officer.text()
        assert "01332 000777" in officer.text()  # the officer's own number, as it is dialled


def test_a_kind_that_routes_to_a_person_finds_them_by_the_fields_role(email_only: Kind) -> None:
    from restrictions import tasks

    officer = active(1, "officer_only", officer="+441332000777")
    route = decide(profile(officer), NOW, ROUTING)
    assert (route.kind, route.destination) == (
        "officer_only",
        Destination.parse("dial:+441332000777"),
    )
    assert kinds.routes_to_person("officer_only") and not kinds.routes_to_person("email_only")
    assert "officer_only" in kinds.person_kinds() and "spoc" in kinds.person_kinds()
    task = tasks.attributes(profile(officer), route, call_sid="CA" + "0" * 32, caller=None)
    assert task["callguard"]["spoc"] == {"number": "+441332000777"}  # the person, for Flex
    assert task["priority"] == tasks.SPOC_PRIORITY


def test_a_call_from_a_new_kinds_customer_rings_its_person(
    email_only: Kind,
    twilio: Any,
    run_jobs: Callable[[], int],
    fake_twilio: Any,
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
) -> None:
    restrict(make_customer(), kind="officer_only", officer="+441332000777")
    params = twilio.call_params("+447400100001")
    answer = twilio.post("/twilio/voice/incoming", params).get_data(as_text=True)
    assert "putting you through to your named contact" in answer
    assert "press 1" in answer  # the way through for emergency repairs, before the person rings
    run_jobs()
    (leg,) = fake_twilio.dial_outs()
    assert leg.param("To") == "+441332000777"


def test_a_kind_whose_fields_contradict_its_effect_is_refused() -> None:
    person = Field("officer", "Officer", FieldType.CONTACT, role=Role.PERSON)
    with pytest.raises(ValueError, match="person"):
        kinds.register(Kind("no_person", "x", "x", Effect.PERSON, 50))  # nobody to route to
    with pytest.raises(ValueError, match="person"):
        kinds.register(Kind("flag_person", "x", "x", Effect.FLAG, 50, fields=(person,)))
    with pytest.raises(ValueError, match="permitted_times"):
        kinds.register(Kind("limited_nothing", "x", "x", Effect.LIMITED, 50))
    text_person = Field("officer", "Officer", role=Role.PERSON)
    with pytest.raises(ValueError, match="contact"):
        kinds.register(Kind("text_person", "x", "x", Effect.PERSON, 50, fields=(text_person,)))
    for odd in ("Email-Only", "email.only", "", "é_only"):  # a prompt key, a form's, the API's
        with pytest.raises(ValueError, match="lower-case"):
            kinds.register(Kind(odd, "x", "x", Effect.FLAG, 50))
    for taken in ("reason", "state", "terms", "Address"):  # beside the restriction's own keys
        with pytest.raises(ValueError, match="field"):
            kinds.register(
                Kind("odd_field", "x", "x", Effect.FLAG, 50, fields=(Field(taken, "x"),))
            )
    assert {"no_person", "flag_person", "limited_nothing", "text_person"}.isdisjoint(
        k.name for k in kinds.all_kinds()
    )


def enums_listing(doc: Any, value: str) -> list[list[Any]]:
    """Every ``enum`` in the document that lists ``value``."""
    found: list[list[Any]] = []
    if isinstance(doc, dict):
        if isinstance(doc.get("enum"), list) and value in doc["enum"]:
            found.append(doc["enum"])
        for inner in doc.values():
            found.extend(enums_listing(inner, value))
    elif isinstance(doc, list):
        for inner in doc:
            found.extend(enums_listing(inner, value))
    return found


def test_a_new_language_is_offered_by_the_pages_and_the_api(
    email_only: Kind, client: FlaskClient, make_staff: Callable[..., Any]
) -> None:
    staff = make_staff("supervisor", "sam")
    sign_in = client.get("/sign-in").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', sign_in)
    assert token is not None
    client.post(
        "/sign-in", data={"csrf_token": token.group(1), "name": "sam", "password": staff.password}
    )
    form = client.get("/supervisor/customers/new").get_data(as_text=True)
    assert '<option value="sco-GB">Scots (Lallans)</option>' in form
    assert '<option value="cy-GB">Welsh (Cymraeg)</option>' in form

    doc = client.get("/api/v1/openapi.json", headers=staff.headers).get_json()
    languages = enums_listing(doc, "cy-GB")
    assert languages and all("sco-GB" in enum for enum in languages)
    made = client.post(
        "/api/v1/customers",
        json={
            "reference": "HMS-9",
            "name": "Morag",
            "phone_numbers": ["+447400100009"],
            "language": "sco-GB",
        },
        headers=staff.headers,
    )
    assert made.status_code == 201, made.get_data(as_text=True)
    assert made.get_json()["language"] == "sco-GB"
