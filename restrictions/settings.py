"""callguard's own settings: the TOML file named by CALLGUARD_CONFIG, with documented defaults.

The web's configuration holds infrastructure (URLs, secrets); this holds the organisation's choices:
routes, the emergency line, what callers are told, the excessive-contact rules (policy section 6).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

import prompts
from restrictions.destination import Destination
from restrictions.errors import Invalid
from restrictions.phone import to_e164
from restrictions.retention import Retention


class SettingsError(ValueError):
    """The CALLGUARD_CONFIG file says something callguard cannot use."""


@dataclass(frozen=True)
class ContactRule:
    """One excessive-contact limit: an alert opens when a customer reaches it within the window."""

    name: str
    window_minutes: int
    max_calls: int | None = None
    max_minutes: int | None = None


def spoken_address(address: str) -> str:
    """A web or e-mail address as a person reads it out: "www dot example dot org slash contact"
    (the default for ``spoken_website`` and ``spoken_email``; set those for other languages)."""
    text = address.removeprefix("https://").removeprefix("http://").rstrip("/")
    for mark, word in ((".", " dot "), ("@", " at "), ("/", " slash "), ("-", " dash ")):
        text = text.replace(mark, word)
    return " ".join(text.split())


def spoken_number(e164: str) -> str:
    """A phone number as callers dial it here: +441332000999 → "01332 000999"."""
    parsed = phonenumbers.parse(e164, "GB")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)


# A table's per-language overrides (``[organisation.cy-GB] appeals_to = "…"``), as
# ((language, ((field, text), …)), …): a tuple keeps the settings hashable.
Translations = tuple[tuple[str, tuple[tuple[str, str], ...]], ...]


_Table = TypeVar("_Table", "Organisation", "Ombudsman")


def _in_language(table: _Table, language: str) -> _Table:
    for tag, overrides in table.translations:
        if tag == language:
            changes: dict[str, Any] = dict(overrides)
            return replace(table, **changes)
    return table


@dataclass(frozen=True)
class Organisation:
    name: str = "Example Homes"
    postal_address: str = "1 Example Street, Derby DE1 1AA"
    email: str = "customer.services@example.org"
    website: str = "https://www.example.org/contact"
    phone: str = "+441332000100"
    spoken_website: str = ""  # how the website is read out; derived from website when empty
    spoken_email: str = ""  # how the e-mail address is read out; derived when empty
    danger_message: str = ""  # replaces each language's "in danger, dial 999" line when set
    appeals_to: str = "The Head of Housing Services"  # who hears appeals (policy 12.2), in letters
    appeals_email: str = "appeals@example.org"  # where appeals may be e-mailed, in letters
    translations: Translations = ()  # [organisation.<language>]: these fields in that language

    def in_language(self, language: str) -> Organisation:
        """These details as a letter in ``language`` gives them (its overrides applied)."""
        return _in_language(self, language)


@dataclass(frozen=True)
class Ombudsman:
    """Who a customer may turn to when our own process is finished, as the letters say it."""

    name: str = "Housing Ombudsman Service"
    address: str = "PO Box 1484, Unit D, Preston PR2 0ET"
    phone: str = "0300 111 3000"
    website: str = "https://www.housing-ombudsman.org.uk"
    email: str = "info@housing-ombudsman.org.uk"
    translations: Translations = ()  # [ombudsman.<language>]: these fields in that language

    def in_language(self, language: str) -> Ombudsman:
        """These details as a letter in ``language`` gives them (its overrides applied)."""
        return _in_language(self, language)


@dataclass(frozen=True)
class ReviewRules:
    """What happens to a restriction whose review is overdue (``[reviews]``): it keeps applying
    (safety) and the daily job presses it on supervisors every day, and on admins once it is
    ``admins_after_days`` overdue; with ``lapse_after_days`` it lapses (ends) that many days
    overdue instead of applying without an end in sight."""

    admins_after_days: int = 30
    lapse_after_days: int | None = None


DEFAULT_CONTACT_RULES: tuple[ContactRule, ...] = (
    ContactRule("calls-per-hour", window_minutes=60, max_calls=5),
    ContactRule("calls-per-day", window_minutes=1440, max_calls=10),
    ContactRule("talk-time-per-week", window_minutes=10080, max_minutes=180),
)


@dataclass(frozen=True)
class Settings:
    default_route: str = "dial:+441332000100"
    emergency_line: str = "+441332000999"
    emergency_backup: str = ""  # E.164 rung when the emergency line does not answer ("" none)
    emergency_ring_seconds: int = 30  # how long the emergency line (and its backup) rings
    caller_id: str = "+441332000000"
    spoc_ring_seconds: int = 25
    agent_ring_seconds: int = 30
    timezone: str = "Europe/London"
    organisation: Organisation = field(default_factory=Organisation)
    contact_rules: tuple[ContactRule, ...] = DEFAULT_CONTACT_RULES
    count_emergency_calls: bool = False  # emergency-repair calls count towards contact rules
    hold_grace_seconds: int = 15  # a waiting caller is moved on at ring time plus this
    beep: bool = False  # whether a participant callguard dials in beeps on joining
    retention: Retention = field(default_factory=Retention)  # how long personal data is kept
    ombudsman: Ombudsman = field(default_factory=Ombudsman)
    voicemail_transcribe: bool = False  # [voicemail] transcribe: Twilio transcribes messages
    voicemail_days: int = 30  # [retention] voicemail_days: Twilio's copy kept after handled
    reviews: ReviewRules = field(default_factory=ReviewRules)  # [reviews]: overdue reviews

    @cached_property
    def default_destination(self) -> Destination:
        """Parsed once per settings (every inbound call asks)."""
        return Destination.parse(self.default_route)

    def message_params(self) -> dict[str, Any]:
        """What prompts may mention about the organisation."""
        return dict(self._message_params)

    @cached_property
    def _message_params(self) -> dict[str, Any]:
        """Worked out once per settings: formatting the phone numbers costs a parse each."""
        org = self.organisation
        return {
            "organisation_name": org.name,
            "postal_address": org.postal_address,
            "email": org.spoken_email or spoken_address(org.email),
            "website": org.spoken_website or spoken_address(org.website),
            "phone": spoken_number(org.phone),
            "emergency_phone": spoken_number(self.emergency_line),
        }


def _e164(value: Any, key: str) -> str:
    try:
        return to_e164(str(value))
    except Invalid as exc:
        raise SettingsError(f"{key}: {exc.message}") from exc


def _optional_e164(value: Any, key: str) -> str:
    """An E.164 number, or "" for none."""
    return _e164(value, key) if str(value).strip() else ""


def validate_route(value: Any, key: str = "routes.default") -> str:
    """A route is dial:<E.164|sip:|client:>, client:<name>, enqueue:<queue> or redirect:<URL>."""
    if not isinstance(value, str):
        raise SettingsError(f"{key}: expected dial:, enqueue: or redirect:, got {value!r}")
    try:
        return str(Destination.parse(value))
    except Invalid as exc:
        raise SettingsError(f"{key}: {exc.message}") from exc


def _timezone(value: Any) -> str:
    """An IANA time zone name tzdata knows ("Europe/London"): a misspelt one would otherwise
    surface only when the first call's permitted-contact window is worked out."""
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a directory, too long
        raise SettingsError(
            f'timezone: {value!r} is not a time zone name (such as "Europe/London")'
        ) from None
    return str(value)


def _rule(raw: Any, index: int) -> ContactRule:
    where = f"contact_rules[{index}]"
    if not isinstance(raw, dict):
        raise SettingsError(f"{where}: expected a table")
    name = raw.get("name")
    window = raw.get("window_minutes")
    max_calls = raw.get("max_calls")
    max_minutes = raw.get("max_minutes")
    if not isinstance(name, str) or not name:
        raise SettingsError(f"{where}: name is required")
    if not isinstance(window, int) or window <= 0:
        raise SettingsError(f"{where}: window_minutes must be a positive whole number")
    if (max_calls is None) == (max_minutes is None):
        raise SettingsError(f"{where}: give exactly one of max_calls or max_minutes")
    for label, limit in (("max_calls", max_calls), ("max_minutes", max_minutes)):
        if limit is not None and (not isinstance(limit, int) or limit <= 0):
            raise SettingsError(f"{where}: {label} must be a positive whole number")
    return ContactRule(name, window, max_calls, max_minutes)


def _retention(raw: Any) -> Retention:
    if not isinstance(raw, dict):
        raise SettingsError("retention: expected a table")
    base = Retention()
    values = {}
    for key in (
        "callback_payload_days",
        "call_days",
        "closed_years",
        "alert_years",
        "customer_years",
        "voicemail_days",
        "voicemail_unhandled_days",
    ):
        value = raw.get(key, getattr(base, key))
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise SettingsError(f"retention.{key} must be a whole number of at least 1")
        values[key] = value
    return Retention(**values)


def _voicemail_days(raw: Any) -> int:
    value = raw.get("voicemail_days", Settings.voicemail_days) if isinstance(raw, dict) else None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise SettingsError("retention.voicemail_days must be a whole number of at least 1")
    return value


def _voicemail_transcribe(raw: Any) -> bool:
    if not isinstance(raw, dict):
        raise SettingsError("voicemail: expected a table")
    value = raw.get("transcribe", False)
    if not isinstance(value, bool):
        raise SettingsError("voicemail.transcribe must be true or false")
    return value


def _reviews(raw: Any) -> ReviewRules:
    if not isinstance(raw, dict):
        raise SettingsError("reviews: expected a table")
    values: dict[str, int | None] = {}
    for key, default in (("admins_after_days", 30), ("lapse_after_days", None)):
        value = raw.get(key, default)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise SettingsError(f"reviews.{key} must be a whole number of days")
        if value is not None and value < 1:
            raise SettingsError(f"reviews.{key} must be at least 1")
        values[key] = value
    unknown = set(raw) - set(values)
    if unknown:
        raise SettingsError(f"reviews: unknown key {sorted(unknown)[0]!r}")
    admins = values["admins_after_days"]
    assert admins is not None
    return ReviewRules(admins_after_days=admins, lapse_after_days=values["lapse_after_days"])


def _translations(raw: dict[str, Any], table: str, translatable: tuple[str, ...]) -> Translations:
    """The table's sub-tables, each named by a language we write in and holding some of its
    ``translatable`` fields as text."""
    found = []
    for language, overrides in raw.items():
        if not isinstance(overrides, dict):
            continue
        if language not in prompts.languages():
            raise SettingsError(
                f"{table}.{language}: not a language callguard writes in "
                f"({', '.join(prompts.languages())})"
            )
        for name, value in overrides.items():
            if name not in translatable:
                raise SettingsError(
                    f"{table}.{language}.{name}: only {', '.join(translatable)} may be given "
                    "per language"
                )
            if not isinstance(value, str):
                raise SettingsError(f"{table}.{language}.{name} must be text")
        found.append((language, tuple((name, str(v)) for name, v in overrides.items())))
    return tuple(found)


def _texts(table: type[Organisation | Ombudsman], *leave_out: str) -> tuple[str, ...]:
    """The table's text fields (what may be given per language)."""
    return tuple(
        f.name
        for f in fields(table)
        if f.type in ("str", str) and f.name not in leave_out and f.name != "translations"
    )


def parse_settings(data: dict[str, Any]) -> Settings:
    """Build Settings from a parsed TOML document; anything missing takes its default."""
    defaults = Settings()
    routes = data.get("routes", {})
    org = data.get("organisation", {})
    rules_raw = data.get("contact_rules")
    rules = (
        tuple(_rule(r, i) for i, r in enumerate(rules_raw))
        if rules_raw is not None
        else DEFAULT_CONTACT_RULES
    )
    names = [r.name for r in rules]
    if len(set(names)) != len(names):
        raise SettingsError("contact_rules: rule names must be unique")
    base_org = Organisation()
    organisation = Organisation(
        name=str(org.get("name", base_org.name)),
        postal_address=str(org.get("postal_address", base_org.postal_address)),
        email=str(org.get("email", base_org.email)),
        website=str(org.get("website", base_org.website)),
        phone=_e164(org.get("phone", base_org.phone), "organisation.phone"),
        spoken_website=str(org.get("spoken_website", "")),
        spoken_email=str(org.get("spoken_email", "")),
        danger_message=str(org.get("danger_message", "")),
        appeals_to=str(org.get("appeals_to", base_org.appeals_to)),
        appeals_email=str(org.get("appeals_email", base_org.appeals_email)),
        translations=_translations(org, "organisation", _texts(Organisation, "phone")),
    )
    ombudsman_raw = data.get("ombudsman", {})
    if not isinstance(ombudsman_raw, dict):
        raise SettingsError("ombudsman: expected a table")
    base_ombudsman = Ombudsman()
    ombudsman = Ombudsman(
        **{
            name: str(ombudsman_raw.get(name, getattr(base_ombudsman, name)))
            for name in ("name", "address", "phone", "website", "email")
        },
        translations=_translations(ombudsman_raw, "ombudsman", _texts(Ombudsman)),
    )
    contact = data.get("contact", {})
    return Settings(
        default_route=validate_route(routes.get("default", defaults.default_route)),
        emergency_line=_e164(routes.get("emergency", defaults.emergency_line), "routes.emergency"),
        emergency_backup=_optional_e164(
            routes.get("emergency_backup", defaults.emergency_backup), "routes.emergency_backup"
        ),
        emergency_ring_seconds=int(
            routes.get("emergency_ring_seconds", defaults.emergency_ring_seconds)
        ),
        caller_id=_e164(routes.get("caller_id", defaults.caller_id), "routes.caller_id"),
        spoc_ring_seconds=int(routes.get("spoc_ring_seconds", defaults.spoc_ring_seconds)),
        agent_ring_seconds=int(routes.get("agent_ring_seconds", defaults.agent_ring_seconds)),
        timezone=_timezone(data.get("timezone", defaults.timezone)),
        organisation=organisation,
        contact_rules=rules,
        count_emergency_calls=bool(contact.get("count_emergency_calls", False)),
        hold_grace_seconds=int(routes.get("hold_grace_seconds", defaults.hold_grace_seconds)),
        beep=bool(routes.get("beep", defaults.beep)),
        retention=_retention(data.get("retention", {})),
        ombudsman=ombudsman,
        voicemail_transcribe=_voicemail_transcribe(data.get("voicemail", {})),
        voicemail_days=_voicemail_days(data.get("retention", {})),
        reviews=_reviews(data.get("reviews", {})),
    )


def load_settings(path: str | None) -> Settings:
    """Read CALLGUARD_CONFIG, or the built-in defaults when it is unset."""
    if not path:
        return Settings()
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"CALLGUARD_CONFIG {path}: {exc}") from exc
    return parse_settings(data)
