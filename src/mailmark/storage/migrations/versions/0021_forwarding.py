"""Mailboxes forward their mail to external addresses, keeping a copy here or not.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06 04:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "mailbox_forwarding",
        sa.Column("mailbox_id", Id, nullable=False),
        sa.Column("addresses", sa.JSON(), nullable=False),
        sa.Column("keep_copy", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["mailbox_id"],
            ["mailboxes.id"],
            name=op.f("fk_mailbox_forwarding_mailbox_id_mailboxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("mailbox_id", name=op.f("pk_mailbox_forwarding")),
    )


def downgrade() -> None:
    op.drop_table("mailbox_forwarding")
