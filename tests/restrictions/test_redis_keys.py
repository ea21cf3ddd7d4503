"""The register of Redis keys is the one place a key is spelt: every key callguard writes is in
it once, with what it holds, its lifetime, its writer and reader, and what losing it means."""

from __future__ import annotations

import re
from pathlib import Path

from restrictions import redis_keys

ROOT = Path(__file__).resolve().parents[2]


def test_every_key_is_registered_once_with_all_it_says() -> None:
    keys = [k.key for k in redis_keys.REGISTER]
    assert len(keys) == len(set(keys))
    assert all(k.startswith("cg:") for k in keys)
    for entry in redis_keys.REGISTER:
        assert all((entry.holds, entry.ttl, entry.writer, entry.reader, entry.when_lost)), entry
    registered = {v for v in vars(redis_keys).values() if isinstance(v, redis_keys.RedisKey)}
    assert registered == set(redis_keys.REGISTER), "a key defined but left out of REGISTER"


def test_no_source_file_spells_a_key_of_its_own() -> None:
    """Outside the register, the package code reaches a key only through its entry."""
    spelt = re.compile(r"""["']cg:""")
    found = []
    for package in ("telephony", "restrictions", "handlers"):
        for path in (ROOT / package).rglob("*.py"):
            if path.name == "redis_keys.py":
                continue
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if spelt.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert found == []


def test_a_family_key_names_its_member() -> None:
    assert redis_keys.CALLER.of("+447400100001") == "cg:caller:v2:+447400100001"


def test_the_readme_lists_every_key() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    listed = re.findall(r"^\| `(cg:[^`]*)` \|", readme, flags=re.MULTILINE)
    assert listed == [k.key for k in redis_keys.REGISTER]
