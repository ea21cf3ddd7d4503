"""How fast ``callguard import customers`` lands a housing-system export: rows per second.

Writes a CSV of N rows (default 20,000; BENCH_ROWS), imports it into a fresh PostgreSQL database,
then imports it again (the re-run path: every row unchanged), and prints both rates.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select

from bench.inbound import REDIS, app_for, fresh_database
from restrictions.models import Customer
from telephony.cli import main as cli
from telephony.database import database

ROWS = int(os.environ.get("BENCH_ROWS", "20000"))


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8") as fh:
        fh.write("reference,name,phone_numbers,language\n")
        for i in range(rows):
            numbers = f"+4474{i:08d}" + (f";+4479{i:08d}" if i % 4 == 0 else "")
            fh.write(f"HMS-{i:06d},Customer {i},{numbers},{'cy-GB' if i % 10 == 0 else 'en-GB'}\n")


def main() -> None:
    fresh_database()
    app = app_for(REDIS_URL=REDIS)
    runner = app.test_cli_runner()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "customers.csv"
        write_csv(path, ROWS)
        for label in ("first import", "re-run (unchanged)"):
            start = time.perf_counter()
            result = runner.invoke(cli, ["import", "customers", str(path)])
            elapsed = time.perf_counter() - start
            assert result.exit_code == 0, result.output
            summary = result.stdout.strip().splitlines()[-1]
            print(
                f"{label:<20} {ROWS} rows in {elapsed:6.1f} s = {ROWS / elapsed:7.0f} rows/s"
                f"  ({summary})"
            )
    with app.app_context(), database(app).sessions() as sess:
        print(f"customers in the database: {sess.scalar(select(func.count(Customer.id)))}")


if __name__ == "__main__":
    main()
