"""Addresses beyond mailboxes: aliases delivering to one or more mailboxes, a catch-all mailbox
per domain, and alias domains that deliver as another domain of the same account.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06 04:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column],
        [f"{target}.id"],
        name=op.f(f"fk_{table}_{column}_{target}"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "aliases",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("domain_id", Id, nullable=False),
        sa.Column("local_part", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _fk("aliases", "domain_id", "domains"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_aliases")),
        sa.UniqueConstraint(
            "domain_id", "local_part", name=op.f("uq_aliases_domain_id_local_part")
        ),
    )
    op.create_table(
        "alias_targets",
        sa.Column("alias_id", Id, nullable=False),
        sa.Column("mailbox_id", Id, nullable=False),
        _fk("alias_targets", "alias_id", "aliases"),
        _fk("alias_targets", "mailbox_id", "mailboxes"),
        sa.PrimaryKeyConstraint("alias_id", "mailbox_id", name=op.f("pk_alias_targets")),
    )
    op.create_index("ix_alias_targets_mailbox_id", "alias_targets", ["mailbox_id"])
    op.create_table(
        "catch_alls",
        sa.Column("domain_id", Id, nullable=False),
        sa.Column("mailbox_id", Id, nullable=False),
        _fk("catch_alls", "domain_id", "domains"),
        _fk("catch_alls", "mailbox_id", "mailboxes"),
        sa.PrimaryKeyConstraint("domain_id", name=op.f("pk_catch_alls")),
    )
    op.create_index("ix_catch_alls_mailbox_id", "catch_alls", ["mailbox_id"])
    op.create_table(
        "alias_domains",
        sa.Column("domain_id", Id, nullable=False),
        sa.Column("target_domain_id", Id, nullable=False),
        _fk("alias_domains", "domain_id", "domains"),
        _fk("alias_domains", "target_domain_id", "domains"),
        sa.PrimaryKeyConstraint("domain_id", name=op.f("pk_alias_domains")),
    )
    op.create_index("ix_alias_domains_target_domain_id", "alias_domains", ["target_domain_id"])


def downgrade() -> None:
    op.drop_table("alias_domains")
    op.drop_table("catch_alls")
    op.drop_table("alias_targets")
    op.drop_table("aliases")
