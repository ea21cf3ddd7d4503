"""The routing decision: who is calling, what is in force, what time it is → where the call goes.

A pure function, so it is the same every time and testable without Flask, Redis or a database.
The most restrictive active restriction wins; the flags of every active restriction travel with
the winning route so an agent sees them all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from restrictions import kinds
from restrictions.destination import Destination, Scheme
from restrictions.errors import Invalid
from restrictions.validation import DAYS


def _aware(moment: datetime) -> datetime:
    """Stored decision times are UTC; an older cache entry without an offset is read as UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ActiveRestriction:
    id: int
    kind: str  # a registered kind's name (restrictions.kinds)
    details: Mapping[str, Any]
    decided_at: datetime
    under_appeal: bool = False  # still applies while the appeal is heard (policy 12.3)
    notice_sent: bool = False  # the written notice is on record, so callers may be told of it

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "details": dict(self.details),
            "decided_at": self.decided_at.isoformat(),
            "under_appeal": self.under_appeal,
            "notice_sent": self.notice_sent,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ActiveRestriction:
        return cls(
            id=int(data["id"]),
            kind=str(data["kind"]),
            details=dict(data.get("details") or {}),
            decided_at=_aware(datetime.fromisoformat(data["decided_at"])),
            under_appeal=bool(data.get("under_appeal", False)),
            notice_sent=bool(data.get("notice_sent", False)),
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
    default_route: Destination
    emergency_line: str
    timezone: str = "Europe/London"


class RouteKind(StrEnum):
    """Routes that are not named after a restriction kind (an ENDS_CALL or PERSON kind's route
    is called by the kind's name)."""

    DEFAULT = "default"
    OUTSIDE_WINDOW = "outside_window"
    ALLOWANCE_USED = "allowance_used"


@dataclass(frozen=True)
class Route:
    kind: str
    destination: Destination | None
    ends_call: bool
    identified: bool
    restriction_id: int | None = None
    flags: tuple[str, ...] = ()
    message: str | None = None
    message_params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def dials(self) -> bool:
        """Whether callguard rings a person into the caller's conference for this route."""
        return self.destination is not None and self.destination.dials


def default_route(
    settings: RoutingSettings, *, identified: bool, flags: tuple[str, ...] = ()
) -> Route:
    """The contact centre's normal route; also what the never-drop-a-call fallback answers."""
    if not identified and "unidentified" not in flags:
        flags = (*flags, "unidentified")
    return Route(RouteKind.DEFAULT, settings.default_route, False, identified, None, flags)


def _flags(restrictions: tuple[ActiveRestriction, ...], tz: ZoneInfo) -> tuple[str, ...]:
    """Each active restriction's flag code (``name`` or ``name:detail``), then under_appeal."""
    flags: list[str] = []
    for r in restrictions:
        kind = kinds.find(r.kind)
        if kind is None:
            continue
        if kind.flag_detail == "since":
            flags.append(f"{kind.name}:{r.decided_at.astimezone(tz).date().isoformat()}")
        elif kind.flag_detail:
            flags.append(f"{kind.name}:{r.details.get(kind.flag_detail, '')}")
        else:
            flags.append(kind.name)
        if r.under_appeal and "under_appeal" not in flags:
            flags.append("under_appeal")
    return tuple(dict.fromkeys(flags))


def _parse_time(value: Any) -> time:
    hours, minutes = str(value).split(":")
    return time(int(hours), int(minutes))


def in_window(windows: Iterable[Mapping[str, Any]], local: datetime) -> bool:
    """Whether local wall-clock time falls in one of the windows (start inclusive, end exclusive).

    Malformed windows raise: that is bad data, and the webhook's fallback handles it loudly.
    """
    day = DAYS[local.weekday()]
    now = local.time().replace(tzinfo=None)
    for w in windows:
        if day in w.get("days", ()) and _parse_time(w["start"]) <= now < _parse_time(w["end"]):
            return True
    return False


def week_start(now: datetime, tz: str = "Europe/London") -> datetime:
    """Monday 00:00 local time of ``now``'s week, in UTC: the weekly allowance is a calendar week
    Monday to Sunday on the landlord's clock, whatever the offset that week."""
    zone = ZoneInfo(tz)
    local = now.astimezone(zone)
    monday = (local - timedelta(days=local.weekday())).date()
    # Monday 00:00 always exists in Europe/London (the clocks change at 01:00 UTC on a Sunday).
    return datetime.combine(monday, time(0, 0), tzinfo=zone).astimezone(UTC)


def _newest_first(found: Iterable[ActiveRestriction]) -> list[ActiveRestriction]:
    """A newer decision of a kind supersedes an older one (a new SPOC, a new representative)."""
    return sorted(found, key=lambda r: (r.decided_at, r.id), reverse=True)


def _by_precedence(
    restrictions: tuple[ActiveRestriction, ...],
) -> list[tuple[kinds.Kind, list[ActiveRestriction]]]:
    """The caller's active restrictions grouped by kind, the kind that wins first."""
    grouped: dict[str, list[ActiveRestriction]] = {}
    for r in restrictions:
        if kinds.find(r.kind) is not None:
            grouped.setdefault(r.kind, []).append(r)
    ordered = sorted(grouped, key=lambda name: kinds.get(name).precedence)
    return [(kinds.get(name), _newest_first(grouped[name])) for name in ordered]


def _cap(limited: ActiveRestriction) -> int | None:
    cap = kinds.value_for(limited.kind, limited.details, kinds.Role.WEEKLY_ALLOWANCE)
    return None if cap is None else int(cap)


def _windows(limited: ActiveRestriction) -> list[dict[str, Any]]:
    return list(kinds.value_for(limited.kind, limited.details, kinds.Role.PERMITTED_TIMES) or [])


def needs_weekly_count(caller: CallerProfile | None) -> bool:
    """The webhook reads this week's calls only when a weekly allowance applies."""
    if caller is None:
        return False
    return any(
        kinds.find(r.kind) is not None
        and kinds.get(r.kind).effect is kinds.Effect.LIMITED
        and _cap(r) is not None
        for r in caller.restrictions
    )


def _person(restriction: ActiveRestriction) -> Destination | None:
    """Who a PERSON restriction puts the caller through to; None if nothing usable is stored."""
    target = kinds.person_of(restriction.kind, restriction.details)
    if not target:
        return None
    try:
        return Destination.parse(target)
    except Invalid:
        return None


def decide(
    caller: CallerProfile | None,
    now: datetime,
    settings: RoutingSettings,
    calls_this_week: int = 0,
) -> Route:
    """Where this call goes. Kinds apply in precedence order (restrictions.kinds): the first
    that decides wins. Today: representative only, writing only, limited contact outside its
    windows or allowance, SPOC, then the default route with every restriction's flag.

    ``calls_this_week`` is the caller's calls that reached a person since ``week_start`` (read
    only when ``needs_weekly_count``); an appeal changes nothing here but a flag (policy 12.3).
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("decide() needs an aware datetime")
    if caller is None:
        return default_route(settings, identified=False)
    tz = ZoneInfo(settings.timezone)
    flags = _flags(caller.restrictions, tz)
    local = now.astimezone(tz)
    first_limit: int | None = None

    def ending(kind: str, r: ActiveRestriction, message: str, **params: Any) -> Route:
        return Route(
            kind, None, True, True, r.id, flags, message, {**params, "letter": r.notice_sent}
        )

    for kind, found in _by_precedence(caller.restrictions):
        if kind.effect is kinds.Effect.ENDS_CALL:
            latest = found[0]
            params = {f.name: str(latest.details.get(f.name, "")) for f in kind.fields}
            assert kind.message is not None
            return ending(kind.name, latest, kind.message, **params)
        if kind.effect is kinds.Effect.LIMITED:
            # Every limited-contact restriction must allow the call; the first that does not
            # decides.
            for limited in found:
                windows = _windows(limited)
                if windows and not in_window(windows, local):
                    return ending(
                        RouteKind.OUTSIDE_WINDOW, limited, "outside_window", windows=windows
                    )
            for limited in found:
                cap = _cap(limited)
                if cap is not None and calls_this_week >= cap:
                    windows = _windows(limited)
                    return ending(
                        RouteKind.ALLOWANCE_USED,
                        limited,
                        "allowance_used",
                        max_calls=cap,
                        windows=windows,
                    )
            first_limit = first_limit if first_limit is not None else found[0].id
        if kind.effect is kinds.Effect.PERSON:
            destination = _person(found[0])
            if destination is not None and settings.default_route.scheme is Scheme.TASKROUTER:
                # TaskRouter routes and bridges: the task names the person as its first target
                return Route(kind.name, settings.default_route, False, True, found[0].id, flags)
            if destination is not None:
                return Route(kind.name, destination, False, True, found[0].id, flags)
    return Route(RouteKind.DEFAULT, settings.default_route, False, True, first_limit, flags)
