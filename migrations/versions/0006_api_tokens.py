"""API tokens of their own: many per user, each with a label, an expiry, when it was last used
and when it was revoked (rotation, a new password, signing out everywhere, disabling).

Expand only: ``users.token_hash`` stays, so the previous release keeps working beside this one.
Each user's token is copied here (label ``legacy``), valid for 90 days from this migration;
this release keeps ``users.token_hash`` set to the newest token's hash, or to an unusable one
when a user's tokens are revoked, so both releases agree on which token works.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LEGACY_TOKEN_DAYS = 90


def upgrade() -> None:
    api_tokens = op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_api_tokens_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_index(op.f("ix_api_tokens_user_id"), "api_tokens", ["user_id"], unique=False)

    users = sa.table(
        "users",
        sa.column("id", sa.Integer()),
        sa.column("token_hash", sa.String()),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    expires = datetime.now(UTC) + timedelta(days=LEGACY_TOKEN_DAYS)
    op.execute(
        sa.insert(api_tokens).from_select(
            ["user_id", "token_hash", "label", "created_at", "expires_at"],
            sa.select(
                users.c.id,
                users.c.token_hash,
                sa.literal("legacy", sa.String()),
                users.c.created_at,
                sa.literal(expires, sa.DateTime(timezone=True)),
            ),
        )
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_api_tokens_user_id"), table_name="api_tokens")
    op.drop_table("api_tokens")
