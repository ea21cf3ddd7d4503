"""The call's edges: who is in the caller's conference now (driven by Twilio's conference events,
kept in order on the call), when the person rung left, and when the caller joined; what
happened when an agent pressed a button (agent_actions.detail).

Expand only: new nullable columns, so the previous release keeps working beside this one.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column(
                "conference_log",
                sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
                nullable=True,
            ))
        batch.add_column(
            sa.Column("person_present_since", sa.DateTime(timezone=True), nullable=True)
        )
        batch.add_column(sa.Column("person_left_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("caller_joined_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("agent_actions") as batch:
        batch.add_column(sa.Column("detail", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("agent_actions") as batch:
        batch.drop_column("detail")
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("caller_joined_at")
        batch.drop_column("person_left_at")
        batch.drop_column("person_present_since")
        batch.drop_column("conference_log")
