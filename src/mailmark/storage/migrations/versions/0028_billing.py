"""Billing: the paid period and the payment provider's ids on accounts, one usage row per account
and calendar month (filled from the queue rows already there), and the raw webhook events.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-06 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None

_ACCOUNT_COLUMNS = (
    "current_period_end",
    "cancel_at_period_end",
    "scheduled_plan",
    "billing_customer_id",
    "subscription_id",
    "subscription_modified_at",
)


def upgrade() -> None:
    # Plain ADD COLUMNs, never a batch rebuild (see 0010).
    op.add_column("accounts", sa.Column("current_period_end", sa.DateTime(timezone=True)))
    op.add_column(
        "accounts",
        sa.Column("cancel_at_period_end", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("accounts", sa.Column("scheduled_plan", sa.String(20)))
    op.add_column("accounts", sa.Column("billing_customer_id", sa.String(100)))
    op.add_column("accounts", sa.Column("subscription_id", sa.String(100)))
    op.add_column("accounts", sa.Column("subscription_modified_at", sa.DateTime(timezone=True)))
    op.create_index("uq_accounts_subscription_id", "accounts", ["subscription_id"], unique=True)
    op.create_table(
        "account_usage",
        sa.Column(
            "account_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.ForeignKey("accounts.id", ondelete="CASCADE", name="fk_account_usage_account_id"),
            nullable=False,
        ),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("emails_sent", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "month", name="pk_account_usage"),
    )
    op.create_table(
        "billing_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("event_id", sa.String(200), nullable=False),
        sa.Column("event_type", sa.String(60), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("outcome", sa.String(200), nullable=False),
        sa.UniqueConstraint("event_id", name="uq_billing_events_event_id"),
    )
    # Every queue row counted once, under the month its message was queued in (UTC).
    month = (
        "strftime('%Y-%m', o.created_at)"
        if op.get_bind().dialect.name == "sqlite"
        else "to_char(o.created_at AT TIME ZONE 'UTC', 'YYYY-MM')"
    )
    op.execute(
        "INSERT INTO account_usage (account_id, month, emails_sent) "
        f"SELECT o.account_id, {month}, count(*) FROM deliveries d "
        "JOIN outbound_messages o ON o.id = d.outbound_id "
        f"GROUP BY o.account_id, {month}"
    )


def downgrade() -> None:
    op.drop_table("billing_events")
    op.drop_table("account_usage")
    op.drop_index("uq_accounts_subscription_id", "accounts")
    for column in reversed(_ACCOUNT_COLUMNS):
        op.drop_column("accounts", column)
