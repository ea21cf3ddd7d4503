"""Dial-out claims and moving a waiting caller on (calls), parked events (call_events), and
server-side session revocation (users.session_epoch).

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("dial_claimed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("moved_on_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("call_events") as batch:
        batch.add_column(
            sa.Column("attempts", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("parked_reason", sa.Text(), nullable=True))
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("session_epoch", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("session_epoch")
    with op.batch_alter_table("call_events") as batch:
        batch.drop_column("parked_reason")
        batch.drop_column("attempts")
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("moved_on_at")
        batch.drop_column("dial_claimed_at")
