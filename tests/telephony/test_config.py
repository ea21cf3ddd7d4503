"""The settings table (telephony.config.TUNABLES): README documents exactly its variables with
its defaults, nothing else reads the environment for one, the environment beats a default and a
test's override beats the environment, and a value that cannot be read stops the start naming
its variable."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from restrictions.settings import Settings
from telephony.config import (
    TUNABLES,
    ConfigurationError,
    default_database_url,
    from_environment,
    given,
    load,
)

ROOT = Path(__file__).resolve().parents[2]
NAMES = {t.name for t in TUNABLES}
# where callguard's own code lives; only telephony/config.py may read the environment
SCANNED = ("telephony", "handlers", "restrictions", "migrations")
ALLOWED = {Path("telephony/config.py")}
# os.environ[...], os.environ.get(...), os.getenv(...) and the like (not request.environ):
# the key is the first argument
ENVIRONMENT_READ = re.compile(
    r"(?<![\w.])(?:os\.)?(?:environ\s*\[|environ\s*\.\s*(?:get|pop|setdefault)\s*\(|getenv\s*\()"
    r"\s*(?P<key>[^,\])]*)"
)


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No tunable set by the machine running the tests."""
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def configured(test_config: dict[str, Any] | None = None, *, serving: bool = True) -> Flask:
    """A bare app's configuration as create_app loads it (nothing is built or connected)."""
    app = Flask("telephony")
    load(app, {"TESTING": True, "SETTINGS": Settings(), **(test_config or {})}, serving=serving)
    return app


# --- README ------------------------------------------------------------------------------------


def _cells(row: str) -> list[str]:
    """A Markdown table row's cells; a | inside `code` does not split."""
    cells, current, in_code = [], "", False
    for char in row.strip().strip("|"):
        if char == "`":
            in_code = not in_code
        if char == "|" and not in_code:
            cells.append(current.strip())
            current = ""
        else:
            current += char
    return [*cells, current.strip()]


def readme_table() -> dict[str, str]:
    """README's *Configuration* table: each variable (one a row) and its default cell."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    table: dict[str, str] = {}
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        cells = _cells(line)
        names = re.findall(r"`([A-Z][A-Z0-9_]*)`", cells[0])
        assert len(names) == 1, f"one variable a row, with its own default: {line[:80]}"
        assert names[0] not in table, f"{names[0]} is in README's table twice"
        table[names[0]] = cells[-1]
    return table


def test_readme_lists_exactly_the_tunables() -> None:
    documented = set(readme_table())
    assert documented - NAMES == set(), "in README's table but not in telephony.config.TUNABLES"
    assert NAMES - documented == set(), "in telephony.config.TUNABLES but not in README's table"


@pytest.mark.parametrize("tunable", TUNABLES, ids=lambda t: t.name)
def test_readme_gives_each_tunables_default(tunable: Any) -> None:
    cell = readme_table()[tunable.name]
    # the cell begins with the default; what follows explains it ("`16384` (16 KiB)")
    assert re.match(re.escape(tunable.shown_default) + r"(?![\w`.])", cell), (
        f"README gives {tunable.name}'s default as {cell!r}; the table says "
        f"{tunable.shown_default!r}"
    )


def test_every_tunable_says_what_it_does() -> None:
    for tunable in TUNABLES:
        assert tunable.doc.strip() and "\n" not in tunable.doc, tunable.name
    assert len(NAMES) == len(TUNABLES), "a variable is in the table twice"


# --- one reader --------------------------------------------------------------------------------


def environment_reads(source: str) -> list[str]:
    """The environment reads in ``source`` that could be a tunable's: a tunable's name, or a key
    that is not a string literal. (Copying the whole environment, for a child process, is not a
    read.)"""
    found = []
    for number, line in enumerate(source.splitlines(), 1):
        for match in ENVIRONMENT_READ.finditer(line):
            key = match["key"].strip()
            literal = re.fullmatch(r"""(["'])([^"']*)\1""", key)
            if literal is None or literal[2] in NAMES:
                found.append(f"{number}: {line.strip()}")
    return found


def test_the_scan_finds_a_read() -> None:
    """The control: the check below would see a module reading a setting itself."""
    assert environment_reads('x = int(os.environ.get("WEB_THREADS", 8))')
    assert environment_reads('x = os.environ["LOG_LEVEL"]')
    assert environment_reads('x = os.getenv("LOG_FORMAT") or "text"')
    assert environment_reads("x = os.environ.get(key)")
    assert environment_reads('x = environ.get("REDIS_URL")')
    assert not environment_reads("request.environ.get('wsgi.input_terminated')")
    assert not environment_reads('home = os.environ.get("HOME")')
    assert not environment_reads("env = dict(os.environ)")


def test_no_module_but_the_table_reads_a_tunable_from_the_environment() -> None:
    offenders = {}
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if relative in ALLOWED:
                continue
            reads = environment_reads(path.read_text(encoding="utf-8"))
            if reads:
                offenders[str(relative)] = reads
    assert not offenders, f"read these through telephony.config (app.config[...]): {offenders}"


# --- defaults, the environment, a test's overrides ---------------------------------------------

POST_PROCESSED = {"SECRET_KEY", "TWILIO_WEBHOOK_ALGORITHM"}  # made or renamed once loaded


@pytest.mark.usefixtures("clean_environment")
@pytest.mark.parametrize("serving", [True, False], ids=["web", "cli"])
def test_with_nothing_set_each_tunable_has_its_default(serving: bool) -> None:
    config = configured(serving=serving).config
    for tunable in TUNABLES:
        if tunable.name not in POST_PROCESSED:
            assert config[tunable.name] == tunable.default_for(serving=serving), tunable.name
    assert config["DATABASE_URL"] == default_database_url()
    assert config["LOG_FORMAT"] == "text"  # no DATABASE_URL in the environment: make run
    assert config["TWILIO_WEBHOOK_ALGORITHM"] == "HMAC_SHA1"
    assert config["DATABASE_POOL_SIZE"] == (8 if serving else 3)


# (variable, the environment's text, what it reads as, a test's override)
OVERRIDES: list[tuple[str, str, Any, Any]] = [
    ("WEB_THREADS", "12", 12, 4),
    ("CALL_PATH_RESERVED_THREADS", "5", 5, 1),
    ("DATABASE_POOL_SIZE", "6", 6, 2),
    ("DATABASE_PGBOUNCER", "true", True, False),
    ("INBOUND_DEADLINE_SECONDS", "0.9", 0.9, 0.3),
    ("READY_MAX_CALLS_WAITING", "7", 7, 70),
    ("LOG_LEVEL", "DEBUG", "DEBUG", "WARNING"),
    ("LOG_FORMAT", "json", "json", "text"),
    ("METRICS_ALLOWED_ADDRESSES", "", "", "10.0.0.0/8"),  # empty: the token only
    ("TWILIO_WEBHOOK_SIGNING_KEYS", "wk_1=s1, wk_2=s2", {"wk_1": "s1", "wk_2": "s2"}, {}),
    ("MIGRATION_LOCK_TIMEOUT", "150ms", "150ms", "1s"),
    ("TRUSTED_PROXY_HOPS", "2", 2, 1),
]


@pytest.mark.parametrize(
    ("name", "raw", "value", "override"), OVERRIDES, ids=[o[0] for o in OVERRIDES]
)
def test_the_environment_beats_the_default_and_a_test_beats_the_environment(
    clean_environment: pytest.MonkeyPatch, name: str, raw: str, value: Any, override: Any
) -> None:
    clean_environment.setenv(name, raw)
    if name == "TWILIO_WEBHOOK_SIGNING_KEYS":  # keys go with HMAC-SHA256
        clean_environment.setenv("TWILIO_WEBHOOK_ALGORITHM", "HMAC-SHA256")
    assert configured().config[name] == value
    assert from_environment(name) == value  # what gunicorn's hooks and Alembic read
    assert given(name)
    others = {"TWILIO_WEBHOOK_ALGORITHM": "HMAC-SHA1"} if override == {} else {}
    assert configured({name: override, **others}).config[name] == override


def test_an_empty_value_is_unset(clean_environment: pytest.MonkeyPatch) -> None:
    clean_environment.setenv("PUBLIC_BASE_URL", "")
    clean_environment.setenv("WEB_THREADS", "")
    config = configured().config
    assert (config["PUBLIC_BASE_URL"], config["WEB_THREADS"]) == ("http://localhost:5000", 8)
    assert not given("WEB_THREADS")


def test_a_default_that_depends_on_the_process(clean_environment: pytest.MonkeyPatch) -> None:
    assert from_environment("DATABASE_AUTOCOMMIT_POOL_SIZE") == 4
    assert from_environment("DATABASE_AUTOCOMMIT_POOL_SIZE", serving=False) == 1
    clean_environment.setenv("DATABASE_AUTOCOMMIT_POOL_SIZE", "2")
    assert configured(serving=False).config["DATABASE_AUTOCOMMIT_POOL_SIZE"] == 2


def test_only_a_tunable_is_read() -> None:
    with pytest.raises(KeyError):
        from_environment("HOME")


# --- a value that cannot be read ---------------------------------------------------------------

# (variable, a value that cannot be read, what the one line says it must be)
BAD: list[tuple[str, str, str]] = [
    ("WEB_THREADS", "abc", "WEB_THREADS must be a whole number, not 'abc'"),
    ("CALL_PATH_RESERVED_THREADS", "-1", "CALL_PATH_RESERVED_THREADS must be a whole number"),
    ("MAX_API_BODY_BYTES", "64 KiB", "MAX_API_BODY_BYTES must be a whole number"),
    ("WORKER_METRICS_PORT", "nine", "WORKER_METRICS_PORT must be a whole number"),
    ("DATABASE_PGBOUNCER", "maybe", "DATABASE_PGBOUNCER must be 1 or 0"),
    ("REDIS_TIMEOUT_SECONDS", "0", "REDIS_TIMEOUT_SECONDS must be a number of seconds above 0"),
    ("READY_DEADLINE_SECONDS", "soon", "READY_DEADLINE_SECONDS must be a number of seconds"),
    ("TWILIO_WEBHOOK_ALGORITHM", "bogus", "TWILIO_WEBHOOK_ALGORITHM must be HMAC-SHA1 or"),
    ("TRUSTED_PROXY_HOPS", "two", "TRUSTED_PROXY_HOPS must be a whole number of proxies"),
]


@pytest.mark.parametrize(("name", "raw", "says"), BAD, ids=[b[0] for b in BAD])
def test_a_value_that_cannot_be_read_stops_the_start_naming_it(
    clean_environment: pytest.MonkeyPatch, name: str, raw: str, says: str
) -> None:
    clean_environment.setenv(name, raw)
    for serving in (True, False):  # the web and the commands alike
        with pytest.raises(ConfigurationError) as refused:
            configured(serving=serving)
        assert str(refused.value).startswith(says) and "\n" not in str(refused.value)
    if name != "TWILIO_WEBHOOK_ALGORITHM":  # checked with the signing keys, once loaded
        with pytest.raises(ConfigurationError, match=name):
            from_environment(name)


def test_create_app_refuses_a_bad_number_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, app_config: dict[str, Any]
) -> None:
    from telephony import create_app
    from telephony.database import database

    monkeypatch.setenv("WEB_THREADS", "abc")
    with pytest.raises(ConfigurationError, match="WEB_THREADS must be a whole number"):
        create_app(app_config)
    # a test's override is taken as given, whatever the environment says
    monkeypatch.setenv("WEB_THREADS", "12")
    made = create_app({**app_config, "WEB_THREADS": 3})
    try:
        assert made.config["WEB_THREADS"] == 3
    finally:
        database(made).dispose()
