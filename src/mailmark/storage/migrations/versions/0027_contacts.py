"""Contacts, lists and segments of an account, and the progress of CSV imports.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-06 08:00:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _id() -> sa.Column[int]:
    return sa.Column("id", Id, primary_key=True, autoincrement=True)


def _fk(name: str, target: str) -> sa.Column[int]:
    return sa.Column(name, Id, sa.ForeignKey(target, ondelete="CASCADE"), nullable=False)


def _at(name: str) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "contacts",
        _id(),
        _fk("account_id", "accounts.id"),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("email_key", sa.String(320), nullable=False),
        sa.Column("first_name", sa.String(200), nullable=False),
        sa.Column("last_name", sa.String(200), nullable=False),
        sa.Column("company", sa.String(200), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        _at("created_at"),
        _at("updated_at"),
        sa.UniqueConstraint("account_id", "email_key"),
    )
    op.create_index("ix_contacts_email_key", "contacts", ["email_key"])
    op.create_table(
        "contact_lists",
        _id(),
        _fk("account_id", "accounts.id"),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("filter", sa.JSON()),
        _at("created_at"),
        _at("updated_at"),
        sa.UniqueConstraint("account_id", "name"),
    )
    op.create_table(
        "contact_list_members",
        _fk("list_id", "contact_lists.id"),
        _fk("contact_id", "contacts.id"),
        sa.PrimaryKeyConstraint("list_id", "contact_id"),
    )
    op.create_index("ix_contact_list_members_contact_id", "contact_list_members", ["contact_id"])
    op.create_table(
        "contact_imports",
        _id(),
        _fk("account_id", "accounts.id"),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("on_duplicate", sa.String(10), nullable=False),
        sa.Column("mapping", sa.JSON(), nullable=False),
        sa.Column("list_id", Id, sa.ForeignKey("contact_lists.id", ondelete="SET NULL")),
        sa.Column("total_bytes", sa.BigInteger(), nullable=False),
        sa.Column("bytes_read", sa.BigInteger(), nullable=False),
        sa.Column("rows_done", sa.BigInteger(), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.Column("updated", sa.BigInteger(), nullable=False),
        sa.Column("skipped", sa.BigInteger(), nullable=False),
        sa.Column("failed", sa.BigInteger(), nullable=False),
        sa.Column("peak_rows_held", sa.BigInteger(), nullable=False),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.Column("failure", sa.Text(), nullable=False),
        _at("created_at"),
        _at("updated_at"),
    )
    op.create_index("ix_contact_imports_account_id", "contact_imports", ["account_id"])


def downgrade() -> None:
    op.drop_table("contact_imports")
    op.drop_table("contact_list_members")
    op.drop_table("contact_lists")
    op.drop_table("contacts")
