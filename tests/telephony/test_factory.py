"""The app factory and the Twilio signature check that guards every webhook."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import pytest
from flask import Flask
from twilio.request_validator import RequestValidator

from telephony import create_app
from telephony.config import ConfigurationError
from tests.conftest import AUTH_TOKEN

pytestmark = pytest.mark.usefixtures("app")


def test_factory_reads_test_config(app: Flask) -> None:
    assert app.testing
    assert app.config["PUBLIC_BASE_URL"] == "https://calls.example.org"


def test_factory_requires_secret_key_outside_zero_setup(
    monkeypatch: pytest.MonkeyPatch, app_config: dict[str, Any]
) -> None:
    monkeypatch.setenv("DATABASE_URL", app_config["DATABASE_URL"])
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app({"DATABASE_URL": app_config["DATABASE_URL"]})


def test_the_threads_reserved_for_webhooks_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, app_config: dict[str, Any]
) -> None:
    """CALL_PATH_RESERVED_THREADS, as the README documents it, not only its default."""
    monkeypatch.setenv("WEB_THREADS", "12")
    monkeypatch.setenv("CALL_PATH_RESERVED_THREADS", "5")
    made = create_app(app_config)
    assert (made.config["WEB_THREADS"], made.config["CALL_PATH_RESERVED_THREADS"]) == (12, 5)


def test_health_check(client: Any) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_webhook_without_signature_is_refused(client: Any, twilio: Any) -> None:
    params = twilio.call_params("+447400100001")
    response = client.post("/twilio/voice/incoming", data=params)
    assert response.status_code == 403
    assert b"X-Twilio-Signature" in response.data


def test_webhook_with_wrong_signature_is_refused(twilio: Any) -> None:
    params = twilio.call_params("+447400100001")
    forged = twilio.sign("https://calls.example.org/twilio/voice/incoming", params, token="wrong")
    assert twilio.post("/twilio/voice/incoming", params, signature=forged).status_code == 403


def test_signature_over_tampered_parameters_is_refused(twilio: Any) -> None:
    params = twilio.call_params("+447400100001")
    signature = twilio.sign("https://calls.example.org/twilio/voice/incoming", params)
    params["From"] = "+447700900999"
    assert twilio.post("/twilio/voice/incoming", params, signature=signature).status_code == 403


def test_signature_is_checked_against_the_public_url_not_the_internal_one(twilio: Any) -> None:
    """Behind a TLS-terminating proxy the app sees http://localhost; Twilio signed https://…"""
    params = twilio.call_params("+447400100001")
    internal = twilio.sign("http://localhost/twilio/voice/incoming", params)
    assert twilio.post("/twilio/voice/incoming", params, signature=internal).status_code == 403
    assert twilio.post("/twilio/voice/incoming", params).status_code == 200


def test_signature_with_default_port_is_accepted(twilio: Any) -> None:
    params = twilio.call_params("+447400100001")
    with_port = twilio.sign("https://calls.example.org:443/twilio/voice/incoming", params)
    assert twilio.post("/twilio/voice/incoming", params, signature=with_port).status_code == 200


INCOMING = "https://calls.example.org/twilio/voice/incoming"


def sha256_signature(secret: str, url: str, params: dict[str, str]) -> str:
    """HMAC-SHA256 over the URL and the sorted parameters, as Twilio signs with a shared key."""
    payload = url + "".join(k + params[k] for k in sorted(params))
    digest = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


@pytest.fixture
def sha256_keys(app: Flask) -> dict[str, str]:
    """TWILIO_WEBHOOK_ALGORITHM=HMAC-SHA256 with one shared key (put back after the test)."""
    keys = {"wk_1": "shared-secret"}
    app.config["TWILIO_WEBHOOK_SIGNING_KEYS"] = keys
    app.config["TWILIO_WEBHOOK_ALGORITHM"] = "HMAC_SHA256"
    return keys


@pytest.mark.usefixtures("sha256_keys")
def test_hmac_sha256_shared_key_signatures_are_accepted(twilio: Any) -> None:
    params = twilio.call_params("+447400100001")
    signature = sha256_signature("shared-secret", INCOMING, params)
    header = {"X-Twilio-Webhooks-Signature-Settings": "key=wk_1,algorithm=HMAC_SHA256"}
    assert (
        twilio.post(
            "/twilio/voice/incoming", params, signature=signature, headers=header
        ).status_code
        == 200
    )
    unknown = {"X-Twilio-Webhooks-Signature-Settings": "key=wk_9,algorithm=HMAC_SHA256"}
    assert (
        twilio.post(
            "/twilio/voice/incoming", params, signature=signature, headers=unknown
        ).status_code
        == 403
    )


@pytest.mark.usefixtures("sha256_keys")
def test_the_settings_header_cannot_choose_another_algorithm(twilio: Any) -> None:
    """Signed with HMAC-SHA256 as configured, but the unsigned settings header claims another
    algorithm: refused, whatever the signature."""
    params = twilio.call_params("+447400100001")
    signature = sha256_signature("shared-secret", INCOMING, params)
    for claim in ("HMAC_SHA1", "HMAC_MD5", "none"):
        header = {"X-Twilio-Webhooks-Signature-Settings": f"key=wk_1,algorithm={claim}"}
        response = twilio.post(
            "/twilio/voice/incoming", params, signature=signature, headers=header
        )
        assert response.status_code == 403, claim
    # nor can HMAC-SHA1 over the shared key (or the auth token) pass for the configured SHA-256
    sha1 = twilio.sign(INCOMING, params, token="shared-secret")
    header = {"X-Twilio-Webhooks-Signature-Settings": "key=wk_1,algorithm=HMAC_SHA1"}
    refused = twilio.post("/twilio/voice/incoming", params, signature=sha1, headers=header)
    assert refused.status_code == 403
    assert twilio.post("/twilio/voice/incoming", params).status_code == 403


def test_with_hmac_sha1_configured_a_sha256_claim_is_refused(app: Flask, twilio: Any) -> None:
    """The default (HMAC-SHA1 with the auth token): a request whose header claims HMAC-SHA256
    is not checked with SHA-256 (nor with any key it names), however it is signed."""
    app.config["TWILIO_WEBHOOK_SIGNING_KEYS"] = {"wk_1": "shared-secret"}  # never consulted
    assert app.config["TWILIO_WEBHOOK_ALGORITHM"] == "HMAC_SHA1"
    params = twilio.call_params("+447400100001")
    header = {"X-Twilio-Webhooks-Signature-Settings": "key=wk_1,algorithm=HMAC_SHA256"}
    for signature in (
        sha256_signature("shared-secret", INCOMING, params),
        sha256_signature(AUTH_TOKEN, INCOMING, params),
        twilio.sign(INCOMING, params),
    ):
        response = twilio.post(
            "/twilio/voice/incoming", params, signature=signature, headers=header
        )
        assert response.status_code == 403
    assert twilio.post("/twilio/voice/incoming", params).status_code == 200  # SHA-1 as configured


def json_webhook(client: Any, body: bytes, body_hash: str, token: str = AUTH_TOKEN) -> Any:
    """A JSON-bodied webhook: Twilio signs the URL, whose bodySHA256 is the body's hash."""
    path = f"/twilio/voice/status?bodySHA256={body_hash}"
    signature = RequestValidator(token).compute_signature(f"https://calls.example.org{path}", {})
    return client.post(
        path,
        data=body,
        content_type="application/json",
        headers={"X-Twilio-Signature": signature},
    )


def test_a_wrong_body_sha256_is_refused(client: Any) -> None:
    body = b'{"CallSid": "CA00000000000000000000000000000001", "CallStatus": "completed"}'
    other = hashlib.sha256(b'{"CallSid": "CA0", "CallStatus": "ringing"}').hexdigest()
    assert json_webhook(client, body, other).status_code == 403
    # the same URL and signature with the body it names passes the check (and reaches the view)
    assert json_webhook(client, body, hashlib.sha256(body).hexdigest()).status_code != 403


def test_the_webhook_algorithm_is_configuration(
    monkeypatch: pytest.MonkeyPatch, app_config: dict[str, Any]
) -> None:
    monkeypatch.setenv("TWILIO_WEBHOOK_ALGORITHM", "hmac-sha256")
    monkeypatch.setenv("TWILIO_WEBHOOK_SIGNING_KEYS", "wk_1=shared-secret")
    assert create_app(app_config).config["TWILIO_WEBHOOK_ALGORITHM"] == "HMAC_SHA256"
    monkeypatch.delenv("TWILIO_WEBHOOK_SIGNING_KEYS")
    with pytest.raises(ConfigurationError, match="needs TWILIO_WEBHOOK_SIGNING_KEYS"):
        create_app(app_config)
    monkeypatch.setenv("TWILIO_WEBHOOK_ALGORITHM", "HMAC-MD5")
    with pytest.raises(ConfigurationError, match="HMAC-SHA1 or HMAC-SHA256"):
        create_app(app_config)
    monkeypatch.delenv("TWILIO_WEBHOOK_ALGORITHM")
    monkeypatch.setenv("TWILIO_WEBHOOK_SIGNING_KEYS", "wk_1=shared-secret")
    with pytest.raises(ConfigurationError, match="set TWILIO_WEBHOOK_ALGORITHM=HMAC-SHA256"):
        create_app(app_config)


def test_webhooks_are_refused_until_twilio_is_configured(app: Flask, twilio: Any) -> None:
    app.config["TWILIO_AUTH_TOKEN"] = None
    assert twilio.incoming("+447400100001").status_code == 403


def test_webhooks_answer_post_only(client: Any) -> None:
    assert client.get("/twilio/voice/incoming").status_code == 405
