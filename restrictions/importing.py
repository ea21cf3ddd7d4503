"""Importing customers from the housing management system's CSV export.

Columns ``reference,name,phone_numbers,language`` (numbers separated by ``;``), and optionally
``postal_address`` (its lines separated by ``|``; when the column is there, an empty one means no
address, and when it is not, addresses are left as they are). Each row is
validated whole, so a bad row is reported with its line number and skipped and never half-written;
good rows land in batches, each committed. A re-run updates customers by reference instead of
duplicating them, and audits only real changes.

On PostgreSQL (psycopg 3) a batch of rows is decided in Python and written set-based: the rows are
parsed and checked first, what the database holds for them is read in two statements, each row is
then decided in file order exactly as if it had been imported alone (the numbers an earlier row of
the file released are free for a later one; a number still held by another customer is not), and
the batch's new customers, numbers and audit entries are written with ``COPY``. Should another
writer get in between (a unique key trips), the batch is rolled back and imported row by row,
which is also how any other database (SQLite) is served.

A customer's numbers are a set: the same numbers in another order are no change, and a customer's
numbers are kept in the order they were first recorded, new ones after them, which is what the
audit entry's snapshot shows.

Input is bounded as it streams: a field over the csv module's limit (``csv.field_size_limit()``,
128 KiB), a line over MAX_LINE_CHARS, or text that is not UTF-8 (read with
``errors="surrogateescape"``, as ``callguard import customers`` opens the file) is a bad row
like any other, reported with its line number and skipped; what remains of a quoted field that
ran over the limit is read past, never taken for rows of its own.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any, cast

import phonenumbers
import psycopg
from redis import Redis
from sqlalchemy import select, text
from sqlalchemy.orm import Session, selectinload

import prompts
from restrictions import cache
from restrictions.adjustments import public_json
from restrictions.errors import DomainError, Invalid
from restrictions.lifecycle import Actor, _language, create_customer, update_customer
from restrictions.models import Customer
from restrictions.phone import MAX_NUMBERS, REGION, to_e164
from restrictions.resilience import fail_open
from restrictions.routing import CallerProfile
from restrictions.validation import postal_address, required_text

COLUMNS = ("reference", "name", "phone_numbers", "language")
ADDRESS_COLUMN = "postal_address"  # optional
ADDRESS_LINES = "|"  # what separates an address's lines in its column
BATCH = 500  # good rows per commit, row by row
SET_BATCH = 50_000  # rows per batch (one transaction) on PostgreSQL
CACHE_CHUNK = 10_000  # customers read per statement when refreshing the routing cache
MAX_LINE_CHARS = 1024 * 1024  # one line of the file; a row is a few hundred characters
NOT_UTF8 = "the row is not valid UTF-8 (save the file as UTF-8)"


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)
    touched: list[int] = field(default_factory=list)
    stale_numbers: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"imported {self.created}, updated {self.updated}, unchanged {self.unchanged}, "
            f"skipped {len(self.skipped)}"
        )


# --- reading and checking rows (no database) ---------------------------------------------------

# A British number written plainly (``07400 100001``, ``(01332) 123456``, ``+447400100001``) is
# checked against phonenumbers' own GB metadata the way is_valid_number_for_region checks it (the
# general pattern, then one of the kinds', each for the number's length), in one match: what
# to_e164 would make of it, in a fraction of the time. Anything else, and anything this does not
# find valid, goes through to_e164 itself.
_PLAIN_GB = re.compile(r"(?:\+44|0)([1-9][0-9]{8,9})")
_SPACING = str.maketrans("", "", " ()-")


def _gb_patterns() -> dict[int, re.Pattern[str]]:
    """For each national number length _PLAIN_GB lets through, one pattern that a GB number of
    that length is valid by (none: every number goes through to_e164)."""
    meta = phonenumbers.PhoneMetadata.metadata_for_region(REGION)
    if meta is None or meta.general_desc is None:
        return {}
    general = meta.general_desc
    kinds = (
        meta.premium_rate,
        meta.toll_free,
        meta.shared_cost,
        meta.voip,
        meta.personal_number,
        meta.pager,
        meta.uan,
        meta.voicemail,
        meta.fixed_line,
        meta.mobile,
    )
    patterns: dict[int, re.Pattern[str]] = {}
    for length in (9, 10):
        if _fits(general, length):
            alternatives = "|".join(
                f"(?:{d.national_number_pattern})" for d in kinds if d and _fits(d, length)
            )
            if alternatives:
                pattern = f"(?=(?:{general.national_number_pattern})\\Z)(?:{alternatives})"
                patterns[length] = re.compile(pattern)
    return patterns


def _fits(desc: phonenumbers.PhoneNumberDesc | None, length: int) -> bool:
    """Whether phonenumbers would try this kind's pattern on a national number this long."""
    return bool(
        desc is not None
        and desc.national_number_pattern
        and (not desc.possible_length or length in desc.possible_length)
    )


_VALID_GB = _gb_patterns()


def _e164(text: str) -> str:
    plain = _PLAIN_GB.fullmatch(text.translate(_SPACING))
    if plain is not None:
        national = plain.group(1)
        valid = _VALID_GB.get(len(national))
        if valid is not None and valid.fullmatch(national):
            return "+44" + national
    return to_e164(text)


@dataclass(slots=True)
class _Row:
    """A data row as read: its values and what is wrong with it on its own (the checks that
    need the rest of the file or the database come later, in the order ``import_row`` makes
    them)."""

    line: int
    reference: str
    name: str
    language: str
    numbers: list[str]  # E.164, repeats dropped, in the row's order
    numbers_error: str | None
    reference_error: str | None
    fields_error: str | None  # the name's or the language's
    row_error: str | None = None  # the row could not be read at all (its line is too long, say)
    address: tuple[str, ...] | None = None  # its lines (() none); None: no postal_address column

    @property
    def create_error(self) -> str | None:
        return self.reference_error or self.fields_error


class _LineTooLong(Exception):
    pass


class _Quotes:
    """Whether the csv module's default dialect is inside a quoted field after the text fed so
    far (from the start of a record): where a record that failed to read really ends."""

    START, FIELD, QUOTED, QUOTE = range(4)  # QUOTE: just after a quote inside a quoted field
    _FIELD_END = re.compile(r"[,\r\n]")

    def __init__(self) -> None:
        self.state = self.START

    @property
    def open(self) -> bool:
        return self.state == self.QUOTED

    def feed(self, text: str) -> None:
        i, state = 0, self.state
        while i < len(text):
            if state == self.QUOTED:
                i = text.find('"', i)
                if i < 0:
                    break
                state, i = self.QUOTE, i + 1
            elif state == self.FIELD:
                found = self._FIELD_END.search(text, i)
                if found is None:
                    break
                state, i = self.START, found.end()
            else:  # a field's first character, or the one after a quote in a quoted field
                ch = text[i]
                if ch == '"':
                    state = self.QUOTED
                elif ch in ",\r\n":
                    state = self.START
                else:
                    state = self.FIELD
                i += 1
        self.state = state


class _Lines:
    """The file's lines for csv.reader, counted (the header is line 1), each at most
    MAX_LINE_CHARS (a longer one is read past in pieces and raises _LineTooLong), noting
    whether the record being read holds text that was not UTF-8."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.line = 0  # lines read
        self.start = 1  # the line the record being read began on
        self.record: list[str] = []  # its lines as read
        self.undecodable = False
        self.quotes: _Quotes | None = None  # where an overlong line left the record

    def __iter__(self) -> _Lines:
        return self

    def begin(self) -> None:
        self.start, self.record, self.undecodable, self.quotes = self.line + 1, [], False, None

    def _read(self) -> str:
        try:
            return self.stream.readline(MAX_LINE_CHARS + 1)
        except UnicodeDecodeError:
            raise DomainError(
                f"the file is not valid UTF-8 at or after line {self.line + 1}; nothing from"
                " there on was read (save the file as UTF-8)"
            ) from None

    def __next__(self) -> str:
        line = self._read()
        if not line:
            raise StopIteration
        self.line += 1
        if len(line) > MAX_LINE_CHARS:  # read past the rest of it, in pieces
            self.quotes = self._quotes_so_far()
            while line and not line.endswith(("\n", "\r")):
                self.quotes.feed(line)
                line = self._read()
            self.quotes.feed(line)
            raise _LineTooLong
        if not line.isascii() and _SURROGATE.search(line):
            self.undecodable = True
        self.record.append(line)
        return line

    def _quotes_so_far(self) -> _Quotes:
        quotes = _Quotes()
        for line in self.record:
            quotes.feed(line)
        return quotes

    def finish_bad_record(self) -> None:
        """The record failed to read: read past what remains of it when it failed inside a
        quoted field (csv.reader would take the rest of that field for rows)."""
        quotes = self.quotes or self._quotes_so_far()
        while quotes.open:
            line = self._read()
            if not line:
                return
            if line.endswith(("\n", "\r")) or len(line) <= MAX_LINE_CHARS:
                self.line += 1
            quotes.feed(line)


_SURROGATE = re.compile(r"[\ud800-\udfff]")  # what surrogateescape makes of bytes not UTF-8


def _unreadable(exc: Exception) -> str:
    if isinstance(exc, _LineTooLong):
        return f"the line is longer than {MAX_LINE_CHARS} characters"
    if "field limit" in str(exc):
        return f"a field is longer than {csv.field_size_limit()} characters"
    return f"the row cannot be read as CSV ({exc})"


def _records(reader: Iterator[list[str]], lines: _Lines) -> Iterator[list[str] | str]:
    """Each record's values, or why it could not be read (the reason is then a str)."""
    while True:
        lines.begin()
        try:
            values = next(reader)
        except StopIteration:
            return
        except (csv.Error, _LineTooLong) as exc:
            lines.finish_bad_record()
            yield _unreadable(exc)
            continue
        yield NOT_UTF8 if lines.undecodable else values


def _header(reader: Iterator[list[str] | str]) -> tuple[int, int, int, int, int | None]:
    first = next(reader, [])
    if isinstance(first, str):
        raise DomainError(f"line 1, the header: {first}")
    header = [h.strip() for h in first]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise DomainError(
            f"the CSV header must have {', '.join(COLUMNS)}; missing {', '.join(missing)}"
        )
    where = {name: i for i, name in enumerate(header)}  # a repeated column: the last one
    ref, name, numbers, language = (where[c] for c in COLUMNS)
    return ref, name, numbers, language, where.get(ADDRESS_COLUMN)


def _parsed(stream: IO[str], progress: Callable[[int], Any]) -> Iterator[_Row]:
    """Each data row read and checked on its own, ``progress(1)`` for each (blank lines are not
    rows; line numbers count them, and the header is line 1)."""
    lines = _Lines(stream)
    records = _records(csv.reader(lines), lines)
    i_ref, i_name, i_numbers, i_language, i_address = _header(records)
    width = max(i_ref, i_name, i_numbers, i_language, -1 if i_address is None else i_address) + 1
    languages = frozenset(prompts.languages())
    for values in records:
        if not values:
            continue
        progress(1)
        if isinstance(values, str):  # not to be read: reported on the line it began
            yield _Row(lines.start, "", "", "", [], None, None, None, row_error=values)
            continue
        if len(values) < width:
            values += [""] * (width - len(values))
        ref = values[i_ref].strip()
        name = values[i_name].strip()
        language = values[i_language].strip() or "en-GB"
        numbers: list[str] = []
        numbers_error = reference_error = fields_error = None
        try:
            for part in values[i_numbers].split(";"):
                part = part.strip()
                if part:
                    e164 = _e164(part)
                    if e164 not in numbers:
                        numbers.append(e164)
            if not numbers:
                numbers_error = "phone_numbers is empty"
            elif len(numbers) > MAX_NUMBERS:
                numbers_error = f"phone_numbers may hold at most {MAX_NUMBERS} numbers"
        except DomainError as exc:
            numbers_error = exc.message
        # required_text's checks, asked of it only when one fails (for its words)
        if not ref or len(ref) > 64 or "\x00" in ref:
            try:
                required_text(ref, "reference", max_length=64)
            except Invalid as exc:
                reference_error = exc.message
        if not name or len(name) > 200 or "\x00" in name or language not in languages:
            try:
                required_text(name, "name", max_length=200)
                _language(language)
            except Invalid as exc:
                fields_error = exc.message
        address = None
        if i_address is not None:
            try:
                lines_given = values[i_address].split(ADDRESS_LINES)
                address = tuple(postal_address(lines_given) or ())
            except Invalid as exc:
                fields_error = fields_error or exc.message
        yield _Row(
            lines.line,
            ref,
            name,
            language,
            numbers,
            numbers_error,
            reference_error,
            fields_error,
            address=address,
        )


def _batches(parsed: Iterator[_Row], size: int) -> Iterator[list[_Row]]:
    batch: list[_Row] = []
    for row in parsed:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


# --- the import --------------------------------------------------------------------------------


@dataclass(slots=True)
class _Existing:
    """A customer already in the database, as its snapshot needs it."""

    id: int
    name: str
    language: str
    adjustments: str  # JSON text
    numbers: tuple[str, ...]  # in the order they were recorded (PhoneNumber.id)
    address: tuple[str, ...] = ()  # the postal address's lines (() none)


@dataclass(slots=True)
class _Change:
    """A good row that writes: a new customer (``found`` is None) or a changed one."""

    row: _Row
    found: _Existing | None
    numbers: list[str]  # the customer's numbers afterwards, in their stored order
    removed: list[str]
    added: list[str]
    id: int = 0  # the customer's (a new one's once allocated)

    @property
    def address(self) -> tuple[str, ...]:
        """The postal address afterwards: the row's, or as it was when the file has none."""
        if self.row.address is not None or self.found is None:
            return self.row.address or ()
        return self.found.address


@dataclass
class _Plan:
    """What one batch does: each good row in file order (a change, or the id of a customer it
    leaves as it is), the skipped rows, and what the batch claimed in ``seen_*``."""

    good: list[_Change | int] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)
    refs: list[str] = field(default_factory=list)
    numbers: list[str] = field(default_factory=list)

    @property
    def changes(self) -> list[_Change]:
        return [g for g in self.good if isinstance(g, _Change)]


Landed = Callable[[list[int], list[str]], Any]


class _Importer:
    def __init__(self, sess: Session, actor: Actor, landed: Landed | None) -> None:
        self.sess = sess
        self.actor = actor
        self.landed = landed
        self.report = ImportReport()
        # what the file's good rows so far claimed: reference -> line, number -> reference
        self.seen_refs: dict[str, int] = {}
        self.seen_numbers: dict[str, str] = {}

    def _in_file(self, row: _Row) -> str | None:
        """Why the row is bad on its own or against the file's earlier good rows, if it is (the
        checks made before the database is asked, in the order they are made)."""
        if row.row_error is not None:
            return row.row_error
        if row.reference in self.seen_refs:
            return f"reference {row.reference} is also on line {self.seen_refs[row.reference]}"
        if row.numbers_error is not None:
            return row.numbers_error
        for n in row.numbers:
            other = self.seen_numbers.get(n)
            if other is not None and other != row.reference:
                return f"{n} is also given to {other} on line {self.seen_refs[other]}"
        return None

    def _claim(self, row: _Row) -> None:
        self.seen_refs[row.reference] = row.line
        for n in row.numbers:
            self.seen_numbers[n] = row.reference

    # --- row by row: any database; on PostgreSQL, a batch that met another writer ---

    def _tell(self, touched_from: int, stale_from: int) -> None:
        """Hand ``landed`` the customers and stale numbers committed since these positions."""
        touched = self.report.touched[touched_from:]
        stale = self.report.stale_numbers[stale_from:]
        if self.landed is not None and (touched or stale):
            self.landed(touched, stale)

    def row_by_row(self, batch: Iterable[_Row]) -> None:
        touched_from, stale_from = len(self.report.touched), len(self.report.stale_numbers)
        pending = 0
        for row in batch:
            if self.import_row(row):
                pending += 1
                if pending >= BATCH:
                    self.sess.commit()
                    pending = 0
        self.sess.commit()
        self._tell(touched_from, stale_from)

    def import_row(self, row: _Row) -> bool:
        """One row through create_customer or update_customer, in a savepoint."""
        report = self.report
        try:
            reason = self._in_file(row)
            if reason is None and "\x00" in row.reference:  # not even to be looked up
                reason = row.create_error
            if reason is not None:
                raise DomainError(reason)
            with self.sess.begin_nested():
                existing = self.sess.scalar(
                    select(Customer)
                    .where(Customer.reference == row.reference)
                    .options(selectinload(Customer.numbers))
                )
                if existing is None:
                    customer = create_customer(
                        self.sess,
                        self.actor,
                        reference=row.reference,
                        name=row.name,
                        phone_numbers=row.numbers,
                        language=row.language,
                        postal_address=None if row.address is None else list(row.address),
                        refresh_cache=False,
                    )
                    report.created += 1
                else:
                    customer = existing
                    before = [n.e164 for n in existing.numbers]
                    numbers = [n for n in before if n in row.numbers]  # a set, kept in order
                    numbers += [n for n in row.numbers if n not in before]
                    if update_customer(
                        self.sess,
                        self.actor,
                        existing,
                        name=row.name,
                        phone_numbers=numbers,
                        language=row.language,
                        postal_address=None if row.address is None else list(row.address),
                        refresh_cache=False,
                    ):
                        report.updated += 1
                        report.stale_numbers += [n for n in before if n not in numbers]
                    else:
                        report.unchanged += 1
        except DomainError as exc:
            report.skipped.append((row.line, exc.message))
            return False
        self._claim(row)
        report.touched.append(customer.id)
        return True

    # --- set-based, on PostgreSQL with psycopg 3 ---

    def set_based(self, batch: list[_Row]) -> None:
        sess = self.sess
        pg = sess.connection().connection.driver_connection
        assert pg is not None
        with pg.cursor() as cur:
            # a batch's statements each handle up to SET_BATCH rows: more than the 5 s a request
            # gets on a slower database (this transaction only)
            cur.execute("SET LOCAL statement_timeout = '120s'")
            existing, owners = _look_up(cur, batch)
        plan = self._decide(batch, existing, owners)
        try:
            with sess.begin_nested():
                sess.connection()  # the savepoint is made now (SQLAlchemy waits for a use)
                with pg.cursor() as cur:
                    _write(cur, plan, self.actor)
        except psycopg.IntegrityError:
            # Another writer took one of these references or numbers since they were looked
            # up: the batch went back to its savepoint, and each row is decided again, alone.
            for ref in plan.refs:
                del self.seen_refs[ref]
            for n in plan.numbers:
                del self.seen_numbers[n]
            sess.expire_all()
            self.row_by_row(batch)
            return
        sess.commit()
        sess.expire_all()  # the session may hold customers as they were before this batch
        report = self.report
        touched_from, stale_from = len(report.touched), len(report.stale_numbers)
        report.skipped += plan.skipped
        for good in plan.good:
            if isinstance(good, int):
                report.unchanged += 1
                report.touched.append(good)
                continue
            if good.found is None:
                report.created += 1
            else:
                report.updated += 1
                report.stale_numbers += good.removed
            report.touched.append(good.id)
        self._tell(touched_from, stale_from)

    def _decide(
        self, batch: list[_Row], existing: dict[str, _Existing], owners: dict[str, str | None]
    ) -> _Plan:
        """Each row in file order, decided as ``import_row`` would decide it with the database
        as it was before the batch plus what the batch's earlier rows did to it."""
        plan = _Plan()
        for row in batch:
            ref = row.reference
            found = None
            reason = self._in_file(row)
            if reason is None:
                found = existing.get(ref)
                reason = row.create_error if found is None else row.fields_error
            if reason is None:
                for n in row.numbers:
                    owner = owners.get(n)
                    if owner is not None and owner != ref:
                        reason = f"phone number {n} already belongs to customer {owner}"
                        break
            if reason is not None:
                plan.skipped.append((row.line, reason))
                continue
            if found is None:
                plan.good.append(_Change(row, None, row.numbers, [], row.numbers))
            else:
                added = [n for n in row.numbers if n not in found.numbers]
                removed = [n for n in found.numbers if n not in row.numbers]
                address = found.address if row.address is None else row.address
                fields = (row.name, row.language, address)
                if added or removed or fields != (found.name, found.language, found.address):
                    kept = [n for n in found.numbers if n in row.numbers]
                    plan.good.append(_Change(row, found, kept + added, removed, added, found.id))
                    for n in removed:
                        owners[n] = None  # free for a later row
                else:
                    plan.good.append(found.id)
            for n in row.numbers:
                owners[n] = ref
            self._claim(row)
            plan.refs.append(ref)
            plan.numbers += row.numbers
        return plan


# Each looks up its keys one at a time (LATERAL ... LIMIT 1: an index probe per key). Left to
# itself, the planner reads whole tables for a long list of keys, which costs a batch as much
# as the table is large.
_EXISTING = """
SELECT c.reference, c.id, c.name, c.language, c.adjustments::text,
       ARRAY(SELECT p.e164 FROM phone_numbers p WHERE p.customer_id = c.id ORDER BY p.id),
       c.postal_address::text
FROM unnest(%b::text[]) AS r(reference)
CROSS JOIN LATERAL (
    SELECT c.* FROM customers c WHERE c.reference = r.reference LIMIT 1
) AS c
"""
_OWNERS = """
SELECT n.e164, o.reference
FROM unnest(%b::text[]) AS n(e164)
CROSS JOIN LATERAL (
    SELECT c.reference FROM phone_numbers p JOIN customers c ON c.id = p.customer_id
    WHERE p.e164 = n.e164 LIMIT 1
) AS o
"""


def _look_up(cur: Any, batch: list[_Row]) -> tuple[dict[str, _Existing], dict[str, str | None]]:
    """The batch's customers that exist already, by reference, and the owner (reference) of
    each of their numbers and of each number in the batch."""
    cur.execute(_EXISTING, (list({r.reference for r in batch if "\x00" not in r.reference}),))
    existing: dict[str, _Existing] = {}
    owners: dict[str, str | None] = {}
    for ref, id_, name, language, adjustments, numbers, address in cur:
        lines = tuple(json.loads(address) or ()) if address else ()
        existing[ref] = _Existing(id_, name, language, adjustments, tuple(numbers), lines)
        owners.update(dict.fromkeys(numbers, ref))
    # the numbers not already known to be their row's customer's (on a re-run: hardly any)
    cur.execute(_OWNERS, (list({n for r in batch for n in r.numbers if n not in owners}),))
    owners.update(cur)
    return existing, owners


def _snapshot(
    ref: str,
    name: str,
    language: str,
    adjustments: str,
    numbers: Sequence[str],
    address: Sequence[str] = (),
) -> str:
    """lifecycle.customer_snapshot as JSON text (``adjustments`` is the column's JSON text: only
    its typed, public part goes on the audit trail)."""
    return (
        f'{{"reference": {json.dumps(ref)}, "name": {json.dumps(name)}, '
        f'"language": {json.dumps(language)}, "adjustments": {public_json(adjustments)}, '
        f'"phone_numbers": {json.dumps(numbers)}, "postal_address": {json.dumps(list(address))}}}'
    )


def _address_json(address: Sequence[str]) -> str | None:
    """A postal address as the column holds it: JSON text, or NULL for none."""
    return json.dumps(list(address)) if address else None


def _write(cur: Any, plan: _Plan, actor: Actor) -> None:
    """Write the batch's changes: new customers get their ids here."""
    changes = plan.changes
    if not changes:
        return
    now = datetime.now(UTC)
    new = [c for c in changes if c.found is None]
    if new:
        cur.execute(
            "SELECT nextval(pg_get_serial_sequence('customers', 'id')) FROM generate_series(1, %s)",
            (len(new),),
        )
        for change, (id_,) in zip(new, sorted(cur), strict=True):
            change.id = id_
    renamed = [
        (c.id, c.row.name, c.row.language, _address_json(c.address))
        for c in changes
        if c.found is not None
        and (c.row.name, c.row.language, c.address)
        != (c.found.name, c.found.language, c.found.address)
    ]
    if renamed:
        ids, names, languages, addresses = (list(column) for column in zip(*renamed, strict=True))
        cur.execute(
            "UPDATE customers SET name = u.name, language = u.language,"
            " postal_address = u.address::jsonb, updated_at = %s"
            " FROM unnest(%s::int[], %s::text[], %s::text[], %s::text[])"
            " AS u(id, name, language, address)"
            " WHERE customers.id = u.id",
            (now, ids, names, languages, addresses),
        )
    removed = [n for c in changes for n in c.removed]
    if removed:
        cur.execute("DELETE FROM phone_numbers WHERE e164 = ANY(%s::text[])", (removed,))
    if new:
        with cur.copy(
            "COPY customers (id, reference, name, language, adjustments, postal_address,"
            " created_at, updated_at) FROM STDIN"
        ) as copy:
            for c in new:
                row, address = c.row, _address_json(c.address)
                copy.write_row(
                    (c.id, row.reference, row.name, row.language, "{}", address, now, now)
                )
    with cur.copy("COPY phone_numbers (customer_id, e164, created_at) FROM STDIN") as copy:
        for c in changes:
            for n in c.added:
                copy.write_row((c.id, n, now))
    with cur.copy(
        "COPY audit_entries (at, actor_id, actor, action, entity, entity_id, customer_id,"
        " before, after) FROM STDIN"
    ) as copy:
        for c in changes:
            row = c.row
            if c.found is None:
                action, before = "customer.created", "null"
                after = _snapshot(row.reference, row.name, row.language, "{}", c.numbers, c.address)
            else:
                old = c.found
                action = "customer.updated"
                before = _snapshot(
                    row.reference, old.name, old.language, old.adjustments, old.numbers, old.address
                )
                after = _snapshot(
                    row.reference, row.name, row.language, old.adjustments, c.numbers, c.address
                )
            copy.write_row(
                (now, actor.user_id, actor.label, action, "customer", c.id, c.id, before, after)
            )


def import_customers(
    sess: Session,
    stream: IO[str],
    actor: Actor,
    *,
    progress: Callable[[int], Any] = lambda n: None,
    landed: Landed | None = None,
) -> ImportReport:
    """Import the CSV: on PostgreSQL (psycopg 3) in set-based batches of SET_BATCH rows, each
    committed; elsewhere row by row, committing every BATCH good rows.

    ``progress(1)`` is called for each data row as it is read. ``landed(customer_ids,
    stale_numbers)``, when given, is called once each batch has committed, with the customers it
    touched and the numbers it took from them (so the routing cache can be brought up to date
    while the next batch is written); row by row, once at the end. Together they are the
    report's ``touched`` and ``stale_numbers``."""
    importer = _Importer(sess, actor, landed)
    parsed = _parsed(stream, progress)
    dialect = sess.get_bind().dialect
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        for batch in _batches(parsed, SET_BATCH):
            importer.set_based(batch)
        sess.commit()
    else:
        importer.row_by_row(parsed)
    return importer.report


# --- the routing cache -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Unrestricted:
    """What cache.profile_of reads of a customer, for one with no restriction that has not
    ended (so nothing in force and nothing to load)."""

    id: int
    reference: str
    name: str
    language: str
    adjustments: dict[str, Any]
    restrictions: tuple[()] = ()


_PROFILES = """
SELECT c.id, c.reference, c.name, c.language, c.adjustments::text, c.live, p.e164
FROM unnest(CAST(:ids AS integer[])) AS t(id)
CROSS JOIN LATERAL (
    SELECT c.*, EXISTS (
        SELECT FROM restrictions r WHERE r.customer_id = c.id AND r.ended_at IS NULL
    ) AS live
    FROM customers c WHERE c.id = t.id LIMIT 1
) AS c
CROSS JOIN LATERAL (
    SELECT p.e164 FROM phone_numbers p WHERE p.customer_id = c.id ORDER BY p.id OFFSET 0
) AS p
"""


def _profiles(sess: Session, customer_ids: Sequence[int]) -> Iterator[tuple[str, CallerProfile]]:
    """cache.profiles for many customers, on PostgreSQL: most have no restriction that has not
    ended, and are read a chunk at a time in one statement (one index probe each); the few that
    have one go through cache.profiles itself."""
    adjustments: dict[str, dict[str, Any]] = {}  # as stored -> as read (mostly "{}")
    for start in range(0, len(customer_ids), CACHE_CHUNK):
        chunk = list(customer_ids[start : start + CACHE_CHUNK])
        restricted: list[int] = []
        profile: CallerProfile | None = None
        for id_, reference, name, language, stored, live, e164 in sess.execute(
            text(_PROFILES), {"ids": chunk}
        ):
            if live:
                if not restricted or restricted[-1] != id_:
                    restricted.append(id_)
                continue
            if profile is None or profile.customer_id != id_:
                if stored not in adjustments:
                    adjustments[stored] = json.loads(stored)
                customer = _Unrestricted(id_, reference, name, language, adjustments[stored])
                profile = cache.profile_of(cast(Customer, customer))
            yield e164, profile
        if restricted:
            yield from cache.profiles(sess, restricted)


@fail_open(default=0)
def refresh_cache_for(
    sess: Session, redis: Redis, customer_ids: list[int], stale_numbers: Sequence[str] = ()
) -> int:
    """Rewrite the routing cache for the imported customers, in bulk (pipelined)."""
    if sess.get_bind().dialect.name == "postgresql":
        entries = _profiles(sess, customer_ids)
    else:
        entries = cache.profiles(sess, customer_ids)
    return cache.write_profiles(redis, entries, stale_numbers)
