"""attach and export (expand only).

Attaching an unidentified caller's calls to a customer closes that number's open alerts as
``merged`` (a new value of the existing text column ``contact_alerts.status``: no schema change)
and looks up a number's alerts by subject; a subject access export gathers the audit entries
naming each of a customer's rows, and the calls each of their restrictions routed. Three
indexes, nothing dropped or changed.

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_audit_entries_entity", "audit_entries", ["entity", "entity_id"])
    op.create_index("ix_contact_alerts_subject", "contact_alerts", ["subject"])
    op.create_index("ix_calls_restriction_id", "calls", ["restriction_id"])


def downgrade() -> None:
    op.drop_index("ix_calls_restriction_id", table_name="calls")
    op.drop_index("ix_contact_alerts_subject", table_name="contact_alerts")
    op.drop_index("ix_audit_entries_entity", table_name="audit_entries")
