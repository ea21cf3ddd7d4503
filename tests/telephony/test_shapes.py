"""The API's shapes (telephony/api/shapes): each body it takes and gives is a pydantic model, the
document's schemas are generated from them, a request body is checked against its model after
the role and before the domain, and (under test) every JSON answer is checked against its model.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from openapi_schema_validator import OAS31Validator
from pydantic import TypeAdapter

from telephony.api import openapi, serialize, shapes
from telephony.api.shapes import answers, bodies

DOCUMENT = "/api/v1/openapi.json"


@pytest.fixture
def doc(client: Any, agent: Any) -> dict[str, Any]:
    found: dict[str, Any] = client.get(DOCUMENT, headers=agent.headers).get_json()
    return found


def component(doc: dict[str, Any], name: str) -> OAS31Validator:
    return OAS31Validator({"$ref": f"#/components/schemas/{name}", "components": doc["components"]})


# --- the document is made from the models -------------------------------------------------------


def test_every_schema_in_the_document_is_a_models(doc: dict[str, Any]) -> None:
    """Nothing is written by hand: each component is a model's (or a registered kind's body)."""
    from telephony.api.shapes import common

    models = {
        name
        for module in (answers, bodies, common)
        for name, value in vars(module).items()
        if isinstance(value, type) and issubclass(value, shapes.Shape)
    }
    kinds_bodies = {model.__name__ for model in bodies.kind_bodies().values()}
    described = set(doc["components"]["schemas"])
    assert described <= models | kinds_bodies | {"NewRestriction"}
    assert described == set(openapi.schemas())


def test_every_json_answer_has_its_fields_and_an_example_that_fits(doc: dict[str, Any]) -> None:
    checked = 0
    for path, item in doc["paths"].items():
        for method, op in item.items():
            status = next(s for s in op["responses"] if s.startswith("2"))
            content = op["responses"][status]["content"].get("application/json")
            if content is None or path.endswith("/openapi.json"):
                continue
            name = content["schema"]["$ref"].rsplit("/", 1)[-1]
            schema = doc["components"]["schemas"][name]
            where = f"{method.upper()} {path}"
            assert schema.get("properties"), where
            assert content["example"] is not None, where
            assert list(component(doc, name).iter_errors(content["example"])) == [], where
            assert op["responses"][status]["description"] not in ("OK.", "Created."), where
            checked += 1
    assert checked >= 25


ANSWERS = [
    name
    for name, value in vars(answers).items()
    if isinstance(value, type)
    and issubclass(value, shapes.Shape)
    and value.__module__ == answers.__name__
]


@pytest.mark.parametrize("name", ANSWERS)
def test_every_answers_examples_fit_its_model(name: str) -> None:
    model = getattr(answers, name)
    for example in model.model_config.get("json_schema_extra", {}).get("examples", []):
        model.model_validate_json(json.dumps(example), strict=True)


def test_the_docs_page_shows_each_answers_fields_and_example(client: Any, agent: Any) -> None:
    page = client.get("/api/v1/docs", headers=agent.headers).get_data(as_text=True)
    section = page.split('<section id="getCustomer">')[1].split("</section>")[0]
    assert "Answer (200, JSON)" in section
    assert "<code>active_restrictions</code>" in section
    assert "&#34;reference&#34;" in section or "&quot;reference&quot;" in section


# --- request bodies: checked by their model, after the role, before the domain -------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"name": "Pat", "phone_numbers": ["+447400100001"]}, "reference is required"),
        (
            {"reference": "R", "name": "Pat", "phone_numbers": "+447400100001"},
            "phone_numbers must be a list",
        ),
        (
            {"reference": "R", "name": "Pat", "phone_numbers": []},
            "phone_numbers must be a non-empty list",
        ),
        ({"reference": "R", "name": 7, "phone_numbers": ["+447400100001"]}, "name must be text"),
        (
            {"reference": "R", "name": "P" * 201, "phone_numbers": ["+447400100001"]},
            "name is longer than 200 characters",
        ),
        (
            {"reference": "R", "name": "Pat", "phone_numbers": ["1"], "language": "xx"},
            "language must be one of en-GB",
        ),
        (
            {"reference": "R", "name": "Pat", "phone_numbers": ["1"], "postal_address": ["a", 3]},
            "postal_address[1] must be text",
        ),
        (
            {
                "reference": "R",
                "name": "Pat",
                "phone_numbers": ["1"],
                "adjustments": {"slow_speech": "yes"},
            },
            "adjustments.slow_speech must be true or false",
        ),
    ],
)
def test_a_body_that_does_not_fit_is_422_naming_the_field(
    client: Any, supervisor: Any, body: dict[str, Any], message: str
) -> None:
    answer = client.post("/api/v1/customers", json=body, headers=supervisor.headers)
    assert answer.status_code == 422
    assert answer.get_json()["error"].startswith(message), answer.get_json()


def test_the_role_is_checked_before_the_body(client: Any, agent: Any) -> None:
    answer = client.post("/api/v1/customers", json={"name": 7}, headers=agent.headers)
    assert (answer.status_code, answer.get_json()) == (
        403,
        {"error": "this needs the supervisor role"},
    )


def test_a_restriction_body_is_checked_as_its_kinds(
    client: Any, supervisor: Any, make_customer: Callable[..., Any]
) -> None:
    make_customer(reference="HMS-7")
    url = "/api/v1/customers/HMS-7/restrictions"
    unknown = client.post(url, json={"kind": "fax_only", "reason": "r"}, headers=supervisor.headers)
    assert unknown.status_code == 422 and "spoc" in unknown.get_json()["error"]
    no_person = client.post(url, json={"kind": "spoc", "reason": "r"}, headers=supervisor.headers)
    assert no_person.get_json() == {"error": "spoc is required"}
    too_long = client.post(
        url, json={"kind": "warning", "reason": "r" * 5001}, headers=supervisor.headers
    )
    assert too_long.get_json() == {"error": "reason is longer than 5000 characters"}
    fits = client.post(
        url, json={"kind": "warning", "reason": "Swore at staff (4.3)"}, headers=supervisor.headers
    )
    assert fits.status_code == 201


def test_a_body_that_fits_may_still_break_a_rule_the_domain_names(
    client: Any, supervisor: Any
) -> None:
    body = {"reference": "HMS-8", "name": "Pat", "phone_numbers": ["12"]}
    answer = client.post("/api/v1/customers", json=body, headers=supervisor.headers)
    assert answer.status_code == 422 and "12" in answer.get_json()["error"]


# --- answers: checked against their model on every request under test -------------------------


def test_an_answer_outside_its_shape_fails_the_test_that_made_it(
    client: Any, supervisor: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = serialize.customer

    def without_name(*args: Any, **kwargs: Any) -> dict[str, Any]:
        found = real(*args, **kwargs)
        del found["name"]
        return found

    monkeypatch.setattr(serialize, "customer", without_name)
    body = {"reference": "HMS-9", "name": "Pat", "phone_numbers": ["+447400100009"]}
    with pytest.raises(AssertionError, match="name is required"):
        client.post("/api/v1/customers", json=body, headers=supervisor.headers)


def test_a_field_sent_without_being_documented_fails_the_test_that_sent_it(
    client: Any, supervisor: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = serialize.customer

    def with_more(*args: Any, **kwargs: Any) -> dict[str, Any]:
        return {**real(*args, **kwargs), "shoe_size": 9}

    monkeypatch.setattr(serialize, "customer", with_more)
    body = {"reference": "HMS-10", "name": "Pat", "phone_numbers": ["+447400100010"]}
    with pytest.raises(AssertionError, match="shoe_size"):
        client.post("/api/v1/customers", json=body, headers=supervisor.headers)


def test_the_document_leaves_answers_open_to_fields_added_later(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    assert "additionalProperties" not in schemas["Customer"]
    assert "additionalProperties" not in schemas["LiveCall"]
    assert schemas["Adjustments"]["additionalProperties"] is False  # taken as well as given


# --- the words of a problem ---------------------------------------------------------------------


def test_problems_are_said_in_the_domains_words() -> None:
    new = TypeAdapter(bodies.NewCustomer)
    assert shapes.check(new, '{"reference": "R", "name": "P", "phone_numbers": ["1"]}') is None
    assert shapes.check(new, '{"name": "P", "phone_numbers": ["1"]}') == "reference is required"
    notice = TypeAdapter(bodies.Notice)
    assert (
        shapes.check(notice, '{"sent_on": "soon", "method": "post"}')
        == 'sent_on must be a date like 2026-03-01, not "soon"'
    )
    assert shapes.check(notice, '{"sent_on": "2026-01-05", "method": "fax"}') == (
        "method must be one of post, email, hand, portal, not 'fax'"
    )
    strict = TypeAdapter(bodies.AttachCall)
    assert shapes.check(strict, '{"customer": "R", "reason": "r", "number": "true"}') == (
        "number must be true or false"
    )


def test_null_where_a_field_may_be_left_out_is_not_called_required() -> None:
    new = TypeAdapter(bodies.NewCustomer)
    person = '"reference": "R", "name": "P", "phone_numbers": ["1"]'
    assert shapes.check(new, '{"reference": "R", "name": null, "phone_numbers": ["1"]}') == (
        "name is required"
    )
    assert shapes.check(new, '{"reference": "R", "name": "P", "phone_numbers": [null]}') == (
        "phone_numbers[0] must be text, not null"
    )
    unnamed = '{"customer": "R", "reason": "r", "number": null}'
    assert shapes.check(TypeAdapter(bodies.AttachCall), unnamed) == (
        "number must be true or false, not null"
    )
    assert shapes.check(new, "{" + person + ', "name": ""}') is None  # the domain says no to it


def test_a_wrong_key_is_named_as_the_key_and_an_empty_text_as_empty() -> None:
    body = TypeAdapter(bodies.kind_bodies()["warning"])
    assert shapes.check(
        body, '{"kind": "warning", "reason": "r", "reason_translations": {"xx-XX": "r"}}'
    ) == ("reason_translations key must be one of en-GB, cy-GB, pl-PL, not 'xx-XX'")
    assert shapes.check(
        body, '{"kind": "warning", "reason": "r", "reason_translations": {"cy-GB": ""}}'
    ) == ("reason_translations.cy-GB must not be empty")
    assert shapes.check(body, '{"kind": "warning", "reason": "r", "decided_on": "²⁰²⁶"}') == (
        'decided_on must be a date like 2026-03-01, not "²⁰²⁶"'
    )


@pytest.mark.parametrize(
    ("model", "body"),
    [
        (bodies.LapseLetter, {"sent_on": "2026-01-05", "method": "", "letter_method": None}),
        (bodies.EndRestriction, {"reason": "r", "letter_method": ""}),
        (bodies.ReviewBody, {"outcome": "continue", "notes": "n", "next_review_on": ""}),
        (bodies.NewAppeal, {"grounds": "g", "lodged_on": ""}),
    ],
)
def test_an_optional_date_or_method_sent_empty_is_left_out(
    model: type[Any], body: dict[str, Any]
) -> None:
    assert shapes.check(TypeAdapter(model), json.dumps(body)) is None
    wrong = {k: ("fax" if k.endswith("method") else "soon") for k, v in body.items() if v == ""}
    assert shapes.check(TypeAdapter(model), json.dumps({**body, **wrong})) is not None


def test_blank_and_null_are_documented_where_they_are_taken(doc: dict[str, Any]) -> None:
    new = component(doc, "NewCustomer")
    base = {"reference": "R", "name": "P", "phone_numbers": ["1"]}
    for blank in ({"language": ""}, {"language": None}, {"postal_address": None}):
        assert not list(new.iter_errors({**base, **blank})), blank
    assert list(new.iter_errors({**base, "language": "xx"}))
    warning = component(doc, "NewRestriction-warning")
    assert not list(
        warning.iter_errors(
            {
                "kind": "warning",
                "reason": "r",
                "decided_on": "",
                "notice_sent_on": "",
                "notice_method": "",
            }
        )
    )


def test_a_client_that_sends_empty_fields_for_left_out_ones_is_understood(
    client: Any, supervisor: Any
) -> None:
    """As the API took them before its bodies were models: "" or null is "not given"."""
    created = client.post(
        "/api/v1/customers",
        json={
            "reference": "HMS-40",
            "name": "Pat",
            "phone_numbers": ["+447400100040"],
            "language": "",
            "postal_address": None,
        },
        headers=supervisor.headers,
    )
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["language"] == "en-GB"
    restriction = client.post(
        "/api/v1/customers/HMS-40/restrictions",
        json={
            "kind": "warning",
            "reason": "Swore at staff (4.3)",
            "decided_on": "",
            "notice_sent_on": "",
            "notice_method": "",
        },
        headers=supervisor.headers,
    )
    assert restriction.status_code == 201, restriction.get_json()
    assert restriction.get_json()["state"] == "awaiting_notice"


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("post", "/api/v1/customers/NOBODY/restrictions", {"kind": 5}),
        ("patch", "/api/v1/customers/NOBODY", {"name": 5}),
        ("post", "/api/v1/customers/NOBODY/numbers", {}),
        ("post", "/api/v1/restrictions/999999/notice", {"sent_on": "soon"}),
        ("post", "/api/v1/restrictions/999999/review", {}),
        ("post", "/api/v1/restrictions/999999/sharing", {}),
        ("post", "/api/v1/appeals/999999/decision", {}),
        ("post", "/api/v1/alerts/999999/dismiss", {}),
        ("post", f"/api/v1/calls/CA{'0' * 32}/end", {"reason": 5}),
        ("post", f"/api/v1/calls/CA{'0' * 32}/attach", {"customer": 5}),
    ],
)
def test_a_bad_body_sent_to_nothing_is_404_not_422(
    client: Any, supervisor: Any, method: str, url: str, body: dict[str, Any]
) -> None:
    answer = getattr(client, method)(url, json=body, headers=supervisor.headers)
    assert answer.status_code == 404, answer.get_json()


def test_the_schemas_are_made_once_for_the_kinds_and_languages_there_are() -> None:
    assert openapi.schemas() is openapi.schemas()


def test_the_body_is_off_the_socket_before_the_view_locks_its_row(
    client: Any,
    supervisor: Any,
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A view finds (and locks) its row before it checks the body: a client sending its body
    slowly must not hold the lock meanwhile, so the body has been read already."""
    from flask import request

    from telephony.api import restrictions as views

    unread: list[bytes] = []
    real = getattr(views, "get_restriction")  # noqa: B009  (the name the view calls)

    def locking(*args: Any, **kwargs: Any) -> Any:
        unread.append(request.stream.read(1))  # what is still waiting on the socket
        return real(*args, **kwargs)

    monkeypatch.setattr(views, "get_restriction", locking)
    restriction = restrict(make_customer(), kind="warning", notice_sent_on=None)
    answer = client.post(
        f"/api/v1/restrictions/{restriction.id}/notice",
        json={"sent_on": "soon", "method": "post"},
        headers=supervisor.headers,
    )
    assert unread == [b""]
    assert answer.status_code == 422, answer.get_json()  # and the body was still all there
