"""Vacation responders: each mailbox's settings, and whom it answered until when.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06 04:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "vacations",
        sa.Column("mailbox_id", Id, nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("subject", sa.String(length=998), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("body_format", sa.String(length=10), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("starts_at", When, nullable=True),
        sa.Column("ends_at", When, nullable=True),
        sa.Column("updated_at", When, nullable=False),
        sa.ForeignKeyConstraint(
            ["mailbox_id"],
            ["mailboxes.id"],
            name=op.f("fk_vacations_mailbox_id_mailboxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("mailbox_id", name=op.f("pk_vacations")),
    )
    op.create_table(
        "vacation_replies",
        sa.Column("mailbox_id", Id, nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("until", When, nullable=False),
        sa.ForeignKeyConstraint(
            ["mailbox_id"],
            ["mailboxes.id"],
            name=op.f("fk_vacation_replies_mailbox_id_mailboxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("mailbox_id", "key", name=op.f("pk_vacation_replies")),
    )
    op.create_index("ix_vacation_replies_until", "vacation_replies", ["until"])


def downgrade() -> None:
    op.drop_index("ix_vacation_replies_until", table_name="vacation_replies")
    op.drop_table("vacation_replies")
    op.drop_table("vacations")
