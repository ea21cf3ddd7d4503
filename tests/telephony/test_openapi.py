"""The API's OpenAPI 3.1 description (telephony/api/openapi.py): a valid document that describes
every route under /api/v1 and nothing else, with the role each view demands, a restriction body
made from the kinds registered now (one registered at runtime included), and a page for people."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from restrictions import kinds
from restrictions.kinds import Effect, Field, FieldType, Kind
from restrictions.models import Role
from tests.pages import csrf, signed_in

DOCUMENT = "/api/v1/openapi.json"
DOCS = "/api/v1/docs"
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
ROLES = [Role.AGENT, Role.SUPERVISOR, Role.ADMIN]
# <x>, <id:x>, <sid:x>, <int(min=1):x>: the variable's name is what OpenAPI writes as {x}
CONVERTER = re.compile(r"<(?:[^<>:]+:)?([^<>:]+)>")
# Values that pass each path variable's converter and name nothing that exists.
PATH_VALUES = {"reference": "HMS-NONE", "call_sid": "CA" + "0" * 32, "number": "+447400100999"}

# A throwaway kind, declared as tests/restrictions/test_kinds.py declares one, with text that a
# page must escape.
CALLBACKS = Kind(
    name="callbacks_only",
    label='Callbacks <b>only</b> & "by appointment"',
    flag="Callbacks only",
    effect=Effect.FLAG,
    precedence=95,
    fields=(
        Field("callback_number", "Number to ring <script>alert(1)</script>", max_length=30),
        Field("callbacks_per_week", "Callbacks a week", FieldType.COUNT, required=False),
    ),
    example={"callback_number": "+441332000123", "reason": "Calls to every officer (5.1)"},
)


@pytest.fixture
def callbacks_kind() -> Iterator[Kind]:
    kinds.register(CALLBACKS)
    try:
        yield CALLBACKS
    finally:
        kinds.unregister(CALLBACKS.name)


@pytest.fixture
def fetch(client: Any, agent: Any) -> Callable[[], dict[str, Any]]:
    """The document as the API serves it now, to a signed-in agent."""

    def get() -> dict[str, Any]:
        response = client.get(DOCUMENT, headers=agent.headers)
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.mimetype == "application/json"
        found: dict[str, Any] = response.get_json()
        return found

    return get


def openapi_path(rule: str) -> str:
    return CONVERTER.sub(r"{\1}", rule)


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield path, method, op


def resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        prefix, _, name = schema["$ref"].rpartition("/")
        assert prefix == "#/components/schemas", schema["$ref"]
        schema = doc["components"]["schemas"][name]
    return schema


def restriction_branches(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The body for a new restriction, one schema per kind, by the kind's name."""
    body = resolve(doc, {"$ref": "#/components/schemas/NewRestriction"})
    mapping = body["discriminator"]["mapping"]
    assert body["discriminator"]["propertyName"] == "kind"
    assert sorted(branch["$ref"] for branch in body["oneOf"]) == sorted(mapping.values())
    return {name: resolve(doc, {"$ref": target}) for name, target in mapping.items()}


def body_validator(doc: dict[str, Any], component: str) -> OAS31Validator:
    """Validates JSON against one of the document's schemas, its $refs resolved in the doc."""
    return OAS31Validator(
        {"$ref": f"#/components/schemas/{component}", "components": doc["components"]}
    )


def assert_conforms(doc: dict[str, Any], method: str, path: str, response: Any) -> None:
    """The answer's status is one the document lists for the operation, and its JSON body
    is valid against the schema the document gives for that status."""
    op = doc["paths"][path][method]
    status = str(response.status_code)
    where = f"{method.upper()} {path} answered {status}: {response.get_data(as_text=True)[:300]}"
    assert status in op["responses"], where
    content = op["responses"][status]["content"]
    assert response.mimetype in content, where
    if response.mimetype == "application/json":
        schema = content["application/json"]["schema"]
        validator = OAS31Validator({**schema, "components": doc["components"]})
        assert [e.message for e in validator.iter_errors(response.get_json())] == [], where


# --- (a) a valid OpenAPI 3.1 document ------------------------------------------------------------


def test_the_document_is_valid_openapi_3_1(app: Flask, fetch: Callable[[], dict[str, Any]]) -> None:
    doc = fetch()
    assert doc["openapi"].startswith("3.1.")
    validate(doc, cls=OpenAPIV31SpecValidator)
    assert doc["servers"] == [{"url": app.config["PUBLIC_BASE_URL"]}]
    schemes = doc["components"]["securitySchemes"]
    assert list(schemes) == ["bearerToken", "pageSession"]
    assert {k: v for k, v in schemes["bearerToken"].items() if k != "description"} == {
        "type": "http",
        "scheme": "bearer",
    }
    assert schemes["bearerToken"]["description"].startswith("A staff member's API token.")
    assert "90 days" in schemes["bearerToken"]["description"]
    # the pages' session cookie, which the docs page alone takes (a browser signed in)
    assert {k: v for k, v in schemes["pageSession"].items() if k != "description"} == {
        "type": "apiKey",
        "in": "cookie",
        "name": "session",
    }


def test_every_reference_in_the_document_resolves(fetch: Callable[[], dict[str, Any]]) -> None:
    """The validator does not follow $refs; a typo in a component's name would go unseen."""
    doc = fetch()
    seen: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                seen.append(node["$ref"])
                resolve(doc, node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)
    assert "#/components/schemas/NewRestriction" in seen


# --- (b) every route under /api/v1, and nothing else ------------------------------------------


def test_every_api_route_is_described_with_its_methods_and_nothing_else(
    app: Flask, fetch: Callable[[], dict[str, Any]]
) -> None:
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1"):
            methods = {m.lower() for m in rule.methods or ()} - {"head", "options"}
            routes.setdefault(openapi_path(rule.rule), set()).update(methods)
    described: dict[str, set[str]] = {}
    for path, method, _ in operations(fetch()):
        described.setdefault(path, set()).add(method)

    assert routes, "no routes under /api/v1?"
    undescribed = {p: m - described.get(p, set()) for p, m in routes.items()}
    undescribed = {p: m for p, m in undescribed.items() if m}
    assert not undescribed, f"routes not described in telephony/api/openapi.py: {undescribed}"
    unserved = {p: m - routes.get(p, set()) for p, m in described.items()}
    unserved = {p: m for p, m in unserved.items() if m}
    assert not unserved, f"described, but the app has no such route: {unserved}"
    assert routes == described
    assert {"/api/v1/openapi.json", "/api/v1/docs"} <= set(described)


def test_the_path_converters_become_path_parameters() -> None:
    assert openapi_path("/api/v1/customers/<reference>") == "/api/v1/customers/{reference}"
    assert openapi_path("/api/v1/alerts/<id:alert_id>") == "/api/v1/alerts/{alert_id}"
    assert openapi_path("/api/v1/calls/<sid:call_sid>/end") == "/api/v1/calls/{call_sid}/end"
    assert openapi_path("/x/<int(min=1):n>/<path:rest>") == "/x/{n}/{rest}"


def test_every_operation_is_described(fetch: Callable[[], dict[str, Any]]) -> None:
    doc = fetch()
    ids = []
    for path, method, op in operations(doc):
        where = f"{method.upper()} {path}"
        ids.append(op["operationId"])
        assert op["summary"].strip(), where
        assert op["tags"], where
        role = op["x-required-role"]
        assert role in {r.value for r in Role}, where
        by_session = [{"pageSession": ["supervisor"]}] if path == DOCS else []
        assert op["security"] == [{"bearerToken": [role]}, *by_session], where
        assert role in op["description"] or Role(role) is Role.AGENT, where

        declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        assert declared == set(re.findall(r"\{(\w+)\}", path)), where
        for parameter in op.get("parameters", []):
            assert parameter["description"] and parameter["schema"], where

        responses = op["responses"]
        assert len([s for s in responses if s in ("200", "201")]) == 1, where
        errors = {int(s) for s in responses if s.startswith(("4", "5"))}
        assert {400, 401, 503} <= errors, where
        assert "WWW-Authenticate" in responses["401"]["headers"], where
        assert "Retry-After" in responses["503"]["headers"], where
        if role != Role.AGENT.value:
            assert 403 in errors, where
        if "{" in path:
            assert 404 in errors, where
        if "requestBody" in op:
            assert {413, 415} <= errors, where
            assert op["requestBody"]["content"]["application/json"]["schema"], where
        for status in errors:
            answer = responses[str(status)]
            assert answer["description"].strip(), (where, status)
            assert answer["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/Error"
            }, (where, status)
    assert len(ids) == len(set(ids)), "operationIds must be unique"
    error = dict(resolve(doc, {"$ref": "#/components/schemas/Error"}))
    assert error.pop("examples")  # every answer has an example, errors too
    assert error == {
        "type": "object",
        "properties": {"error": {"type": "string", "description": "What is wrong, for a person."}},
        "required": ["error"],
        "description": "Every error answer.",
    }


def test_the_documented_roles_are_the_ones_the_views_demand(
    client: Any, fetch: Callable[[], dict[str, Any]], make_staff: Callable[..., Any]
) -> None:
    """Every operation answers 403 to the role just below the one documented, and lets the
    documented role through (to a 404 or a 415 here: nothing named exists, no body is sent)."""
    staff = {role: make_staff(role.value) for role in [*ROLES, Role.INTEGRATION]}
    doc = fetch()
    for path, method, op in operations(doc):
        url = re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES.get(m[1], "1"), path)
        needed = Role(op["x-required-role"])
        where = f"{method.upper()} {path}"

        let_through = client.open(url, method=method, headers=staff[needed].headers)
        assert let_through.status_code not in (401, 403, 405), (where, let_through.get_json())
        assert_conforms(doc, method, path, let_through)

        rank = ROLES.index(needed) if needed in ROLES else 1  # integration: above agents
        if rank > 0:
            below = ROLES[rank - 1]
            refused = client.open(url, method=method, headers=staff[below].headers)
            assert refused.status_code == 403, where
            assert refused.get_json() == {"error": f"this needs the {needed.value} role"}
            assert_conforms(doc, method, path, refused)


def test_the_answers_are_the_documented_ones(
    client: Any,
    supervisor: Any,
    agent: Any,
    make_staff: Callable[..., Any],
    fetch: Callable[[], dict[str, Any]],
) -> None:
    """Real answers, successes and errors, have a documented status and match its schema."""
    doc = fetch()
    sup = supervisor.headers
    customers = "/api/v1/customers"
    customer = "/api/v1/customers/{reference}"
    restrict = "/api/v1/customers/{reference}/restrictions"
    end = "/api/v1/restrictions/{restriction_id}/end"
    appeal = "/api/v1/restrictions/{restriction_id}/appeals"
    notice = "/api/v1/restrictions/{restriction_id}/notice"
    today = datetime.now(UTC).date().isoformat()

    def check(method: str, path: str, status: int, url: str | None = None, **kw: Any) -> Any:
        response = client.open(url or path, method=method, **kw)
        assert response.status_code == status, response.get_data(as_text=True)
        assert_conforms(doc, method, path, response)
        return response.get_json()

    new = {
        "reference": "HMS-0100",
        "name": "Pat Example",
        "phone_numbers": ["+447400100001"],
        "adjustments": {"slow_speech": True},
    }
    check("post", customers, 201, json=new, headers=sup)
    check("post", customers, 409, json=new, headers=sup)
    check("post", customers, 415, data="reference=x", headers=sup)
    check("post", customers, 400, data="{", content_type="application/json", headers=sup)
    check("post", customers, 422, json={"reference": "HMS-0101"}, headers=sup)
    check("post", customers, 403, json=new, headers=agent.headers)
    check("post", customers, 401, json=new)
    url = "/api/v1/customers/HMS-0100"
    check("patch", customer, 200, url, json={"language": "cy-GB"}, headers=sup)
    check("patch", customer, 422, url, json={"language": "xx"}, headers=sup)

    made = [
        check("post", restrict, 201, f"{url}/restrictions", json=body, headers=sup)
        for body in ({"kind": k.name, **k.example} for k in kinds.all_kinds())
    ]
    check("post", restrict, 422, f"{url}/restrictions", json={"kind": "nope"}, headers=sup)
    check("get", customer, 200, url, headers=agent.headers)
    check("get", customer, 404, "/api/v1/customers/HMS-NONE", headers=agent.headers)

    first = f"/api/v1/restrictions/{made[0]['id']}"
    check("get", "/api/v1/restrictions/{restriction_id}", 200, first, headers=agent.headers)
    check("post", appeal, 422, f"{first}/appeals", json={"grounds": "g"}, headers=sup)  # no notice
    check("post", notice, 422, f"{first}/notice", json={"sent_on": "2999-01-01"}, headers=sup)
    sent = {"sent_on": today, "method": "post"}
    check("post", notice, 200, f"{first}/notice", json=sent, headers=sup)
    check("post", notice, 409, f"{first}/notice", json=sent, headers=sup)
    check("post", appeal, 422, f"{first}/appeals", json={"lodged_on": "soon"}, headers=sup)
    check("post", appeal, 201, f"{first}/appeals", json={"grounds": "Unfair"}, headers=sup)
    check("get", "/api/v1/reviews", 200, headers=sup)
    check("get", "/api/v1/due", 200, headers=sup)
    check("post", end, 422, f"{first}/end", json={}, headers=sup)
    check("post", end, 200, f"{first}/end", json={"reason": "Behaviour improved"}, headers=sup)
    check("post", end, 409, f"{first}/end", json={"reason": "Again"}, headers=sup)
    check("post", appeal, 409, f"{first}/appeals", json={"grounds": "g"}, headers=sup)
    check("post", end, 404, "/api/v1/restrictions/999/end", json={"reason": "x"}, headers=sup)

    check("get", "/api/v1/alerts", 200, headers=sup)
    check("get", "/api/v1/alerts", 422, "/api/v1/alerts?status=bogus", headers=sup)
    check("get", "/api/v1/alerts/{alert_id}", 404, "/api/v1/alerts/999", headers=sup)
    check("get", "/api/v1/calls/active", 200, headers=agent.headers)
    check("get", "/api/v1/events/parked", 200, headers=make_staff("admin").headers)


# --- (c) the restriction body comes from the registered kinds ----------------------------------


def assert_kind_is_described(doc: dict[str, Any], kind: Kind) -> None:
    schema = restriction_branches(doc)[kind.name]
    assert schema["title"] == kind.label
    assert schema["properties"]["kind"] == {"const": kind.name, "description": kind.label}
    assert {"kind", "reason"} <= set(schema["required"])
    for field in kind.fields:
        assert schema["properties"][field.name] == field.schema(), (kind.name, field.name)
        assert (field.name in schema["required"]) is field.required, (kind.name, field.name)
    common = {
        "kind",
        "reason",
        "reason_translations",
        "decided_on",
        "notice_sent_on",
        "notice_method",
        "apply_now",
        "urgent_reason",
    }
    own = set(schema["properties"]) - common
    assert own == {f.name for f in kind.fields}, kind.name


def test_the_restriction_body_has_every_kind_and_its_fields(
    fetch: Callable[[], dict[str, Any]],
) -> None:
    doc = fetch()
    assert set(restriction_branches(doc)) == {k.name for k in kinds.all_kinds()}
    for kind in kinds.all_kinds():
        assert_kind_is_described(doc, kind)
    for path in (
        "/api/v1/customers/{reference}/restrictions",
        "/api/v1/alerts/{alert_id}/escalate",
    ):
        body = doc["paths"][path]["post"]["requestBody"]
        assert body["required"] is True
        assert body["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/NewRestriction"
        }


def test_each_kinds_example_is_a_valid_body_and_a_wrong_one_is_not(
    fetch: Callable[[], dict[str, Any]],
) -> None:
    doc = fetch()
    validator = body_validator(doc, "NewRestriction")
    for kind in kinds.all_kinds():
        example = {"kind": kind.name, **kind.example}
        assert not list(validator.iter_errors(example)), kind.name
        if kind.example:
            assert restriction_branches(doc)[kind.name]["examples"] == [example]
    assert list(validator.iter_errors({"kind": "spoc", "reason": "no spoc given"}))
    assert list(validator.iter_errors({"kind": "no_such_kind", "reason": "x"}))
    assert list(validator.iter_errors({"kind": "warning"}))  # no reason


def test_a_kind_registered_at_runtime_is_described_and_goes_when_unregistered(
    fetch: Callable[[], dict[str, Any]],
) -> None:
    assert CALLBACKS.name not in restriction_branches(fetch())
    kinds.register(CALLBACKS)
    try:
        doc = fetch()
        validate(doc, cls=OpenAPIV31SpecValidator)
        assert_kind_is_described(doc, CALLBACKS)
        validator = body_validator(doc, "NewRestriction")
        assert not list(validator.iter_errors({"kind": CALLBACKS.name, **CALLBACKS.example}))
        assert list(validator.iter_errors({"kind": CALLBACKS.name, "reason": "no number"}))
    finally:
        kinds.unregister(CALLBACKS.name)
    assert CALLBACKS.name not in restriction_branches(fetch())


def test_the_customer_body_offers_the_languages_there_are(
    fetch: Callable[[], dict[str, Any]],
) -> None:
    import prompts

    doc = fetch()
    new = resolve(doc, {"$ref": "#/components/schemas/NewCustomer"})
    assert new["required"] == ["reference", "name", "phone_numbers"]
    (named,) = [o for o in new["properties"]["language"]["anyOf"] if "enum" in o]
    assert named["enum"] == list(prompts.languages())
    validator = body_validator(doc, "NewCustomer")
    assert not list(
        validator.iter_errors(
            {"reference": "HMS-1", "name": "Pat", "phone_numbers": ["+447400100001"]}
        )
    )
    assert list(validator.iter_errors({"reference": "HMS-1", "name": "Pat", "phone_numbers": []}))


# --- (d) the page for people ---------------------------------------------------------------------


def test_the_docs_page_lists_each_operation_and_escapes_text(
    client: Any, agent: Any, fetch: Callable[[], dict[str, Any]], callbacks_kind: Kind
) -> None:
    response = client.get(DOCS, headers=agent.headers)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)

    for path, method, op in operations(fetch()):
        assert f'id="{op["operationId"]}"' in page
        assert f'<span class="method">{method.upper()}</span> <code>{path}</code>' in page
        assert op["summary"].replace("&", "&amp;").replace("'", "&#39;") in page
        assert f'<span class="role">{op["x-required-role"]}</span>' in page
    for name in ("reference", "phone_numbers", "lodged_on", "windows", "max_calls_per_week"):
        assert f"<code>{name}</code>" in page
    for kind in kinds.all_kinds():
        for field in kind.fields:
            assert f"<code>{field.name}</code>" in page

    # The new kind's label and field text are shown, escaped: no markup gets through.
    assert "Callbacks &lt;b&gt;only&lt;/b&gt; &amp; &#34;by appointment&#34;" in page
    assert "Number to ring &lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>only</b>" not in page
    assert "<script" not in page
    # Nothing is fetched from elsewhere (the network is closed): no script, no remote resource.
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert 'href="/api/v1/openapi.json"' in page


# --- (e) a signed-in staff member only ----------------------------------------------------------


@pytest.mark.parametrize("url", [DOCUMENT, DOCS])
def test_without_a_valid_token_it_is_401(client: Any, url: str) -> None:
    tried: list[dict[str, str]] = [
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Basic x"},
    ]
    if url == DOCUMENT:  # the docs page without a token is a browser's: see below
        tried.append({})
    for headers in tried:
        response = client.get(url, headers=headers)
        assert response.status_code == 401
        assert response.mimetype == "application/json"
        assert set(response.get_json()) == {"error"}
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="callguard"'


def test_a_supervisors_browser_signed_in_to_the_pages_opens_the_docs(
    app: Flask, client: Any, make_staff: Callable[..., Any]
) -> None:
    for role in ("supervisor", "admin"):
        browser = signed_in(app, make_staff(role, f"{role}.reader"))
        response = browser.get(DOCS)
        assert response.status_code == 200, role
        assert response.mimetype == "text/html"
        assert 'id="getAPIDocs"' in response.get_data(as_text=True)
        # the session opens the page for people only: the JSON API still wants a token
        assert browser.get(DOCUMENT).status_code == 401
        # and a token sent with it is checked as a token
        assert browser.get(DOCS, headers={"Authorization": "Bearer not-a-token"}).status_code == 401


def test_an_agents_browser_is_refused_the_docs_and_a_strangers_is_sent_to_sign_in(
    app: Flask, client: Any, agent: Any, supervisor: Any
) -> None:
    refused = signed_in(app, agent).get(DOCS)
    assert refused.status_code == 403
    assert refused.mimetype == "text/html"
    assert "supervisor" in refused.get_data(as_text=True)
    assert client.get(DOCS, headers=agent.headers).status_code == 200, "an agent's token opens it"

    stranger = app.test_client()
    sent = stranger.get(DOCS)
    assert sent.status_code == 302
    assert sent.headers["Location"] == "/sign-in?next=%2Fapi%2Fv1%2Fdocs"
    form = stranger.get(sent.headers["Location"]).get_data(as_text=True)
    signing_in = stranger.post(
        sent.headers["Location"],
        data={
            "csrf_token": csrf(form),
            "name": supervisor.user.name,
            "password": supervisor.password,
        },
    )
    assert signing_in.status_code == 302 and signing_in.headers["Location"] == DOCS
    assert stranger.get(DOCS).status_code == 200
