"""Each domain's own outbound route: a relay host (smarthost) with its sealed password, or
"direct" although the installation relays.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-06 04:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "domain_relays",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("domain_id", Id, nullable=False),
        sa.Column("choice", sa.String(length=10), nullable=False),
        sa.Column("host", sa.String(length=253), nullable=True),
        sa.Column("port", sa.Integer(), nullable=True),
        sa.Column("tls", sa.String(length=10), nullable=True),
        sa.Column("username", sa.String(length=255), nullable=True),
        sa.Column("password", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["domain_id"],
            ["domains.id"],
            name=op.f("fk_domain_relays_domain_id_domains"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_domain_relays")),
        sa.UniqueConstraint("domain_id", name=op.f("uq_domain_relays_domain_id")),
    )


def downgrade() -> None:
    op.drop_table("domain_relays")
