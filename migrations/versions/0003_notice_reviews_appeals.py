"""A restriction's life: notice (applies from it, or at once for danger), reviews, and appeals in
a table of their own (the appeal columns on restrictions move there).

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DT = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "appeals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("restriction_id", sa.Integer(), nullable=False),
        sa.Column("lodged_on", sa.Date(), nullable=False),
        sa.Column("grounds", sa.Text(), nullable=False),
        sa.Column("late_reason", sa.Text(), nullable=True),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("lodged_by_id", sa.Integer(), nullable=True),
        sa.Column("lodged_at", UTC_DT, nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("decided_on", sa.Date(), nullable=True),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("successor_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["restriction_id"], ["restrictions.id"], name="fk_appeals_restriction_id_restrictions"
        ),
        sa.ForeignKeyConstraint(
            ["successor_id"], ["restrictions.id"], name="fk_appeals_successor_id_restrictions"
        ),
        sa.ForeignKeyConstraint(["lodged_by_id"], ["users.id"], name="fk_appeals_lodged_by_id_users"),
        sa.ForeignKeyConstraint(
            ["decided_by_id"], ["users.id"], name="fk_appeals_decided_by_id_users"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_appeals"),
    )
    op.create_index("ix_appeals_restriction_id", "appeals", ["restriction_id"])
    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("restriction_id", sa.Integer(), nullable=False),
        sa.Column("reviewed_on", sa.Date(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("next_review_on", sa.Date(), nullable=True),
        sa.Column("reviewer_id", sa.Integer(), nullable=True),
        sa.Column("reviewer", sa.String(length=80), nullable=False),
        sa.Column("successor_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTC_DT, nullable=False),
        sa.ForeignKeyConstraint(
            ["restriction_id"], ["restrictions.id"], name="fk_reviews_restriction_id_restrictions"
        ),
        sa.ForeignKeyConstraint(
            ["successor_id"], ["restrictions.id"], name="fk_reviews_successor_id_restrictions"
        ),
        sa.ForeignKeyConstraint(["reviewer_id"], ["users.id"], name="fk_reviews_reviewer_id_users"),
        sa.PrimaryKeyConstraint("id", name="pk_reviews"),
    )
    op.create_index("ix_reviews_restriction_id", "reviews", ["restriction_id"])
    with op.batch_alter_table("restrictions") as batch:
        batch.add_column(sa.Column("decided_on", sa.Date(), nullable=True))
        batch.add_column(sa.Column("notice_method", sa.String(length=16), nullable=True))
        batch.add_column(
            sa.Column("apply_now", sa.Boolean(), nullable=False, server_default="false")
        )
        batch.add_column(sa.Column("urgent_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("notice_due_on", sa.Date(), nullable=True))
        batch.add_column(sa.Column("last_reviewed_on", sa.Date(), nullable=True))
        batch.add_column(sa.Column("replaces_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_restrictions_replaces_id_restrictions", "restrictions", ["replaces_id"], ["id"]
        )
        batch.alter_column("review_due_on", existing_type=sa.Date(), nullable=True)
    # Restrictions recorded before this applied at once, as they did then: keep them applying.
    op.execute("UPDATE restrictions SET decided_on = CAST(decided_at AS DATE)")
    op.execute("UPDATE restrictions SET apply_now = true WHERE notice_sent_on IS NULL")
    op.execute(
        "INSERT INTO appeals (restriction_id, lodged_on, grounds, due_on, lodged_at, outcome) "
        "SELECT id, appeal_lodged_on, 'Recorded before appeals had their own record', "
        "appeal_due_on, decided_at, appeal_outcome FROM restrictions "
        "WHERE appeal_lodged_on IS NOT NULL"
    )
    with op.batch_alter_table("restrictions") as batch:
        batch.alter_column("decided_on", existing_type=sa.Date(), nullable=False)
        batch.drop_column("appeal_lodged_on")
        batch.drop_column("appeal_due_on")
        batch.drop_column("appeal_outcome")
        batch.drop_column("reviewed_at")


def downgrade() -> None:
    with op.batch_alter_table("restrictions") as batch:
        batch.add_column(sa.Column("reviewed_at", UTC_DT, nullable=True))
        batch.add_column(sa.Column("appeal_outcome", sa.Text(), nullable=True))
        batch.add_column(sa.Column("appeal_due_on", sa.Date(), nullable=True))
        batch.add_column(sa.Column("appeal_lodged_on", sa.Date(), nullable=True))
    op.execute(
        "UPDATE restrictions SET appeal_lodged_on = a.lodged_on, appeal_due_on = a.due_on, "
        "appeal_outcome = a.outcome FROM appeals a WHERE a.restriction_id = restrictions.id"
    )
    op.execute("UPDATE restrictions SET review_due_on = decided_on WHERE review_due_on IS NULL")
    with op.batch_alter_table("restrictions") as batch:
        batch.alter_column("review_due_on", existing_type=sa.Date(), nullable=False)
        batch.drop_constraint("fk_restrictions_replaces_id_restrictions", type_="foreignkey")
        for column in (
            "replaces_id",
            "last_reviewed_on",
            "notice_due_on",
            "urgent_reason",
            "apply_now",
            "notice_method",
            "decided_on",
        ):
            batch.drop_column(column)
    op.drop_index("ix_reviews_restriction_id", table_name="reviews")
    op.drop_table("reviews")
    op.drop_index("ix_appeals_restriction_id", table_name="appeals")
    op.drop_table("appeals")
