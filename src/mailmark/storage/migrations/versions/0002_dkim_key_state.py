"""DKIM keys get a state (active, pending, retired) so a domain can rotate its key.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 04:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dkim_keys") as batch:
        batch.add_column(sa.Column("state", sa.String(10), nullable=False, server_default="active"))
    op.execute("UPDATE dkim_keys SET state = CASE WHEN active THEN 'active' ELSE 'retired' END")
    with op.batch_alter_table("dkim_keys") as batch:
        batch.alter_column("state", server_default=None)
        batch.drop_column("active")


def downgrade() -> None:
    with op.batch_alter_table("dkim_keys") as batch:
        batch.add_column(
            sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    op.execute("UPDATE dkim_keys SET active = (state = 'active')")
    with op.batch_alter_table("dkim_keys") as batch:
        batch.alter_column("active", server_default=None)
        batch.drop_column("state")
