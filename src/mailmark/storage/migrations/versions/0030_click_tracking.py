"""Click tracking and unsubscribes: the links a tracked message's redirects stand for, a tracking
host per domain, and the addresses an account no longer sends campaign mail to.

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-06 11:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # Plain ADD COLUMNs, never a batch rebuild (see 0010).
    op.add_column("outbound_messages", sa.Column("tracked_links", sa.JSON()))
    op.add_column("domains", sa.Column("tracking_host", sa.String(253)))
    op.create_table(
        "account_suppressions",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column(
            "account_id", Id, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("reason", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("account_id", "address"),
    )


def downgrade() -> None:
    op.drop_table("account_suppressions")
    op.drop_column("domains", "tracking_host")
    op.drop_column("outbound_messages", "tracked_links")
