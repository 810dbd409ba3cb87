"""Webhook secrets are stored sealed with the secrets key (storage/secrets.py): the sealed form
is longer than the 100 characters the plaintext column allowed.

The values themselves are encrypted at start, with the key, which migrations do not have.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhooks") as batch:
        batch.alter_column(
            "secret", existing_type=sa.String(100), type_=sa.Text(), existing_nullable=False
        )


def downgrade() -> None:
    with op.batch_alter_table("webhooks") as batch:
        batch.alter_column(
            "secret", existing_type=sa.Text(), type_=sa.String(100), existing_nullable=False
        )
