"""Settings checked at start-up (telephony.startup): a wrong one stops the web process and the
worker with one line naming it, no traceback; one that is safer served on is logged at every
start and fails /readyz."""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from restrictions.settings import SettingsError
from telephony import create_app
from telephony.cli import main
from telephony.config import ConfigurationError, check_environment
from telephony.database import database
from tests.conftest import AUTH_TOKEN, TEST_DATABASE_URL, TEST_REDIS_URL

ROOT = Path(__file__).resolve().parents[2]
BAD_TIMEZONE = 'timezone = "Europe/Londn"\n'
BAD_ROUTE = '[routes]\ndefault = "dail:+441332000100"\n'

# (what is wrong, the environment that says it, the setting the one line must name)
BAD_SETTINGS: list[tuple[str, dict[str, str | None], str]] = [
    ("timezone", {"CALLGUARD_CONFIG": BAD_TIMEZONE}, "timezone"),
    ("route", {"CALLGUARD_CONFIG": BAD_ROUTE}, "routes.default"),
    ("http origin", {"PUBLIC_BASE_URL": "http://calls.example.org"}, "PUBLIC_BASE_URL"),
    ("no auth token", {"TWILIO_AUTH_TOKEN": None}, "TWILIO_AUTH_TOKEN"),
    ("redis scheme", {"REDIS_URL": "http://:s3cret@redis.example.org:6379/0"}, "REDIS_URL"),
    ("proxy hops", {"TRUSTED_PROXY_HOPS": "two"}, "TRUSTED_PROXY_HOPS"),
]
IDS = [name for name, _, _ in BAD_SETTINGS]

# every setting the checks read, so the machine's own environment cannot decide a test
CLEARED = (
    "DATABASE_URL",
    "SECRET_KEY",
    "REDIS_URL",
    "REDIS_SENTINELS",
    "REDIS_SENTINEL_MASTER",
    "PUBLIC_BASE_URL",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_WEBHOOK_ALGORITHM",
    "TWILIO_WEBHOOK_SIGNING_KEYS",
    "CALLGUARD_CONFIG",
    "TRUSTED_PROXY_HOPS",
    "PROMETHEUS_MULTIPROC_DIR",
    "WORKER_METRICS_PORT",
)


def production_env(tmp_path: Path, changes: dict[str, str | None]) -> dict[str, str]:
    """The environment of a real deployment (a real DATABASE_URL: nothing connects to it
    before the checks), with ``changes``; a CALLGUARD_CONFIG value is the file's text."""
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env.update(
        DATABASE_URL=TEST_DATABASE_URL,
        SECRET_KEY="a-secret-for-this-test",
        REDIS_URL=TEST_REDIS_URL,
        PUBLIC_BASE_URL="https://calls.example.org",
        TWILIO_ACCOUNT_SID="AC" + "0" * 31 + "1",
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        LOG_FORMAT="text",
    )
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        elif key == "CALLGUARD_CONFIG":
            path = tmp_path / "callguard.toml"
            path.write_text(value, encoding="utf-8")
            env[key] = str(path)
        else:
            env[key] = value
    return env


def use_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for key in CLEARED:
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)


@pytest.mark.parametrize(("changes", "named"), [(c, n) for _, c, n in BAD_SETTINGS], ids=IDS)
def test_create_app_refuses_a_bad_setting_naming_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, changes: dict[str, str | None], named: str
) -> None:
    use_env(monkeypatch, production_env(tmp_path, changes))
    with pytest.raises((ConfigurationError, SettingsError)) as refused:
        create_app()
    assert named in str(refused.value) and "\n" not in str(refused.value)
    # gunicorn's master asks first, and prints a RuntimeError's message on one line
    with pytest.raises(ConfigurationError, match=named.replace(".", r"\.")):
        check_environment()


def test_the_same_environment_with_nothing_wrong_starts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The control: the refusals above are each setting's, not the environment's."""
    use_env(
        monkeypatch, production_env(tmp_path, {"CALLGUARD_CONFIG": 'timezone = "Europe/Paris"'})
    )
    check_environment()
    app = create_app()
    try:
        assert app.config["TRUSTED_PROXY_HOPS"] == 0
    finally:
        database(app).dispose()


@pytest.mark.parametrize(
    "origin", ["http://localhost:5000", "http://127.0.0.1:8000", "https://calls.example.org"]
)
def test_http_is_only_for_localhost(app_config: dict[str, Any], origin: str) -> None:
    assert create_app({**app_config, "PUBLIC_BASE_URL": origin}).config["PUBLIC_BASE_URL"]
    for bad in ("http://calls.example.org", "ftp://calls.example.org", "calls.example.org"):
        with pytest.raises(ConfigurationError, match="PUBLIC_BASE_URL"):
            create_app({**app_config, "PUBLIC_BASE_URL": bad})


def test_a_command_other_than_the_worker_needs_no_web_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``callguard users add`` and the rest build the app with serving=False: no auth token or
    https origin is needed to manage users, but a REDIS_URL that is not Redis is refused."""
    env = production_env(tmp_path, {"TWILIO_AUTH_TOKEN": None, "PUBLIC_BASE_URL": "http://x.org"})
    use_env(monkeypatch, env)
    database(create_app(serving=False)).dispose()
    monkeypatch.setenv("REDIS_URL", "127.0.0.1:6379")
    with pytest.raises(ConfigurationError, match="REDIS_URL"):
        create_app(serving=False)


def procfile(process: str) -> str:
    for line in (ROOT / "Procfile").read_text(encoding="utf-8").splitlines():
        name, _, command = line.partition(":")
        if name.strip() == process:
            return command.strip()
    raise AssertionError(f"no {process} in the Procfile")


@pytest.mark.slow
@pytest.mark.parametrize("process", ["web", "worker"])
def test_the_procfiles_processes_stop_with_one_line_and_no_traceback(
    tmp_path: Path, process: str
) -> None:
    """The Procfile's own command (gunicorn and ``callguard worker``) for each bad setting:
    exit status 1, one ``Error:`` line naming the setting, no traceback, no password echoed."""
    command = procfile(process)
    bin_dir = str(Path(sys.executable).parent)
    running = {}
    for name, changes, named in BAD_SETTINGS:
        case = tmp_path / name.replace(" ", "_")
        case.mkdir()
        env = production_env(case, changes)
        env.update(PORT="0", PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}")
        running[name] = (
            named,
            subprocess.Popen(
                ["bash", "-c", f"exec {command}"],
                cwd=case,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
    try:
        for name, (named, proc) in running.items():
            try:
                out, err = proc.communicate(timeout=90)
            except subprocess.TimeoutExpired:
                raise AssertionError(f"{process} started despite the bad {name}") from None
            shown = f"{process} with a bad {name}: {shlex.quote(err)}"
            assert proc.returncode == 1, shown
            assert "Traceback" not in err + out, shown
            errors = [line for line in err.splitlines() if line.startswith("Error: ")]
            assert len(errors) == 1 and named in errors[0], shown
            assert "s3cret" not in err + out, shown
    finally:
        for _, proc in running.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


# --- served on: logged at every start and failing /readyz -------------------------------------


def test_no_account_sid_is_logged_at_start_and_fails_readiness(
    app_config: dict[str, Any], app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="callguard.startup"):
        served = create_app({**app_config, "TWILIO_ACCOUNT_SID": None})
    logged = [r.getMessage() for r in caplog.records if r.name == "callguard.startup"]
    assert any("TWILIO_ACCOUNT_SID is not set" in line for line in logged), logged
    response = served.test_client().get("/readyz")
    assert response.status_code == 503
    settings = response.get_json()["checks"]["settings"]
    assert not settings["ok"] and "TWILIO_ACCOUNT_SID is not set" in settings["reason"]


def test_a_setting_changed_after_start_fails_readiness(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/readyz").get_json()["checks"]["settings"]["ok"]
    app.config["PUBLIC_BASE_URL"] = "http://calls.example.org"
    settings = client.get("/readyz").get_json()["checks"]["settings"]
    assert not settings["ok"] and "PUBLIC_BASE_URL must be https://" in settings["reason"]


def test_the_worker_logs_what_to_fix_at_start(
    app: Flask, runner: FlaskCliRunner, caplog: pytest.LogCaptureFixture
) -> None:
    app.config["TWILIO_ACCOUNT_SID"] = None
    with caplog.at_level(logging.WARNING, logger="callguard.startup"):
        result = runner.invoke(main, ["worker", "--burst"])
    assert result.exit_code == 0, result.output
    logged = [r.getMessage() for r in caplog.records if r.name == "callguard.startup"]
    assert logged == [
        "worker started with a setting to fix: TWILIO_ACCOUNT_SID is not set: nobody can be rung"
    ], logged


def test_the_worker_refuses_what_the_web_refuses(app: Flask, runner: FlaskCliRunner) -> None:
    app.config["PUBLIC_BASE_URL"] = "http://calls.example.org"
    result = runner.invoke(main, ["worker", "--burst"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: PUBLIC_BASE_URL must be https:// (http:// only for localhost), not "
        "'http://calls.example.org': Twilio signs and calls this URL, and staff sign in on it"
    ]


@pytest.mark.slow
def test_the_worker_stops_on_sigterm_while_redis_is_unreachable(tmp_path: Path) -> None:
    """A deploy stops the old worker with SIGTERM; with Redis unreachable the worker is backing
    off outside rq's loop, and stops anyway (exit 0), without waiting for Redis."""
    import signal

    bin_dir = str(Path(sys.executable).parent)
    env = production_env(tmp_path, {"REDIS_URL": "redis://127.0.0.1:1/0"})
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}")
    proc = subprocess.Popen(
        ["bash", "-c", f"exec {procfile('worker')}"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # until it says it is backing off
            if "the worker retries in" in line:
                break
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=45) == 0  # a guard for a hang, not a measurement
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
