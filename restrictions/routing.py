"""The routing decision: who is calling, what is in force, what time it is → where the call goes.

A pure function, so it is the same every time and testable without Flask, Redis or a database
(DESIGN.md, "Policy → phone behaviour"). The most restrictive active restriction wins; the flags of
every active restriction travel with the winning route so an agent sees them all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class RestrictionKind(StrEnum):
    WARNING = "warning"
    SPOC = "spoc"
    WRITTEN_ONLY = "written_only"
    LIMITED_CONTACT = "limited_contact"
    REPRESENTATIVE_ONLY = "representative_only"
    NO_ENGAGEMENT = "no_engagement"


@dataclass(frozen=True)
class ActiveRestriction:
    id: int
    kind: RestrictionKind
    details: Mapping[str, Any]
    decided_at: datetime
    under_appeal: bool = False  # still applies while the appeal is heard (policy 12.3)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind.value,
            "details": dict(self.details),
            "decided_at": self.decided_at.isoformat(),
            "under_appeal": self.under_appeal,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ActiveRestriction:
        return cls(
            id=int(data["id"]),
            kind=RestrictionKind(data["kind"]),
            details=dict(data.get("details") or {}),
            decided_at=datetime.fromisoformat(data["decided_at"]),
            under_appeal=bool(data.get("under_appeal", False)),
        )


@dataclass(frozen=True)
class CallerProfile:
    customer_id: int
    reference: str
    name: str
    language: str
    slow_speech: bool
    restrictions: tuple[ActiveRestriction, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "reference": self.reference,
            "name": self.name,
            "language": self.language,
            "slow_speech": self.slow_speech,
            "restrictions": [r.to_json() for r in self.restrictions],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CallerProfile:
        return cls(
            customer_id=int(data["customer_id"]),
            reference=str(data["reference"]),
            name=str(data["name"]),
            language=str(data.get("language") or "en-GB"),
            slow_speech=bool(data.get("slow_speech", False)),
            restrictions=tuple(
                ActiveRestriction.from_json(r) for r in data.get("restrictions", [])
            ),
        )


@dataclass(frozen=True)
class RoutingSettings:
    default_route: str
    emergency_line: str
    timezone: str = "Europe/London"


class RouteKind(StrEnum):
    DEFAULT = "default"
    SPOC = "spoc"
    WRITTEN_ONLY = "written_only"
    OUTSIDE_WINDOW = "outside_window"
    ALLOWANCE_USED = "allowance_used"
    REPRESENTATIVE_ONLY = "representative_only"


@dataclass(frozen=True)
class Route:
    kind: RouteKind
    destination: str | None
    ends_call: bool
    identified: bool
    restriction_id: int | None = None
    flags: tuple[str, ...] = ()
    message: str | None = None
    message_params: Mapping[str, Any] = field(default_factory=dict)


def default_route(
    settings: RoutingSettings, *, identified: bool, flags: tuple[str, ...] = ()
) -> Route:
    """The contact centre's normal route; also what the never-drop-a-call fallback answers."""
    if not identified and "unidentified" not in flags:
        flags = (*flags, "unidentified")
    return Route(RouteKind.DEFAULT, settings.default_route, False, identified, None, flags)


def _flags(restrictions: tuple[ActiveRestriction, ...], tz: ZoneInfo) -> tuple[str, ...]:
    flags: list[str] = []
    for r in restrictions:
        if r.kind is RestrictionKind.WARNING:
            flags.append(f"warning:{r.decided_at.astimezone(tz).date().isoformat()}")
        elif r.kind is RestrictionKind.NO_ENGAGEMENT:
            flags.append(f"no_engagement:{r.details.get('issue', '')}")
        elif r.kind is RestrictionKind.SPOC:
            flags.append("spoc")
        elif r.kind is RestrictionKind.LIMITED_CONTACT:
            flags.append("limited_contact")
        elif r.kind is RestrictionKind.WRITTEN_ONLY:
            flags.append("written_only")
        elif r.kind is RestrictionKind.REPRESENTATIVE_ONLY:
            flags.append("representative_only")
        if r.under_appeal and "under_appeal" not in flags:
            flags.append("under_appeal")
    return tuple(dict.fromkeys(flags))


def _parse_time(value: Any) -> time:
    hours, minutes = str(value).split(":")
    return time(int(hours), int(minutes))


def in_window(windows: Any, local: datetime) -> bool:
    """Whether local wall-clock time falls in one of the windows (start inclusive, end exclusive).

    Malformed windows raise: that is bad data, and the webhook's fallback handles it loudly.
    """
    day = DAYS[local.weekday()]
    now = local.time().replace(tzinfo=None)
    for w in windows:
        if day in w["days"] and _parse_time(w["start"]) <= now < _parse_time(w["end"]):
            return True
    return False


def week_start(now: datetime, tz: str = "Europe/London") -> datetime:
    """Monday 00:00 local time of ``now``'s week (the weekly allowance is a calendar week)."""
    zone = ZoneInfo(tz)
    local = now.astimezone(zone)
    monday = (local - timedelta(days=local.weekday())).date()
    return datetime.combine(monday, time(0, 0), tzinfo=zone)


def _find(
    restrictions: tuple[ActiveRestriction, ...], kind: RestrictionKind
) -> ActiveRestriction | None:
    return next((r for r in restrictions if r.kind is kind), None)


def needs_weekly_count(caller: CallerProfile | None) -> bool:
    """The webhook reads this week's calls only when a weekly allowance applies."""
    if caller is None:
        return False
    limited = _find(caller.restrictions, RestrictionKind.LIMITED_CONTACT)
    return limited is not None and limited.details.get("max_calls_per_week") is not None


def _spoc_destination(spoc: ActiveRestriction) -> str:
    target = str(spoc.details["spoc"])
    return target if target.startswith("client:") else f"dial:{target}"


def decide(
    caller: CallerProfile | None,
    now: datetime,
    settings: RoutingSettings,
    calls_this_week: int = 0,
) -> Route:
    """Where this call goes. Order, most restrictive first: representative only, writing only,
    limited contact outside its windows or allowance, SPOC, then the default route with flags."""
    if now.tzinfo is None:
        raise ValueError("decide() needs an aware datetime")
    if caller is None:
        return default_route(settings, identified=False)
    tz = ZoneInfo(settings.timezone)
    active = caller.restrictions
    flags = _flags(active, tz)

    def ending(kind: RouteKind, r: ActiveRestriction, message: str, **params: Any) -> Route:
        return Route(kind, None, True, True, r.id, flags, message, params)

    representative = _find(active, RestrictionKind.REPRESENTATIVE_ONLY)
    if representative is not None:
        return ending(
            RouteKind.REPRESENTATIVE_ONLY,
            representative,
            "representative_only",
            representative=representative.details.get("representative", ""),
        )
    written = _find(active, RestrictionKind.WRITTEN_ONLY)
    if written is not None:
        return ending(RouteKind.WRITTEN_ONLY, written, "written_only")
    limited = _find(active, RestrictionKind.LIMITED_CONTACT)
    if limited is not None:
        windows = list(limited.details["windows"])
        cap = limited.details.get("max_calls_per_week")
        if not in_window(windows, now.astimezone(tz)):
            return ending(RouteKind.OUTSIDE_WINDOW, limited, "outside_window", windows=windows)
        if cap is not None and calls_this_week >= int(cap):
            return ending(
                RouteKind.ALLOWANCE_USED, limited, "allowance_used", max_calls=cap, windows=windows
            )
    spoc = _find(active, RestrictionKind.SPOC)
    if spoc is not None:
        return Route(RouteKind.SPOC, _spoc_destination(spoc), False, True, spoc.id, flags)
    if limited is not None:
        return Route(RouteKind.DEFAULT, settings.default_route, False, True, limited.id, flags)
    return Route(RouteKind.DEFAULT, settings.default_route, False, True, None, flags)
