"""a supervisor's note on reviewing an agent's incident (expand only).

What the supervisor wrote when they reviewed an agent's Warn or End press
(``agent_actions.review_note``), shown in the incident queue and on the audit trail. Nullable:
the previous release neither reads nor writes it.

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("agent_actions") as batch:
        batch.add_column(sa.Column("review_note", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("agent_actions") as batch:
        batch.drop_column("review_note")
