"""API keys' token buckets, shared by every node and HTTP worker on PostgreSQL.

UNLOGGED there: a bucket is rewritten on every API request, and a crash losing the table only
refills every bucket once, so its writes skip the write-ahead log and wait for no fsync.
SQLite (one node) keeps its buckets in process; the table exists there, unused.

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-07 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "api_key_buckets",
        sa.Column(
            "key_id",
            _ID,
            sa.ForeignKey(
                "api_keys.id", ondelete="CASCADE", name="fk_api_key_buckets_key_id_api_keys"
            ),
            nullable=False,
        ),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("refilled_at", sa.Float(), nullable=False),
        sa.Column("admitted", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("key_id", name="pk_api_key_buckets"),
        prefixes=["UNLOGGED"] if op.get_bind().dialect.name == "postgresql" else [],
    )


def downgrade() -> None:
    op.drop_table("api_key_buckets")
