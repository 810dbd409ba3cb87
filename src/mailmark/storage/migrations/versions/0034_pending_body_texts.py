"""Messages whose body text waits to be added to the full-text index (indexed after the 250).

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-07 16:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0034"
down_revision = "0033"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "pending_body_texts",
        sa.Column(
            "message_id",
            _ID,
            sa.ForeignKey(
                "messages.id",
                ondelete="CASCADE",
                name="fk_pending_body_texts_message_id_messages",
            ),
            nullable=False,
            autoincrement=False,
        ),
        sa.PrimaryKeyConstraint("message_id", name="pk_pending_body_texts"),
    )


def downgrade() -> None:
    op.drop_table("pending_body_texts")
