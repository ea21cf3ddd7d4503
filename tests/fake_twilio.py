"""Twilio's REST API as a real HTTP server on localhost: it records every request and answers as
Twilio does, so tests assert the exact requests callguard makes. Only Twilio is faked, and only at
the HTTP layer."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from werkzeug.wrappers import Request, Response

ACCOUNT_SID = "AC" + "0" * 31 + "1"


@dataclass
class TwilioRequest:
    method: str
    path: str
    form: dict[str, list[str]]
    answer: dict[str, Any] | None = None  # what the fake answered (a created leg's call_sid …)
    at: float = field(default_factory=time.time)  # when it arrived
    query: dict[str, list[str]] = field(default_factory=dict)  # the URL's query (a GET's filter)

    def param(self, name: str) -> str | None:
        values = self.form.get(name)
        return values[0] if values else None


@dataclass
class FakeTwilio:
    """Twilio's REST API as a real HTTP server on localhost: records requests, answers like Twilio.

    ``fail(path_contains, status, message)`` makes matching requests fail; ``delay`` slows every
    answer (to provoke the client's timeout); ``before_answering(path_contains, fn)`` runs ``fn``
    when a matching request arrives, before it is answered (Twilio's callback racing its answer).
    """

    url: str = ""
    requests: list[TwilioRequest] = field(default_factory=list)
    failures: list[tuple[str, int, str, int | None]] = field(default_factory=list)
    delay: float = 0.0
    _counter: int = 0
    # The account's IncomingPhoneNumbers by E.164 (``add_number``) and TaskRouter workspaces by
    # SID (made blank when first asked for): a POST updates them, as Twilio does.
    numbers: dict[str, dict[str, Any]] = field(default_factory=dict)
    workspaces: dict[str, dict[str, Any]] = field(default_factory=dict)
    hooks: list[tuple[str, Callable[[TwilioRequest], None]]] = field(default_factory=list)

    def reset(self) -> None:
        self.hooks.clear()
        self.requests.clear()
        self.numbers.clear()
        self.workspaces.clear()
        self.failures.clear()
        self.delay = 0.0

    def fail(
        self,
        path_contains: str,
        status: int = 500,
        message: str = "Internal error",
        code: int | None = None,
    ) -> None:
        """Requests whose path contains ``path_contains`` fail with ``status`` and Twilio's
        error ``code`` (for example 21220, the call is not in progress)."""
        self.failures.append((path_contains, status, message, code))

    def before_answering(self, path_contains: str, fn: Callable[[TwilioRequest], None]) -> None:
        self.hooks.append((path_contains, fn))

    def _sid(self, prefix: str) -> str:
        """A new SID, never one the tests' webhooks use (theirs start with zeros)."""
        self._counter += 1
        return f"{prefix}fa{self._counter:030x}"

    def wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        body = request.get_data(as_text=True)
        record = TwilioRequest(request.method, request.path, parse_qs(body, keep_blank_values=True))
        record.query = parse_qs(request.query_string.decode(), keep_blank_values=True)
        self.requests.append(record)
        if self.delay:
            time.sleep(self.delay)
        for needle, hook in list(self.hooks):
            if needle in request.path:
                hook(record)
        for needle, status, message, code in self.failures:
            if needle in request.path:
                payload = {
                    "code": code or 20000 + status,
                    "message": message,
                    "status": status,
                    "more_info": "https://www.twilio.com/docs/errors",
                }
                return Response(json.dumps(payload), status=status, mimetype="application/json")(
                    environ, start_response
                )
        record.answer = self._answer(record)
        return Response(
            json.dumps(record.answer),
            status=201 if request.method == "POST" else 200,
            mimetype="application/json",
        )(environ, start_response)

    def _answer(self, req: TwilioRequest) -> dict[str, Any]:
        parts = req.path.strip("/").split("/")
        if "IncomingPhoneNumbers" in parts or "IncomingPhoneNumbers.json" in parts:
            return self._number_answer(req, parts)
        if len(parts) == 3 and parts[:2] == ["v1", "Workspaces"]:
            return self._workspace_answer(req, parts[2])
        base: dict[str, Any] = {
            "account_sid": ACCOUNT_SID,
            "date_created": None,
            "date_updated": None,
            "uri": req.path,
        }
        if parts[-1] == "Participants.json":
            conference = parts[-2]
            return base | {
                "call_sid": self._sid("CA"),
                "conference_sid": conference,
                "label": req.param("Label"),
                "status": "queued",
                "muted": False,
                "hold": False,
            }
        if len(parts) >= 2 and parts[-2] == "Conferences":
            return base | {
                "sid": parts[-1].removesuffix(".json"),
                "status": "in-progress",
                "friendly_name": "cg",
            }
        if "Participants" in parts:
            return base | {
                "call_sid": parts[-1].removesuffix(".json"),
                "conference_sid": parts[-3],
                "status": "connected",
            }
        if parts[-1] == "Calls.json":  # a call created (a person rung for a waiting caller)
            return base | {
                "sid": self._sid("CA"),
                "to": req.param("To"),
                "from": req.param("From"),
                "status": "queued",
            }
        if len(parts) >= 2 and parts[-2] == "Calls":
            return base | {
                "sid": parts[-1].removesuffix(".json"),
                "status": req.param("Status") or "in-progress",
            }
        return base | {"sid": self._sid("XX")}

    def posts(self, path_contains: str = "") -> list[TwilioRequest]:
        return [r for r in self.requests if r.method == "POST" and path_contains in r.path]

    def dial_outs(self, caller_sid: str | None = None) -> list[TwilioRequest]:
        """The people rung for waiting callers (calls created with a whisper URL), oldest first;
        with ``caller_sid``, only those rung for that caller."""
        return [
            r
            for r in self.posts("/Calls.json")
            if r.path.endswith("/Calls.json")
            and (caller_sid is None or f"call_sid={caller_sid}" in (r.param("Url") or ""))
        ]

    # --- IncomingPhoneNumbers and TaskRouter workspaces (``callguard twilio configure``) -------

    def add_number(self, e164: str, **fields: Any) -> dict[str, Any]:
        """One of the account's numbers (sid PN…); ``fields`` (Twilio's JSON names: voice_url,
        voice_method, status_callback …) set what it holds now. Returns it (updated in place)."""
        number: dict[str, Any] = {
            "account_sid": ACCOUNT_SID,
            "sid": self._sid("PN"),
            "phone_number": e164,
            "friendly_name": e164,
            "voice_url": None,
            "voice_method": "POST",
            "voice_fallback_url": None,
            "voice_fallback_method": "POST",
            "status_callback": None,
            "status_callback_method": "POST",
            "voice_application_sid": None,
            "trunk_sid": None,
        } | fields
        self.numbers[e164] = number
        return number

    def workspace(self, sid: str, **fields: Any) -> dict[str, Any]:
        """The TaskRouter workspace ``sid`` (made blank when missing), ``fields`` set on it."""
        found = self.workspaces.setdefault(
            sid,
            {
                "account_sid": ACCOUNT_SID,
                "sid": sid,
                "friendly_name": "callguard",
                "event_callback_url": None,
                "events_filter": None,
                "multi_task_enabled": True,
                "prioritize_queue_order": "FIFO",
                "url": f"https://taskrouter.twilio.com/v1/Workspaces/{sid}",
                "links": {},
            },
        )
        found.update(fields)
        return found

    @staticmethod
    def _updates(req: TwilioRequest) -> dict[str, str]:
        """A POST's form as Twilio's JSON names (VoiceUrl -> voice_url)."""
        return {
            re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower(): values[0]
            for name, values in req.form.items()
        }

    def _number_answer(self, req: TwilioRequest, parts: list[str]) -> dict[str, Any]:
        if parts[-1] == "IncomingPhoneNumbers.json":  # the list, filtered as Twilio does
            wanted = (req.query.get("PhoneNumber") or [""])[0]
            found = [n for e164, n in self.numbers.items() if wanted in e164]
            return {
                "incoming_phone_numbers": found,
                "page": 0,
                "page_size": 50,
                "start": 0,
                "end": max(len(found) - 1, 0),
                "first_page_uri": req.path,
                "next_page_uri": None,
                "previous_page_uri": None,
                "uri": req.path,
            }
        sid = parts[-1].removesuffix(".json")
        number = next((n for n in self.numbers.values() if n["sid"] == sid), None)
        if number is None:  # not one of the account's: answered, kept nowhere
            number = {"account_sid": ACCOUNT_SID, "sid": sid}
        if req.method == "POST":
            number.update(self._updates(req))
        return dict(number)

    def _workspace_answer(self, req: TwilioRequest, sid: str) -> dict[str, Any]:
        found = self.workspace(sid)
        if req.method == "POST":
            found.update(self._updates(req))
        return dict(found)
