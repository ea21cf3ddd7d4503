"""decisions independent (expand only): an admin's recorded reason for deciding an appeal on a
restriction they took part in, overdue reviews pressed daily (review_escalations) and lapsed.

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("appeals", sa.Column("override_reason", sa.Text(), nullable=True))
    op.add_column("restrictions", sa.Column("lapsed_on", sa.Date(), nullable=True))
    op.add_column("restrictions", sa.Column("lapse_letter_sent_on", sa.Date(), nullable=True))
    op.create_table(
        "review_escalations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("restriction_id", sa.Integer(), nullable=False),
        sa.Column("escalated_on", sa.Date(), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("review_due_on", sa.Date(), nullable=False),
        sa.Column("days_overdue", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC_DT, nullable=False),
        sa.ForeignKeyConstraint(
            ["restriction_id"],
            ["restrictions.id"],
            name="fk_review_escalations_restriction_id_restrictions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_review_escalations"),
        sa.UniqueConstraint("restriction_id", "escalated_on", name="uq_review_escalations_day"),
    )
    op.create_index(
        "ix_review_escalations_restriction_id", "review_escalations", ["restriction_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_review_escalations_restriction_id", table_name="review_escalations")
    op.drop_table("review_escalations")
    op.drop_column("restrictions", "lapse_letter_sent_on")
    op.drop_column("restrictions", "lapsed_on")
    op.drop_column("appeals", "override_reason")
