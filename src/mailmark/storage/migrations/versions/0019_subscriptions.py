"""IMAP subscriptions are a list of names of their own (RFC 9051 §6.3.7-6.3.8): a deleted folder's
name stays subscribed and a created folder is not subscribed. The folders' flags become rows.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 02:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "subscriptions",
        sa.Column("mailbox_id", Id, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["mailbox_id"],
            ["mailboxes.id"],
            name=op.f("fk_subscriptions_mailbox_id_mailboxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("mailbox_id", "name", name=op.f("pk_subscriptions")),
    )
    op.execute(
        "INSERT INTO subscriptions (mailbox_id, name) "
        "SELECT mailbox_id, name FROM folders WHERE subscribed"
    )
    # SQLite (3.35+) and PostgreSQL both drop a plain column in place: no batch rebuild (see 0010).
    op.drop_column("folders", "subscribed")


def downgrade() -> None:
    op.add_column(
        "folders",
        sa.Column("subscribed", sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    op.execute(
        "UPDATE folders SET subscribed = EXISTS (SELECT 1 FROM subscriptions s "
        "WHERE s.mailbox_id = folders.mailbox_id AND s.name = folders.name)"
    )
    op.drop_table("subscriptions")
