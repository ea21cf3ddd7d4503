"""Voicemails left for a SPOC: a table of their own (expand only; no existing table changes).

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "voicemails",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("spoc", sa.String(length=255), nullable=True),
        sa.Column("recording_sid", sa.String(length=64), nullable=False),
        sa.Column("recording_url", sa.String(length=500), nullable=False),
        sa.Column("duration_seconds", sa.Integer(), nullable=False),
        sa.Column("transcription", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTC_DT, nullable=False),
        sa.Column("handled_at", UTC_DT, nullable=True),
        sa.Column("handled_by_id", sa.Integer(), nullable=True),
        sa.Column("twilio_deleted_at", UTC_DT, nullable=True),
        sa.ForeignKeyConstraint(
            ["call_id"],
            ["calls.id"],
            name="fk_voicemails_call_id_calls",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name="fk_voicemails_customer_id_customers"
        ),
        sa.ForeignKeyConstraint(
            ["handled_by_id"], ["users.id"], name="fk_voicemails_handled_by_id_users"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_voicemails"),
        sa.UniqueConstraint("recording_sid", name="uq_voicemails_recording_sid"),
    )
    op.create_index("ix_voicemails_call_id", "voicemails", ["call_id"])
    op.create_index("ix_voicemails_customer_id", "voicemails", ["customer_id"])
    op.create_index("ix_voicemails_spoc", "voicemails", ["spoc"])


def downgrade() -> None:
    op.drop_index("ix_voicemails_spoc", table_name="voicemails")
    op.drop_index("ix_voicemails_customer_id", table_name="voicemails")
    op.drop_index("ix_voicemails_call_id", table_name="voicemails")
    op.drop_table("voicemails")
