"""Mailboxes say whether the server files a Sent copy of what their clients submit over SMTP
(on by default, as before): a desktop client that saves its own copy to Sent can turn it off.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 01:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN, never a batch rebuild: SQLite rebuilds a table by dropping the old
    # one, which would run the ON DELETE CASCADE of folders and placements (see 0010).
    op.add_column(
        "mailboxes",
        sa.Column("save_sent_copy", sa.Boolean(), nullable=False, server_default=sa.true()),
    )


def downgrade() -> None:
    # A plain DROP COLUMN (SQLite 3.35+), for the reason upgrade() gives.
    op.drop_column("mailboxes", "save_sent_copy")
