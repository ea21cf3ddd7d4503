"""What a caller hears, in their language and at their pace: the one place that turns a prompt
key, the caller and the organisation's settings into words for <Say>."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import prompts
from restrictions import adjustments
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
        return cls(caller.language, adjustments.slow_speech(caller.adjustments))


def say(key: str, listener: Listener, settings: Settings, **params: Any) -> prompts.Speech:
    """The words for ``key``, with the organisation's details and ``params`` filled in.

    ``windows`` may be given as the restriction's windows (described in the listener's language);
    ``letter`` says whether the decision's written notice is on record: only then is the letter
    mentioned (``as_explained``).
    """
    if "windows" in params and not isinstance(params["windows"], str):
        params["windows"] = prompts.describe_windows(params["windows"], listener.language)
    letter = bool(params.pop("letter", False))
    params.setdefault(
        "as_explained", prompts.word("as_explained", listener.language) if letter else ""
    )
    return prompts.speech(
        key,
        listener.language,
        slow=listener.slow,
        **{**settings.message_params(), **params},
    )


def danger(listener: Listener, settings: Settings) -> prompts.Speech:
    """What every ending message says last: anyone in danger should hang up and dial 999 (the
    organisation may set its own words, ``danger_message``)."""
    words = say("danger", listener, settings)
    custom = settings.organisation.danger_message
    return prompts.Speech(custom, words.language, words.voice, words.slow) if custom else words
