"""The app factory and the Twilio signature check that guards every webhook."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import pytest
from flask import Flask

from telephony import create_app

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


def test_hmac_sha256_shared_key_signatures_are_accepted(app: Flask, twilio: Any) -> None:
    app.config["TWILIO_WEBHOOK_SIGNING_KEYS"] = {"wk_1": "shared-secret"}
    params = twilio.call_params("+447400100001")
    url = "https://calls.example.org/twilio/voice/incoming"
    payload = url + "".join(k + params[k] for k in sorted(params))
    digest = hmac.new(b"shared-secret", payload.encode(), hashlib.sha256).digest()
    signature = base64.b64encode(digest).decode()
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


def test_webhooks_are_refused_until_twilio_is_configured(app: Flask, twilio: Any) -> None:
    app.config["TWILIO_AUTH_TOKEN"] = None
    assert twilio.incoming("+447400100001").status_code == 403


def test_webhooks_answer_post_only(client: Any) -> None:
    assert client.get("/twilio/voice/incoming").status_code == 405
