"""Subject access (UK GDPR Article 15): everything callguard holds about one customer, as a ZIP.

What is in it: ``data/<table>.json`` for every table of the system of record (one file each,
a list of rows, every column; ``[]`` where nothing names the customer), ``summary.html`` (the
same, readable), ``manifest.json`` (what was exported, when, by whom) and ``letters/``: each
letter as it was sent where callguard keeps them (a ``sent_letters`` table's stored files),
otherwise a copy rendered now from the record, marked as such in its name and the summary.

Which rows: the customer's own row, then every row that refers to a row already taken
(following the foreign keys: their numbers, restrictions with their reviews and appeals, calls,
agents' incidents, voicemails, alerts and any table added later that refers to one of those),
the callbacks stored for their calls (``call_events``, by CallSid) and the audit entries naming
any of those rows, until nothing more is found. Staff records themselves (``users``,
``api_tokens``) are never exported. Voicemail audio stays at Twilio: its RecordingSid is listed.

Staff, as the ICO advises for third parties in a subject access response: a member of staff
who decided something about the customer (a restriction, its review or end, an appeal, an
alert, attaching calls to them) is named, as the decision's author; anyone else (an agent who
took a call, whoever recorded a notice) appears as their role and a stable pseudonym
("agent 3f2a9c1e"), the same in every export. Free text (reasons, notes) is exported as written.
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import IO, Any

from sqlalchemy import Column, Table, select
from sqlalchemy.orm import Session

from restrictions import letters
from restrictions.errors import DomainError
from restrictions.lifecycle import Actor, audit
from restrictions.models import Base, Customer, User
from restrictions.settings import Settings

STAFF_TABLES = frozenset({"users", "api_tokens"})  # staff's own records: never exported
CHUNK = 1000
# The audit trail's entity names, and the tables their ids are rows of (besides a table's name
# without its plural s: ``sent_letter`` for ``sent_letters``).
ENTITIES = {
    "customer": "customers",
    "restriction": "restrictions",
    "appeal": "appeals",
    "review": "reviews",
    "alert": "contact_alerts",
    "call": "calls",
    "call_event": "call_events",
    "agent_action": "agent_actions",
    "voicemail": "voicemails",
}
# Columns naming the member of staff who decided something about the customer.
DECIDER_COLUMNS = frozenset({"decided_by_id", "ended_by_id", "reviewer_id", "closed_by_id"})
DECIDER_TABLE_COLUMNS = frozenset({("sharing_records", "recorded_by_id")})  # chose to share
DECIDING_ACTIONS = frozenset(
    {
        "restriction.created",
        "restriction.ended",
        "restriction.varied",
        "restriction.shared",
        "alert.dismissed",
        "alert.escalated",
        "alert.merged",
        "call.attached",
        "calls.attached",
        "appeal.upheld",
        "appeal.overturned",
        "appeal.varied",
        "appeal.independence_overridden",
    }
)
LetterRenderer = Callable[[letters.Letter], bytes]


def _deciding(action: str) -> bool:
    return action in DECIDING_ACTIONS or action.startswith("restriction.reviewed")


# --- staff ---------------------------------------------------------------------------------------


def pseudonym(user: User) -> str:
    """A member of staff as a customer's export shows them when they decided nothing about the
    customer: their role and a stable pseudonym (the same in every export, and not their id)."""
    made = user.created_at.isoformat() if user.created_at else ""
    digest = hashlib.sha256(f"callguard-staff:{user.id}:{made}".encode()).hexdigest()[:8]
    return f"{user.role} {digest}"


def display_name(user: User) -> str:
    return str(getattr(user, "display_name", None) or user.name)


@dataclass
class StaffNames:
    """Who is named and who is pseudonymised in one export."""

    users: dict[int, User]
    deciders: set[int]

    def label(self, user_id: int | None) -> str | None:
        if user_id is None:
            return None
        user = self.users.get(user_id)
        if user is None:
            return "staff (no longer on record)"
        return display_name(user) if user_id in self.deciders else pseudonym(user)

    def by_name(self) -> dict[str, str]:
        """Each staff user name, and the ways callguard writes it (``client:<name>`` as a SPOC
        or agent is dialled, ``worker:<name>`` on TaskRouter), to what the export shows."""
        found: dict[str, str] = {}
        for user in self.users.values():
            shown = self.label(user.id) or ""
            found[user.name] = shown
            found[f"client:{user.name}"] = f"client:{shown}"
            found[f"worker:{user.name}"] = f"worker:{shown}"
        return found


def _scrub(value: Any, names: Mapping[str, str]) -> Any:
    """Staff names where callguard writes them whole (a SPOC ``client:jo.bloggs``, an audit
    entry's actor), replaced by what the export shows; free text is left as written."""
    if isinstance(value, str):
        return names.get(value, value)
    if isinstance(value, list):
        return [_scrub(v, names) for v in value]
    if isinstance(value, dict):
        return {k: _scrub(v, names) for k, v in value.items()}
    return value


# --- which rows ----------------------------------------------------------------------------------


def _tables() -> list[Table]:
    return [
        t for t in Base.metadata.sorted_tables if t.name not in STAFF_TABLES and "id" in t.columns
    ]


def _where_in(
    sess: Session, wanted: Column[Any], column: Column[Any], values: Iterable[Any], **also: Any
) -> set[Any]:
    """``wanted`` of the rows whose ``column`` is one of ``values`` (and each of ``also``'s
    columns equal to its value), a chunk of values at a time."""
    found: set[Any] = set()
    chosen = sorted(set(values), key=str)
    table = column.table
    for i in range(0, len(chosen), CHUNK):
        query = select(wanted).where(column.in_(chosen[i : i + CHUNK]))
        for name, value in also.items():
            query = query.where(table.c[name] == value)
        found.update(sess.scalars(query).all())
    return found


def rows_naming(sess: Session, customer: Customer) -> dict[str, set[int]]:
    """The ids of every row, table by table, that is about the customer (see the module).
    Each round looks only from the rows the round before found, until one finds none."""
    tables = {t.name: t for t in _tables()}
    taken: dict[str, set[int]] = {name: set() for name in tables}
    taken["customers"] = {customer.id}
    frontier: dict[str, set[int]] = {"customers": {customer.id}}
    entities = {name.removesuffix("s"): name for name in tables} | ENTITIES
    while frontier:
        found: dict[str, set[int]] = {}

        def add(name: str, ids: set[int], found: dict[str, set[int]] = found) -> None:
            new = ids - taken[name]
            if new:
                taken[name] |= new
                found.setdefault(name, set()).update(new)

        for table in tables.values():  # rows referring to a row found last round
            for column in table.columns:
                for fk in column.foreign_keys:
                    target = fk.column.table.name
                    if fk.column.name == "id" and frontier.get(target):
                        add(table.name, _where_in(sess, table.c.id, column, frontier[target]))
        if frontier.get("calls") and "call_events" in tables:  # their calls' callbacks
            calls, events = tables["calls"], tables["call_events"]
            sids = _where_in(sess, calls.c.call_sid, calls.c.id, frontier["calls"])
            add("call_events", _where_in(sess, events.c.id, events.c.call_sid, sids))
        if "audit_entries" in tables:  # the audit entries naming any row found
            entries = tables["audit_entries"]
            for entity, name in entities.items():
                if frontier.get(name):
                    ids = _where_in(
                        sess, entries.c.id, entries.c.entity_id, frontier[name], entity=entity
                    )
                    add("audit_entries", ids)
        frontier = found
    return taken


# --- the rows, as JSON ---------------------------------------------------------------------------


@dataclass
class Gathered:
    customer: Customer
    exported_at: datetime
    exported_by: str
    tables: dict[str, list[dict[str, Any]]]
    files: dict[str, bytes] = field(default_factory=dict)
    letters: list[dict[str, Any]] = field(default_factory=list)
    staff: list[dict[str, Any]] = field(default_factory=list)


def _user_columns(table: Table) -> list[Column[Any]]:
    return [
        c
        for c in table.columns
        if any(fk.column.table.name == "users" and fk.column.name == "id" for fk in c.foreign_keys)
    ]


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _staff(sess: Session, raw: Mapping[str, list[dict[str, Any]]]) -> StaffNames:
    tables = {t.name: t for t in _tables()}
    deciders: set[int] = set()
    for name, rows in raw.items():
        for column in _user_columns(tables[name]):
            for row in rows:
                user_id = row.get(column.name)
                decides = column.name in DECIDER_COLUMNS or (name, column.name) in (
                    DECIDER_TABLE_COLUMNS
                )
                if user_id is not None and decides:
                    deciders.add(user_id)
    for row in raw.get("audit_entries", []):
        if row.get("actor_id") is not None and _deciding(str(row.get("action"))):
            deciders.add(row["actor_id"])
    users = {u.id: u for u in sess.scalars(select(User))}
    return StaffNames(users=users, deciders=deciders)


def _rows(
    sess: Session, taken: Mapping[str, set[int]], files: dict[str, bytes]
) -> tuple[dict[str, list[dict[str, Any]]], StaffNames]:
    raw: dict[str, list[dict[str, Any]]] = {}
    for table in _tables():
        ids = sorted(taken.get(table.name, ()))
        rows: list[dict[str, Any]] = []
        for i in range(0, len(ids), CHUNK):
            query = select(table).where(table.c.id.in_(ids[i : i + CHUNK])).order_by(table.c.id)
            rows += [dict(r._mapping) for r in sess.execute(query)]
        raw[table.name] = rows
    staff = _staff(sess, raw)
    names = staff.by_name()
    tables = {t.name: t for t in _tables()}
    out: dict[str, list[dict[str, Any]]] = {}
    for name, rows in raw.items():
        user_columns = {c.name for c in _user_columns(tables[name])}
        shaped = []
        for row in rows:
            item: dict[str, Any] = {}
            for key, value in row.items():
                if key in user_columns:
                    continue
                if isinstance(value, bytes | memoryview):  # a stored file (a letter as sent)
                    data = bytes(value)
                    ext = "pdf" if data.startswith(b"%PDF") else "bin"
                    path = f"letters/as-sent/{name}-{row.get('id')}-{key}.{ext}"
                    files[path] = data
                    item[key] = {"file": path, "bytes": len(data)}
                    continue
                item[key] = _scrub(_jsonable(value), names)
            for key in sorted(user_columns):  # a member of staff: named or pseudonymised,
                shown_as = key.removesuffix("_id")  # in place of their id
                if shown_as in row and shown_as != key:  # the text beside it (an actor)
                    if row[key] is not None:
                        item[shown_as] = staff.label(row[key])
                else:
                    item[shown_as] = staff.label(row[key])
            shaped.append(item)
        out[name] = shaped
    return out, staff


def _letters(
    sess: Session,
    customer: Customer,
    settings: Settings,
    render: LetterRenderer | None,
    today: date,
    files: dict[str, bytes],
    kept_for: set[int],
) -> list[dict[str, Any]]:
    """For a restriction whose notice was sent but none of whose letters is kept as sent (sent
    before callguard kept them, or where there is no ``sent_letters`` table): a copy of each
    letter callguard writes about it, rendered now from the record, named and listed as such."""
    made: list[dict[str, Any]] = []
    for restriction in customer.restrictions:
        if restriction.id in kept_for or restriction.notice_sent_on is None:
            continue
        for which in letters.WHICH:
            try:
                letter = letters.build(sess, restriction, which, settings, today=today)
            except DomainError:  # nothing of that kind to write about
                continue
            try:
                data, ext = (render(letter), "pdf") if render else (letter.text().encode(), "txt")
            except Exception as exc:  # one letter that cannot be drawn does not stop the export
                data, ext = f"{letter.text()}\n\n(not drawn as a PDF: {exc})".encode(), "txt"
            path = f"letters/rendered-copy/{which}-letter-{restriction.id}.{ext}"
            files[path] = data
            made.append(
                {
                    "file": path,
                    "restriction_id": restriction.id,
                    "letter": which,
                    "title": letter.title,
                    "kept_as_sent": False,
                    "note": (
                        f"a copy rendered from the record on {today.isoformat()}, not the "
                        "letter as it was sent"
                    ),
                }
            )
    return made


def gather(
    sess: Session,
    customer: Customer,
    settings: Settings,
    *,
    exported_by: str,
    render_letter: LetterRenderer | None = None,
    now: datetime | None = None,
) -> Gathered:
    """Everything held about the customer, shaped for the export."""
    when = now or datetime.now(UTC)
    files: dict[str, bytes] = {}
    tables, staff = _rows(sess, rows_naming(sess, customer), files)
    kept = []
    for rows in tables.values():  # each stored file: a letter as it was sent
        for row in rows:
            for value in row.values():
                if isinstance(value, dict) and set(value) == {"file", "bytes"}:
                    kept.append(
                        {
                            "file": value["file"],
                            "restriction_id": row.get("restriction_id"),
                            "letter": row.get("kind"),
                            "title": row.get("title"),
                            "sent_on": row.get("sent_on"),
                            "kept_as_sent": True,
                            "note": "the letter as it was sent",
                        }
                    )
    kept_for = {k["restriction_id"] for k in kept if k["restriction_id"] is not None}
    made = _letters(sess, customer, settings, render_letter, when.date(), files, kept_for)
    everything = json.dumps(tables, default=str, ensure_ascii=False)
    named = []
    for user_id, user in sorted(staff.users.items()):
        shown = staff.label(user_id) or ""
        if json.dumps(shown, ensure_ascii=False)[1:-1] in everything:  # in this export
            named.append({"shown_as": shown, "named": user_id in staff.deciders, "role": user.role})
    return Gathered(customer, when, exported_by, tables, files, kept + made, named)


# --- the ZIP -------------------------------------------------------------------------------------


def write_zip(
    sess: Session,
    customer: Customer,
    settings: Settings,
    out: IO[bytes],
    *,
    actor: Actor,
    render_letter: LetterRenderer | None = None,
    now: datetime | None = None,
) -> Gathered:
    """Write the customer's export to ``out``, recorded on the audit trail (the export holds
    that entry too; the caller commits)."""
    entry = audit(
        sess,
        actor,
        "customer.exported",
        "customer",
        customer.id,
        customer_id=customer.id,
        note="subject access export",
    )
    sess.flush()
    done = gather(
        sess,
        customer,
        settings,
        exported_by=actor.label,
        render_letter=render_letter,
        now=now,
    )
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, rows in done.tables.items():
            archive.writestr(f"data/{name}.json", json.dumps(rows, indent=2, ensure_ascii=False))
        for path, data in sorted(done.files.items()):
            archive.writestr(path, data)
        archive.writestr("manifest.json", json.dumps(manifest(done), indent=2))
        archive.writestr("summary.html", summary_html(done))
    entry.after = {
        "rows": sum(len(rows) for rows in done.tables.values()),
        "files": len(done.files),
    }
    return done


def export_zip(
    sess: Session,
    customer: Customer,
    settings: Settings,
    *,
    actor: Actor,
    render_letter: LetterRenderer | None = None,
    now: datetime | None = None,
) -> bytes:
    """The customer's export as the bytes of a ZIP (``write_zip`` into memory)."""
    buffer = io.BytesIO()
    write_zip(sess, customer, settings, buffer, actor=actor, render_letter=render_letter, now=now)
    return buffer.getvalue()


def filename(customer: Customer, on: date) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in customer.reference)
    return f"subject-access-{safe.strip('-') or 'customer'}-{on.isoformat()}.zip"


def manifest(done: Gathered) -> dict[str, Any]:
    return {
        "customer": done.customer.reference,
        "exported_at": done.exported_at.isoformat(),
        "exported_by": done.exported_by,
        "tables": {name: len(rows) for name, rows in done.tables.items()},
        "letters": done.letters,
        "staff": done.staff,
        "notes": [
            "Each file under data/ is one table of callguard's system of record: every row "
            "about this customer, every column.",
            "Staff who decided something about the customer are named; other staff appear as "
            "their role and a stable pseudonym.",
            "Voicemail audio is held by Twilio, not callguard: each is listed by RecordingSid.",
            "Free text, notes (the supervisors' sensitive note too) and letters are as written: "
            "read the export before it is sent, and withhold only what an exemption allows.",
        ],
    }


# --- the readable summary ------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return html.escape(json.dumps(value, ensure_ascii=False, default=str))
    return html.escape(str(value))


def _table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    if not rows:
        return "<p>None.</p>"
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(r.get(c))}</td>" for c in columns) + "</tr>" for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


SECTIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("phone_numbers", "Phone numbers", ("e164", "created_at")),
    (
        "restrictions",
        "Restrictions",
        (
            "id",
            "kind",
            "reason",
            "decided_on",
            "decided_by",
            "notice_sent_on",
            "review_due_on",
            "ended_at",
            "ended_by",
            "end_reason",
        ),
    ),
    (
        "reviews",
        "Reviews",
        ("restriction_id", "reviewed_on", "outcome", "notes", "reviewer", "next_review_on"),
    ),
    (
        "appeals",
        "Appeals",
        ("restriction_id", "lodged_on", "grounds", "outcome", "notes", "decided_on", "decided_by"),
    ),
    (
        "calls",
        "Calls",
        ("call_sid", "started_at", "from_number", "route", "status", "duration_seconds"),
    ),
    (
        "voicemails",
        "Voicemails (the audio is held by Twilio: listed by RecordingSid)",
        ("recording_sid", "created_at", "duration_seconds", "status", "transcription"),
    ),
    (
        "contact_alerts",
        "Excessive-contact alerts, with their evidence",
        ("id", "rule_name", "status", "opened_at", "closed_at", "close_reason", "evidence"),
    ),
    (
        "agent_actions",
        "Incidents on calls (agents' Warn and End)",
        ("created_at", "kind", "reason", "outcome", "user"),
    ),
    ("audit_entries", "Audit trail", ("at", "actor", "action", "entity", "entity_id", "note")),
)


def summary_html(done: Gathered) -> str:
    """The export for people: one page, everything escaped, no script or external style."""
    c = done.tables.get("customers", [{}])[0] if done.tables.get("customers") else {}
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Subject access: {html.escape(done.customer.reference)}</title>",
        "<style>body{font-family:sans-serif;max-width:70rem;margin:2rem auto}"
        "table{border-collapse:collapse;width:100%;margin-bottom:1rem}"
        "td,th{border:1px solid #999;padding:.25rem;vertical-align:top;text-align:left}</style>",
        "</head><body>",
        f"<h1>Everything held about {html.escape(str(c.get('name', '')))} "
        f"({html.escape(done.customer.reference)})</h1>",
        f"<p>Exported on {html.escape(done.exported_at.isoformat())} by "
        f"{html.escape(done.exported_by)}. The data/ folder holds the same as JSON, one file "
        "per table, every column. Staff who decided something about you are named; other "
        "staff are shown by their role and a pseudonym.</p>",
        "<h2>Your record</h2>",
        _table([c], [k for k in c if k != "id"]) if c else "<p>None.</p>",
        "<h2>Letters</h2>",
    ]
    if done.letters:
        parts.append("<ul>")
        for item in done.letters:
            parts.append(
                f"<li>{html.escape(str(item['file']))}: {html.escape(str(item['note']))}</li>"
            )
        parts.append("</ul>")
    else:
        parts.append("<p>None.</p>")
    shown = {name for name, _, _ in SECTIONS}
    for name, title, columns in SECTIONS:
        parts.append(f"<h2>{html.escape(title)}</h2>")
        parts.append(_table(done.tables.get(name, []), columns))
    others = [
        (n, rows) for n, rows in done.tables.items() if rows and n not in shown | {"customers"}
    ]
    for name, rows in others:
        parts.append(f"<h2>{html.escape(name)}</h2>")
        parts.append(_table(rows, [k for k in rows[0] if k != "payload"]))
    parts.append("</body></html>")
    return "\n".join(parts)
