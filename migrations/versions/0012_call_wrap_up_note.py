"""the agent's wrap-up note on a call (expand only).

What the agent wrote about the call when wrapping it up (``calls.wrap_up_note``), saved from the
agent console and audited. Nullable: the previous release neither reads nor writes it.

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("wrap_up_note", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("wrap_up_note")
