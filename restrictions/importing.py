"""Importing customers from the housing management system's CSV export.

Columns ``reference,name,phone_numbers,language`` (numbers separated by ``;``). Each row is
validated whole and written inside its own savepoint, so a bad row is reported with its line
number and skipped and never half-written; good rows land in batches. A re-run updates customers
by reference instead of duplicating them, and audits only real changes.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from redis import Redis
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from restrictions import cache
from restrictions.errors import DomainError
from restrictions.lifecycle import Actor, create_customer, update_customer
from restrictions.models import Customer
from restrictions.phone import to_e164
from restrictions.resilience import fail_open

COLUMNS = ("reference", "name", "phone_numbers", "language")
BATCH = 500


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


def rows(stream: IO[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) for each data row; a missing column is a clear error up front."""
    reader = csv.DictReader(stream)
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise DomainError(
            f"the CSV header must have {', '.join(COLUMNS)}; missing {', '.join(missing)}"
        )
    reader.fieldnames = header
    for row in reader:
        yield reader.line_num, {k: (v or "").strip() for k, v in row.items() if k}


def _numbers(raw: str) -> list[str]:
    parts = [p.strip() for p in raw.split(";") if p.strip()]
    if not parts:
        raise DomainError("phone_numbers is empty")
    return [to_e164(p) for p in parts]


def import_customers(
    sess: Session,
    stream: IO[str],
    actor: Actor,
    *,
    progress: Callable[[int], Any] = lambda n: None,
) -> ImportReport:
    report = ImportReport()
    seen_refs: dict[str, int] = {}
    seen_numbers: dict[str, tuple[str, int]] = {}
    pending = 0
    for line, row in rows(stream):
        progress(1)
        try:
            ref = row.get("reference", "")
            if ref in seen_refs:
                raise DomainError(f"reference {ref} is also on line {seen_refs[ref]}")
            numbers = _numbers(row.get("phone_numbers", ""))
            for n in numbers:
                if n in seen_numbers and seen_numbers[n][0] != ref:
                    other, other_line = seen_numbers[n]
                    raise DomainError(f"{n} is also given to {other} on line {other_line}")
            with sess.begin_nested():
                existing = sess.scalar(
                    select(Customer)
                    .where(Customer.reference == ref)
                    .options(selectinload(Customer.numbers))
                )
                before = [n.e164 for n in existing.numbers] if existing else []
                fields = {
                    "name": row.get("name"),
                    "phone_numbers": numbers,
                    "language": row.get("language") or "en-GB",
                }
                if existing is None:
                    customer = create_customer(
                        sess, actor, reference=ref, refresh_cache=False, **fields
                    )
                    report.created += 1
                elif update_customer(sess, actor, existing, refresh_cache=False, **fields):
                    customer = existing
                    report.updated += 1
                    report.stale_numbers += [n for n in before if n not in numbers]
                else:
                    customer = existing
                    report.unchanged += 1
            seen_refs[ref] = line
            for n in numbers:
                seen_numbers[n] = (ref, line)
            report.touched.append(customer.id)
        except DomainError as exc:
            report.skipped.append((line, exc.message))
            continue
        pending += 1
        if pending >= BATCH:
            sess.commit()
            pending = 0
    sess.commit()
    return report


@fail_open(default=0)
def refresh_cache_for(
    sess: Session, redis: Redis, customer_ids: list[int], stale_numbers: Sequence[str] = ()
) -> int:
    """Rewrite the routing cache for the imported customers, in bulk (pipelined)."""
    return cache.write_profiles(redis, cache.profiles(sess, customer_ids), stale_numbers)
