"""What callers hear, as data: one TOML file per language, named for it (``en-GB.toml``).

The languages callguard speaks are the files there are: adding one is adding its file (here, or in
a directory given to ``add_directory``). The caller's language picks the file (anything else falls
back to en-GB); a reasonable adjustment for slower speech (policy 9.1-9.2) is carried on the
Speech and rendered as SSML prosody. How a language puts days, times and lists in order is in its
file too (``[words]``).
"""

from __future__ import annotations

import string
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

DEFAULT = "en-GB"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DIRECTORIES: list[Path] = [Path(__file__).resolve().parent]


@dataclass(frozen=True)
class Speech:
    """Words ready for <Say>: the text, its language and voice, and whether to speak slowly."""

    text: str
    language: str
    voice: str
    slow: bool


@cache
def _files() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for directory in DIRECTORIES:
        for path in sorted(directory.glob("*.toml")):
            found[path.stem] = path
    return found


def languages() -> tuple[str, ...]:
    """The languages there are prompt files for, British English first."""
    names = sorted(_files())
    return tuple(sorted(names, key=lambda n: n != DEFAULT))


def add_directory(path: Path) -> None:
    """Also read languages from ``path`` (a later directory's file wins for the same language)."""
    DIRECTORIES.append(Path(path))
    reload()


def reload() -> None:
    """Forget what was read, so files added or changed since are seen."""
    _files.cache_clear()
    catalogue.cache_clear()


@cache
def catalogue(language: str) -> dict[str, Any]:
    """The parsed prompt file for a language we have, read once per process."""
    with _files()[resolve(language)].open("rb") as fh:
        return tomllib.load(fh)


def display_name(language: str | None) -> str:
    """A language tag as staff read it, from its file's ``name``: "cy-GB" → "Welsh (Cymraeg)" (a
    tag we have no file for, as it is)."""
    if not language or language not in _files():
        return language or ""
    return str(catalogue(language).get("name") or language)


def resolve(language: str | None) -> str:
    """The language we can speak: the caller's if we have it, else British English."""
    return language if language is not None and language in _files() else DEFAULT


def placeholders(template: str) -> set[str]:
    """The str.format names a template needs."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def speech(key: str, language: str | None, *, slow: bool = False, **params: Any) -> Speech:
    """The words for ``key`` in the caller's language, with ``params`` filled in.

    A missing param is a bug in the caller, so it fails loudly rather than saying half a sentence.
    """
    lang = resolve(language)
    data = catalogue(lang)
    templates: Mapping[str, str] = data["say"]
    if key not in templates:
        raise KeyError(f"no prompt {key!r} in {lang}")
    template = templates[key]
    missing = placeholders(template) - params.keys()
    if missing:
        raise ValueError(f"prompt {key!r} needs {', '.join(sorted(missing))}")
    return Speech(template.format(**params), lang, str(data["voice"]), slow)


def _join(items: Sequence[str], word: str, words: Mapping[str, str]) -> str:
    """Lists as people say them: a; a and b; a, b and c (in the language's own words and order:
    ``[words] separator`` and ``series``)."""
    if len(items) <= 1:
        return "".join(items)
    separator = words.get("separator", ", ")
    series = words.get("series", "{rest} {word} {last}")
    return series.format(rest=separator.join(items[:-1]), word=word, last=items[-1])


def describe_windows(windows: Sequence[Mapping[str, Any]], language: str | None) -> str:
    """Permitted contact times in words, in week order: "on Mondays and Wednesdays from 10:00 to
    12:00". A language may give the first day of each window its own form (``[day_names_first]``,
    Welsh mutation after "ar"); no windows at all is ``[words] any_time``."""
    data = catalogue(resolve(language))
    names: Mapping[str, str] = data["day_names"]
    first: Mapping[str, str] = data.get("day_names_first", names)
    words: Mapping[str, str] = data["words"]
    if not windows:
        return words["any_time"]
    parts = []
    for w in windows:
        days = [d for d in DAYS if d in w.get("days", ())]
        spoken = [first[d] if i == 0 else names[d] for i, d in enumerate(days)]
        parts.append(
            words["window"].format(
                days=_join(spoken, words["and"], words), start=w["start"], end=w["end"]
            )
        )
    return _join(parts, words["or"], words)


def word(key: str, language: str | None) -> str:
    """One of a language's ``[words]``."""
    value: str = catalogue(resolve(language))["words"][key]
    return value


def staff_speech(key: str, **params: Any) -> Speech:
    """What callguard says to a member of staff it rings (``[staff]``, British English)."""
    data = catalogue(DEFAULT)
    template: str = data["staff"][key]
    return Speech(template.format(**params), DEFAULT, str(data["voice"]), False)
