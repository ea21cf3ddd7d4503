"""gunicorn's hooks for the Procfile's ``web`` process
(``gunicorn -c python:telephony.gunicorn_config``).

With ``PROMETHEUS_MULTIPROC_DIR`` set (``telephony.metrics``), each process keeps its metrics in
files there: when gunicorn starts, the files of processes no longer running are removed (their
counts would otherwise be added to this run's for ever), and a worker that exits is marked dead
so its live gauges (breaker state) stop counting. Without it these hooks do nothing.

Before that, the settings are checked (``telephony.config.check_environment``,
``telephony.startup``). gunicorn's master has no app: it reads its settings with
``telephony.config.from_environment``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

PID = re.compile(r"_(\d+)\.db$")


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def on_starting(server: Any) -> None:
    # A wrong setting stops gunicorn here, before a worker is forked: gunicorn prints a
    # RuntimeError's message alone ("Error: TWILIO_AUTH_TOKEN must be set …") and exits 1,
    # where each worker failing in create_app would log a traceback.
    from telephony.config import check_environment, from_environment

    check_environment()
    directory = from_environment("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return
    Path(directory).mkdir(parents=True, exist_ok=True)
    for path in Path(directory).glob("*.db"):
        found = PID.search(path.name)
        if found and not _running(int(found[1])):
            path.unlink(missing_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    from telephony.config import from_environment

    if from_environment("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
