"""Demonstration data: one customer per kind of restriction, and two staff to sign in with.

Safe to run again: what already exists is left as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from restrictions import kinds
from restrictions.lifecycle import Actor, add_restriction, create_customer
from restrictions.models import Customer, Restriction, User
from restrictions.staff import create_user

DEMO = Actor(None, "demo")
STAFF = (
    ("demo.supervisor", "supervisor", "demo-supervisor-pass"),
    ("demo.agent", "agent", "demo-agent-pass"),
)
# How the letters name and sign as them.
LETTER_DETAILS = {
    "demo.supervisor": {"display_name": "Dana Price", "job_title": "Tenancy Services Manager"},
    "demo.agent": {
        "display_name": "Owen Jones",
        "job_title": "Customer Liaison Officer",
        "direct_line": "+441332000555",
    },
}

# The people; each kind of restriction is tried on one of them (in declaration order), with the
# example details its declaration gives. A kind declared later gets a person of its own.
PEOPLE: tuple[dict[str, Any], ...] = (
    {"reference": "DEMO-001", "name": "Alex Morgan", "kind": None},
    {"reference": "DEMO-002", "name": "Sam Taylor", "kind": "warning"},
    {"reference": "DEMO-003", "name": "Jordan Lee", "kind": "spoc"},
    {
        "reference": "DEMO-004",
        "name": "Rhys Evans",
        "language": "cy-GB",
        "adjustments": {"slow_speech": True},
        "kind": "written_only",
    },
    {
        "reference": "DEMO-005",
        "name": "Agnieszka Nowak",
        "language": "pl-PL",
        "kind": "limited_contact",
    },
    {"reference": "DEMO-006", "name": "Chris Patel", "kind": "representative_only"},
    {"reference": "DEMO-007", "name": "Morgan Hughes", "kind": "no_engagement"},
)


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


def customers() -> list[dict[str, Any]]:
    """One demonstration customer per person above, plus one for each kind nobody has."""
    specs = [dict(p) for p in PEOPLE]
    covered = {p["kind"] for p in specs}
    for kind in kinds.all_kinds():
        if kind.name not in covered:
            n = len(specs) + 1
            specs.append(
                {"reference": f"DEMO-{n:03d}", "name": f"Demo {kind.label}", "kind": kind.name}
            )
    for i, spec in enumerate(specs, start=1):
        spec["phone_numbers"] = [f"+4474001{i:05d}"]
        spec["postal_address"] = [f"{i} Demo Terrace", "Derby", f"DE1 {i}AA"]
        declared = kinds.find(spec["kind"] or "")
        spec["restrictions"] = (
            [{"kind": declared.name, "notice_sent_on": _today(), **declared.example}]
            if declared
            else []
        )
    return specs


def refusal(sess: Session, database_url: str) -> str | None:
    """Why demonstration data (with its published passwords) must not go into this database,
    or None: only the zero-setup SQLite database, holding nothing but the demo's own data."""
    if not database_url.startswith("sqlite"):
        return "DATABASE_URL is not the zero-setup SQLite database (it may be production)"
    ours = {spec["reference"] for spec in customers()}
    theirs = sess.scalar(
        select(func.count()).select_from(Customer).where(Customer.reference.not_in(ours))
    )
    staff = sess.scalar(
        select(func.count()).select_from(User).where(User.name.not_in([s[0] for s in STAFF]))
    )
    if theirs or staff:
        return f"the database holds {theirs} customers and {staff} staff who are not the demo's"
    return None


def seed(
    sess: Session, keep_notice: Callable[[Session, Actor, Restriction], None] | None = None
) -> Iterator[str]:
    """Create what is missing; yields lines describing what there is to try. ``keep_notice``
    keeps the decision letter of each restriction recorded with its notice sent, as the API
    does (``telephony.letters.keep_notice_given``): a demo notice has its letter as sent."""
    for name, role, password in STAFF:
        if sess.scalar(select(User).where(User.name == name)) is None:
            details = LETTER_DETAILS.get(name, {})
            _, token = create_user(
                sess,
                name,
                role,
                password,
                display_name=details.get("display_name"),
                job_title=details.get("job_title"),
                direct_line=details.get("direct_line"),
            )
            sess.commit()
            yield f"staff {name} ({role}): password {password!r}, API token {token}"
        else:
            yield f"staff {name} ({role}): already there (password {password!r})"
    for spec in customers():
        existing = sess.scalar(select(Customer).where(Customer.reference == spec["reference"]))
        if existing is None:
            customer = create_customer(
                sess,
                DEMO,
                reference=spec["reference"],
                name=spec["name"],
                phone_numbers=spec["phone_numbers"],
                language=spec.get("language"),
                adjustments=spec.get("adjustments"),
                postal_address=spec["postal_address"],
            )
            for body in spec["restrictions"]:
                restriction = add_restriction(sess, DEMO, customer, body)
                if keep_notice is not None:
                    sess.flush()
                    keep_notice(sess, DEMO, restriction)
            sess.commit()
        kinds = ", ".join(r["kind"] for r in spec["restrictions"]) or "no restrictions"
        yield f"customer {spec['reference']} {spec['name']} {spec['phone_numbers'][0]}: {kinds}"
