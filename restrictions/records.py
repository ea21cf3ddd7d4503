"""A customer's record as staff see it: recent calls, alerts, agents' presses, the audit trail.
One query each, shared by the API and the supervisor's customer page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from restrictions.models import AgentAction, AuditEntry, Call, ContactAlert, Customer

T = TypeVar("T")


@dataclass(frozen=True)
class CustomerRecord:
    customer: Customer
    calls: list[Call]
    alerts: list[ContactAlert]
    actions: list[AgentAction]
    audit: list[AuditEntry]


def customer_record(
    sess: Session, customer: Customer, *, recent: int = 20, audit_entries: int = 100
) -> CustomerRecord:
    def newest(query: Select[T]) -> list[T]:
        return list(sess.scalars(query))

    cid = customer.id
    return CustomerRecord(
        customer=customer,
        calls=newest(
            select(Call)
            .where(Call.customer_id == cid)
            .order_by(Call.started_at.desc())
            .limit(recent)
        ),
        alerts=newest(
            select(ContactAlert)
            .where(ContactAlert.customer_id == cid)
            .order_by(ContactAlert.opened_at.desc())
            .limit(recent)
        ),
        actions=newest(
            select(AgentAction)
            .where(AgentAction.customer_id == cid)
            .order_by(AgentAction.created_at.desc(), AgentAction.id.desc())
            .limit(recent)
        ),
        audit=newest(
            select(AuditEntry)
            .where(AuditEntry.customer_id == cid)
            .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
            .limit(audit_entries)
        ),
    )
