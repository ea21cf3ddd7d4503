"""letters fit to post (expand only).

A customer's postal address (the lines a window envelope shows), what a letter's signatory and a
named contact are called (a staff member's display name, job title and direct line), and a
restriction's reason in the customer's language. All nullable: the previous release neither
reads nor writes them.

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine[object]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.add_column("customers", sa.Column("postal_address", _json(), nullable=True))
    op.add_column("users", sa.Column("display_name", sa.String(length=120), nullable=True))
    op.add_column("users", sa.Column("job_title", sa.String(length=120), nullable=True))
    op.add_column("users", sa.Column("direct_line", sa.String(length=20), nullable=True))
    op.add_column("restrictions", sa.Column("reason_translations", _json(), nullable=True))


def downgrade() -> None:
    op.drop_column("restrictions", "reason_translations")
    op.drop_column("users", "direct_line")
    op.drop_column("users", "job_title")
    op.drop_column("users", "display_name")
    op.drop_column("customers", "postal_address")
