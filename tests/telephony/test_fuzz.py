"""No input makes a 5xx: Hypothesis throws odd paths, bodies, forms and query strings at every
API endpoint and webhook (signed, as Twilio would), and the answer is always below 500; the
inbound-call webhook always answers TwiML."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.slow

FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=80
) | st.sampled_from(
    ["", "\x00", "a\x00b", "9" * 30, "-1", "2026-13-45", "9999-12-31", "CA" + "0" * 32]
)
scalars = st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | text
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)
KEYS = [
    "reference",
    "name",
    "phone_numbers",
    "language",
    "adjustments",
    "kind",
    "reason",
    "spoc",
    "windows",
    "max_calls_per_week",
    "representative",
    "issue",
    "notice_sent_on",
    "lodged_on",
]
# nearly right bodies reach the deeper checks: a valid template with fields replaced at random
numbers = st.lists(st.sampled_from(["+447400100001", "07400 100002", "+441332123456"]), max_size=3)
templates = st.fixed_dictionaries(
    {
        "reference": st.sampled_from(["HMS-1", "HMS-2"]) | text,
        "name": st.just("Pat") | text,
        "phone_numbers": numbers | json_values,
        "kind": st.sampled_from(
            ["warning", "spoc", "written_only", "limited_contact", "representative_only"]
        )
        | text,
        "reason": st.just("A reason") | text,
    },
    optional={
        "windows": st.just([{"days": ["mon"], "start": "10:00", "end": "12:00"}]) | json_values,
        "max_calls_per_week": json_values,
        "spoc": st.just("+441332000555") | text,
        "representative": text,
        "lodged_on": st.sampled_from(["2026-11-20", "9999-12-31", "0001-01-01"]) | json_values,
        "notice_sent_on": json_values,
        "adjustments": json_values,
        "language": st.sampled_from(["en-GB", "cy-GB"]) | text,
    },
)
bodies = (
    st.dictionaries(st.sampled_from(KEYS) | text, json_values, max_size=8) | json_values | templates
)
ids = (
    st.integers(min_value=-(2**40), max_value=2**70).map(str)
    | st.integers(min_value=1, max_value=5).map(str)
    | st.sampled_from(["HMS-1", "HMS-2", "CA" + "c" * 32])
    | text.map(lambda t: quote(t, safe=""))
)
API = [
    ("POST", "/api/v1/customers"),
    ("GET", "/api/v1/customers/{id}"),
    ("PATCH", "/api/v1/customers/{id}"),
    ("POST", "/api/v1/customers/{id}/restrictions"),
    ("POST", "/api/v1/restrictions/{id}/end"),
    ("POST", "/api/v1/restrictions/{id}/appeal"),
    ("GET", "/api/v1/alerts?status={id}&rule={id}&customer={id}"),
    ("GET", "/api/v1/alerts/{id}"),
    ("POST", "/api/v1/alerts/{id}/dismiss"),
    ("POST", "/api/v1/alerts/{id}/escalate"),
    ("GET", "/api/v1/calls/active?mine={id}"),
    ("POST", "/api/v1/calls/{id}/warn"),
    ("POST", "/api/v1/calls/{id}/end"),
]
WEBHOOKS = [
    "/twilio/voice/status",
    "/twilio/voice/emergency?call_sid={id}&msg={id}&replay={id}",
    "/twilio/voice/hold?call_sid={id}&kind={id}&since={id}&ring={id}&n={id}",
    "/twilio/voice/participant?call_sid={id}&kind={id}",
    "/twilio/voice/voicemail?call_sid={id}",
    "/twilio/conference/events",
    "/twilio/conference/announce/{id}",
    "/twilio/taskrouter/events",
]
FIELDS = [
    "CallSid",
    "From",
    "To",
    "CallStatus",
    "SequenceNumber",
    "CallDuration",
    "Direction",
    "ParentCallSid",
    "Digits",
    "FriendlyName",
    "ConferenceSid",
    "StatusCallbackEvent",
    "CallerName",
    "RecordingUrl",
    "EventType",
    "Sid",
    "TaskAttributes",
    "WorkerAttributes",
    "Timestamp",
]
forms = st.dictionaries(st.sampled_from(FIELDS), text, max_size=10)


@FUZZ
@given(endpoint=st.sampled_from(API), ident=ids, body=bodies, raw=st.booleans())
def test_the_api_never_answers_5xx(
    client: Any, supervisor: Any, endpoint: tuple[str, str], ident: str, body: Any, raw: bool
) -> None:
    method, path = endpoint
    url = path.replace("{id}", ident)
    if raw:  # not JSON at all, or JSON sent as something else
        response = client.open(url, method=method, data=str(body), headers=supervisor.headers)
    else:
        response = client.open(url, method=method, json=body, headers=supervisor.headers)
    assert response.status_code < 500, (method, url, body, response.get_data(as_text=True))
    if response.status_code >= 400:
        assert "error" in response.get_json(), response.get_data(as_text=True)


@FUZZ
@given(path=st.sampled_from(WEBHOOKS), ident=ids, form=forms)
def test_the_webhooks_never_answer_5xx(
    twilio: Any, path: str, ident: str, form: dict[str, str]
) -> None:
    url = path.replace("{id}", ident)
    response = twilio.post(url, form)
    assert response.status_code < 500, (url, form, response.get_data(as_text=True))


@FUZZ
@given(form=forms)
def test_the_inbound_call_is_always_answered_with_twiml(twilio: Any, form: dict[str, str]) -> None:
    response = twilio.post("/twilio/voice/incoming", form)
    assert response.status_code == 200 and response.mimetype == "text/xml"
    assert b"<Response>" in response.data
