"""What ``callguard twilio configure`` shows and sets on Twilio: the landlord's number's voice
callbacks and the TaskRouter workspace's event callback, each as current -> wanted.

A value callguard did not set (a URL on another host than PUBLIC_BASE_URL's) is never overwritten
without ``force``; the fallback URL is left alone unless one is given, because callguard's own
fallback cannot answer when callguard is down.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from flask import current_app

from telephony import twilio_gateway
from telephony.config import current_settings
from telephony.urls import public_url

# The connection overrides README recommends for the status callback: 3 retries on any failure,
# 2 s to connect, 5 s to answer.
STATUS_CALLBACK_OVERRIDES = "#rc=3&rp=all&ct=2000&rt=5000"
WORKSPACE_EVENTS = (
    "task.created",
    "task.updated",  # Flex writes its conference into the task's attributes
    "task.canceled",
    "task.completed",
    "task.wrapup",
    "reservation.accepted",
    "reservation.rejected",
    "reservation.timeout",
    "reservation.canceled",
    "reservation.wrapup",
    "reservation.completed",
)
# A new Twilio number answers with Twilio's demo greeting: a placeholder, nobody's setting.
PLACEHOLDER_HOSTS = frozenset({"demo.twilio.com"})
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
WORKSPACE_SID = re.compile(r"^WS[0-9a-fA-F]{32}$")

CHANGE, SAME, KEEP, REFUSED = "change", "ok", "keep", "REFUSED"


class SetupError(RuntimeError):
    """The configuration cannot be shown or set; the message says why, in one line."""


@dataclass(frozen=True)
class Setting:
    name: str  # Twilio's REST name (VoiceUrl)
    keyword: str  # the twilio library's keyword for it (voice_url)
    current: str | None
    wanted: str | None  # None: left as it is
    mark: str  # CHANGE, SAME, KEEP or REFUSED
    note: str = ""


@dataclass
class Resource:
    """One Twilio resource's settings (the number, the workspace)."""

    title: str
    sid: str
    workspace: bool = False  # a TaskRouter workspace, not a phone number
    settings: list[Setting] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def changes(self) -> dict[str, str]:
        return {
            s.keyword: s.wanted for s in self.settings if s.mark == CHANGE and s.wanted is not None
        }

    def refused(self) -> list[Setting]:
        return [s for s in self.settings if s.mark == REFUSED]


@dataclass
class Plan:
    resources: list[Resource]
    notes: list[str]  # what was not looked at, and why (no workspace configured)

    def changes(self) -> int:
        return sum(len(r.changes()) for r in self.resources)

    def refused(self) -> list[Setting]:
        return [s for r in self.resources for s in r.refused()]

    def lines(self) -> list[str]:
        """The table: each setting's mark, name, current value → wanted value."""
        out: list[str] = []
        for resource in self.resources:
            out.append(f"{resource.title} ({resource.sid}):")
            for s in resource.settings:
                current = s.current or "(unset)"
                same = s.wanted is None or s.mark == SAME
                shown = current if same else f"{current} → {s.wanted}"
                out.append(
                    f"  {s.mark:<7} {s.name:<20} {shown}" + (f"  [{s.note}]" if s.note else "")
                )
            out.extend(f"  warning: {w}" for w in resource.warnings)
        out.extend(self.notes)
        return out


def _host(url: str | None) -> str:
    return (urlsplit(url).hostname or "").lower() if url else ""


def _same_url(a: str | None, b: str | None) -> bool:
    return (a or "") == (b or "")


def _same_method(a: str | None, b: str | None) -> bool:
    return (a or "").upper() == (b or "").upper()


def _same_events(a: str | None, b: str | None) -> bool:
    def events(v: str | None) -> set[str]:
        return {e.strip() for e in (v or "").split(",") if e.strip()}

    return events(a) == events(b)


Same = Callable[[str | None, str | None], bool]


def _owned(
    ours: str,
    force: bool,
    url: tuple[str, str, str | None, str],
    *dependents: tuple[str, str, str | None, str, Same],
) -> list[Setting]:
    """A callback URL and the settings that go with it (its method, the events it gets). They
    change together, and only when the URL is unset, Twilio's placeholder or on callguard's host
    (or with ``force``)."""
    name, keyword, current, wanted = url
    host = _host(current)
    foreign = bool(current) and host != ours and host not in PLACEHOLDER_HOSTS
    note = ""
    if foreign and force:
        note = f"on another host ({host}): --force overwrites it"
    rows = []
    if _same_url(current, wanted):
        rows.append(Setting(name, keyword, current, wanted, SAME))
    elif foreign and not force:
        why = f"on another host ({host}), not callguard's ({ours}): --force to overwrite it"
        rows.append(Setting(name, keyword, current, wanted, REFUSED, why))
    else:
        rows.append(Setting(name, keyword, current, wanted, CHANGE, note))
    for dep_name, dep_keyword, dep_current, dep_wanted, same in dependents:
        if same(dep_current, dep_wanted):
            rows.append(Setting(dep_name, dep_keyword, dep_current, dep_wanted, SAME))
        elif foreign and not force:
            note = f"kept with {name}"
            rows.append(Setting(dep_name, dep_keyword, dep_current, dep_wanted, KEEP, note))
        else:
            rows.append(Setting(dep_name, dep_keyword, dep_current, dep_wanted, CHANGE))
    return rows


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _number(e164: str, ours: str, force: bool, fallback_url: str | None) -> Resource:
    number = twilio_gateway.find_number(e164)
    if number is None:
        account = current_app.config.get("TWILIO_ACCOUNT_SID")
        raise SetupError(
            f"Twilio account {account} has no phone number {e164} "
            "(the settings' [routes] caller_id, or --number)"
        )
    resource = Resource(f"phone number {e164}", str(number.sid))
    resource.settings += _owned(
        ours,
        force,
        (
            "VoiceUrl",
            "voice_url",
            _text(number.voice_url),
            public_url("/twilio/voice/incoming"),
        ),
        ("VoiceMethod", "voice_method", _text(number.voice_method), "POST", _same_method),
    )
    current_fallback = _text(number.voice_fallback_url)
    fallback_method = _text(number.voice_fallback_method)
    if fallback_url is None:
        note = "left as it is: --fallback-url URL to set it"
        resource.settings += [
            Setting("VoiceFallbackUrl", "voice_fallback_url", current_fallback, None, KEEP, note),
            Setting("VoiceFallbackMethod", "voice_fallback_method", fallback_method, None, KEEP),
        ]
    else:
        for name, keyword, current, wanted, same in (
            ("VoiceFallbackUrl", "voice_fallback_url", current_fallback, fallback_url, _same_url),
            ("VoiceFallbackMethod", "voice_fallback_method", fallback_method, "POST", _same_method),
        ):
            mark = SAME if same(current, wanted) else CHANGE
            resource.settings.append(Setting(name, keyword, current, wanted, mark))
    resource.settings += _owned(
        ours,
        force,
        (
            "StatusCallback",
            "status_callback",
            _text(number.status_callback),
            public_url("/twilio/voice/status") + STATUS_CALLBACK_OVERRIDES,
        ),
        (
            "StatusCallbackMethod",
            "status_callback_method",
            _text(number.status_callback_method),
            "POST",
            _same_method,
        ),
    )
    fallback = fallback_url if fallback_url is not None else current_fallback
    if not fallback:
        resource.warnings.append(
            "no VoiceFallbackUrl: when callguard cannot answer, callers hear Twilio's error; "
            "give --fallback-url (a TwiML Bin: README, Pointing a Twilio number at callguard)"
        )
    elif _host(fallback) == ours:
        resource.warnings.append(
            f"VoiceFallbackUrl {fallback} is on callguard's own host: it cannot answer when "
            "callguard is down; give --fallback-url (a TwiML Bin: README, Pointing a Twilio "
            "number at callguard)"
        )
    for attribute, what in (("voice_application_sid", "application"), ("trunk_sid", "trunk")):
        if getattr(number, attribute, None):
            resource.warnings.append(
                f"the number uses the {what} {getattr(number, attribute)}: Twilio calls that, "
                "not VoiceUrl, until it is removed from the number"
            )
    return resource


def _workspace(sid: str, ours: str, force: bool) -> Resource:
    found = twilio_gateway.workspace(sid)
    name = _text(getattr(found, "friendly_name", None))
    resource = Resource(f"TaskRouter workspace {name or sid}", sid, workspace=True)
    resource.settings += _owned(
        ours,
        force,
        (
            "EventCallbackUrl",
            "event_callback_url",
            _text(found.event_callback_url),
            public_url("/twilio/taskrouter/events"),
        ),
        (
            "EventsFilter",
            "events_filter",
            _text(found.events_filter),
            ",".join(WORKSPACE_EVENTS),
            _same_events,
        ),
    )
    return resource


def plan(
    *, number: str | None = None, fallback_url: str | None = None, force: bool = False
) -> Plan:
    """What configure would change (reads Twilio; changes nothing)."""
    base = str(current_app.config["PUBLIC_BASE_URL"])
    ours = _host(base)
    if not ours or ours == "localhost" or _loopback(ours):
        raise SetupError(
            f"PUBLIC_BASE_URL is {base}, which Twilio cannot reach: set it to callguard's "
            "public origin"
        )
    e164 = number or current_settings().caller_id
    if not E164.match(e164):
        raise SetupError(f"{e164!r} is not an E.164 number (+441332000000)")
    if fallback_url is not None and urlsplit(fallback_url).scheme not in ("http", "https"):
        raise SetupError(f"--fallback-url {fallback_url!r} is not an http(s) URL")
    resources = [_number(e164, ours, force, fallback_url)]
    notes: list[str] = []
    workspace_sid = current_app.config.get("TWILIO_WORKSPACE_SID")
    if workspace_sid:
        if not WORKSPACE_SID.match(str(workspace_sid)):
            raise SetupError(f"TWILIO_WORKSPACE_SID {workspace_sid!r} is not a workspace SID (WS…)")
        resources.append(_workspace(str(workspace_sid), ours, force))
    else:
        notes.append("TaskRouter workspace: skipped (TWILIO_WORKSPACE_SID is not set)")
    return Plan(resources, notes)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def apply(done: Plan) -> int:
    """Make the plan's changes on Twilio; returns how many settings changed."""
    changed = 0
    for resource in done.resources:
        fields = resource.changes()
        if not fields:
            continue
        if resource.workspace:
            twilio_gateway.update_workspace(resource.sid, **fields)
        else:
            twilio_gateway.update_number(resource.sid, **fields)
        changed += len(fields)
    return changed
