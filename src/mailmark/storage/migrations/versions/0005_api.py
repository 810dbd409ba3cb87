"""The REST API: API keys, sender groups with their mailboxes, and idempotency keys.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 13:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _domain_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["domain_id"],
        ["domains.id"],
        name=op.f(f"fk_{table}_domain_id_domains"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("domain_id", Id, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("prefix", sa.String(length=32), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        _domain_fk("api_keys"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_keys_prefix")),
    )
    op.create_index("ix_api_keys_domain_id", "api_keys", ["domain_id"])

    op.create_table(
        "sender_groups",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("domain_id", Id, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("all_mailboxes", sa.Boolean(), nullable=False),
        sa.Column("emails", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _domain_fk("sender_groups"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sender_groups")),
    )
    op.create_index("ix_sender_groups_domain_id", "sender_groups", ["domain_id"])

    op.create_table(
        "sender_group_mailboxes",
        sa.Column("group_id", Id, nullable=False),
        sa.Column("mailbox_id", Id, nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["sender_groups.id"],
            name=op.f("fk_sender_group_mailboxes_group_id_sender_groups"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["mailbox_id"],
            ["mailboxes.id"],
            name=op.f("fk_sender_group_mailboxes_mailbox_id_mailboxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("group_id", "mailbox_id", name=op.f("pk_sender_group_mailboxes")),
    )
    op.create_index(
        "ix_sender_group_mailboxes_mailbox_id", "sender_group_mailboxes", ["mailbox_id"]
    )

    op.create_table(
        "idempotency_keys",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("domain_id", Id, nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _domain_fk("idempotency_keys"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_keys")),
        sa.UniqueConstraint("domain_id", "key", name=op.f("uq_idempotency_keys_domain_id_key")),
    )


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_table("sender_group_mailboxes")
    op.drop_table("sender_groups")
    op.drop_table("api_keys")
