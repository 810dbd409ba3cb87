"""IMAP store: precomputed ENVELOPE/BODYSTRUCTURE, expunge tombstones, the full-text index.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 13:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("envelope", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("bodystructure", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("body", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("sent_day", sa.Date(), nullable=True))
    op.create_index("ix_placements_folder_id_modseq", "placements", ["folder_id", "modseq"])
    op.create_table(
        "expunged",
        sa.Column("folder_id", Id, nullable=False),
        sa.Column("uid", sa.BigInteger(), nullable=False),
        sa.Column("modseq", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["folder_id"], ["folders.id"], name="fk_expunged_folder_id_folders", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("folder_id", "uid", name="pk_expunged"),
    )
    op.create_index("ix_expunged_folder_id_modseq", "expunged", ["folder_id", "modseq"])
    if op.get_bind().dialect.name == "postgresql":
        # pg_trgm is a trusted extension (PostgreSQL 13+): the database owner may create it.
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(
            "CREATE TABLE message_text ("
            " message_id BIGINT PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,"
            " header TEXT NOT NULL, body TEXT NOT NULL)"
        )
        op.execute(
            "CREATE INDEX ix_message_text_header ON message_text USING gin (header gin_trgm_ops)"
        )
        op.execute(
            "CREATE INDEX ix_message_text_body ON message_text USING gin (body gin_trgm_ops)"
        )
    else:
        # rowid = messages.id; the trigger keeps the index free of deleted messages.
        op.execute("CREATE VIRTUAL TABLE message_text USING fts5(header, body, tokenize='trigram')")
        op.execute(
            "CREATE TRIGGER message_text_delete AFTER DELETE ON messages BEGIN"
            " DELETE FROM message_text WHERE rowid = old.id; END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.execute("DROP TRIGGER IF EXISTS message_text_delete")
    op.execute("DROP TABLE IF EXISTS message_text")
    op.drop_index("ix_expunged_folder_id_modseq", table_name="expunged")
    op.drop_table("expunged")
    op.drop_index("ix_placements_folder_id_modseq", table_name="placements")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("sent_day")
        batch.drop_column("body")
        batch.drop_column("bodystructure")
        batch.drop_column("envelope")
