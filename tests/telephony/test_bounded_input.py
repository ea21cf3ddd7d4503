"""Bounded input: every request body has a limit for its family of routes, refused 413 before a
byte of it is read (a chunked body is cut off at it); JSON fields are bounded as the API's
description says; no odd text (NUL, a lone surrogate, a CR/LF in ``next``, a ``/`` in a
reference, a CallSid that is not one) makes a 5xx or a forged log line; the CSV import reports a
field over the limit and text that is not UTF-8 by line and carries on."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from restrictions.adjustments import MAX_INTERPRETER, MAX_SENSITIVE_NOTE, MAX_TEXT
from restrictions.errors import DomainError
from restrictions.importing import import_customers
from restrictions.lifecycle import Actor
from restrictions.models import CallEvent, Customer, Restriction
from telephony import create_app
from telephony.cli import main
from telephony.database import database
from tests.calls import status_event
from tests.conftest import CSRF_FIELD, PUBLIC_BASE_URL, Staff

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
SIXTY_MB = 60 * 2**20
NEW = {"reference": "HMS-1", "name": "Pat Example", "phone_numbers": ["+447400100001"]}


def rows(app: Flask, model: type) -> int:
    with database(app).sessions() as sess:
        return int(sess.scalar(select(func.count()).select_from(model)) or 0)


class Untouchable(io.RawIOBase):
    """A request body of ``size`` bytes that fails the test if anything reads a byte of it (the
    test client measures it by seeking, which reads nothing)."""

    def __init__(self, size: int) -> None:
        self.size, self.position, self.reads = size, 0, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self.reads += 1
        raise AssertionError("the body of an oversize request was read")

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self.position = offset + (self.size if whence == io.SEEK_END else 0)
        return self.position

    def tell(self) -> int:
        return self.position


class Endless(io.RawIOBase):
    """A body that never ends (``x`` for ever), counting what is read of it."""

    def __init__(self) -> None:
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)
        view[:] = b"x" * len(view)
        self.read_bytes += len(view)
        return len(view)


def oversize(client: FlaskClient, path: str, content_type: str, **kwargs: Any) -> Any:
    """POST with ``Content-Length: 62914560`` (60 MB) and a body that must never be read."""
    body = Untouchable(SIXTY_MB)
    response = client.post(path, input_stream=body, content_type=content_type, **kwargs)
    assert response.request.content_length == SIXTY_MB
    assert body.reads == 0
    return response


def chunked(
    client: FlaskClient, path: str, body: io.RawIOBase, content_type: str, **kwargs: Any
) -> Any:
    """POST a body with no Content-Length, as a chunked request reaches the app from a server
    that ends the stream itself (gunicorn's, werkzeug's: ``wsgi.input_terminated``)."""
    environ = EnvironBuilder(
        path=path, method="POST", content_type=content_type, **kwargs
    ).get_environ()
    environ["wsgi.input"] = body
    environ["wsgi.input_terminated"] = True
    environ.pop("CONTENT_LENGTH", None)
    response = client.open(Request(environ))
    assert response.request.content_length is None
    return response


# --- 413 before the body is read ----------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/twilio/voice/incoming", "/twilio/voice/status", "/twilio/conference/events"]
)
def test_an_oversize_webhook_is_413_before_its_body_or_signature_is_read(
    app: Flask, client: FlaskClient, path: str
) -> None:
    response = oversize(client, path, FORM, headers={"X-Twilio-Signature": "anything"})
    assert response.status_code == 413
    assert "larger than" in response.get_json()["error"]
    assert rows(app, CallEvent) == 0


def test_an_oversize_sign_in_is_413_before_its_body_is_read_and_answers_a_page(
    client: FlaskClient,
) -> None:
    response = oversize(client, "/sign-in", FORM)
    assert response.status_code == 413
    assert response.mimetype == "text/html"
    assert "Too large" in response.get_data(as_text=True)


@pytest.mark.parametrize("signed_in", [True, False])
def test_an_oversize_api_body_is_413_json_before_it_is_read(
    app: Flask, client: FlaskClient, supervisor: Staff, signed_in: bool
) -> None:
    headers = supervisor.headers if signed_in else {}
    response = oversize(client, "/api/v1/customers", JSON, headers=headers)
    assert response.status_code == 413
    assert set(response.get_json()) == {"error"}
    assert rows(app, Customer) == 0


def test_the_limits_are_per_family_webhooks_16_kb_the_api_64_kb(
    app: Flask, client: FlaskClient, twilio: Any, supervisor: Staff
) -> None:
    """A real signed callback over 16 KB is refused unstored; Twilio's usual ones pass; a JSON
    body between 16 and 64 KB reaches the API (and is judged on its fields)."""
    sid = "CA" + "1" * 32
    assert status_event(twilio, sid, "ringing", 0).status_code == 204
    padded = status_event(twilio, sid, "completed", 1, Padding="x" * 17_000)
    assert padded.status_code == 413 and "error" in padded.get_json()
    assert rows(app, CallEvent) == 1
    body = {**NEW, "name": "N" * 30_000}
    response = client.post("/api/v1/customers", json=body, headers=supervisor.headers)
    assert response.status_code == 422 and "name is longer than 200" in response.get_json()["error"]
    too_big = {**NEW, "name": "N" * 70_000}
    response = client.post("/api/v1/customers", json=too_big, headers=supervisor.headers)
    assert response.status_code == 413


def test_a_chunked_oversize_body_is_cut_off_at_the_limit(
    app: Flask, client: FlaskClient, twilio: Any, supervisor: Staff
) -> None:
    """An endless body is read up to its route's limit (and a byte to know it goes on), no
    further, and refused 413."""
    for path, limit, headers in (
        ("/twilio/voice/status", 16 * 1024, {"X-Twilio-Signature": "x"}),
        ("/api/v1/customers", 64 * 1024, supervisor.headers),
        ("/sign-in", 64 * 1024, {}),
    ):
        body = Endless()
        content_type = JSON if path.startswith("/api/") else FORM
        response = chunked(client, path, body, content_type, headers=headers)
        assert response.status_code == 413, path
        assert body.read_bytes <= limit + 1, (path, body.read_bytes)  # a byte over: enough
        if path == "/sign-in":
            assert response.mimetype == "text/html"
        else:
            assert "error" in response.get_json()
    assert rows(app, CallEvent) == 0 and rows(app, Customer) == 0


def test_a_chunked_body_within_the_limit_is_read(
    app: Flask, client: FlaskClient, twilio: Any
) -> None:
    params = {"CallSid": "CA" + "3" * 32, "CallStatus": "ringing", "SequenceNumber": "0"}
    signature = twilio.sign(PUBLIC_BASE_URL + "/twilio/voice/status", params)
    response = chunked(
        client,
        "/twilio/voice/status",
        io.BytesIO(urlencode(params).encode()),  # type: ignore[arg-type]
        FORM,
        headers={"X-Twilio-Signature": signature},
    )
    assert response.status_code == 204
    assert rows(app, CallEvent) == 1


def test_the_limits_are_settings_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, app_config: dict[str, Any], app: Flask
) -> None:
    assert app.config["MAX_WEBHOOK_BODY_BYTES"] == 16 * 1024
    assert app.config["MAX_API_BODY_BYTES"] == app.config["MAX_PAGE_BODY_BYTES"] == 64 * 1024
    assert app.config["MAX_CONTENT_LENGTH"] == 64 * 1024  # Flask's own, never left at None
    monkeypatch.setenv("MAX_API_BODY_BYTES", "200")
    small = create_app(app_config)
    try:
        assert small.config["MAX_API_BODY_BYTES"] == 200
        response = small.test_client().post(
            "/api/v1/customers", data="{" + " " * 300 + "}", content_type=JSON
        )
        assert response.status_code == 413 and "200 bytes" in response.get_json()["error"]
    finally:
        database(small).dispose()


# --- JSON fields are bounded ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("adjustments", "message"),
    [
        ({"note": "x"}, "is not an adjustment"),  # free text goes in sensitive_note
        ({"sensitive_note": "x" * (MAX_SENSITIVE_NOTE + 1)}, "longer than 2000 characters"),
        ({"interpreter": "x" * (MAX_INTERPRETER + 1)}, "longer than 64 characters"),
        ({"interpreter": {"nested": "x"}}, "must be text"),
        ({"representative": ["x"] * 50}, "must be an object"),
        ({"representative": {"name": "x" * (MAX_TEXT + 1), "contact": "c"}}, "longer than 200"),
    ],
)
def test_oversize_adjustments_are_422_and_nothing_is_written(
    app: Flask,
    client: FlaskClient,
    supervisor: Staff,
    make_customer: Callable[..., Any],
    adjustments: dict[str, Any],
    message: str,
) -> None:
    created = client.post(
        "/api/v1/customers", json={**NEW, "adjustments": adjustments}, headers=supervisor.headers
    )
    assert created.status_code == 422 and message in created.get_json()["error"]
    assert rows(app, Customer) == 0
    make_customer(reference="HMS-2", numbers=("+447400100002",), adjustments={"slow_speech": True})
    patched = client.patch(
        "/api/v1/customers/HMS-2", json={"adjustments": adjustments}, headers=supervisor.headers
    )
    assert patched.status_code == 422 and message in patched.get_json()["error"]
    shown = client.get("/api/v1/customers/HMS-2", headers=supervisor.headers).get_json()
    assert shown["adjustments"] == {"slow_speech": True}


def test_adjustments_up_to_the_limits_are_kept(client: FlaskClient, supervisor: Staff) -> None:
    adjustments: dict[str, Any] = {
        "slow_speech": True,
        "large_print": True,
        "preferred_contact": "portal",
        "representative": {
            "name": "n" * MAX_TEXT,
            "contact": "c" * MAX_TEXT,
            "role": "support_worker",
        },
        "interpreter": "i" * MAX_INTERPRETER,
        "sensitive_note": "s" * MAX_SENSITIVE_NOTE,
    }
    response = client.post(
        "/api/v1/customers", json={**NEW, "adjustments": adjustments}, headers=supervisor.headers
    )
    assert response.status_code == 201
    assert response.get_json()["adjustments"] == adjustments


def test_the_api_description_bounds_every_field_a_body_may_send(
    client: FlaskClient, agent: Staff
) -> None:
    """Every text in a request body has a maxLength (or is an enum, a constant, a date or a
    pattern), every list a maxItems, every object with fields of its own choosing a
    maxProperties; the adjustments as the domain bounds them."""
    doc = client.get("/api/v1/openapi.json", headers=agent.headers).get_json()
    components = doc["components"]["schemas"]
    unbounded: list[str] = []

    def walk(schema: dict[str, Any], where: str, seen: frozenset[str]) -> None:
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            if name not in seen:
                walk(components[name], name, seen | {name})
            return
        for key in ("oneOf", "anyOf", "allOf"):
            for i, branch in enumerate(schema.get(key, [])):
                walk(branch, f"{where}/{key}[{i}]", seen)
        types = schema.get("type")
        types = types if isinstance(types, list) else [types]
        free = ("const", "enum", "format", "pattern")
        if "string" in types and "maxLength" not in schema and not any(k in schema for k in free):
            unbounded.append(f"{where}: text without maxLength")
        if "array" in types:
            if "maxItems" not in schema:
                unbounded.append(f"{where}: list without maxItems")
            walk(schema.get("items", {}), f"{where}[]", seen)
        if "object" in types:
            extra = schema.get("additionalProperties", "properties" not in schema)
            if extra is not False and "maxProperties" not in schema:  # fields of its choosing
                unbounded.append(f"{where}: object without maxProperties")
            for name, prop in schema.get("properties", {}).items():
                walk(prop, f"{where}.{name}", seen)
            if isinstance(extra, dict):
                walk(extra, f"{where}.*", seen)

    for path, item in doc["paths"].items():
        for method, op in item.items():
            if "requestBody" in op:
                walk(op["requestBody"]["content"][JSON]["schema"], f"{method} {path}", frozenset())
    assert unbounded == []
    given = components["NewCustomer"]["properties"]["adjustments"]
    assert {"$ref": "#/components/schemas/Adjustments"} in given["anyOf"]  # or null: none
    adjustments = components["Adjustments"]
    assert adjustments["additionalProperties"] is False  # typed: no field of the sender's own
    note = adjustments["properties"]["sensitive_note"]["anyOf"][0]  # text, or null to remove it
    assert note["maxLength"] == MAX_SENSITIVE_NOTE
    assert "413" in doc["paths"]["/api/v1/customers"]["post"]["responses"]


# --- no 5xx from odd text ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ('"name": "Pat\\u0000"', "NUL"),
        ('"adjustments": {"a\\u0000b": true}', "NUL"),
        ('"name": "Pat\\ud800"', "lone surrogates"),
        ('"adjustments": {"\\udfff": true}', "lone surrogates"),
        ('"adjustments": {"note": "x\\udc80y"}', "lone surrogates"),
        ('"adjustments": {"note": NaN}', "not valid JSON"),
        ('"adjustments": {"note": -Infinity}', "not valid JSON"),
    ],
)
def test_nul_lone_surrogates_and_nan_in_json_are_4xx_and_nothing_is_written(
    app: Flask,
    client: FlaskClient,
    supervisor: Staff,
    make_customer: Callable[..., Any],
    raw: str,
    message: str,
) -> None:
    body = '{"reference": "HMS-1", "phone_numbers": ["+447400100001"], "name": "Pat", ' + raw + "}"
    created = client.post(
        "/api/v1/customers", data=body, content_type=JSON, headers=supervisor.headers
    )
    assert created.status_code == 400 and message in created.get_json()["error"]
    assert rows(app, Customer) == 0
    make_customer(reference="HMS-2", numbers=("+447400100002",), name="Sam Same")
    patched = client.patch(
        "/api/v1/customers/HMS-2",
        data="{" + raw + "}",
        content_type=JSON,
        headers=supervisor.headers,
    )
    assert patched.status_code == 400 and message in patched.get_json()["error"]
    shown = client.get("/api/v1/customers/HMS-2", headers=supervisor.headers).get_json()
    assert (shown["name"], shown["adjustments"]) == ("Sam Same", {})


def test_a_surrogate_pair_is_a_character_and_is_kept(
    client: FlaskClient, supervisor: Staff
) -> None:
    body = json.dumps({**NEW, "name": "Pat \U0001f600"})  # "\ud83d\ude00" in the JSON text
    response = client.post(
        "/api/v1/customers", data=body, content_type=JSON, headers=supervisor.headers
    )
    assert response.status_code == 201 and response.get_json()["name"] == "Pat \U0001f600"


def sign_in(client: FlaskClient, staff: Staff, query: str = "") -> Any:
    form = client.get("/sign-in").get_data(as_text=True)
    token = CSRF_FIELD.search(form)
    assert token is not None
    return client.post(
        "/sign-in" + query,
        data={"csrf_token": token[1], "name": staff.user.name, "password": staff.password},
    )


@pytest.mark.parametrize(
    "next_",
    [
        "/supervisor/customers%0d%0aSet-Cookie:%20forged=1",
        "/supervisor/customers%0aLocation:%20https://evil.example",
        "%0d%0a/supervisor/customers",
        "/%09/evil.example",
        "/%5Cevil.example",
        "//evil.example/x",
        "https://evil.example/x",
    ],
)
def test_sign_in_with_a_crlf_or_foreign_next_goes_home_never_a_500(
    app: Flask, supervisor: Staff, next_: str
) -> None:
    response = sign_in(app.test_client(), supervisor, f"?next={next_}")
    assert response.status_code == 302
    assert response.headers["Location"] == "/supervisor/alerts"
    assert "forged" not in str(response.headers)


def test_sign_in_with_a_next_on_this_site_goes_there(app: Flask, supervisor: Staff) -> None:
    response = sign_in(app.test_client(), supervisor, "?next=%2Fsupervisor%2Fcustomers%3Fq%3Dab")
    assert response.status_code == 302
    assert response.headers["Location"] == "/supervisor/customers?q=ab"


def test_a_reference_holding_a_slash_opens_when_url_encoded(
    app: Flask, client: FlaskClient, supervisor: Staff
) -> None:
    body = {**NEW, "reference": "HMS/2024/7"}
    assert (
        client.post("/api/v1/customers", json=body, headers=supervisor.headers).status_code == 201
    )
    for path in ("HMS%2F2024%2F7", "HMS/2024/7"):
        shown = client.get(f"/api/v1/customers/{path}", headers=supervisor.headers)
        assert shown.status_code == 200 and shown.get_json()["reference"] == "HMS/2024/7"
    patched = client.patch(
        "/api/v1/customers/HMS%2F2024%2F7", json={"name": "Pat Renamed"}, headers=supervisor.headers
    )
    assert patched.status_code == 200 and patched.get_json()["name"] == "Pat Renamed"
    restricted = client.post(
        "/api/v1/customers/HMS%2F2024%2F7/restrictions",
        json={"kind": "warning", "reason": "Shouted at staff", "notice_sent_on": str(date.today())},
        headers=supervisor.headers,
    )
    assert restricted.status_code == 201, restricted.get_data(as_text=True)
    assert rows(app, Restriction) == 1
    assert client.get("/api/v1/customers/HMS%2F2024", headers=supervisor.headers).status_code == 404
    pages = app.test_client()
    assert sign_in(pages, supervisor).status_code == 302
    listing = pages.get("/supervisor/customers").get_data(as_text=True)
    link = re.search(r'href="(/supervisor/customers/HMS[^"]*)"', listing)
    assert link is not None
    for url in (link[1], "/supervisor/customers/HMS%2F2024%2F7"):
        page = pages.get(url)
        assert page.status_code == 200 and "Pat Renamed" in page.get_data(as_text=True), url


@pytest.mark.parametrize(
    "call_sid",
    [
        "CA" + "0" * 32 + "\nFORGED callguard.voice: a line that never happened",
        "not a sid\r\nFORGED callguard.voice: a line that never happened",
        "CA" + "0" * 32 + "\n",
    ],
    ids=["sid-then-a-line", "crlf", "trailing-newline"],
)
def test_a_signed_call_sid_that_is_not_one_is_never_logged_raw(
    twilio: Any, caplog: pytest.LogCaptureFixture, call_sid: str
) -> None:
    caplog.set_level(logging.DEBUG)
    response = twilio.incoming("+447400100001", CallSid=call_sid)
    assert response.status_code == 200 and b"<Response>" in response.data
    assert b"<Conference" not in response.data  # not taken for a CallSid: the default route
    assert b"<Dial" in response.data
    logged = [r.getMessage() for r in caplog.records] + [caplog.text]
    assert all("\nFORGED" not in text and "\r" not in text for text in logged)
    assert any("not a CallSid" in r.getMessage() for r in caplog.records)
    for record in caplog.records:
        assert call_sid not in record.getMessage(), record.getMessage()
    assert status_event(twilio, call_sid, "completed", 1).status_code < 500


# --- the CSV import --------------------------------------------------------------------------


def csv_bytes(*rows: bytes) -> bytes:
    return b"reference,name,phone_numbers,language\n" + b"".join(r + b"\n" for r in rows)


@pytest.fixture
def csv_file(tmp_path: Path) -> Iterator[Callable[[bytes], Path]]:
    def write(content: bytes) -> Path:
        path = tmp_path / "customers.csv"
        path.write_bytes(content)
        return path

    yield write


def test_import_reports_an_oversize_field_and_bad_utf8_by_line_and_carries_on(
    app: Flask, runner: Any, csv_file: Callable[[bytes], Path]
) -> None:
    big = b"x" * 200_000
    content = csv_bytes(
        b"HMS-1,Ann Able,+447400100001,en-GB",  # line 2
        b"HMS-2," + big + b",+447400100002,en-GB",  # line 3: a field over 128 KB
        b"HMS-3,Bob Baker,+447400100003,en-GB",  # line 4
        b"HMS-4,Caf\xe9 Owner,+447400100004,en-GB",  # line 5: Latin-1, not UTF-8
        b'HMS-5,"' + big + b'\nHMS-6,Hidden Row,+447400100006,en-GB\nrest",+447400100005,',
        # lines 6 to 8: a quoted field over the limit; the row inside it is no row
        b"HMS-7,D\xc3\xa9sir\xc3\xa9e Dale,+447400100007,cy-GB",  # line 9: UTF-8, kept
        b"HMS-8,Eve \xff\xfe,+447400100008,",  # line 10: not UTF-8
    )
    result = runner.invoke(main, ["import", "customers", str(csv_file(content))])
    assert result.exit_code == 0, result.output
    assert result.exception is None
    assert "line 3: a field is longer than 131072 characters" in result.output
    assert "line 5: the row is not valid UTF-8" in result.output
    assert "line 6: a field is longer than 131072 characters" in result.output
    assert "line 10: the row is not valid UTF-8" in result.output
    assert "Traceback" not in result.output
    assert "imported 3, updated 0, unchanged 0, skipped 4" in result.output
    with database(app).sessions() as sess:
        names = {ref: name for ref, name in sess.execute(select(Customer.reference, Customer.name))}
    assert names == {"HMS-1": "Ann Able", "HMS-3": "Bob Baker", "HMS-7": "D\u00e9sir\u00e9e Dale"}


def test_import_reports_an_overlong_line_and_reads_on(
    app: Flask, runner: Any, csv_file: Callable[[bytes], Path]
) -> None:
    content = csv_bytes(
        b"HMS-1," + b"a," * 600_000 + b"+447400100001,en-GB",  # line 2: 1.2 MB, short fields
        b"HMS-2,Ann Able,+447400100002,en-GB",
    )
    result = runner.invoke(main, ["import", "customers", str(csv_file(content))])
    assert result.exit_code == 0, result.output
    assert "line 2: the line is longer than 1048576 characters" in result.output
    assert "imported 1, updated 0, unchanged 0, skipped 1" in result.output


def test_a_stream_read_strictly_stops_at_bad_utf8_saying_where(app: Flask) -> None:
    """A caller of import_customers that opened the file strictly (the CLI does not) gets a
    DomainError, not a UnicodeDecodeError from deep inside the csv module."""
    stream = io.TextIOWrapper(
        io.BytesIO(csv_bytes(b"HMS-1,Ann,+447400100001,", b"HMS-2,\xff,+447400100002,")),
        encoding="utf-8",
        newline="",
    )
    with (
        database(app).sessions() as sess,
        pytest.raises(DomainError, match="not valid UTF-8 at or after line"),
    ):
        import_customers(sess, stream, Actor(None, "test"))
