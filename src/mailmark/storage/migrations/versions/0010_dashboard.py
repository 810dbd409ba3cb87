"""What the dashboard shows and keeps: each domain record's last check (status, what was found,
when), when an unverified domain is checked again in the background, and the format of a
mailbox's signature.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 22:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "domain_record_checks",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("domain_id", Id, nullable=False),
        sa.Column("type", sa.String(length=10), nullable=False),
        sa.Column("name", sa.String(length=253), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("found", sa.JSON(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["domain_id"],
            ["domains.id"],
            name=op.f("fk_domain_record_checks_domain_id_domains"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_domain_record_checks")),
    )
    with op.batch_alter_table("domain_record_checks") as batch:
        batch.create_index("ix_domain_record_checks_domain_id", ["domain_id"])
    with op.batch_alter_table("domains") as batch:
        batch.add_column(sa.Column("last_checked_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("next_check_at", sa.DateTime(timezone=True)))
        batch.add_column(
            sa.Column("failed_checks", sa.Integer(), nullable=False, server_default="0")
        )
        batch.create_index("ix_domains_next_check_at", ["next_check_at"])
    with op.batch_alter_table("mailboxes") as batch:
        batch.add_column(
            sa.Column(
                "signature_format", sa.String(length=10), nullable=False, server_default="text"
            )
        )
    with op.batch_alter_table("domains") as batch:
        batch.alter_column("failed_checks", server_default=None)
    with op.batch_alter_table("mailboxes") as batch:
        batch.alter_column("signature_format", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("mailboxes") as batch:
        batch.drop_column("signature_format")
    with op.batch_alter_table("domains") as batch:
        batch.drop_index("ix_domains_next_check_at")
        batch.drop_column("failed_checks")
        batch.drop_column("next_check_at")
        batch.drop_column("last_checked_at")
    op.drop_table("domain_record_checks")
