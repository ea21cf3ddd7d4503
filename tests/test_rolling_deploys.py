"""Rolling deploys: the Procfile's ``release`` (``callguard db upgrade``) runs while the previous
release still serves, and both releases then serve side by side until the old processes stop.
So a migration only expands (adds); what the previous release reads is dropped or renamed in a
later release, once no running release reads it (migrations/README.md).

Two tests: every migration after 0003 is scanned for what would break the previous release, and
the previous release's own code (commit PREVIOUS_RELEASE, read from git, no network) is run
against a database migrated to head by this release.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from redis import Redis
from sqlalchemy import create_engine, make_url, select, text

from restrictions.lifecycle import Actor, add_restriction, create_customer
from restrictions.models import Call, CallEvent
from restrictions.staff import create_user
from telephony import create_app
from telephony.cli import alembic_config
from telephony.database import database

ROOT = Path(__file__).resolve().parent.parent
VERSIONS = ROOT / "migrations" / "versions"

# The last release before this round's work: what is still serving while `release` migrates.
# Move it on when a release ships (the commit that release was built from).
PREVIOUS_RELEASE = "8f1cd56"

# 0003 dropped the restrictions' appeal columns in the same step that added the appeals table
# that replaced them. A released migration is history and is not edited: it is the one exception.
BEFORE_THE_RULE = {"0001", "0002", "0003"}
# A contract step (a later release dropping what no running release reads any more) is named
# here, with the release that stopped reading it, so a reviewer has decided it. None yet.
CONTRACT_STEPS: dict[str, str] = {}


# --- the scan ------------------------------------------------------------------------------------

DESTRUCTIVE_SQL = re.compile(
    r"\b(DROP\s+(TABLE|COLUMN|VIEW)|RENAME\s+(TO|COLUMN)|ALTER\s+COLUMN\s+\w+\s+TYPE)\b",
    re.IGNORECASE,
)


def _call_name(node: ast.Call) -> str:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _keyword(node: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in node.keywords if k.arg == name), None)


def _is_false(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is False


def breaking_operations(source: str) -> list[str]:
    """What a migration's upgrade does that the previous release could not live with, one line
    each: a drop, a rename, a type change, or a NOT NULL column it would not fill. ``downgrade``
    is not looked at (it undoes a release, it does not run beside one)."""
    tree = ast.parse(source)
    found: list[str] = []
    for top in tree.body:
        if isinstance(top, ast.FunctionDef) and top.name == "downgrade":
            continue
        for node in ast.walk(top):
            if not isinstance(node, ast.Call):
                continue
            name = _call_name(node)
            where = f"line {node.lineno}: {name}"
            if name in ("execute", "text", "exec_driver_sql"):  # SQL written out
                for part in ast.walk(ast.Tuple(elts=list(node.args), ctx=ast.Load())):
                    if isinstance(part, ast.Constant) and isinstance(part.value, str):
                        if DESTRUCTIVE_SQL.search(part.value):
                            found.append(f"{where}: {part.value.strip()[:60]!r}")
            elif name in ("drop_column", "drop_table", "rename_table"):
                found.append(where)
            elif name == "alter_column":
                for renaming in ("new_column_name", "type_"):
                    if _keyword(node, renaming) is not None:
                        found.append(f"{where}({renaming}=…)")
                if _is_false(_keyword(node, "nullable")):
                    found.append(f"{where}(nullable=False)")
            elif name == "add_column":
                column = node.args[-1] if node.args else None
                if (
                    isinstance(column, ast.Call)
                    and _is_false(_keyword(column, "nullable"))
                    and _keyword(column, "server_default") is None
                ):
                    found.append(f"{where}: NOT NULL without a server_default")
    return found


def migrations() -> Iterator[tuple[str, Path]]:
    for path in sorted(VERSIONS.glob("*.py")):
        found = re.search(r"^revision(?:: str)? = ['\"](\w+)['\"]", path.read_text(), re.M)
        assert found, f"{path.name} has no revision"
        yield found[1], path


def test_the_scan_finds_what_breaks_the_previous_release() -> None:
    """The scan itself: each kind of change it must catch, and expand-only changes it must not."""
    breaking = {
        "drop_column": 'with op.batch_alter_table("t") as b:\n    b.drop_column("c")',
        "drop_table": 'op.drop_table("t")',
        "rename column": 'op.alter_column("t", "c", new_column_name="d")',
        "rename table": 'op.rename_table("t", "u")',
        "type change": 'op.alter_column("t", "c", type_=sa.Text())',
        "NOT NULL": 'op.alter_column("t", "c", nullable=False)',
        "NOT NULL column": 'op.add_column("t", sa.Column("c", sa.Integer(), nullable=False))',
        "SQL drop": 'op.execute("ALTER TABLE t DROP COLUMN c")',
        "SQL rename": 'op.execute("ALTER TABLE t RENAME COLUMN c TO d")',
        "SQL in text()": 'op.execute(sa.text("DROP TABLE t"))',
        "split SQL": 'op.execute("ALTER TABLE t " "DROP COLUMN c")',
    }
    for what, body in breaking.items():
        source = "def upgrade():\n" + "\n".join("    " + line for line in body.splitlines())
        assert breaking_operations(source), f"the scan missed a {what}"
    expanding = (
        "def upgrade():\n"
        '    op.add_column("t", sa.Column("c", sa.Integer(), nullable=True))\n'
        '    op.add_column("t", sa.Column("d", sa.Integer(), nullable=False, server_default="0"))\n'
        '    op.create_table("u", sa.Column("id", sa.Integer(), nullable=False))\n'
        '    op.alter_column("t", "e", nullable=True)\n'
        '    op.execute("UPDATE t SET d = 1")\n'
        "def downgrade():\n"
        '    op.drop_table("u")\n'
        '    op.drop_column("t", "c")\n'
    )
    assert breaking_operations(expanding) == []


def test_no_migration_after_0003_drops_or_renames_what_the_previous_release_reads() -> None:
    seen = dict(migrations())
    assert BEFORE_THE_RULE <= set(seen), "the migrations before the rule are history: keep them"
    assert breaking_operations((VERSIONS / seen["0003"].name).read_text()), (
        "0003 is the documented exception: the scan must still see what it dropped"
    )
    offending = {
        f"{revision} ({path.name})": found
        for revision, path in seen.items()
        if revision not in BEFORE_THE_RULE and revision not in CONTRACT_STEPS
        if (found := breaking_operations(path.read_text()))
    }
    assert offending == {}, (
        "these migrations would break the release still serving while `release` runs: expand "
        "now, contract in a later release (migrations/README.md)"
    )


# --- the previous release against this release's schema -----------------------------------------


def previous_release_tree(destination: Path) -> Path:
    """The previous release's code, from this clone's history (``git archive``: no network,
    no worktree left behind)."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git clone: the previous release's code comes from its history")
    git = ["git", "-c", f"safe.directory={ROOT}", "-C", str(ROOT)]
    known = subprocess.run(
        [*git, "cat-file", "-e", f"{PREVIOUS_RELEASE}^{{commit}}"], capture_output=True
    )
    if known.returncode != 0:
        pytest.fail(
            f"commit {PREVIOUS_RELEASE} (the previous release) is not in this clone: fetch the "
            "history (git fetch --unshallow, or a CI checkout with fetch-depth: 0)"
        )
    archive = destination / "previous.tar"
    subprocess.run(
        [*git, "archive", "--format=tar", "-o", str(archive), PREVIOUS_RELEASE,
         "telephony", "restrictions", "handlers", "prompts"],
        check=True,
    )  # fmt: skip
    tree = destination / "previous"
    tree.mkdir()
    subprocess.run(["tar", "-xf", str(archive), "-C", str(tree)], check=True)
    return tree


# Run by the previous release's Python, with only its code importable: signed webhooks and the
# API through its own create_app, and its own worker (rq) for the jobs they queue.
PREVIOUS_RELEASE_SCRIPT = r"""
import json, sys
from pathlib import Path

tree, config = Path(sys.argv[1]).resolve(), json.loads(sys.argv[2])
sid, caller, reference, token = (
    config.pop(k) for k in ("call_sid", "caller", "reference", "token")
)
import telephony, restrictions, handlers
for package in (telephony, restrictions, handlers):
    assert Path(package.__file__).resolve().is_relative_to(tree), package.__file__

from twilio.request_validator import RequestValidator
from telephony import create_app
from telephony.redis_store import queues
from telephony.worker import BurstWorker, take_calls

app = create_app({"TESTING": True, **config})
client = app.test_client()
validator = RequestValidator(config["TWILIO_AUTH_TOKEN"])


def signed(path, params):
    signature = validator.compute_signature(config["PUBLIC_BASE_URL"] + path, params)
    return client.post(path, data=params, headers={"X-Twilio-Signature": signature})


def work():
    with app.app_context():
        both = queues(app)
        take_calls(app, both[0].connection, burst=True)
        BurstWorker(both, connection=both[0].connection).work(burst=True)


call = {
    "AccountSid": config["TWILIO_ACCOUNT_SID"], "ApiVersion": "2010-04-01", "CallSid": sid,
    "CallStatus": "ringing", "Direction": "inbound", "From": caller, "To": "+441332000000",
    "Caller": caller, "Called": "+441332000000",
}
incoming = signed("/twilio/voice/incoming", call)
work()
ended = signed(
    "/twilio/voice/status",
    {**call, "CallStatus": "completed", "CallDuration": "95", "SequenceNumber": "3",
     "CallbackSource": "call-progress-events", "Timestamp": "Tue, 02 Jun 2026 09:30:00 +0000"},
)
work()
customer = client.get(
    "/api/v1/customers/" + reference, headers={"Authorization": "Bearer " + token}
)
print(json.dumps({
    "incoming": [incoming.status_code, incoming.get_data(as_text=True)],
    "status": ended.status_code,
    "customer": [customer.status_code, customer.get_json(silent=True)],
}))
"""


@pytest.fixture
def scratch_database(database_url: str) -> Iterator[str]:
    """An empty database of its own, migrated to head by this release's migrations."""
    from alembic import command

    url = make_url(database_url)
    scratch = url.set(database=f"{url.database}_previous_release")
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{scratch.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{scratch.database}"'))
    rendered = scratch.render_as_string(hide_password=False)
    try:
        command.upgrade(alembic_config(rendered), "head")  # type: ignore[arg-type]
        yield rendered
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{scratch.database}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.slow
def test_the_previous_release_serves_on_this_releases_schema(
    tmp_path: Path,
    scratch_database: str,
    app_config: dict[str, Any],
    redis_conn: Redis,
) -> None:
    """During a deploy both releases serve one database and one Redis: this release migrates
    and records a customer's restriction; the previous release's code routes that customer's
    call by it, stores and processes its status callback, and shows the customer through its
    API; this release then reads what the previous one wrote."""
    tree = previous_release_tree(tmp_path)
    config = {**app_config, "DATABASE_URL": scratch_database}
    config.pop("SETTINGS")  # each release its own built-in defaults (the same organisation)
    current = create_app(config)
    caller, reference, sid = "+447400100004", "DEPLOY-1", "CA" + "d" * 32
    try:
        with database(current).sessions() as sess:
            _, token = create_user(sess, "sam.supervisor", "supervisor", None)
            customer = create_customer(
                sess,
                Actor(None, "test"),
                reference=reference,
                name="Pat Example",
                phone_numbers=[caller],
            )
            add_restriction(
                sess,
                Actor(None, "test"),
                customer,
                {
                    "kind": "written_only",
                    "reason": "Decided at case review",
                    "notice_sent_on": datetime.now(UTC).date().isoformat(),
                },
            )
            sess.commit()

        shared = {
            key: config[key]
            for key in (
                "SECRET_KEY",
                "DATABASE_URL",
                "REDIS_URL",
                "PUBLIC_BASE_URL",
                "TWILIO_ACCOUNT_SID",
                "TWILIO_AUTH_TOKEN",
                "TWILIO_API_BASE_URL",
            )
        }
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CALLGUARD_", "PYTHON"))}
        env["PYTHONPATH"] = str(tree)
        script = tmp_path / "previous_release.py"
        script.write_text(PREVIOUS_RELEASE_SCRIPT, encoding="utf-8")
        argument = {**shared, "call_sid": sid, "caller": caller, "reference": reference}
        ran = subprocess.run(
            [sys.executable, str(script), str(tree), json.dumps({**argument, "token": token})],
            cwd=tree,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert ran.returncode == 0, ran.stderr[-4000:]
        answers = json.loads(ran.stdout.strip().splitlines()[-1])

        # the previous release applied the restriction this release recorded
        status, twiml = answers["incoming"]
        assert status == 200, twiml
        root = ElementTree.fromstring(twiml)
        assert [child.tag for child in root][0] == "Gather", twiml  # emergency repairs first
        assert root[-1].tag == "Hangup" and root.find(".//Conference") is None, twiml
        assert "1 Example Street, Derby DE1 1AA" in "".join(root.itertext()), twiml
        # it stored Twilio's status callback, and its worker processed it
        assert answers["status"] == 204
        status, shown = answers["customer"]
        assert status == 200, shown
        assert [r["kind"] for r in shown["active_restrictions"]] == ["written_only"]
        assert [(c["call_sid"], c["route"]) for c in shown["recent_calls"]] == [
            (sid, "written_only")
        ]

        # and this release reads what the previous one wrote
        with database(current).sessions() as sess:
            call = sess.scalar(select(Call).where(Call.call_sid == sid))
            assert call is not None
            assert (call.route, call.status, call.duration_seconds) == (
                "written_only",
                "completed",
                95,
            )
            (event,) = sess.scalars(select(CallEvent).where(CallEvent.resource_sid == sid))
            assert event.processed_at is not None and event.parked_reason is None
    finally:
        database(current).dispose()


@pytest.fixture
def database_at_0010(database_url: str) -> Iterator[str]:
    """An empty database of its own, migrated to 0010 (one migration short of head)."""
    from alembic import command

    url = make_url(database_url)
    scratch = url.set(database=f"{url.database}_lock_wait")
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{scratch.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{scratch.database}"'))
    rendered = scratch.render_as_string(hide_password=False)
    try:
        command.upgrade(alembic_config(rendered), "0010")  # type: ignore[arg-type]
        yield rendered
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{scratch.database}" WITH (FORCE)'))
        admin.dispose()


def _version(url: str) -> str:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return str(conn.scalar(text("SELECT version_num FROM alembic_version")))
    finally:
        engine.dispose()


def test_release_waits_a_bounded_time_for_a_busy_table_and_goes_on_once_it_is_free(
    database_at_0010: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The serving release holds a lock on ``users`` (a long read); 0011 must alter it. The
    upgrade gives up waiting after MIGRATION_LOCK_TIMEOUT instead of queueing every caller's
    query behind its ALTER, pauses, and finishes once the table is free."""
    from click.testing import CliRunner

    from telephony import cli

    monkeypatch.setenv("DATABASE_URL", database_at_0010)
    monkeypatch.setenv("MIGRATION_LOCK_TIMEOUT", "150ms")
    holder = create_engine(database_at_0010)
    conn = holder.connect()
    conn.execute(text("LOCK TABLE users IN ACCESS SHARE MODE"))  # open transaction: held
    pauses: list[float] = []

    def pause(seconds: float) -> None:
        pauses.append(seconds)
        conn.rollback()  # the serving release's read ends

    monkeypatch.setattr("telephony.cli.time.sleep", pause)
    try:
        result = CliRunner().invoke(cli.main, ["db", "upgrade", "--attempts", "3"])
    finally:
        conn.close()
        holder.dispose()
    assert result.exit_code == 0, result.output
    assert "waited too long for a lock (try 1 of 3)" in result.output
    assert pauses == [1]
    assert _version(database_at_0010) == max(p.name[:4] for p in VERSIONS.glob("0*.py"))  # head


def test_release_that_never_gets_its_lock_fails_with_the_migrations_before_it_kept(
    database_at_0010: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from telephony import cli

    monkeypatch.setenv("DATABASE_URL", database_at_0010)
    monkeypatch.setenv("MIGRATION_LOCK_TIMEOUT", "100ms")
    monkeypatch.setattr("telephony.cli.time.sleep", lambda seconds: None)
    holder = create_engine(database_at_0010)
    with holder.connect() as conn:
        conn.execute(text("LOCK TABLE users IN ACCESS SHARE MODE"))
        result = CliRunner().invoke(cli.main, ["db", "upgrade", "--attempts", "2"])
        conn.rollback()
    holder.dispose()
    assert result.exit_code != 0
    assert "try 1 of 2" in result.output
    assert type(result.exception).__name__ == "OperationalError"
    assert _version(database_at_0010) == "0010"  # nothing half-done
