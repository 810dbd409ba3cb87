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
    op.create_index("ix_domain_record_checks_domain_id", "domain_record_checks", ["domain_id"])
    # Plain ADD COLUMNs, never a batch rebuild (nor a server default removed after): SQLite
    # rebuilds a table by dropping the old one, and that DROP would run the ON DELETE CASCADE of
    # every table referring to it: a rebuilt `domains` or `mailboxes` would lose the mail.
    op.add_column("domains", sa.Column("last_checked_at", sa.DateTime(timezone=True)))
    op.add_column("domains", sa.Column("next_check_at", sa.DateTime(timezone=True)))
    op.add_column(
        "domains",
        sa.Column("failed_checks", sa.Integer(), nullable=False, server_default=sa.text("0")),
    )
    op.create_index("ix_domains_next_check_at", "domains", ["next_check_at"])
    op.add_column(
        "mailboxes",
        sa.Column(
            "signature_format",
            sa.String(length=10),
            nullable=False,
            server_default=sa.text("'text'"),
        ),
    )


def downgrade() -> None:
    # Plain DROP COLUMNs (SQLite 3.35+), for the reason upgrade() gives.
    op.drop_column("mailboxes", "signature_format")
    op.drop_index("ix_domains_next_check_at", table_name="domains")
    op.drop_column("domains", "failed_checks")
    op.drop_column("domains", "next_check_at")
    op.drop_column("domains", "last_checked_at")
    op.drop_index("ix_domain_record_checks_domain_id", table_name="domain_record_checks")
    op.drop_table("domain_record_checks")
