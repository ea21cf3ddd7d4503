"""The Docker deployment (Dockerfile, compose.yaml, deploy/) says what the Procfile and the README
say: the same processes with the same commands, the Sentinels watching the master the app is told
about, every setting the app needs without a default given, and the app never running as root.

No Docker engine is needed: the files are read, not run."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from restrictions.settings import load_settings
from telephony.config import TUNABLES

ROOT = Path(__file__).resolve().parent.parent
PROCESSES = ("release", "web", "worker", "dialler")

# Settings the README gives no default for that the compose deployment deliberately leaves unset.
NOT_NEEDED = {
    "REDIS_URL": "Redis is reached through the Sentinels (REDIS_SENTINELS, REDIS_SENTINEL_MASTER)",
    "REDIS_PASSWORD": "compose's Redis servers are on its private network, without a password",
    "REDIS_SENTINEL_PASSWORD": "compose's Sentinels are on its private network, without one",
    "TWILIO_WORKSPACE_SID": "only for taskrouter: routes",
    "TWILIO_WEBHOOK_SIGNING_KEYS": "only with TWILIO_WEBHOOK_ALGORITHM=HMAC-SHA256",
    "METRICS_TOKEN": "optional: without it only loopback reads /metrics",
}
# Settings with a default that suits only `make run`: a deployment must give them.
DEPLOYMENT_NEEDS = ("DATABASE_URL", "PUBLIC_BASE_URL", "CALLGUARD_CONFIG")
NO_DEFAULT = ("unset", "none", "required")
# What the env file gives compose.yaml itself (the postgres service, the published port).
COMPOSE_ONLY = ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB", "CALLGUARD_HTTP_PORT")


def _procfile() -> dict[str, str]:
    processes = {}
    for line in (ROOT / "Procfile").read_text(encoding="utf-8").splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() and not line.startswith("#"):
            processes[name.strip()] = command.strip()
    return processes


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    return loaded


def _services() -> dict[str, Any]:
    services: dict[str, Any] = _compose()["services"]
    return services


def _env_example() -> dict[str, str]:
    values = {}
    text = (ROOT / "deploy" / "callguard.env.example").read_text(encoding="utf-8")
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f"deploy/callguard.env.example: not KEY=VALUE: {line!r}"
            values[key.strip()] = value.strip()
    return values


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    instructions = []
    pending = ""
    for raw in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        whole = (pending + line).strip()
        pending = ""
        keyword, _, arguments = whole.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def _dockerfile_env() -> dict[str, str]:
    env = {}
    for keyword, arguments in _dockerfile():
        if keyword == "ENV":
            for pair in shlex.split(arguments):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def _as_run(command: Any) -> list[str]:
    """A compose or Dockerfile command as the words it runs: ``sh -c "exec …"`` unwrapped, and
    compose's ``$$`` (its escape for a ``$`` the container's shell expands) made ``$``."""
    words = shlex.split(command) if isinstance(command, str) else [str(w) for w in command]
    if words[:2] == ["sh", "-c"]:
        assert len(words) == 3, words
        words = shlex.split(words[2])
        if words[:1] == ["exec"]:
            words = words[1:]
    return words


def _compose_command(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    text = command if isinstance(command, str) else " ".join(str(w) for w in command)
    # compose interpolates a lone $ itself, from its own environment, not the container's
    assert "$" not in text.replace("$$", ""), f"unescaped $ in {text!r}"
    return [w.replace("$$", "$") for w in _as_run(command)]


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
    cells.append(current.strip())
    return cells


def _configuration_table() -> dict[str, str]:
    """README's *Configuration* table: each variable and its default cell (a row naming several
    variables with as many comma-separated defaults gives each its own)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Configuration", 1)[1].split("\n## ", 1)[0]
    table: dict[str, str] = {}
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        cells = _cells(line)
        names = re.findall(r"`([A-Z][A-Z0-9_]*)`", cells[0])
        default = cells[-1]
        parts = [p.strip() for p in default.split(",")]
        for i, name in enumerate(names):
            table[name] = parts[i] if len(names) > 1 and len(parts) == len(names) else default
    assert "DATABASE_URL" in table and "SECRET_KEY" in table, "README's table was not found"
    return table


def _needed() -> set[str]:
    table = _configuration_table()
    needed = {name for name, default in table.items() if default.lower().startswith(NO_DEFAULT)}
    needed |= set(DEPLOYMENT_NEEDS)
    return needed - set(NOT_NEEDED)


def _provided() -> set[str]:
    provided = set(_env_example()) | set(_dockerfile_env())
    for name in PROCESSES:
        environment = _services()[name].get("environment") or {}
        provided |= set(environment if isinstance(environment, dict) else [])
        provided |= {e.split("=", 1)[0] for e in environment if isinstance(environment, list)}
    return provided


@pytest.mark.parametrize("name", PROCESSES)
def test_every_procfile_process_is_a_service_running_its_command(name: str) -> None:
    procfile = _procfile()
    assert set(procfile) == set(PROCESSES), "the Procfile's processes changed: update compose.yaml"
    service = _services()[name]
    assert _compose_command(service) == shlex.split(procfile[name])
    assert service["image"] == "callguard:local" and service["build"] == "."
    assert service["env_file"] == "deploy/callguard.env"
    assert (ROOT / (service["env_file"] + ".example")).is_file()


def test_the_image_runs_the_procfile_web_as_a_user_that_is_not_root() -> None:
    instructions = _dockerfile()
    keywords = [k for k, _ in instructions]
    assert keywords.count("CMD") == 1 and "ENTRYPOINT" not in keywords
    cmd_at = keywords.index("CMD")
    users = [args for k, args in instructions[:cmd_at] if k == "USER"]
    final_from = max(i for i, k in enumerate(keywords) if k == "FROM")
    assert users and keywords.index("USER", final_from) < cmd_at, "no USER in the final stage"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0", ""), users[-1]
    cmd = json.loads(instructions[cmd_at][1])  # exec form: no shell of its own around it
    assert _as_run(cmd) == shlex.split(_procfile()["web"])


def test_the_image_is_slim_python_311_with_callguard_and_no_dev_tools() -> None:
    instructions = _dockerfile()
    froms = [args for k, args in instructions if k == "FROM"]
    args = {a.split("=", 1)[0]: a.split("=", 1)[1] for k, a in instructions if k == "ARG"}
    bases = {args.get(f.split()[0].strip("${}"), f.split()[0]) for f in froms}
    assert bases == {"python:3.11-slim-bookworm"}
    runs = " ".join(a for k, a in instructions if k == "RUN")
    assert re.search(r"pip install \.(\s|$)", runs), "pip install . (no extras)"
    assert "[dev]" not in runs
    env = _dockerfile_env()
    assert env["PORT"] == "8000"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    if "PROMETHEUS_MULTIPROC_DIR" in readme:
        assert env["PROMETHEUS_MULTIPROC_DIR"].startswith("/tmp/")
        for name in PROCESSES[1:]:
            assert env["PROMETHEUS_MULTIPROC_DIR"] in _services()[name]["tmpfs"]
    healthchecks = [a for k, a in instructions if k == "HEALTHCHECK"]
    assert len(healthchecks) == 1 and "/healthz" in healthchecks[0]


def test_the_docker_context_keeps_what_the_image_copies() -> None:
    ignored = {
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for keyword, arguments in _dockerfile():
        if keyword == "COPY" and not arguments.startswith("--from"):
            for source in shlex.split(arguments)[:-1]:
                assert (ROOT / source).exists(), source
                assert source.rstrip("/") not in ignored, f"{source} is in .dockerignore"


def test_the_sentinels_watch_the_master_the_app_is_told_about() -> None:
    conf = (ROOT / "deploy" / "sentinel.conf").read_text(encoding="utf-8").splitlines()
    lines = [line.split() for line in conf if line.strip() and not line.startswith("#")]
    monitors = [words for words in lines if words[:2] == ["sentinel", "monitor"]]
    assert len(monitors) == 1
    _, _, master, host, port, quorum = monitors[0]
    resolve = lines.index(["sentinel", "resolve-hostnames", "yes"])
    assert resolve < lines.index(monitors[0]), "resolve-hostnames must come before monitor"
    sentinel_port = next(words[1] for words in lines if words[0] == "port")

    env = _env_example()
    assert env["REDIS_SENTINEL_MASTER"] == master
    assert "REDIS_URL" not in env, "Sentinel, not REDIS_URL"
    assert int(quorum) == 2

    services = _services()
    master_service = services[host]
    assert master_service["image"] == "redis:7" and str(port) == "6379"
    sentinels = [item.rpartition(":") for item in env["REDIS_SENTINELS"].split(",")]
    assert len(sentinels) == 3
    for name, _, given_port in sentinels:
        service = services[name]
        assert service["image"] == "redis:7"
        assert given_port == sentinel_port
        command = " ".join(service["command"])
        assert "redis-sentinel /data/sentinel.conf" in command
        assert f"announce-ip {name}" in command
        assert "./deploy/sentinel.conf:/etc/callguard/sentinel.conf:ro" in service["volumes"]
        assert "cp /etc/callguard/sentinel.conf /data/sentinel.conf" in command
        assert any(v.endswith(":/data") for v in service["volumes"]), "a writable, kept /data"
    replicas = [s for s in services.values() if "--replicaof" in (s.get("command") or [])]
    assert len(replicas) == 1 and host in replicas[0]["command"]


def test_redis_keeps_its_data_in_the_append_only_file_on_a_volume() -> None:
    named = set(_compose()["volumes"])
    for name in ("redis", "redis-replica"):
        service = _services()[name]
        command = service["command"]
        assert command[command.index("--appendonly") + 1] == "yes"
        assert any(v.split(":")[0] in named and v.endswith(":/data") for v in service["volumes"])


def test_postgres_and_the_order_things_start_in() -> None:
    services = _services()
    postgres = services["postgres"]
    assert postgres["image"] == "postgres:15"
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert any(v.endswith(":/var/lib/postgresql/data") for v in postgres["volumes"])
    assert services["release"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["release"]["restart"] == "no"
    for name in PROCESSES[1:]:
        depends = services[name]["depends_on"]
        assert depends["release"]["condition"] == "service_completed_successfully"
    env = _env_example()
    url = env["DATABASE_URL"]
    expected = (
        f"postgresql+psycopg://{env['POSTGRES_USER']}:{env['POSTGRES_PASSWORD']}"
        f"@postgres:5432/{env['POSTGRES_DB']}"
    )
    assert url == expected


def test_every_setting_the_app_needs_without_a_default_is_given() -> None:
    missing = _needed() - _provided()
    assert not missing, f"set these in deploy/callguard.env.example (or NOT_NEEDED): {missing}"
    env = _env_example()
    known = set(_configuration_table()) | {t.name for t in TUNABLES} | set(COMPOSE_ONLY)
    assert not set(env) - known, f"settings callguard does not read: {set(env) - known}"
    for key in ("SECRET_KEY", "TWILIO_AUTH_TOKEN", "POSTGRES_PASSWORD"):
        assert "change-me" in env[key], f"{key} must be a placeholder, not a real secret"
    assert env["PUBLIC_BASE_URL"].startswith("https://")


def test_the_mounted_organisation_settings_load() -> None:
    path = _env_example()["CALLGUARD_CONFIG"]
    for name in PROCESSES:
        mounts = {v.split(":")[1]: v.split(":")[0] for v in _services()[name].get("volumes", [])}
        assert path in mounts, f"{name} does not mount {path}"
        source = ROOT / mounts[path]
        assert source.is_file()
    load_settings(str(source))  # raises on anything callguard would refuse


# --- the Makefile: `make run` installs what running needs, the rest adds the dev tools -----------

DEV_TARGETS = ("install", "test", "lint", "drills", "bench")


def _installs(target: str, venv: Path, *, everything: bool = True) -> list[str]:
    """The ``pip install`` lines (pip's own upgrade aside) ``make TARGET`` would run with this
    virtualenv: every target remade (``--always-make``), or only what is out of date. Nothing
    is run (``--dry-run``)."""
    make = shutil.which("make")
    if make is None:
        pytest.skip("no make on this machine")
    flags = ["--dry-run", "--always-make"] if everything else ["--dry-run"]
    done = subprocess.run(
        [make, *flags, target, f"VENV={venv}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    lines = [line.strip() for line in done.stdout.splitlines()]
    return [line for line in lines if "pip install" in line and "--upgrade pip" not in line]


def test_make_run_installs_callguard_without_its_dev_tools(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    assert _installs("run", venv) == [f"{venv}/bin/pip install --quiet -e ."]
    for target in DEV_TARGETS:
        assert _installs(target, venv) == [f"{venv}/bin/pip install --quiet -e '.[dev]'"], target


def test_each_install_is_remembered_until_pyproject_changes(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    venv.mkdir()
    later = (ROOT / "pyproject.toml").stat().st_mtime + 60
    runtime, dev = venv / ".runtime-installed", venv / ".dev-installed"
    runtime.touch()
    os.utime(runtime, (later, later))
    assert _installs("run", venv, everything=False) == []
    assert _installs("lint", venv, everything=False), "the dev tools are not there yet"
    dev.touch()
    os.utime(dev, (later, later))
    for target in ("run", *DEV_TARGETS):
        assert _installs(target, venv, everything=False) == [], f"{target} reinstalled"
    stale = time.time() - 10 * 365 * 86400  # before pyproject.toml: both are redone
    for stamp in (runtime, dev):
        os.utime(stamp, (stale, stale))
    assert _installs("run", venv, everything=False) == [f"{venv}/bin/pip install --quiet -e ."]
