"""Demonstration data: one customer per kind of restriction, and two staff to sign in with.

Safe to run again: what already exists is left as it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from restrictions.lifecycle import Actor, add_restriction, create_customer
from restrictions.models import Customer, User

DEMO = Actor(None, "demo")
STAFF = (
    ("demo.supervisor", "supervisor", "demo-supervisor"),
    ("demo.agent", "agent", "demo-agent"),
)

CUSTOMERS: tuple[dict[str, Any], ...] = (
    {
        "reference": "DEMO-001",
        "name": "Alex Morgan",
        "phone_numbers": ["+447400100001"],
        "restrictions": [],
    },
    {
        "reference": "DEMO-002",
        "name": "Sam Taylor",
        "phone_numbers": ["+447400100002"],
        "restrictions": [
            {"kind": "warning", "reason": "Swore at a repairs operative (policy 4.3)"}
        ],
    },
    {
        "reference": "DEMO-003",
        "name": "Jordan Lee",
        "phone_numbers": ["+447400100003"],
        "restrictions": [
            {
                "kind": "spoc",
                "spoc": "+441332000555",
                "reason": "Repeated calls to several officers about one complaint (5.1)",
            }
        ],
    },
    {
        "reference": "DEMO-004",
        "name": "Rhys Evans",
        "phone_numbers": ["+447400100004"],
        "language": "cy-GB",
        "adjustments": {"slow_speech": True},
        "restrictions": [
            {"kind": "written_only", "reason": "Abusive calls after two warnings (4.2, 10.1)"}
        ],
    },
    {
        "reference": "DEMO-005",
        "name": "Agnieszka Nowak",
        "phone_numbers": ["+447400100005"],
        "language": "pl-PL",
        "restrictions": [
            {
                "kind": "limited_contact",
                "max_calls_per_week": 2,
                "windows": [{"days": ["tue", "thu"], "start": "10:00", "end": "12:00"}],
                "reason": "Very long daily calls (6.2)",
            }
        ],
    },
    {
        "reference": "DEMO-006",
        "name": "Chris Patel",
        "phone_numbers": ["+447400100006"],
        "restrictions": [
            {
                "kind": "representative_only",
                "representative": "Derby Advocacy Service",
                "reason": "Threats to staff (4.6); contact through advocate agreed",
            }
        ],
    },
    {
        "reference": "DEMO-007",
        "name": "Morgan Hughes",
        "phone_numbers": ["+447400100007"],
        "restrictions": [
            {
                "kind": "no_engagement",
                "issue": "the 2019 boundary fence dispute",
                "reason": "Decision explained three times (5.1)",
            }
        ],
    },
)


def seed(sess: Session) -> Iterator[str]:
    """Create what is missing; yields lines describing what there is to try."""
    from telephony.auth import create_user

    for name, role, password in STAFF:
        if sess.scalar(select(User).where(User.name == name)) is None:
            _, token = create_user(sess, name, role, password)
            sess.commit()
            yield f"staff {name} ({role}): password {password!r}, API token {token}"
        else:
            yield f"staff {name} ({role}): already there (password {password!r})"
    for spec in CUSTOMERS:
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
            )
            for body in spec["restrictions"]:
                add_restriction(sess, DEMO, customer, body)
            sess.commit()
        kinds = ", ".join(r["kind"] for r in spec["restrictions"]) or "no restrictions"
        yield f"customer {spec['reference']} {spec['name']} {spec['phone_numbers'][0]}: {kinds}"
