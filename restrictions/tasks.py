"""callguard's decision as TaskRouter (and Flex on top of it) takes it: a task's attributes, in
one documented shape, within a size TaskRouter and Studio accept.

The shape (``callguard`` holds what callguard decided; the top level is what Flex shows)::

    {"type": "inbound", "direction": "inbound", "call_sid": "CA…", "from": "+44…",
     "name": "Pat Example", "priority": 0, "language": "cy-GB",
     "callguard": {"version": 1, "call_sid": "CA…", "route": "spoc", "identified": true,
                   "customer": {"reference": "HMS-0001", "name": "Pat Example"},
                   "language": "cy-GB", "slow_speech": true,
                   "restrictions": [{"kind": "warning", "label": "Warning on file"}],
                   "flags": ["warning:2026-01-05"], "flag_texts": ["Warning on file since …"],
                   "spoc": {"contact_uri": "client:jo.bloggs"}}}

A Workflow can send a SPOC's caller to them first with a target expression such as
``worker.contact_uri == task.callguard.spoc.contact_uri``. Pure: no Flask, no Twilio.
"""

from __future__ import annotations

import json
from typing import Any

from restrictions import kinds
from restrictions.destination import Destination, Scheme
from restrictions.routing import CallerProfile, Route

VERSION = 1
MAX_BYTES = 4000  # Studio and TaskRouter take far more; a task stays quick to read
SPOC_PRIORITY = 10  # a SPOC's caller waits for one person: their task goes first


def spoc_target(profile: CallerProfile | None) -> dict[str, str] | None:
    """The caller's SPOC as a TaskRouter target: a worker's ``contact_uri`` (client:<name>) or,
    for a SPOC named by number, that number."""
    if profile is None:
        return None
    for r in profile.restrictions:
        kind = kinds.find(r.kind)
        if kind is None or kind.effect is not kinds.Effect.PERSON:
            continue
        try:
            spoc = Destination.parse(kinds.person_of(r.kind, r.details) or "")
        except Exception:
            continue
        if spoc.scheme is Scheme.CLIENT:
            return {"contact_uri": spoc.address}
        return {"number": spoc.target}
    return None


def attributes(
    profile: CallerProfile | None, route: Route, *, call_sid: str, caller: str | None
) -> dict[str, Any]:
    """The task's attributes for this caller and decision."""
    spoc = spoc_target(profile)
    language = profile.language if profile else "en-GB"
    restrictions = []
    for r in profile.restrictions if profile else ():
        kind = kinds.find(r.kind)
        restrictions.append({"kind": r.kind, "label": kind.label if kind else r.kind})
    priority = SPOC_PRIORITY if kinds.routes_to_person(route.kind) else 0
    decided: dict[str, Any] = {
        "version": VERSION,
        "call_sid": call_sid,
        "route": str(route.kind),
        "identified": route.identified,
        "customer": {"reference": profile.reference, "name": profile.name} if profile else None,
        "language": language,
        "slow_speech": bool(profile and profile.slow_speech),
        "restrictions": restrictions,
        "flags": list(route.flags),
        "flag_texts": [kinds.describe_flag(f) for f in route.flags],
        "spoc": spoc,
    }
    task: dict[str, Any] = {
        "type": "inbound",
        "direction": "inbound",
        "call_sid": call_sid,
        "from": caller or "withheld",
        "name": profile.name if profile else (caller or "withheld"),
        "priority": priority,
        "language": language,
        "callguard": decided,
    }
    return _bounded(task)


def _bounded(task: dict[str, Any]) -> dict[str, Any]:
    """Within MAX_BYTES: the words go first, then the restriction list is shortened (the flags,
    which say the same in codes, always stay)."""
    decided = task["callguard"]
    while len(encode(task)) > MAX_BYTES:
        if decided["flag_texts"]:
            decided["flag_texts"] = []
        elif decided["restrictions"]:
            decided["restrictions"] = decided["restrictions"][:-1]
        elif decided["flags"]:
            decided["flags"] = decided["flags"][:-1]
        else:
            break
    return task


def encode(task: dict[str, Any]) -> str:
    return json.dumps(task, separators=(",", ":"), ensure_ascii=False)
