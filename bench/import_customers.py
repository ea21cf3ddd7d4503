"""How fast ``callguard import customers`` lands a housing-system export: rows per second.

For each size (1,000, 100,000 and 1,000,000 customers; BENCH_IMPORT_SIZES=1000,100000 to choose)
it writes a CSV (one or two numbers a customer, written as people write them, and a few bad rows),
creates its own database afresh (callguard_bench_import, migrated to head, on the benchmarks'
own PostgreSQL and Redis) and prints:

- baseline: a bare ``COPY`` of the same file into a temporary table with the same four text
  columns, measured in the same run (what PostgreSQL takes just to receive the file);
- import: the command end to end (counting the lines, reading, checking, writing, auditing and
  refilling the routing cache), in rows per second and as a ratio to the baseline;
- re-run: the same command on the same file again (every row unchanged).

After each run it checks that the database and the routing cache hold what the file says.

Needs PostgreSQL and Redis on localhost (``make bench``).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from redis import Redis
from sqlalchemy import func, make_url, select

from bench import servers
from bench.inbound import app_for, fresh_database
from restrictions import cache
from restrictions.models import AuditEntry, Customer, PhoneNumber
from telephony.cli import main as cli
from telephony.database import database

DB = servers.database_url("callguard_bench_import")
REDIS = servers.redis_url()
SIZES = [int(s) for s in os.environ.get("BENCH_IMPORT_SIZES", "1000,100000,1000000").split(",")]


def row(i: int, rows: int) -> tuple[str, list[str]]:
    """Customer ``i`` of ``rows`` as a CSV line, and its numbers in E.164 (none if the row is
    bad). Every other customer has a second number; numbers are written as E.164, as national
    numbers with a space, or with the area code in brackets; a quarter have a blank or a Welsh
    language. Bad rows (a number that is not one, no name, a reference or a number the row before
    has) at a quarter, half and three quarters of the file and every 50,000 rows."""
    mobile = f"+4475{i:08d}" if i % 3 else f"07{500 + i // 10**6:03d} {i % 10**6:06d}"
    numbers = [f"+4475{i:08d}"]
    second = ""
    if i % 2 == 0:
        if i % 4 == 0:
            second, e164 = f";(0113) {2_000_000 + i:07d}", f"+44113{2_000_000 + i:07d}"
        else:
            second, e164 = f";+4478{i:08d}", f"+4478{i:08d}"
        numbers.append(e164)
    language = "cy-GB" if i % 10 == 0 else "" if i % 7 == 0 else "en-GB"
    ref, name = f"HMS-{i:07d}", f'"Customer {i}, Flat {i % 97}"'
    bad = {rows // 4 + 3: 0, rows // 2 + 3: 1, 3 * rows // 4 + 3: 2}  # never two in a row
    if i in bad or i % 50_000 == 49_999:
        kind = bad.get(i, (i // 50_000 + 3) % 4)
        if kind == 0:
            mobile = "12345"
        elif kind == 1:
            name = ""
        elif kind == 2:
            ref = f"HMS-{i - 1:07d}"
        else:
            mobile, second = f"+4475{i - 1:08d}", ""
        numbers = []
    return f"{ref},{name},{mobile}{second},{language}\n", numbers


@dataclass(frozen=True)
class Export:
    path: Path
    rows: int  # data rows
    good: int  # rows that become customers
    numbers: int  # their numbers


def write_csv(path: Path, rows: int) -> Export:
    good = numbers = 0
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write("reference,name,phone_numbers,language\n")
        for i in range(rows):
            line, e164s = row(i, rows)
            fh.write(line)
            good += bool(e164s)
            numbers += len(e164s)
    return Export(path, rows, good, numbers)


def cache_keys(rows: int, chunk: int = 10_000) -> Iterator[list[str]]:
    """The routing-cache keys of the export's good numbers, in chunks."""
    keys: list[str] = []
    for i in range(rows):
        keys += [cache.key(n) for n in row(i, rows)[1]]
        if len(keys) >= chunk:
            yield keys
            keys = []
    if keys:
        yield keys


def baseline(export: Export) -> float:
    """Seconds for a bare COPY of the file into a temporary table with the same columns."""
    url = make_url(DB).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False)) as conn:
        conn.execute(
            "CREATE TEMPORARY TABLE raw_customers"
            " (reference text, name text, phone_numbers text, language text)"
        )
        start = time.perf_counter()
        with (
            conn.cursor() as cur,
            cur.copy("COPY raw_customers FROM STDIN WITH (FORMAT csv, HEADER true)") as copy,
            export.path.open("rb") as fh,
        ):
            while chunk := fh.read(1 << 20):
                copy.write(chunk)
        elapsed = time.perf_counter() - start
        copied = conn.execute("SELECT count(*) FROM raw_customers").fetchone()
        assert copied is not None and copied[0] == export.rows, copied
    return elapsed


def run_import(app: Any, export: Export) -> tuple[float, str]:
    """The command as typed, on this app (outside its context the command would build an app
    from the environment: the zero-setup SQLite file)."""
    runner = app.test_cli_runner()
    with app.app_context():
        start = time.perf_counter()
        result = runner.invoke(cli, ["import", "customers", str(export.path)])
        elapsed = time.perf_counter() - start
    assert result.exit_code == 0, (result.output, result.exc_info)
    return elapsed, result.stdout.strip().splitlines()[-1]


def check(app: Any, export: Export) -> None:
    """What the import left is what the file says (so the figures are for real work)."""
    with app.app_context(), database(app).sessions() as sess:
        customers = sess.scalar(select(func.count(Customer.id)))
        numbers = sess.scalar(select(func.count(PhoneNumber.id)))
        audited = sess.scalar(select(func.count(AuditEntry.id)))
    assert (customers, numbers, audited) == (export.good, export.numbers, export.good), (
        customers,
        numbers,
        audited,
        export,
    )
    redis = Redis.from_url(REDIS)
    cached = sum(int(redis.exists(*keys)) for keys in cache_keys(export.rows))
    assert cached == export.numbers, (cached, export.numbers)


def main() -> None:
    print(
        f"{'rows':>9}  {'baseline COPY':>15}  {'import':>15}  {'ratio':>6}  {'re-run':>15}"
        "  import summary / re-run summary"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for size in SIZES:
            export = write_csv(Path(tmp) / f"customers-{size}.csv", size)
            fresh_database(DB)
            servers.empty_redis(Redis.from_url(REDIS))
            app = app_for(DATABASE_URL=DB, REDIS_URL=REDIS)
            copy_seconds = baseline(export)
            first, summary = run_import(app, export)
            check(app, export)
            again, again_summary = run_import(app, export)
            check(app, export)
            database(app).dispose()
            servers.empty_redis(Redis.from_url(REDIS))
            copy_rate, rate, rerun = size / copy_seconds, size / first, size / again
            print(
                f"{size:>9,}  {copy_rate:>10,.0f} row/s  {rate:>10,.0f} row/s  "
                f"{rate / copy_rate:>6.1%}  {rerun:>10,.0f} row/s  "
                f"{summary} / {again_summary}",
                flush=True,
            )


if __name__ == "__main__":
    main()
