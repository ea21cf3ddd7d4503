"""The ``callguard`` command line (CONTRACT.md), driven through Click as a person would type it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from restrictions import cache, kinds
from restrictions.models import AuditEntry, Customer, PhoneNumber, Restriction, SentLetter
from telephony.cli import main
from telephony.database import database
from telephony.redis_store import redis_client


def count(app: Flask, model: type, *where: Any) -> int:
    with database(app).sessions() as sess:
        return int(sess.scalar(select(func.count()).select_from(model).where(*where)) or 0)


# --- users -------------------------------------------------------------------------------------


def test_users_add_prints_a_working_token_alone_on_the_last_line(runner: Any, client: Any) -> None:
    result = runner.invoke(main, ["users", "add", "jo.supervisor", "--role", "supervisor"])
    assert result.exit_code == 0, result.output
    token = result.stdout.strip().splitlines()[-1]
    assert token.startswith("cg_") and " " not in token
    response = client.post(
        "/api/v1/customers",
        headers={"Authorization": f"Bearer {token}"},
        json={"reference": "R1", "name": "N", "phone_numbers": ["+447400100001"]},
    )
    assert response.status_code == 201


def test_users_add_refuses_a_duplicate_name_and_an_unknown_role(runner: Any) -> None:
    assert runner.invoke(main, ["users", "add", "jo", "--role", "agent"]).exit_code == 0
    again = runner.invoke(main, ["users", "add", "jo", "--role", "agent"])
    assert again.exit_code == 1 and "already exists" in again.output
    bad = runner.invoke(main, ["users", "add", "kim", "--role", "boss"])
    assert bad.exit_code == 2 and "boss" in bad.output


def test_users_add_with_nothing_on_stdin_says_the_user_has_no_password(runner: Any) -> None:
    made = runner.invoke(main, ["users", "add", "kim", "--role", "agent"], input="")
    assert made.exit_code == 0, made.output
    said = made.stderr.strip().splitlines()
    assert said == [
        "'kim' was made without a password: API only, they cannot sign in to the pages. Set one "
        "with `callguard users password kim` (that also revokes the token below)."
    ]
    assert made.stdout.strip().splitlines()[-1].startswith("cg_"), "the token stays last"

    with_one = runner.invoke(
        main, ["users", "add", "lee", "--role", "agent"], input="correct horse battery staple\n"
    )
    assert with_one.exit_code == 0 and "without a password" not in with_one.output
    machine = runner.invoke(main, ["users", "add", "hms", "--role", "integration"], input="")
    assert machine.exit_code == 0 and machine.stderr == "", "an integration never signs in"


# --- demo --------------------------------------------------------------------------------------


def test_demo_refuses_a_production_or_non_empty_database_unless_forced(
    app: Flask, runner: Any, make_customer: Callable[..., Any], tmp_path: Path
) -> None:
    refused = runner.invoke(main, ["demo"])  # the tests' PostgreSQL: it may be production
    assert refused.exit_code == 1 and "not the zero-setup SQLite database" in refused.output
    assert count(app, Customer) == 0
    sqlite = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'try.db'}"}
    sqlite.pop("REDIS_URL", None)

    def callguard(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-c", "from telephony.cli import main; main()", *args]
        return subprocess.run(command, env=sqlite, capture_output=True, text=True, timeout=60)

    assert callguard("db", "upgrade").returncode == 0
    assert callguard("demo").returncode == 0, "the zero set-up is seeded"
    assert callguard("demo").returncode == 0, "and again"
    make_customer(numbers=("+447400199999",))  # real data, in the tests' database
    forced = runner.invoke(main, ["demo", "--force"])
    assert forced.exit_code == 0, forced.output


def test_demo_seeds_every_kind_of_restriction_and_can_run_again(app: Flask, runner: Any) -> None:
    first = runner.invoke(main, ["demo", "--force"])
    assert first.exit_code == 0, first.output
    assert "demo.supervisor" in first.output and "API token" in first.output
    with database(app).sessions() as sess:
        seeded = set(sess.scalars(select(Restriction.kind)))
    assert seeded == {k.name for k in kinds.all_kinds()} and len(seeded) >= 6
    with database(app).sessions() as sess:  # each notice recorded has its letter kept as sent
        noticed = set(
            sess.scalars(select(Restriction.id).where(Restriction.notice_sent_on.is_not(None)))
        )
        kept = {
            (r, k, len(pdf or b""))
            for r, k, pdf in sess.execute(
                select(SentLetter.restriction_id, SentLetter.kind, SentLetter.pdf)
            )
        }
    assert noticed and {r for r, _, _ in kept} == noticed
    assert all(k in ("decision", "urgent_notice") and size > 1000 for _, k, size in kept)
    customers = count(app, Customer)
    second = runner.invoke(main, ["demo", "--force"])
    assert second.exit_code == 0 and "already there" in second.output
    assert count(app, Customer) == customers


# --- import customers --------------------------------------------------------------------------

GOOD_AND_BAD = """reference,name,phone_numbers,language
HMS-1,Ann Able,07400 100001;01332 123456,en-GB
HMS-2,Bob Baker,12345,en-GB
HMS-3,Cat Cole,+447400100003,fr-FR
HMS-4,Dan Dale,+447400100004,cy-GB
HMS-1,Ann Again,+447400100009,en-GB
HMS-5,Eve Evans,07400 100004,
HMS-6,,+447400100006,
HMS-7,Gus Green,+447400100007,pl-PL
"""


def write(tmp_path: Path, text: str, name: str = "customers.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_import_lands_good_rows_and_reports_bad_ones_by_line(
    app: Flask, runner: Any, tmp_path: Path
) -> None:
    result = runner.invoke(main, ["import", "customers", str(write(tmp_path, GOOD_AND_BAD))])
    assert result.exit_code == 0, result.output
    assert "line 3: '12345' is not a valid phone number" in result.output
    assert "line 4: language must be one of" in result.output
    assert "line 6: reference HMS-1 is also on line 2" in result.output
    assert "line 7: +447400100004 is also given to HMS-4 on line 5" in result.output
    assert "line 8: name is required" in result.output
    assert "imported 3, updated 0, unchanged 0, skipped 5" in result.output
    with database(app).sessions() as sess:
        refs = set(sess.scalars(select(Customer.reference)))
        assert refs == {"HMS-1", "HMS-4", "HMS-7"}
        ann = sess.scalar(select(Customer).where(Customer.reference == "HMS-1"))
        assert ann is not None and [n.e164 for n in ann.numbers] == [
            "+447400100001",
            "+441332123456",
        ]
    assert count(app, PhoneNumber) == 4
    hit, profile = cache.read(redis_client(app), "+441332123456")
    assert hit and profile is not None and profile.reference == "HMS-1"


def test_a_rerun_updates_instead_of_duplicating(app: Flask, runner: Any, tmp_path: Path) -> None:
    first = "reference,name,phone_numbers,language\nHMS-1,Ann Able,07400100001,en-GB\n"
    runner.invoke(main, ["import", "customers", str(write(tmp_path, first))])
    second = (
        "reference,name,phone_numbers,language\n"
        "HMS-1,Ann Able-Smith,07400100002,cy-GB\n"
        "HMS-2,Bea,07400100003,\n"
    )
    result = runner.invoke(main, ["import", "customers", str(write(tmp_path, second, "b.csv"))])
    assert "imported 1, updated 1, unchanged 0, skipped 0" in result.output
    again = runner.invoke(main, ["import", "customers", str(write(tmp_path, second, "b.csv"))])
    assert "imported 0, updated 0, unchanged 2, skipped 0" in again.output
    assert count(app, Customer) == 2
    assert count(app, AuditEntry, AuditEntry.action == "customer.updated") == 1
    assert cache.read(redis_client(app), "+447400100001") == (False, None)
    hit, profile = cache.read(redis_client(app), "+447400100002")
    assert profile is not None and profile.name == "Ann Able-Smith" and profile.language == "cy-GB"


def test_a_number_owned_by_an_existing_customer_is_a_bad_row(
    app: Flask, runner: Any, tmp_path: Path, make_customer: Callable[..., Any]
) -> None:
    make_customer(reference="OLD-1", numbers=("+447400100001",))
    text = "reference,name,phone_numbers,language\nHMS-1,Ann,07400100001,en-GB\n"
    result = runner.invoke(main, ["import", "customers", str(write(tmp_path, text))])
    assert "line 2: phone number +447400100001 already belongs to customer OLD-1" in result.output
    assert count(app, Customer) == 1


def test_a_file_without_the_columns_is_refused(runner: Any, tmp_path: Path) -> None:
    result = runner.invoke(main, ["import", "customers", str(write(tmp_path, "ref,name\nx,y\n"))])
    assert result.exit_code == 1 and "missing reference, phone_numbers, language" in result.output


@pytest.mark.slow
def test_import_of_thousands_of_rows(app: Flask, runner: Any, tmp_path: Path) -> None:
    lines = ["reference,name,phone_numbers,language"]
    lines += [f"BULK-{i},Person {i},+4474001{i:05d},en-GB" for i in range(2000)]
    result = runner.invoke(main, ["import", "customers", str(write(tmp_path, "\n".join(lines)))])
    assert "imported 2000, updated 0, unchanged 0, skipped 0" in result.output
    assert count(app, PhoneNumber) == 2000


# --- counters, database ------------------------------------------------------------------------


def test_counters_rebuild_restores_the_routing_cache(
    app: Flask, runner: Any, make_customer: Callable[..., Any], redis_conn: Any
) -> None:
    make_customer(numbers=("+447400100001", "+447400100002"))
    redis_conn.flushdb()
    result = runner.invoke(main, ["counters", "rebuild"])
    assert result.exit_code == 0 and "routing cache: 2 numbers" in result.output
    hit, profile = cache.read(redis_client(app), "+447400100002")
    assert hit and profile is not None


def test_db_upgrade_builds_a_sqlite_database_from_nothing_without_a_secret_key(
    tmp_path: Path,
) -> None:
    from click.testing import CliRunner
    from sqlalchemy import create_engine

    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    result = CliRunner().invoke(
        main, ["db", "upgrade"], env={"DATABASE_URL": url, "SECRET_KEY": None}
    )
    assert result.exit_code == 0, result.output
    engine = create_engine(url)
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Customer)) == 0
    engine.dispose()


def test_the_cli_is_callguards_own() -> None:
    from click.testing import CliRunner

    runner = CliRunner()
    helped = runner.invoke(main, ["--help"])
    assert helped.exit_code == 0
    for command in ("db", "users", "demo", "import", "counters", "simulate-call", "worker"):
        assert command in helped.output
    for flask_option in ("--env-file", "--app", "--debug"):
        assert flask_option not in helped.output
    version = runner.invoke(main, ["--version"])
    assert version.exit_code == 0 and version.output.startswith("callguard, version ")


def test_a_missing_setting_is_one_clear_line(tmp_path: Path) -> None:
    from click.testing import CliRunner

    config = tmp_path / "callguard.toml"
    config.write_text('[routes]\ndefault = "dial:not-a-number"\n', encoding="utf-8")
    result = CliRunner().invoke(
        main, ["demo"], env={"CALLGUARD_CONFIG": str(config), "DATABASE_URL": "sqlite://"}
    )
    assert result.exit_code == 1
    assert result.output.startswith("Error: routes.default:")
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


# --- simulate-call -------------------------------------------------------------------------------


def test_simulate_call_prints_what_the_caller_hears(
    app: Flask,
    runner: Any,
    live_server: str,
    make_customer: Callable[..., Any],
    restrict: Callable[..., Any],
) -> None:
    customer = make_customer()
    restrict(customer, kind="written_only")
    result = runner.invoke(
        main, ["simulate-call", "+447400100001", "--url", live_server, "--digits", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "[press a key now: 1 for emergency repairs]" in result.output
    assert "in writing only" in result.output
    assert "[caller presses 1]" in result.output
    assert "[dialling +441332000999]" in result.output


def test_simulate_call_for_an_unrestricted_caller(runner: Any, live_server: str) -> None:
    result = runner.invoke(main, ["simulate-call", "+447400100099", "--url", live_server])
    assert result.exit_code == 0, result.output
    assert "[waiting in conference cg-CA" in result.output


def test_simulate_call_explains_a_server_that_refuses(
    app: Flask, runner: Any, live_server: str
) -> None:
    app.config["TWILIO_AUTH_TOKEN"] = "not-the-servers"
    result = runner.invoke(main, ["simulate-call", "+447400100099", "--url", "http://127.0.0.1:1"])
    assert result.exit_code == 1 and "could not reach" in result.output


def test_worker_burst_processes_queued_and_stored_events(
    app: Flask, runner: Any, twilio: Any, make_customer: Callable[..., Any]
) -> None:
    """`callguard worker` (the Procfile's worker) runs the queue, starting with a sweep."""
    from restrictions.models import Call, CallEvent

    make_customer()
    params = {
        **twilio.call_params("+447400100001"),
        "CallStatus": "completed",
        "CallDuration": "42",
        "SequenceNumber": "3",
    }
    assert twilio.post("/twilio/voice/status", params).status_code == 204
    result = runner.invoke(main, ["worker", "--burst"])
    assert result.exit_code == 0, result.output
    assert count(app, CallEvent, CallEvent.processed_at.is_(None)) == 0
    with database(app).sessions() as sess:
        call = sess.scalar(select(Call).where(Call.call_sid == params["CallSid"]))
        assert call is not None and call.duration_seconds == 42 and call.counted_at is not None


def test_purge_dry_run_prints_what_would_go_and_changes_nothing(
    app: Flask, runner: Any, make_customer: Callable[..., Any]
) -> None:
    from datetime import UTC, datetime, timedelta

    from restrictions.models import Call

    customer = make_customer()
    with database(app).sessions() as sess:
        sess.add(
            Call(
                call_sid="CA" + "5" * 32,
                customer_id=customer.id,
                from_number="+447400100001",
                started_at=datetime.now(UTC) - timedelta(days=1000),
            )
        )
        sess.commit()
    dry = runner.invoke(main, ["purge", "--dry-run"])
    assert dry.exit_code == 0 and "calls deleted: 1" in dry.output
    assert "nothing was changed" in dry.output and count(app, Call) == 1
    done = runner.invoke(main, ["purge"])
    assert done.exit_code == 0 and "calls deleted: 1" in done.output
    assert count(app, Call) == 0
