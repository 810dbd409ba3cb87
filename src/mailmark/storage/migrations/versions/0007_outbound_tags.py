"""Tags of outbound messages, given on /v1/send and filtered on by GET /v1/emails?tag=.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 20:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "outbound_tags",
        sa.Column("outbound_id", Id, nullable=False),
        sa.Column("domain_id", Id, nullable=False),
        sa.Column("tag", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["outbound_id"],
            ["outbound_messages.id"],
            name=op.f("fk_outbound_tags_outbound_id_outbound_messages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["domain_id"],
            ["domains.id"],
            name=op.f("fk_outbound_tags_domain_id_domains"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("outbound_id", "tag", name=op.f("pk_outbound_tags")),
    )
    with op.batch_alter_table("outbound_tags") as batch:
        batch.create_index(
            "ix_outbound_tags_domain_id_tag_outbound_id", ["domain_id", "tag", "outbound_id"]
        )


def downgrade() -> None:
    op.drop_table("outbound_tags")
