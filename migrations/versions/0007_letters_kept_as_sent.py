"""letters kept as sent (expand only).

Every letter that goes to a customer (a decision, the notice of one applied at once, a review's
or an appeal's outcome, the end of a restriction) is kept as it was sent: its PDF, the PDF's
SHA-256, the template it was drawn with, what it is about, its language, how it was sent and who
recorded it. A new table, never updated (a trigger refuses it); nothing else changes, so the
previous release, which neither reads nor writes it, runs beside this one.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEPT_AS_SENT = "sent letters are kept as they were sent and cannot be changed"


def upgrade() -> None:
    op.create_table(
        "sent_letters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("restriction_id", sa.Integer(), nullable=False),
        sa.Column("review_id", sa.Integer(), nullable=True),
        sa.Column("appeal_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("letter_on", sa.Date(), nullable=False),
        sa.Column("sent_on", sa.Date(), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("template_version", sa.String(length=64), nullable=False),
        sa.Column("pdf", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("recorded_by_id", sa.Integer(), nullable=True),
        sa.Column("recorded_by", sa.String(length=80), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_sent_letters_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["restriction_id"],
            ["restrictions.id"],
            name=op.f("fk_sent_letters_restriction_id_restrictions"),
        ),
        sa.ForeignKeyConstraint(
            ["review_id"], ["reviews.id"], name=op.f("fk_sent_letters_review_id_reviews")
        ),
        sa.ForeignKeyConstraint(
            ["appeal_id"], ["appeals.id"], name=op.f("fk_sent_letters_appeal_id_appeals")
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by_id"], ["users.id"], name=op.f("fk_sent_letters_recorded_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sent_letters")),
    )
    op.create_index(
        op.f("ix_sent_letters_customer_id"), "sent_letters", ["customer_id"], unique=False
    )
    op.create_index(
        op.f("ix_sent_letters_restriction_id"), "sent_letters", ["restriction_id"], unique=False
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION sent_letters_kept_as_sent() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{KEPT_AS_SENT}'; END $$"
        )
        op.execute(
            "CREATE TRIGGER sent_letters_kept_as_sent BEFORE UPDATE ON sent_letters "
            "FOR EACH ROW EXECUTE FUNCTION sent_letters_kept_as_sent()"
        )
    else:
        op.execute(
            "CREATE TRIGGER sent_letters_kept_as_sent BEFORE UPDATE ON sent_letters "
            f"BEGIN SELECT RAISE(ABORT, '{KEPT_AS_SENT}'); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER sent_letters_kept_as_sent ON sent_letters")
        op.execute("DROP FUNCTION sent_letters_kept_as_sent()")
    op.drop_index(op.f("ix_sent_letters_restriction_id"), table_name="sent_letters")
    op.drop_index(op.f("ix_sent_letters_customer_id"), table_name="sent_letters")
    op.drop_table("sent_letters")
