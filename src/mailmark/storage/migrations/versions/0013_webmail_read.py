"""The webmail's read side: an Archive folder (RFC 6154 \\Archive) for every mailbox, the senders
whose remote images a mailbox always shows, and indexes for a folder's conversation list.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 01:20:00
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ARCHIVE = "Archive"


def upgrade() -> None:
    op.create_table(
        "trusted_senders",
        sa.Column("mailbox_id", Id, nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["mailbox_id"],
            ["mailboxes.id"],
            name=op.f("fk_trusted_senders_mailbox_id_mailboxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("mailbox_id", "address", name=op.f("pk_trusted_senders")),
    )
    op.create_index(
        "ix_placements_folder_id_thread_id_internal_date",
        "placements",
        ["folder_id", "thread_id", "internal_date"],
    )
    op.create_index(
        "ix_placements_folder_id_internal_date_thread_id",
        "placements",
        ["folder_id", "internal_date", "thread_id"],
    )
    folders = sa.table(
        "folders",
        sa.column("mailbox_id", Id),
        sa.column("name", sa.String()),
        sa.column("special_use", sa.String()),
        sa.column("uid_validity", sa.BigInteger()),
        sa.column("uid_next", sa.BigInteger()),
        sa.column("highest_modseq", sa.BigInteger()),
        sa.column("subscribed", sa.Boolean()),
    )
    mailboxes = sa.table("mailboxes", sa.column("id", Id))
    conn = op.get_bind()
    # A folder someone already called Archive becomes the special one (RFC 6154 §2: a client
    # finds it by the attribute, people by the name).
    conn.execute(
        folders.update()
        .where(folders.c.name == ARCHIVE, folders.c.special_use.is_(None))
        .values(special_use="\\Archive")
    )
    have = sa.select(folders.c.mailbox_id).where(folders.c.name == ARCHIVE)
    missing = conn.execute(sa.select(mailboxes.c.id).where(mailboxes.c.id.not_in(have))).scalars()
    validity = int(time.time())
    rows = [
        {
            "mailbox_id": mailbox_id,
            "name": ARCHIVE,
            "special_use": "\\Archive",
            "uid_validity": validity,
            "uid_next": 1,
            "highest_modseq": 1,
            "subscribed": True,
        }
        for mailbox_id in missing
    ]
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        # Rows inserted with explicit ids (restores, imports) leave the sequence behind them.
        conn.execute(
            sa.text(
                "SELECT setval(pg_get_serial_sequence('folders', 'id'), max(id)) FROM folders "
                "HAVING max(id) IS NOT NULL"
            )
        )
    op.bulk_insert(folders, rows)


def downgrade() -> None:
    op.drop_index("ix_placements_folder_id_internal_date_thread_id", table_name="placements")
    op.drop_index("ix_placements_folder_id_thread_id_internal_date", table_name="placements")
    op.drop_table("trusted_senders")
