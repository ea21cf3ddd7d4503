"""``callguard simulate-call``: play Twilio against a running callguard and say what is heard."""

from __future__ import annotations

import secrets
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from xml.etree import ElementTree

from flask import Flask
from twilio.request_validator import RequestValidator

from telephony.config import current_settings
from telephony.twiml import describe


class SimulationError(RuntimeError):
    pass


def _post(public: str, target: str, path: str, params: dict[str, str], token: str) -> str:
    signature = RequestValidator(token).compute_signature(public + path, params)
    request = urllib.request.Request(
        target + path,
        data=urllib.parse.urlencode(params).encode(),
        headers={
            "X-Twilio-Signature": signature,
            "Content-Type": "application/x-www-form-urlencoded",
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310 (our server)
            return str(response.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        raise SimulationError(
            f"the server answered {exc.code}: {exc.read().decode()[:200]}"
        ) from exc
    except OSError as exc:
        raise SimulationError(f"could not reach {target}: {exc}") from exc


def simulate(
    app: Flask,
    from_number: str,
    *,
    url: str | None = None,
    to: str | None = None,
    digits: str | None = None,
) -> Iterator[str]:
    token = app.config.get("TWILIO_AUTH_TOKEN")
    sid = app.config.get("TWILIO_ACCOUNT_SID") or "AC" + "0" * 32
    if not token:
        raise SimulationError("set TWILIO_AUTH_TOKEN to the one the server uses")
    public = app.config["PUBLIC_BASE_URL"].rstrip("/")
    target = (url or public).rstrip("/")
    called = to or current_settings().caller_id
    call_sid = "CA" + secrets.token_hex(16)
    params = {
        "AccountSid": sid,
        "ApiVersion": "2010-04-01",
        "CallSid": call_sid,
        "CallStatus": "ringing",
        "Direction": "inbound",
        "From": from_number,
        "To": called,
        "Caller": from_number,
        "Called": called,
        "FromCountry": "GB",
        "ToCountry": "GB",
    }
    xml = _post(public, target, "/twilio/voice/incoming", params, token)
    yield f"call {call_sid} from {from_number}:"
    yield from (f"  {line}" for line in describe(xml))
    if digits:
        gather = ElementTree.fromstring(xml).find(".//Gather")
        if gather is None:
            yield "  (no key press is asked for on this call)"
            return
        action = gather.get("action", "")
        path = urllib.parse.urlsplit(action)
        press = {**params, "Digits": digits, "CallStatus": "in-progress"}
        pressed = _post(
            public, target, path.path + (f"?{path.query}" if path.query else ""), press, token
        )
        yield f"  [caller presses {digits}]"
        yield from (f"  {line}" for line in describe(pressed))
