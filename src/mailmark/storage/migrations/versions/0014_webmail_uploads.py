"""Files uploaded from the webmail's compose form, waiting to be attached to a draft or a send;
open tracking per mailbox.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 01:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "webmail_uploads",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("mailbox_id", Id, nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=129), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("blob_key", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_webmail_uploads_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["mailbox_id"],
            ["mailboxes.id"],
            name=op.f("fk_webmail_uploads_mailbox_id_mailboxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webmail_uploads")),
    )
    with op.batch_alter_table("webmail_uploads") as batch:
        batch.create_index("ix_webmail_uploads_blob_key", ["blob_key"])
        batch.create_index("ix_webmail_uploads_expires_at", ["expires_at"])
    # A plain ADD COLUMN, never a batch rebuild: SQLite rebuilds a table by dropping the old one,
    # whose ON DELETE CASCADE would take the mailboxes' folders and mail along (see 0010).
    op.add_column(
        "mailboxes",
        sa.Column("track_opens", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_column("mailboxes", "track_opens")  # a plain DROP COLUMN (SQLite 3.35+)
    op.drop_table("webmail_uploads")
