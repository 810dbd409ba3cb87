"""Whether each domain's custom MAIL FROM records (mail.<domain> MX and SPF) are published.

Every domain starts on the fallback return path on the server's own name, which resolves
wherever the server runs; the next `mailmark domain verify` that finds the records moves it to
mail.<domain>.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 20:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("domains") as batch:
        batch.add_column(
            sa.Column(
                "return_path_published",
                sa.Boolean(),
                nullable=False,
                server_default=sa.false(),
            )
        )
    with op.batch_alter_table("domains") as batch:
        batch.alter_column("return_path_published", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("domains") as batch:
        batch.drop_column("return_path_published")
