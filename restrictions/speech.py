"""What a caller hears, in their language and at their pace: the one place that turns a prompt
key, the caller and the organisation's settings into words for <Say>."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import prompts
from restrictions.models import Customer
from restrictions.routing import CallerProfile
from restrictions.settings import Settings


@dataclass(frozen=True)
class Listener:
    """Who hears it: their language and whether they asked for slower speech (policy 9.1)."""

    language: str | None = None
    slow: bool = False

    @classmethod
    def of(cls, caller: CallerProfile | Customer | None) -> Listener:
        if caller is None:
            return cls()
        if isinstance(caller, CallerProfile):
            return cls(caller.language, caller.slow_speech)
        return cls(caller.language, bool((caller.adjustments or {}).get("slow_speech")))


def say(key: str, listener: Listener, settings: Settings, **params: Any) -> prompts.Speech:
    """The words for ``key``, with the organisation's details and ``params`` filled in."""
    if "windows" in params and not isinstance(params["windows"], str):
        params["windows"] = prompts.describe_windows(params["windows"], listener.language)
    return prompts.speech(
        key,
        listener.language,
        slow=listener.slow,
        **{**settings.message_params(), **params},
    )
