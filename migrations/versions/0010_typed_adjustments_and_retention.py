"""typed adjustments and retention (expand only).

A customer's sensitive note (supervisors only) is a nullable column of its own; the typed
adjustments stay in ``customers.adjustments`` (``{"slow_speech": true}`` keeps its meaning, so the
previous release reads what this one writes). Sharing with other agencies (policy 10.1) is a new
table whose rows go with their restriction (``ON DELETE CASCADE``: the previous release's purge,
which does not know it, still works). Retention needs no schema change.

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("customers", sa.Column("sensitive_note", sa.Text(), nullable=True))
    op.create_table(
        "sharing_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("restriction_id", sa.Integer(), nullable=False),
        sa.Column("shared_with", sa.String(length=200), nullable=False),
        sa.Column("shared_on", sa.Date(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("lawful_basis", sa.String(length=32), nullable=False),
        sa.Column("recorded_by_id", sa.Integer(), nullable=True),
        sa.Column("recorded_by", sa.String(length=80), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["restriction_id"],
            ["restrictions.id"],
            name="fk_sharing_records_restriction_id_restrictions",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by_id"], ["users.id"], name="fk_sharing_records_recorded_by_id_users"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_sharing_records"),
    )
    op.create_index("ix_sharing_records_restriction_id", "sharing_records", ["restriction_id"])


def downgrade() -> None:
    op.drop_index("ix_sharing_records_restriction_id", table_name="sharing_records")
    op.drop_table("sharing_records")
    op.drop_column("customers", "sensitive_note")
