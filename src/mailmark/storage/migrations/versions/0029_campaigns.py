"""Campaigns: multi-stage sequences, one row per recipient with its place in the sequence, and one
row per (recipient, stage) sent, written in the transaction that queues the message.

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-06 11:00:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _id() -> sa.Column[int]:
    return sa.Column("id", Id, primary_key=True, autoincrement=True)


def _fk(
    name: str, target: str, ondelete: str = "CASCADE", nullable: bool = False
) -> sa.Column[Any]:
    return sa.Column(name, Id, sa.ForeignKey(target, ondelete=ondelete), nullable=nullable)


def _at(name: str, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "campaigns",
        _id(),
        _fk("account_id", "accounts.id"),
        _fk("domain_id", "domains.id"),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        _fk("mailbox_id", "mailboxes.id", "SET NULL", nullable=True),
        _fk("sender_group_id", "sender_groups.id", "SET NULL", nullable=True),
        sa.Column("audience", sa.JSON(), nullable=False),
        sa.Column("stages", sa.JSON(), nullable=False),
        sa.Column("schedule", sa.JSON(), nullable=False),
        sa.Column("pause_reason", sa.Text(), nullable=False),
        _at("created_at"),
        _at("updated_at"),
        _at("launched_at", nullable=True),
        _at("finished_at", nullable=True),
    )
    op.create_index("ix_campaigns_domain_id", "campaigns", ["domain_id"])
    op.create_index("ix_campaigns_status", "campaigns", ["status"])
    op.create_table(
        "campaign_recipients",
        _id(),
        _fk("campaign_id", "campaigns.id"),
        _fk("contact_id", "contacts.id", "SET NULL", nullable=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("email_key", sa.String(320), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("next_stage", sa.Integer(), nullable=False),
        _at("next_send_at"),
        _fk("mailbox_id", "mailboxes.id", "SET NULL", nullable=True),
        sa.Column("thread_subject", sa.Text()),
        sa.Column("thread_references", sa.Text()),
        sa.Column("last_outbound_id", Id),
        sa.Column("auto_replies", sa.Integer(), nullable=False),
        sa.Column("stop_reason", sa.Text(), nullable=False),
        _at("updated_at"),
        sa.UniqueConstraint("campaign_id", "email_key"),
    )
    op.create_index(
        "ix_campaign_recipients_campaign_id_state_next_send_at",
        "campaign_recipients",
        ["campaign_id", "state", "next_send_at"],
    )
    op.create_index("ix_campaign_recipients_contact_id", "campaign_recipients", ["contact_id"])
    op.create_table(
        "campaign_messages",
        _id(),
        _fk("campaign_id", "campaigns.id"),
        _fk("recipient_id", "campaign_recipients.id"),
        sa.Column("stage", sa.Integer(), nullable=False),
        sa.Column("variant", sa.Integer(), nullable=False),
        _fk("outbound_id", "outbound_messages.id", "SET NULL", nullable=True),
        sa.Column("message_id", sa.String(998), nullable=False),
        _fk("mailbox_id", "mailboxes.id", "SET NULL", nullable=True),
        _at("sent_at"),
        _at("replied_at", nullable=True),
        sa.UniqueConstraint("recipient_id", "stage"),
    )
    op.create_index("ix_campaign_messages_message_id", "campaign_messages", ["message_id"])
    op.create_index(
        "ix_campaign_messages_mailbox_id_sent_at", "campaign_messages", ["mailbox_id", "sent_at"]
    )
    op.create_index(
        "ix_campaign_messages_campaign_id_stage", "campaign_messages", ["campaign_id", "stage"]
    )
    op.create_index("ix_campaign_messages_outbound_id", "campaign_messages", ["outbound_id"])


def downgrade() -> None:
    op.drop_table("campaign_messages")
    op.drop_table("campaign_recipients")
    op.drop_table("campaigns")
