"""Signing in to the web app: user names and TOTP, sessions, single-use tokens, invitations,
mailbox assignments and recovery codes.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 22:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _fk(table: str, column: str, target: str, ondelete: str = "CASCADE") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column],
        [f"{target}.id"],
        name=op.f(f"fk_{table}_{column}_{target}"),
        ondelete=ondelete,
    )


def upgrade() -> None:
    # Plain ADD COLUMNs, never a batch rebuild of `users` (nor a server default removed after):
    # SQLite rebuilds a table by dropping the old one, and that DROP runs the ON DELETE actions
    # of the tables referring to it (mailboxes.user_id would be set to NULL, sessions deleted).
    op.add_column(
        "users",
        sa.Column("name", sa.String(length=200), nullable=False, server_default=sa.text("''")),
    )
    # Text: the secret is stored sealed with the secrets key (storage/secrets.py), longer than
    # its 32 base32 characters.
    op.add_column("users", sa.Column("totp_secret", sa.Text(), nullable=True))
    op.add_column("users", sa.Column("totp_enabled_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("users", sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
    op.add_column(
        "users", sa.Column("password_changed_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_index("ix_users_account_id", "users", ["account_id"])

    op.create_table(
        "sessions",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("pending_totp", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ip", sa.String(length=45), nullable=False),
        sa.Column("user_agent", sa.String(length=500), nullable=False),
        _fk("sessions", "user_id", "users"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_sessions_token_hash")),
    )
    op.create_index("ix_sessions_user_id", "sessions", ["user_id"])

    op.create_table(
        "invitations",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("account_id", Id, nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("mailbox_ids", sa.JSON(), nullable=False),
        sa.Column("invited_by", Id, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        _fk("invitations", "account_id", "accounts"),
        _fk("invitations", "invited_by", "users", ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitations")),
    )
    op.create_index("ix_invitations_account_id", "invitations", ["account_id"])

    op.create_table(
        "one_time_tokens",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("purpose", sa.String(length=20), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", Id, nullable=True),
        sa.Column("invitation_id", Id, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        _fk("one_time_tokens", "user_id", "users"),
        _fk("one_time_tokens", "invitation_id", "invitations"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_one_time_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_one_time_tokens_token_hash")),
    )
    op.create_index("ix_one_time_tokens_user_id", "one_time_tokens", ["user_id"])
    op.create_index("ix_one_time_tokens_invitation_id", "one_time_tokens", ["invitation_id"])

    op.create_table(
        "mailbox_assignments",
        sa.Column("user_id", Id, nullable=False),
        sa.Column("mailbox_id", Id, nullable=False),
        _fk("mailbox_assignments", "user_id", "users"),
        _fk("mailbox_assignments", "mailbox_id", "mailboxes"),
        sa.PrimaryKeyConstraint("user_id", "mailbox_id", name=op.f("pk_mailbox_assignments")),
    )
    op.create_index("ix_mailbox_assignments_mailbox_id", "mailbox_assignments", ["mailbox_id"])

    op.create_table(
        "recovery_codes",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        _fk("recovery_codes", "user_id", "users"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recovery_codes")),
    )
    op.create_index("ix_recovery_codes_user_id", "recovery_codes", ["user_id"])


def downgrade() -> None:
    op.drop_table("recovery_codes")
    op.drop_table("mailbox_assignments")
    op.drop_table("one_time_tokens")
    op.drop_table("invitations")
    op.drop_table("sessions")
    op.drop_index("ix_users_account_id", table_name="users")
    for column in (
        "password_changed_at",
        "totp_last_step",
        "totp_enabled_at",
        "totp_secret",
        "name",
    ):
        op.drop_column("users", column)
