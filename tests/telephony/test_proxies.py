"""Behind proxies: TRUSTED_PROXY_HOPS proxies' X-Forwarded-For, -Proto and -Host are believed
(werkzeug's ProxyFix), so the sign-in limits count each real client; with 0 (the default) the
headers change nothing, so a client cannot make itself someone new by sending one."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, request
from flask.testing import FlaskClient

from telephony.auth import SIGN_IN_PER_ADDRESS
from tests.conftest import TwilioWebhooks

PROXY = "10.0.0.1"  # the load balancer's address: every request arrives from it
PER_ADDRESS = int(SIGN_IN_PER_ADDRESS.split()[0])  # "20 per minute"


def attempt(client: FlaskClient, n: int, forwarded_for: str, remote: str = PROXY) -> int:
    """A wrong sign-in under a name of its own (so only the per-address limit can refuse it)."""
    response = client.post(
        "/sign-in",
        data={"name": f"nobody-{n}", "password": "not the password"},
        headers={"X-Forwarded-For": forwarded_for},
        environ_base={"REMOTE_ADDR": remote},
    )
    return response.status_code


def test_clients_behind_one_proxy_are_limited_each_on_their_own(
    app_with: Callable[..., Flask],
) -> None:
    behind = app_with(TRUSTED_PROXY_HOPS=1, WTF_CSRF_ENABLED=False).test_client()
    # the proxy appends the address it saw; what the client sent before it is not believed
    statuses = [attempt(behind, n, f"198.51.100.{n}, 203.0.113.5") for n in range(PER_ADDRESS)]
    assert statuses == [401] * PER_ADDRESS
    assert attempt(behind, 100, "192.0.2.77, 203.0.113.5") == 429, "client A is over its limit"
    assert attempt(behind, 101, "203.0.113.6") == 401, "client B, same proxy, is not"
    assert attempt(behind, 102, "203.0.113.5") == 429


def test_with_no_trusted_proxy_x_forwarded_for_changes_nothing(
    app_with: Callable[..., Flask],
) -> None:
    direct = app_with(WTF_CSRF_ENABLED=False).test_client()  # TRUSTED_PROXY_HOPS: 0
    statuses = [attempt(direct, n, f"203.0.113.{n}") for n in range(PER_ADDRESS)]
    assert statuses == [401] * PER_ADDRESS
    assert attempt(direct, 100, "203.0.113.200") == 429, "a new X-Forwarded-For is no escape"
    assert attempt(direct, 101, "203.0.113.201", remote="10.0.0.2") == 401


def test_webhooks_are_checked_against_the_public_url_whatever_the_proxy_says(
    app_with: Callable[..., Flask],
) -> None:
    """The signature is over PUBLIC_BASE_URL, never the host or scheme a header names."""
    twilio = TwilioWebhooks(app_with(TRUSTED_PROXY_HOPS=1).test_client())
    params = twilio.call_params("+447400100001")
    for host in ("calls.example.org", "attacker.example"):
        headers = {"X-Forwarded-For": "54.0.0.1", "X-Forwarded-Proto": "http"}
        headers["X-Forwarded-Host"] = host
        response = twilio.post("/twilio/voice/incoming", params, headers=headers)
        assert response.status_code == 200, host


def seen_through(app: Flask) -> dict[str, str]:
    """The client address and URL a request from behind the proxy is taken to have."""
    seen: dict[str, str] = {}

    @app.get("/_seen")
    def _seen() -> dict[str, str]:
        seen.update(addr=request.remote_addr or "", url=request.url_root)
        return seen

    headers = {
        "X-Forwarded-For": "203.0.113.5",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "calls.example.org",
    }
    app.test_client().get("/_seen", headers=headers, environ_base={"REMOTE_ADDR": PROXY})
    return seen


def test_the_forwarded_client_scheme_and_host_are_believed_from_trusted_hops_only(
    app_with: Callable[..., Flask],
) -> None:
    assert seen_through(app_with(TRUSTED_PROXY_HOPS=1)) == {
        "addr": "203.0.113.5",
        "url": "https://calls.example.org/",
    }
    assert seen_through(app_with()) == {"addr": PROXY, "url": "http://localhost/"}
