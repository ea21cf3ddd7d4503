"""The JSON API against its own OpenAPI document, fuzzed by schemathesis with every check it
has: no server error, every answer's status, content type, headers and body as documented,
valid data accepted and invalid data refused, undeclared methods refused with ``Allow``, auth
not ignored. An admin's token drives it, over HTTP on loopback (the tests' live server).

Two settings say what the document cannot: NUL characters are refused everywhere (PostgreSQL
cannot store them; a documented 400), and a request the schema allows may still be refused by a
business rule with a documented 422 (a number phonenumbers cannot read, a date in the future)."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from telephony.api.openapi import document

pytestmark = pytest.mark.slow

EVERY_CHECK = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
    checks.positive_data_acceptance,
    checks.missing_required_header,
    checks.unsupported_method,
    checks.use_after_free,
    checks.ensure_resource_availability,
    checks.ignored_auth,
]

schema = schemathesis.openapi.from_dict(document("http://localhost"))
schema.config.generation.update(allow_x00=False)
schema.config.checks.positive_data_acceptance.expected_statuses = [
    "2xx",
    "401",
    "403",
    "404",
    "409",
    "422",
]
# a request that breaks the schema is rejected: by what it breaks, or (a generated body past the
# API's limit) as too large before it is read
schema.config.checks.negative_data_rejection.expected_statuses = [
    "400",
    "401",
    "403",
    "404",
    "405",
    "406",
    "409",
    "413",
    "415",
    "422",
]


@pytest.fixture
def admin(make_staff: Any) -> Any:
    return make_staff("admin", "fuzz.admin")


@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_the_api_answers_every_generated_request_as_documented(
    case: Any, live_server: str, admin: Any
) -> None:
    case.call_and_validate(base_url=live_server, headers=admin.headers, checks=EVERY_CHECK)
