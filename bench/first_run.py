"""How long a newcomer waits: ``make run`` in a fresh clone, timed from the command to its sign-in
page answering 200, beside a baseline measured in the same run.

The baseline is the bare install ``make run`` begins with, done alone in a second fresh clone:
``python3 -m venv .venv``, pip's own upgrade and ``pip install -e .`` (callguard and its runtime
dependencies, no dev tools). What ``make run`` takes beyond it is callguard's own first-run work:
migrating the SQLite database, seeding the demonstration data and starting the server.

Each clone is ``git clone`` of this checkout's commit, with the checkout's uncommitted changes
to tracked files and its untracked files (those git does not ignore) copied over it, so what is
measured is the tree as it stands (``--committed``: the commit alone). Both live in one temp
dir, each with its own ``.venv`` and ``instance/``, removed at the end however it ends.

Nothing shared is touched: ``make run`` is started with every setting that would lead it to a
real PostgreSQL or Redis taken out of its environment (``DATABASE_URL``, ``REDIS_URL``, the
Sentinel settings, ...), so it runs as the README's zero set-up: SQLite under the clone's
``instance/`` and an in-process Redis. It serves on a free loopback port (``PORT``), in a process
group of its own, and the whole group is killed at the end.

Standard library only: ``make first-run`` runs it with the system's ``python3``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_SECONDS = 900.0
SHARED_PORTS = {5432: "PostgreSQL", 6379: "Redis", 26379: "Redis Sentinel", 6432: "PgBouncer"}
STARTING = "callguard is starting on"  # the line `make run` prints once migrated and seeded
# Settings that would point `make run` at something real (or shared): never passed on.
SCRUBBED = {
    "DATABASE_URL",
    "DATABASE_PGBOUNCER",
    "REDIS_URL",
    "REDIS_SENTINELS",
    "REDIS_SENTINEL_MASTER",
    "REDIS_SENTINEL_PASSWORD",
    "REDIS_SENTINEL_DB",
    "REDIS_PASSWORD",
    "RATELIMIT_STORAGE_URI",
    "PUBLIC_BASE_URL",
    "SECRET_KEY",
    "CALLGUARD_CONFIG",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_API_BASE_URL",
    "TWILIO_WORKSPACE_SID",
    "PROMETHEUS_MULTIPROC_DIR",
    "WORKER_METRICS_PORT",
    "CALLGUARD_TEST_DATABASE_URL",
    "CALLGUARD_TEST_REDIS_URL",
    "PGHOST",
    "PGPORT",
    "PGUSER",
    "PGDATABASE",
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "PYTHONHOME",
    "MAKEFLAGS",
    "MAKELEVEL",
    "MFLAGS",
    "PORT",
}


def zero_setup_environment(port: int | None = None) -> dict[str, str]:
    """This process's environment without anything that leads to a real database or Redis."""
    env = {key: value for key, value in os.environ.items() if key not in SCRUBBED}
    venv_bin = os.environ.get("VIRTUAL_ENV")
    if venv_bin:  # an activated virtualenv's python3 would be first on PATH: not a newcomer's
        bin_dir = str(Path(venv_bin) / "bin")
        env["PATH"] = os.pathsep.join(
            p for p in env.get("PATH", "").split(os.pathsep) if p != bin_dir
        )
    if port is not None:
        env["PORT"] = str(port)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def git(*args: str, cwd: Path = ROOT) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout


def fresh_clone(destination: Path, *, committed: bool) -> int:
    """``git clone`` this checkout into ``destination``; unless ``committed``, the working
    tree's uncommitted and untracked (not ignored) files go over it. Returns how many files
    were copied or removed that way."""
    subprocess.run(
        ["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(destination)], check=True
    )
    if committed:
        return 0
    changed = git("ls-files", "-z", "--modified", "--others", "--exclude-standard").split("\0")
    deleted = set(git("ls-files", "-z", "--deleted").split("\0")) - {""}
    count = 0
    for name in sorted(set(changed) - {""}):
        source, target = ROOT / name, destination / name
        if name in deleted or not source.exists():
            target.unlink(missing_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        count += 1
    return count


def run_timed(argv: list[str], cwd: Path, env: dict[str, str], log: Path) -> float:
    """Seconds ``argv`` takes; its output goes to ``log``. RuntimeError when it fails."""
    began = time.perf_counter()
    with log.open("ab") as out:
        done = subprocess.run(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    took = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): see {log}")
    return took


def baseline(clone: Path, env: dict[str, str], log: Path) -> float:
    """The bare install `make run` starts with, as the Makefile does it."""
    python = shutil.which("python3", path=env.get("PATH")) or "python3"
    took = run_timed([python, "-m", "venv", ".venv"], clone, env, log)
    pip = str(clone / ".venv" / "bin" / "pip")
    took += run_timed([pip, "install", "--quiet", "--upgrade", "pip"], clone, env, log)
    took += run_timed([pip, "install", "--quiet", "-e", "."], clone, env, log)
    return took


def sign_in_answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/sign-in", timeout=2) as answer:
            return int(answer.status) == 200
    except (urllib.error.URLError, OSError):
        return False


class MakeRun:
    """``make run`` in a process group of its own, its output to a log, noting when it says
    it is starting the server."""

    def __init__(self, clone: Path, port: int, env: dict[str, str], log: Path) -> None:
        self.log = log
        self.began = time.perf_counter()
        self.seeded_after: float | None = None
        self.process = subprocess.Popen(
            ["make", "run", f"PORT={port}"],
            cwd=clone,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        with self.log.open("ab") as out:
            for line in self.process.stdout:
                out.write(line)
                out.flush()
                if self.seeded_after is None and STARTING.encode() in line:
                    self.seeded_after = time.perf_counter() - self.began

    def wait_for_sign_in(self, port: int) -> float:
        while True:
            if sign_in_answers(port):
                return time.perf_counter() - self.began
            if self.process.poll() is not None:
                raise RuntimeError(f"make run exited ({self.process.returncode}): see {self.log}")
            if time.perf_counter() - self.began > TIMEOUT_SECONDS:
                raise RuntimeError(
                    f"no sign-in page within {TIMEOUT_SECONDS:.0f} s: see {self.log}"
                )
            time.sleep(0.1)

    def stop(self) -> None:
        """The whole group (make, flask), politely and then not."""
        for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(timeout=grace)
                break
            except subprocess.TimeoutExpired:
                continue
        self.reader.join(timeout=5)


def shared_connections(group: int) -> list[str] | None:
    """The TCP connections the processes of ``group`` hold to a shared server's port
    (SHARED_PORTS), from /proc; None where /proc cannot say (not Linux)."""
    proc = Path("/proc")
    if not (proc / "net" / "tcp").exists():
        return None
    inodes: set[str] = set()
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) != group:  # state, ppid, pgrp
                continue
            for fd in (entry / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile, or not ours to read
    found = []
    for table in ("tcp", "tcp6"):
        try:
            rows = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            columns = row.split()
            port = int(columns[2].rsplit(":", 1)[1], 16)
            if columns[9] in inodes and port in SHARED_PORTS:
                found.append(f"{SHARED_PORTS[port]} ({port})")
    return found


def tail(log: Path, lines: int = 25) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--committed", action="store_true", help="measure the commit alone, not the working tree"
    )
    args = parser.parse_args(argv)

    commit = git("rev-parse", "--short", "HEAD").strip()
    work = Path(tempfile.mkdtemp(prefix="callguard-first-run-"))
    run: MakeRun | None = None
    try:
        env = zero_setup_environment()
        base_clone, run_clone = work / "baseline", work / "run"
        copied = fresh_clone(base_clone, committed=args.committed)
        fresh_clone(run_clone, committed=args.committed)
        what = f"a fresh clone of {commit}" + (
            f" with {copied} uncommitted or untracked files of the working tree" if copied else ""
        )
        print(f"first run (bench/first_run.py): {what}; Python {platform.python_version()}")

        bare = baseline(base_clone, env, work / "baseline.log")

        port = free_port()
        run = MakeRun(run_clone, port, zero_setup_environment(port), work / "make-run.log")
        served = run.wait_for_sign_in(port)
        seeded = run.seeded_after
        database = run_clone / "instance" / "callguard.db"
        if not database.is_file():
            raise RuntimeError(f"make run did not use SQLite at {database}: see {run.log}")
        shared = shared_connections(run.process.pid)
        if shared:
            raise RuntimeError(f"make run's server is connected to {', '.join(shared)}")

        print(
            "  baseline, the bare install `make run` starts with (python3 -m venv, pip's upgrade, "
            f"pip install -e .): {bare:.1f} s"
        )
        also = f"; migrated and seeded at {seeded:.1f} s" if seeded is not None else ""
        print(f"  make run until GET /sign-in answers 200 (port {port}): {served:.1f} s{also}")
        print(
            f"  beyond the bare install (migrate, demo data, start the server): "
            f"{served - bare:.1f} s; {served / bare:.2f}x the bare install"
        )
        checked = "" if shared is None else "; its server holds no connection to a shared one"
        print(
            "  (run with no database or Redis setting: SQLite in the clone's instance/ and "
            f"in-process Redis{checked})"
        )
        return 0
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"first run failed: {exc}", file=sys.stderr)
        for log in sorted(work.glob("*.log")):
            print(f"--- {log.name} (last lines)\n{tail(log)}", file=sys.stderr)
        return 1
    finally:
        if run is not None:
            run.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
