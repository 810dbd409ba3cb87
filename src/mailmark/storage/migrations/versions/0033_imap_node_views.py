"""IMAP nodes, the folders their sessions have open, and placements kept after an expunge until
every session that may still see them has been told (issue 16 item 10, across nodes).

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-07 07:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_WHEN = sa.DateTime(timezone=True)


def _fk(table: str, name: str, target: str) -> sa.Column[int]:
    referred = target.split(".")[0]
    return sa.Column(
        name,
        _ID,
        sa.ForeignKey(target, ondelete="CASCADE", name=f"fk_{table}_{name}_{referred}"),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "imap_nodes",
        sa.Column("node_id", sa.String(32), nullable=False),
        sa.Column("seen_at", _WHEN, nullable=False),
        sa.PrimaryKeyConstraint("node_id", name="pk_imap_nodes"),
    )
    op.create_table(
        "imap_node_views",
        sa.Column(
            "node_id",
            sa.String(32),
            sa.ForeignKey(
                "imap_nodes.node_id",
                ondelete="CASCADE",
                name="fk_imap_node_views_node_id_imap_nodes",
            ),
            nullable=False,
        ),
        _fk("imap_node_views", "folder_id", "folders.id"),
        sa.Column("floor", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("node_id", "folder_id", name="pk_imap_node_views"),
    )
    op.create_index("ix_imap_node_views_folder_id", "imap_node_views", ["folder_id"])
    op.create_table(
        "retained_placements",
        _fk("retained_placements", "folder_id", "folders.id"),
        sa.Column("uid", sa.BigInteger(), nullable=False),
        _fk("retained_placements", "message_id", "messages.id"),
        sa.Column("modseq", sa.BigInteger(), nullable=False),
        sa.Column("flags", sa.JSON(), nullable=False),
        sa.Column("thread_id", sa.String(32), nullable=False),
        sa.Column("internal_date", _WHEN, nullable=False),
        sa.Column("expunged_modseq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("folder_id", "uid", name="pk_retained_placements"),
    )
    op.create_index("ix_retained_placements_message_id", "retained_placements", ["message_id"])


def downgrade() -> None:
    op.drop_index("ix_retained_placements_message_id", "retained_placements")
    op.drop_table("retained_placements")
    op.drop_index("ix_imap_node_views_folder_id", "imap_node_views")
    op.drop_table("imap_node_views")
    op.drop_table("imap_nodes")
