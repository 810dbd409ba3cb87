"""Outbound mail: messages sent, the per-recipient delivery queue, suppressions, event links.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "outbound_messages",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("account_id", Id, nullable=False),
        sa.Column("domain_id", Id, nullable=False),
        sa.Column("mailbox_id", Id, nullable=True),
        sa.Column("blob_key", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("envelope_from", sa.String(length=320), nullable=False),
        sa.Column("token", sa.String(length=24), nullable=False),
        sa.Column("from_addr", sa.String(length=320), nullable=False),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("message_id_header", sa.String(length=998), nullable=True),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("batch_id", sa.String(length=64), nullable=True),
        sa.Column("sent_message_id", Id, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_outbound_messages_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["domain_id"],
            ["domains.id"],
            name=op.f("fk_outbound_messages_domain_id_domains"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["mailbox_id"],
            ["mailboxes.id"],
            name=op.f("fk_outbound_messages_mailbox_id_mailboxes"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["sent_message_id"],
            ["messages.id"],
            name=op.f("fk_outbound_messages_sent_message_id_messages"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbound_messages")),
        sa.UniqueConstraint("token", name=op.f("uq_outbound_messages_token")),
    )
    with op.batch_alter_table("outbound_messages") as batch:
        batch.create_index(batch.f("ix_outbound_messages_blob_key"), ["blob_key"])
        batch.create_index(batch.f("ix_outbound_messages_message_id_header"), ["message_id_header"])
        batch.create_index(batch.f("ix_outbound_messages_batch_id"), ["batch_id"])
        batch.create_index(
            "ix_outbound_messages_account_id_created_at", ["account_id", "created_at"]
        )

    op.create_table(
        "deliveries",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("outbound_id", Id, nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("recipient_domain", sa.String(length=253), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.String(length=100), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_code", sa.Integer(), nullable=True),
        sa.Column("last_status", sa.String(length=16), nullable=True),
        sa.Column("last_reply", sa.Text(), nullable=True),
        sa.Column("mx_host", sa.String(length=253), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["outbound_id"],
            ["outbound_messages.id"],
            name=op.f("fk_deliveries_outbound_id_outbound_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
    )
    with op.batch_alter_table("deliveries") as batch:
        batch.create_index(batch.f("ix_deliveries_recipient_domain"), ["recipient_domain"])
        batch.create_index("ix_deliveries_status_next_attempt_at", ["status", "next_attempt_at"])
        batch.create_index("ix_deliveries_outbound_id", ["outbound_id"])

    op.create_table(
        "suppressions",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("domain_id", Id, nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["domain_id"],
            ["domains.id"],
            name=op.f("fk_suppressions_domain_id_domains"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_suppressions")),
        sa.UniqueConstraint("domain_id", "address", name=op.f("uq_suppressions_domain_id_address")),
    )

    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("outbound_id", Id, nullable=True))
        batch.create_index(batch.f("ix_events_outbound_id"), ["outbound_id"])


def downgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.drop_index(batch.f("ix_events_outbound_id"))
        batch.drop_column("outbound_id")
    op.drop_table("suppressions")
    op.drop_table("deliveries")
    op.drop_table("outbound_messages")
