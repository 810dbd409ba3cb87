"""Each mailbox remembers the greatest UIDVALIDITY it gave a folder, so a folder deleted and
created again under the same name, even within the same second, gets a greater one (RFC 9051
§2.3.1.1).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 02:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN, never a batch rebuild (see 0010). Existing mailboxes start from the
    # greatest value their folders hold now.
    op.add_column(
        "mailboxes",
        sa.Column(
            "last_uid_validity", sa.BigInteger(), nullable=False, server_default=sa.text("0")
        ),
    )
    op.execute(
        "UPDATE mailboxes SET last_uid_validity = COALESCE((SELECT MAX(folders.uid_validity) "
        "FROM folders WHERE folders.mailbox_id = mailboxes.id), 0)"
    )


def downgrade() -> None:
    op.drop_column("mailboxes", "last_uid_validity")
