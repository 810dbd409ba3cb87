"""Affiliates: applications and their payout method (bank details sealed), referral clicks per
day, the referred accounts, the append-only commission ledger and the monthly statements.

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-06 11:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_WHEN = sa.DateTime(timezone=True)


def _fk(name: str, target: str, table: str, nullable: bool = False) -> sa.Column[int]:
    return sa.Column(
        name,
        _ID,
        sa.ForeignKey(target, ondelete="CASCADE", name=f"fk_{table}_{name}"),
        nullable=nullable,
    )


def upgrade() -> None:
    op.create_table(
        "affiliates",
        sa.Column("id", _ID, primary_key=True),
        _fk("account_id", "accounts.id", "affiliates"),
        sa.Column("code", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("website", sa.String(300), nullable=False),
        sa.Column("pitch", sa.Text(), nullable=False),
        sa.Column("applied_at", _WHEN, nullable=False),
        sa.Column("reviewed_at", _WHEN),
        sa.Column("payout_method", sa.String(10)),
        sa.Column("paypal_email", sa.String(320)),
        sa.Column("bank_details", sa.Text()),
        sa.UniqueConstraint("account_id", name="uq_affiliates_account_id"),
        sa.UniqueConstraint("code", name="uq_affiliates_code"),
    )
    op.create_table(
        "affiliate_clicks",
        _fk("affiliate_id", "affiliates.id", "affiliate_clicks"),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("clicks", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("affiliate_id", "day", name="pk_affiliate_clicks"),
    )
    op.create_table(
        "referrals",
        sa.Column(
            "account_id",
            _ID,
            sa.ForeignKey("accounts.id", ondelete="CASCADE", name="fk_referrals_account_id"),
            primary_key=True,
        ),
        _fk("affiliate_id", "affiliates.id", "referrals"),
        sa.Column("clicked_at", _WHEN, nullable=False),
        sa.Column("signed_up_at", _WHEN, nullable=False),
    )
    op.create_index("ix_referrals_affiliate_id", "referrals", ["affiliate_id"])
    op.create_table(
        "affiliate_ledger",
        sa.Column("id", _ID, primary_key=True),
        _fk("affiliate_id", "affiliates.id", "affiliate_ledger"),
        sa.Column("entry_key", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("order_id", sa.String(100)),
        sa.Column("referred_account_id", _ID),
        sa.Column("occurred_at", _WHEN, nullable=False),
        sa.Column("recorded_at", _WHEN, nullable=False),
        sa.UniqueConstraint("entry_key", name="uq_affiliate_ledger_entry_key"),
    )
    op.create_index(
        "ix_affiliate_ledger_affiliate_id_month", "affiliate_ledger", ["affiliate_id", "month"]
    )
    op.create_index("ix_affiliate_ledger_order_id", "affiliate_ledger", ["order_id"])
    op.create_table(
        "affiliate_statements",
        _fk("affiliate_id", "affiliates.id", "affiliate_statements"),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("opening_cents", sa.BigInteger(), nullable=False),
        sa.Column("earned_cents", sa.BigInteger(), nullable=False),
        sa.Column("payout_cents", sa.BigInteger(), nullable=False),
        sa.Column("payable_on", sa.Date(), nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.PrimaryKeyConstraint("affiliate_id", "month", name="pk_affiliate_statements"),
    )


def downgrade() -> None:
    op.drop_table("affiliate_statements")
    op.drop_index("ix_affiliate_ledger_order_id", "affiliate_ledger")
    op.drop_index("ix_affiliate_ledger_affiliate_id_month", "affiliate_ledger")
    op.drop_table("affiliate_ledger")
    op.drop_index("ix_referrals_affiliate_id", "referrals")
    op.drop_table("referrals")
    op.drop_table("affiliate_clicks")
    op.drop_table("affiliates")
