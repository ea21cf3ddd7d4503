"""The web queues jobs by name and never imports ``handlers``: every name it may queue resolves to
a job function there, and the web's modules really do not import the jobs."""

from __future__ import annotations

import importlib
import inspect

import pytest

from telephony import handover


@pytest.mark.parametrize("name", handover.ALL)
def test_every_job_name_resolves_to_a_function_in_handlers(name: str) -> None:
    module_name, _, function = name.rpartition(".")
    assert module_name.startswith("handlers.")
    job = getattr(importlib.import_module(module_name), function)
    assert callable(job) and inspect.isfunction(job)


def test_every_name_the_web_uses_is_listed() -> None:
    names = {
        value
        for key, value in vars(handover).items()
        if key.isupper() and isinstance(value, str) and value.startswith("handlers.")
    }
    assert names == set(handover.ALL)
