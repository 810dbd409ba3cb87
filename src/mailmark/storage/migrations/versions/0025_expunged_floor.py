"""Folders remember up to which MODSEQ their expunge tombstones were pruned: a client asking about
changes since an older MODSEQ is answered from the folder's current UIDs instead.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-06 04:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN, never a batch rebuild (see 0010).
    op.add_column(
        "folders",
        sa.Column("expunged_floor", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
    )


def downgrade() -> None:
    op.drop_column("folders", "expunged_floor")
