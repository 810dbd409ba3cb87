"""Folders remember the first UID no IMAP4rev1 session has yet seen as \\Recent (RFC 3501
§2.3.2): the session that selects the folder first after a message arrives is the one that
sees it as recent.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 02:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN, never a batch rebuild (see 0010). Mail already there is not recent.
    op.add_column(
        "folders",
        sa.Column("first_recent_uid", sa.BigInteger(), nullable=False, server_default=sa.text("1")),
    )
    op.execute("UPDATE folders SET first_recent_uid = uid_next")


def downgrade() -> None:
    op.drop_column("folders", "first_recent_uid")
