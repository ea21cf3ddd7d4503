"""What callers hear, as data: one TOML file per language (en-GB, cy-GB, pl-PL).

The caller's language picks the file (anything else falls back to en-GB); a reasonable adjustment
for slower speech (policy 9.1-9.2) is carried on the Speech and rendered as SSML prosody.
"""

from __future__ import annotations

import string
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

SUPPORTED = ("en-GB", "cy-GB", "pl-PL")
DEFAULT = "en-GB"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Speech:
    text: str
    language: str
    voice: str
    slow: bool


@cache
def catalogue(language: str) -> dict[str, Any]:
    """The parsed prompt file for a supported language."""
    with (_HERE / f"{language}.toml").open("rb") as fh:
        return tomllib.load(fh)


def resolve(language: str | None) -> str:
    return language if language in SUPPORTED else DEFAULT


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def speech(key: str, language: str | None, *, slow: bool = False, **params: Any) -> Speech:
    """The words for ``key`` in the caller's language, with ``params`` filled in."""
    lang = resolve(language)
    data = catalogue(lang)
    template: str = data["say"][key]
    missing = placeholders(template) - params.keys()
    if missing:
        raise ValueError(f"prompt {key!r} needs {', '.join(sorted(missing))}")
    return Speech(template.format(**params), lang, str(data["voice"]), slow)


def describe_windows(windows: Sequence[Mapping[str, Any]], language: str | None) -> str:
    """Permitted contact times in words: "Monday and Wednesday 10:00 to 12:00"."""
    data = catalogue(resolve(language))
    names: Mapping[str, str] = data["day_names"]
    words: Mapping[str, str] = data["words"]

    def join(items: list[str], word: str) -> str:
        if len(items) <= 1:
            return "".join(items)
        return f"{', '.join(items[:-1])} {word} {items[-1]}"

    parts = []
    for w in windows:
        days = [names[d] for d in DAYS if d in w.get("days", ())]
        parts.append(f"{join(days, words['and'])} {w['start']} {words['to']} {w['end']}")
    return join(parts, words["or"])
