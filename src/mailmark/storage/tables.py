"""The SQL schema (SQLAlchemy Core). Alembic migrations under migrations/ create and evolve it."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from mailmark.core.aggregate_reports import ReportKind, ReportStatus
from mailmark.core.states import (
    AccountStatus,
    DeliveryStatus,
    DkimKeyState,
    SuppressionReason,
    WebhookDeliveryStatus,
)
from mailmark.storage.secrets import EncryptedText

E = TypeVar("E", bound=StrEnum)

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only aliases ROWID (and so auto-increments) for a column declared exactly INTEGER.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class UtcDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them without a zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = value
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


class StateText(sa.TypeDecorator[E]):
    """A core state stored as its plain text (no database enum type, so no migration when a state
    is added) and read back as the StrEnum member; an unknown stored text fails loudly."""

    impl = sa.String
    cache_ok = True

    def __init__(self, enum: type[E], length: int) -> None:
        super().__init__(length)
        self.enum = enum
        self.length = length

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else str(self.enum(value).value)

    def process_result_value(self, value: Any, dialect: Dialect) -> E | None:
        return None if value is None else self.enum(value)


def _id() -> sa.Column[Any]:
    return sa.Column("id", Id, primary_key=True, autoincrement=True)


def _fk(
    name: str, target: str, ondelete: str = "CASCADE", nullable: bool = False
) -> sa.Column[Any]:
    return sa.Column(name, Id, sa.ForeignKey(target, ondelete=ondelete), nullable=nullable)


accounts = sa.Table(
    "accounts",
    metadata,
    _id(),
    sa.Column("name", sa.String(63), nullable=False, unique=True),
    sa.Column("plan", sa.String(20), nullable=False),
    sa.Column("status", StateText(AccountStatus, 20), nullable=False),
    sa.Column("trial_ends_at", UtcDateTime()),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    # The paid period (core/billing.py): a cancel or a downgrade takes effect at its end.
    sa.Column("current_period_end", UtcDateTime()),
    sa.Column("cancel_at_period_end", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("scheduled_plan", sa.String(20)),
    # The payment provider's ids, and when its subscription last changed (events older than
    # that are kept but not applied).
    sa.Column("billing_customer_id", sa.String(100)),
    sa.Column("subscription_id", sa.String(100)),
    sa.Column("subscription_modified_at", UtcDateTime()),
    sa.Index("uq_accounts_subscription_id", "subscription_id", unique=True),
)

users = sa.Table(
    "users",
    metadata,
    _id(),
    _fk("account_id", "accounts.id"),
    sa.Column("email", sa.String(320), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("name", sa.String(200), nullable=False, server_default=sa.text("''")),
    # Sealed like the DKIM keys: a copied database cannot mint a user's second factor.
    sa.Column("totp_secret", EncryptedText("users.totp_secret")),
    sa.Column("totp_enabled_at", UtcDateTime()),
    # The last 30-second step whose code signed in: a code is accepted once (RFC 6238 §5.2).
    sa.Column("totp_last_step", sa.BigInteger()),
    sa.Column("password_changed_at", UtcDateTime()),
    sa.Index("ix_users_account_id", "account_id"),
)

# Signed-in browsers: only the SHA-256 of the cookie's token is kept.
sessions = sa.Table(
    "sessions",
    metadata,
    _id(),
    _fk("user_id", "users.id"),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("pending_totp", sa.Boolean(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("last_seen_at", UtcDateTime(), nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
    sa.Column("ip", sa.String(45), nullable=False),
    sa.Column("user_agent", sa.String(500), nullable=False),
    sa.Index("ix_sessions_user_id", "user_id"),
)

# Who joins an account, as what, and with which mailboxes (ids; those deleted meanwhile are
# skipped when the invitation is accepted).
invitations = sa.Table(
    "invitations",
    metadata,
    _id(),
    _fk("account_id", "accounts.id"),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("mailbox_ids", sa.JSON(), nullable=False),
    _fk("invited_by", "users.id", ondelete="SET NULL", nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
    sa.Column("accepted_at", UtcDateTime()),
    sa.Index("ix_invitations_account_id", "account_id"),
)

# Single-use links (first-run setup, password reset, invitation): the SHA-256 of the secret.
one_time_tokens = sa.Table(
    "one_time_tokens",
    metadata,
    _id(),
    sa.Column("purpose", sa.String(20), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    _fk("user_id", "users.id", nullable=True),
    _fk("invitation_id", "invitations.id", nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
    sa.Column("used_at", UtcDateTime()),
    sa.Index("ix_one_time_tokens_user_id", "user_id"),
    sa.Index("ix_one_time_tokens_invitation_id", "invitation_id"),
)

# Which mailboxes a member may see and use; a member may have several, and a mailbox several
# members. (Owners and admins see every mailbox of their account without a row here.)
mailbox_assignments = sa.Table(
    "mailbox_assignments",
    metadata,
    _fk("user_id", "users.id"),
    _fk("mailbox_id", "mailboxes.id"),
    sa.PrimaryKeyConstraint("user_id", "mailbox_id"),
    sa.Index("ix_mailbox_assignments_mailbox_id", "mailbox_id"),
)

# Two-factor recovery codes: SHA-256 of each, spent once.
recovery_codes = sa.Table(
    "recovery_codes",
    metadata,
    _id(),
    _fk("user_id", "users.id"),
    sa.Column("code_hash", sa.String(64), nullable=False),
    sa.Column("used_at", UtcDateTime()),
    sa.Index("ix_recovery_codes_user_id", "user_id"),
)

domains = sa.Table(
    "domains",
    metadata,
    _id(),
    _fk("account_id", "accounts.id"),
    sa.Column("name", sa.String(253), nullable=False, unique=True),
    sa.Column("verified_at", UtcDateTime()),
    sa.Column("trusted", sa.Boolean(), nullable=False, default=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("return_path_published", sa.Boolean(), nullable=False, default=False),
    # The last DNS check of its records, and when the background re-check looks again (NULL once
    # verified); `failed_checks` counts the checks since the last success, for the backoff.
    sa.Column("last_checked_at", UtcDateTime()),
    sa.Column("next_check_at", UtcDateTime(), index=True),
    sa.Column("failed_checks", sa.Integer(), nullable=False, server_default=sa.text("0")),
    # The domain's own name for tracking and unsubscribe links (a CNAME to the public URL's host),
    # so that the links in its mail align with its From domain; NULL: the public URL.
    sa.Column("tracking_host", sa.String(253)),
)

# A domain's own outbound route (core/relays.py): its relay host, or "direct" although the
# installation has one. No row: the installation's setting. The password is sealed.
domain_relays = sa.Table(
    "domain_relays",
    metadata,
    _id(),
    _fk("domain_id", "domains.id"),
    sa.Column("choice", sa.String(10), nullable=False),
    sa.Column("host", sa.String(253)),
    sa.Column("port", sa.Integer()),
    sa.Column("tls", sa.String(10)),
    sa.Column("username", sa.String(255)),
    sa.Column("password", EncryptedText("domain_relays.password")),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("domain_id"),
)

# What the last check of each of a domain's records found; replaced as a whole by each check.
domain_record_checks = sa.Table(
    "domain_record_checks",
    metadata,
    _id(),
    _fk("domain_id", "domains.id"),
    sa.Column("type", sa.String(10), nullable=False),
    sa.Column("name", sa.String(253), nullable=False),
    sa.Column("value", sa.Text(), nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("found", sa.JSON(), nullable=False),
    sa.Column("detail", sa.Text(), nullable=False),
    sa.Column("checked_at", UtcDateTime(), nullable=False),
    sa.Index("ix_domain_record_checks_domain_id", "domain_id"),
)

dkim_keys = sa.Table(
    "dkim_keys",
    metadata,
    _id(),
    _fk("domain_id", "domains.id"),
    sa.Column("selector", sa.String(63), nullable=False),
    sa.Column("algorithm", sa.String(20), nullable=False),
    # Sealed with the secrets key (storage/secrets.py): a copied database holds no signing key.
    sa.Column("private_key_pem", EncryptedText("dkim_keys.private_key_pem"), nullable=False),
    sa.Column("public_key", sa.Text(), nullable=False),
    sa.Column("state", StateText(DkimKeyState, 10), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("domain_id", "selector"),
)

mailboxes = sa.Table(
    "mailboxes",
    metadata,
    _id(),
    _fk("domain_id", "domains.id"),
    sa.Column("local_part", sa.String(64), nullable=False),
    sa.Column("display_name", sa.String(200), nullable=False, default=""),
    sa.Column("signature", sa.Text(), nullable=False, default=""),
    sa.Column("signature_format", sa.String(10), nullable=False, server_default=sa.text("'text'")),
    sa.Column("password_hash", sa.String(255)),
    _fk("user_id", "users.id", ondelete="SET NULL", nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("track_opens", sa.Boolean(), nullable=False, server_default=sa.false()),
    # Whether SMTP submission files a copy in Sent (off for clients that APPEND their own).
    sa.Column("save_sent_copy", sa.Boolean(), nullable=False, server_default=sa.true()),
    # The greatest UIDVALIDITY given to a folder of the mailbox, deleted ones included.
    sa.Column("last_uid_validity", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
    sa.UniqueConstraint("domain_id", "local_part"),
)

# An address that delivers to one or more mailboxes of the same account (core/aliases.py).
aliases = sa.Table(
    "aliases",
    metadata,
    _id(),
    _fk("domain_id", "domains.id"),
    sa.Column("local_part", sa.String(64), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("domain_id", "local_part"),
)

# The mailboxes an alias delivers to; a deleted mailbox leaves its aliases by ON DELETE CASCADE.
alias_targets = sa.Table(
    "alias_targets",
    metadata,
    _fk("alias_id", "aliases.id"),
    _fk("mailbox_id", "mailboxes.id"),
    sa.PrimaryKeyConstraint("alias_id", "mailbox_id"),
    sa.Index("ix_alias_targets_mailbox_id", "mailbox_id"),
)

# The mailbox that gets a domain's mail for local parts nothing else takes (no row: off).
catch_alls = sa.Table(
    "catch_alls",
    metadata,
    _fk("domain_id", "domains.id"),
    _fk("mailbox_id", "mailboxes.id"),
    sa.PrimaryKeyConstraint("domain_id"),
    sa.Index("ix_catch_alls_mailbox_id", "mailbox_id"),
)

# Alias domains: every address @domain delivers as the same local part @target would.
alias_domains = sa.Table(
    "alias_domains",
    metadata,
    _fk("domain_id", "domains.id"),
    _fk("target_domain_id", "domains.id"),
    sa.PrimaryKeyConstraint("domain_id"),
    sa.Index("ix_alias_domains_target_domain_id", "target_domain_id"),
)

folders = sa.Table(
    "folders",
    metadata,
    _id(),
    _fk("mailbox_id", "mailboxes.id"),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("special_use", sa.String(20)),
    sa.Column("uid_validity", sa.BigInteger(), nullable=False),
    sa.Column("uid_next", sa.BigInteger(), nullable=False),
    sa.Column("highest_modseq", sa.BigInteger(), nullable=False),
    # RFC 3501 §2.3.2: UIDs from here on are \Recent to the next IMAP4rev1 session to see them.
    sa.Column("first_recent_uid", sa.BigInteger(), nullable=False, server_default=sa.text("1")),
    # Expunge tombstones with a MODSEQ up to here were pruned (`expunged` keeps the newer ones).
    sa.Column("expunged_floor", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
    sa.UniqueConstraint("mailbox_id", "name"),
)

# The names a mailbox's IMAP clients subscribed to: a list of its own (RFC 9051 §6.3.7-6.3.8),
# which keeps a name when its folder is deleted and never gains one when a folder is created.
subscriptions = sa.Table(
    "subscriptions",
    metadata,
    _fk("mailbox_id", "mailboxes.id"),
    sa.Column("name", sa.String(255), nullable=False),
    sa.PrimaryKeyConstraint("mailbox_id", "name"),
)

messages = sa.Table(
    "messages",
    metadata,
    _id(),
    sa.Column("blob_key", sa.String(64), nullable=False, index=True),
    sa.Column("size", sa.BigInteger(), nullable=False),
    # Received/Authentication-Results/Return-Path added here: IMAP BODY[] is prefix + blob.
    sa.Column("trace_prefix", sa.LargeBinary(), nullable=False),
    sa.Column("received_at", UtcDateTime(), nullable=False),
    sa.Column("mail_from", sa.String(320), nullable=False),
    sa.Column("message_id", sa.String(998), index=True),
    sa.Column("subject", sa.Text()),
    sa.Column("subject_key", sa.String(255), nullable=False, index=True),
    sa.Column("from_addr", sa.String(320)),
    sa.Column("to_addrs", sa.JSON(), nullable=False),
    sa.Column("cc_addrs", sa.JSON(), nullable=False),
    sa.Column("date", UtcDateTime()),
    sa.Column("in_reply_to", sa.String(998)),
    sa.Column("references", sa.JSON(), nullable=False),
    sa.Column("snippet", sa.String(255), nullable=False),
    sa.Column("attachments", sa.JSON(), nullable=False),
    sa.Column("defects", sa.JSON(), nullable=False),
    # ENVELOPE, BODYSTRUCTURE and BODY in IMAP syntax, computed at delivery (NULL for messages
    # stored before they existed: computed on first fetch). Bytes, as literals may hold 8-bit.
    sa.Column("envelope", sa.LargeBinary()),
    sa.Column("bodystructure", sa.LargeBinary()),
    sa.Column("body", sa.LargeBinary()),
    # The Date header's day as written (its own zone), for SEARCH SENTBEFORE/SENTON/SENTSINCE.
    sa.Column("sent_day", sa.Date()),
)

placements = sa.Table(
    "placements",
    metadata,
    _id(),
    _fk("message_id", "messages.id"),
    _fk("mailbox_id", "mailboxes.id"),
    _fk("folder_id", "folders.id"),
    sa.Column("uid", sa.BigInteger(), nullable=False),
    sa.Column("modseq", sa.BigInteger(), nullable=False),
    sa.Column("flags", sa.JSON(), nullable=False),
    sa.Column("thread_id", sa.String(32), nullable=False),
    sa.Column("internal_date", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("folder_id", "uid"),
    sa.Index("ix_placements_mailbox_id_thread_id", "mailbox_id", "thread_id"),
    sa.Index("ix_placements_message_id", "message_id"),
    # CONDSTORE/IDLE: what changed in a folder since a MODSEQ.
    sa.Index("ix_placements_folder_id_modseq", "folder_id", "modseq"),
    # The webmail's conversation list: a folder's threads by their latest message, from the index.
    sa.Index(
        "ix_placements_folder_id_thread_id_internal_date", "folder_id", "thread_id", "internal_date"
    ),
    sa.Index(
        "ix_placements_folder_id_internal_date_thread_id", "folder_id", "internal_date", "thread_id"
    ),
)

# Senders whose remote images a mailbox's readers always load (through the image proxy).
trusted_senders = sa.Table(
    "trusted_senders",
    metadata,
    _fk("mailbox_id", "mailboxes.id"),
    sa.Column("address", sa.String(320), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint("mailbox_id", "address"),
)

# UIDs expunged from a folder, so other sessions learn of them and CONDSTORE/QRESYNC can report
# VANISHED (RFC 7162 §3.2.5.1). Removed with the folder.
expunged = sa.Table(
    "expunged",
    metadata,
    _fk("folder_id", "folders.id"),
    sa.Column("uid", sa.BigInteger(), nullable=False),
    sa.Column("modseq", sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint("folder_id", "uid"),
    sa.Index("ix_expunged_folder_id_modseq", "folder_id", "modseq"),
)

# Issue 16 item 10, across nodes: a message expunged while an IMAP session may still see it stays
# readable until that session is told (RFC 9051 §7.5.1). `imap_nodes` are the processes serving
# IMAP, alive while they renew `seen_at`; `imap_node_views` say that sessions on a node may still
# see a folder's messages expunged above `floor`; `retained_placements` keep such a placement as
# it was when expunged, and with it its message row and blob, until no live view sees it.
imap_nodes = sa.Table(
    "imap_nodes",
    metadata,
    sa.Column("node_id", sa.String(32), primary_key=True),
    sa.Column("seen_at", UtcDateTime(), nullable=False),
)

imap_node_views = sa.Table(
    "imap_node_views",
    metadata,
    sa.Column(
        "node_id",
        sa.String(32),
        sa.ForeignKey("imap_nodes.node_id", ondelete="CASCADE"),
        nullable=False,
    ),
    _fk("folder_id", "folders.id"),
    sa.Column("floor", sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint("node_id", "folder_id"),
    sa.Index("ix_imap_node_views_folder_id", "folder_id"),
)

retained_placements = sa.Table(
    "retained_placements",
    metadata,
    _fk("folder_id", "folders.id"),
    sa.Column("uid", sa.BigInteger(), nullable=False),
    _fk("message_id", "messages.id"),
    sa.Column("modseq", sa.BigInteger(), nullable=False),
    sa.Column("flags", sa.JSON(), nullable=False),
    sa.Column("thread_id", sa.String(32), nullable=False),
    sa.Column("internal_date", UtcDateTime(), nullable=False),
    sa.Column("expunged_modseq", sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint("folder_id", "uid"),
    sa.Index("ix_retained_placements_message_id", "message_id"),
)

# The full-text index of message text is `message_text`, keyed by message id: on SQLite an FTS5
# table with the trigram tokenizer (case-insensitive substring search, RFC 3501 §6.4.4), on
# PostgreSQL a table with pg_trgm GIN indexes. It differs per backend, so migration 0004 creates it
# and it stays out of this metadata; storage/dialect.py names it per backend.
FULLTEXT_TABLE = "message_text"

# Messages whose body text is not yet in `message_text` (their header text is): mail delivered by
# the MX is indexed after its 250 (core/text_index.py), and a text search first indexes those
# still waiting in its folder. Tokenising a 10 KiB body costs more processor time than accepting
# the whole message.
pending_body_texts = sa.Table(
    "pending_body_texts",
    metadata,
    sa.Column(
        "message_id",
        Id,
        sa.ForeignKey("messages.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
)

events = sa.Table(
    "events",
    metadata,
    _id(),
    _fk("account_id", "accounts.id"),
    sa.Column("type", sa.String(50), nullable=False),
    sa.Column("payload", sa.JSON(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    # An outgoing email's timeline (sent, deferred, delivered, bounced) is one indexed query.
    sa.Column("outbound_id", Id, index=True),
    sa.Index("ix_events_account_id_id", "account_id", "id"),
    # Retention: the oldest first.
    sa.Index("ix_events_created_at", "created_at"),
)

outbound_messages = sa.Table(
    "outbound_messages",
    metadata,
    _id(),
    _fk("account_id", "accounts.id"),
    _fk("domain_id", "domains.id"),
    _fk("mailbox_id", "mailboxes.id", ondelete="SET NULL", nullable=True),
    # The unsigned RFC 5322 bytes; DKIM signing happens at delivery time.
    sa.Column("blob_key", sa.String(64), nullable=False, index=True),
    sa.Column("size", sa.BigInteger(), nullable=False),
    sa.Column("envelope_from", sa.String(320), nullable=False),
    sa.Column("token", sa.String(24), nullable=False, unique=True),
    sa.Column("from_addr", sa.String(320), nullable=False),
    sa.Column("subject", sa.Text()),
    sa.Column("message_id_header", sa.String(998), index=True),
    sa.Column("source", sa.String(20), nullable=False),
    sa.Column("batch_id", sa.String(64), index=True),
    _fk("sent_message_id", "messages.id", ondelete="SET NULL", nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    # The links of a click-tracked message, in the order of their redirects' indexes (a JSON
    # list); a redirect leads only to one of these (core/tracking.py).
    sa.Column("tracked_links", sa.JSON()),
    sa.Index("ix_outbound_messages_account_id_created_at", "account_id", "created_at"),
)

# The tags a sender gave an outbound message; the index serves `GET /v1/emails?tag=`, newest first.
outbound_tags = sa.Table(
    "outbound_tags",
    metadata,
    _fk("outbound_id", "outbound_messages.id"),
    _fk("domain_id", "domains.id"),
    sa.Column("tag", sa.String(64), nullable=False),
    sa.PrimaryKeyConstraint("outbound_id", "tag"),
    sa.Index("ix_outbound_tags_domain_id_tag_outbound_id", "domain_id", "tag", "outbound_id"),
)

# The queue: one row per recipient of an outbound message.
deliveries = sa.Table(
    "deliveries",
    metadata,
    _id(),
    _fk("outbound_id", "outbound_messages.id"),
    sa.Column("recipient", sa.String(320), nullable=False),
    sa.Column("recipient_domain", sa.String(253), nullable=False, index=True),
    sa.Column("status", StateText(DeliveryStatus, 12), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("next_attempt_at", UtcDateTime(), nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
    sa.Column("lease_owner", sa.String(100)),
    sa.Column("lease_until", UtcDateTime()),
    sa.Column("last_code", sa.Integer()),
    sa.Column("last_status", sa.String(16)),
    sa.Column("last_reply", sa.Text()),
    sa.Column("mx_host", sa.String(253)),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Index("ix_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
    sa.Index("ix_deliveries_outbound_id", "outbound_id"),
)

suppressions = sa.Table(
    "suppressions",
    metadata,
    _id(),
    _fk("domain_id", "domains.id"),
    sa.Column("address", sa.String(320), nullable=False),
    sa.Column("reason", StateText(SuppressionReason, 20), nullable=False),
    sa.Column("detail", sa.Text(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("domain_id", "address"),
)

# Addresses an account sends no more campaign mail to, from any of its domains (an unsubscribe,
# RFC 8058); one-to-one mail is not held back by them.
account_suppressions = sa.Table(
    "account_suppressions",
    metadata,
    _id(),
    _fk("account_id", "accounts.id"),
    sa.Column("address", sa.String(320), nullable=False),
    sa.Column("reason", sa.String(20), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("account_id", "address"),
)

# REST API keys: only the SHA-256 of the key is kept; `prefix` is its public part, for lookup.
api_keys = sa.Table(
    "api_keys",
    metadata,
    _id(),
    _fk("domain_id", "domains.id"),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("prefix", sa.String(32), nullable=False, unique=True),
    sa.Column("key_hash", sa.String(64), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("last_used_at", UtcDateTime()),
    sa.Column("revoked_at", UtcDateTime()),
    sa.Index("ix_api_keys_domain_id", "domain_id"),
)

# Each API key's token bucket where several processes share it (PostgreSQL; storage/key_buckets.py):
# `refilled_at` in seconds since the epoch, and whether the last request was let through. UNLOGGED
# on PostgreSQL (migration 0032): no WAL, so no fsync per API request; a crash empties it, which
# refills every bucket once. A key deleted (with its domain) takes its bucket with it.
api_key_buckets = sa.Table(
    "api_key_buckets",
    metadata,
    sa.Column("key_id", Id, sa.ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("tokens", sa.Float(), nullable=False),
    sa.Column("refilled_at", sa.Float(), nullable=False),
    sa.Column("admitted", sa.Boolean(), nullable=False),
)

sender_groups = sa.Table(
    "sender_groups",
    metadata,
    _id(),
    _fk("domain_id", "domains.id"),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("all_mailboxes", sa.Boolean(), nullable=False),
    sa.Column("emails", sa.JSON(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Index("ix_sender_groups_domain_id", "domain_id"),
)

# Deleting a mailbox removes its memberships (ON DELETE CASCADE).
sender_group_mailboxes = sa.Table(
    "sender_group_mailboxes",
    metadata,
    _fk("group_id", "sender_groups.id"),
    _fk("mailbox_id", "mailboxes.id"),
    sa.PrimaryKeyConstraint("group_id", "mailbox_id"),
    sa.Index("ix_sender_group_mailboxes_mailbox_id", "mailbox_id"),
)

# Responses to POST /v1/send with an Idempotency-Key, written in the send's own transaction.
idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    _id(),
    _fk("domain_id", "domains.id"),
    sa.Column("key", sa.String(255), nullable=False),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("status_code", sa.Integer(), nullable=False),
    sa.Column("body", sa.JSON(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("domain_id", "key"),
    sa.Index("ix_idempotency_keys_created_at", "created_at"),
)


# Endpoints a domain's events are posted to; `secret` signs each request (HMAC-SHA256).
webhooks = sa.Table(
    "webhooks",
    metadata,
    _id(),
    _fk("account_id", "accounts.id"),
    _fk("domain_id", "domains.id"),
    sa.Column("url", sa.String(2048), nullable=False),
    sa.Column("events", sa.JSON(), nullable=False),
    sa.Column("secret", EncryptedText("webhooks.secret"), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Index("ix_webhooks_account_id", "account_id"),
    sa.Index("ix_webhooks_domain_id", "domain_id"),
)

# The webhook outbox: one row per (webhook, event), written in the event's own transaction.
webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    _id(),
    _fk("webhook_id", "webhooks.id"),
    _fk("event_id", "events.id"),
    sa.Column("status", StateText(WebhookDeliveryStatus, 12), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("next_attempt_at", UtcDateTime()),
    sa.Column("lease_owner", sa.String(100)),
    sa.Column("lease_until", UtcDateTime()),
    sa.Column("last_code", sa.Integer()),
    sa.Column("last_error", sa.Text()),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("webhook_id", "event_id"),
    sa.Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
    sa.Index("ix_webhook_deliveries_webhook_id_id", "webhook_id", "id"),
    sa.Index("ix_webhook_deliveries_event_id", "event_id"),
    sa.Index("ix_webhook_deliveries_updated_at", "updated_at"),
)

# Who signs in through which OpenID Connect provider: the provider's stable subject identifier
# (OpenID Connect Core §2 `sub`, unique per issuer) bound to one user.
oidc_identities = sa.Table(
    "oidc_identities",
    metadata,
    _id(),
    sa.Column("provider", sa.String(32), nullable=False),
    sa.Column("subject", sa.String(255), nullable=False),
    _fk("user_id", "users.id"),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("last_used_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("provider", "subject"),
    sa.Index("ix_oidc_identities_user_id", "user_id"),
)

# Sign-ins sent to a provider and not back yet: the state (stored as its sha256) names the row,
# which holds the nonce and PKCE verifier and is bound to the browser that started it.
oidc_logins = sa.Table(
    "oidc_logins",
    metadata,
    _id(),
    sa.Column("state_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("browser_hash", sa.String(64), nullable=False),
    sa.Column("provider", sa.String(32), nullable=False),
    sa.Column("nonce", sa.String(64), nullable=False),
    sa.Column("code_verifier", sa.String(128), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
    sa.Index("ix_oidc_logins_expires_at", "expires_at"),
)

# Files uploaded by the webmail's compose form, waiting to be attached to a draft or a send:
# each belongs to one user and one mailbox and is forgotten a day later. The bytes are a blob.
webmail_uploads = sa.Table(
    "webmail_uploads",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    _fk("user_id", "users.id"),
    _fk("mailbox_id", "mailboxes.id"),
    sa.Column("filename", sa.String(255), nullable=False),
    sa.Column("content_type", sa.String(129), nullable=False),
    sa.Column("size", sa.BigInteger(), nullable=False),
    sa.Column("blob_key", sa.String(64), nullable=False, index=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=False, index=True),
)

# DMARC aggregate (RFC 7489 §7.2) and TLS (RFC 8460) reports received for a domain; one per
# reporter and report id. `status` failed: unreadable, kept with its `reason` (no records then).
aggregate_reports = sa.Table(
    "aggregate_reports",
    metadata,
    _id(),
    _fk("domain_id", "domains.id"),
    sa.Column("kind", StateText(ReportKind, 10), nullable=False),
    sa.Column("status", StateText(ReportStatus, 10), nullable=False),
    sa.Column("org_name", sa.String(255), nullable=False),
    sa.Column("external_id", sa.String(255)),  # the reporter's report id; NULL when failed
    sa.Column("begin_at", UtcDateTime()),
    sa.Column("end_at", UtcDateTime()),
    sa.Column("policy", sa.JSON(), nullable=False),  # DMARC policy_published
    sa.Column("messages", sa.BigInteger(), nullable=False),
    sa.Column("reason", sa.Text()),
    sa.Column("sender", sa.String(320), nullable=False),
    sa.Column("received_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("domain_id", "kind", "org_name", "external_id"),
    sa.Index("ix_aggregate_reports_domain_id_received_at", "domain_id", "received_at"),
)

# One per <record> of a DMARC report: mail from one source IP with one set of results.
dmarc_records = sa.Table(
    "dmarc_records",
    metadata,
    _id(),
    _fk("report_id", "aggregate_reports.id"),
    sa.Column("source_ip", sa.String(45), nullable=False),
    sa.Column("count", sa.BigInteger(), nullable=False),
    sa.Column("disposition", sa.String(40), nullable=False),
    sa.Column("dkim_aligned", sa.String(40), nullable=False),
    sa.Column("spf_aligned", sa.String(40), nullable=False),
    sa.Column("header_from", sa.String(253), nullable=False),
    sa.Column("envelope_from", sa.String(253), nullable=False),
    sa.Column("dkim_result", sa.String(40), nullable=False),
    sa.Column("dkim_domain", sa.String(253), nullable=False),
    sa.Column("spf_result", sa.String(40), nullable=False),
    sa.Column("spf_domain", sa.String(253), nullable=False),
    sa.Index("ix_dmarc_records_report_id", "report_id"),
)

# One per policy of a TLS report, with its session counts (RFC 8460 §4.4).
tls_policies = sa.Table(
    "tls_policies",
    metadata,
    _id(),
    _fk("report_id", "aggregate_reports.id"),
    sa.Column("policy_type", sa.String(40), nullable=False),
    sa.Column("policy_domain", sa.String(253), nullable=False),
    sa.Column("mx_hosts", sa.JSON(), nullable=False),
    sa.Column("successful_sessions", sa.BigInteger(), nullable=False),
    sa.Column("failed_sessions", sa.BigInteger(), nullable=False),
    sa.Index("ix_tls_policies_report_id", "report_id"),
)

# One per failure-details entry of a TLS report (RFC 8460 §4.3 result types).
tls_failures = sa.Table(
    "tls_failures",
    metadata,
    _id(),
    _fk("report_id", "aggregate_reports.id"),
    sa.Column("policy_type", sa.String(40), nullable=False),
    sa.Column("result_type", sa.String(40), nullable=False),
    sa.Column("sessions", sa.BigInteger(), nullable=False),
    sa.Column("sending_mta_ip", sa.String(45), nullable=False),
    sa.Column("receiving_mx_hostname", sa.String(253), nullable=False),
    sa.Column("receiving_ip", sa.String(45), nullable=False),
    sa.Column("failure_reason_code", sa.String(255), nullable=False),
    sa.Index("ix_tls_failures_report_id", "report_id"),
)

# A mailbox's forwarding: the external addresses its mail is sent on to, and whether a copy is
# also kept here. No row: no forwarding.
mailbox_forwarding = sa.Table(
    "mailbox_forwarding",
    metadata,
    _fk("mailbox_id", "mailboxes.id"),
    sa.Column("addresses", sa.JSON(), nullable=False),
    sa.Column("keep_copy", sa.Boolean(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint("mailbox_id"),
)
# A mailbox's vacation responder (core.vacation); at most one per mailbox.
vacations = sa.Table(
    "vacations",
    metadata,
    _fk("mailbox_id", "mailboxes.id"),
    sa.Column("enabled", sa.Boolean(), nullable=False),
    sa.Column("subject", sa.String(998), nullable=False),
    sa.Column("body", sa.Text(), nullable=False),
    sa.Column("body_format", sa.String(10), nullable=False),
    sa.Column("days", sa.Integer(), nullable=False),
    sa.Column("time_zone", sa.String(64), nullable=False),
    sa.Column("starts_at", UtcDateTime()),
    sa.Column("ends_at", UtcDateTime()),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint("mailbox_id"),
)

# Who each mailbox auto-replied to, until when it stays silent to them (RFC 5230 §4.1): the key
# is a SHA-256 of the reply's handle and the sender, so no address is kept in the clear.
vacation_replies = sa.Table(
    "vacation_replies",
    metadata,
    _fk("mailbox_id", "mailboxes.id"),
    sa.Column("key", sa.String(64), nullable=False),
    sa.Column("until", UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint("mailbox_id", "key"),
    sa.Index("ix_vacation_replies_until", "until"),
)

# A mailbox's Sieve filter scripts (RFC 5228), several by name and at most one active, as
# ManageSieve (RFC 5804) expects. `revision` grows on each change; delivery caches the compiled
# active script per mailbox and re-reads it when the revision moved.
sieve_scripts = sa.Table(
    "sieve_scripts",
    metadata,
    _id(),
    _fk("mailbox_id", "mailboxes.id"),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("content", sa.Text(), nullable=False),
    sa.Column("active", sa.Boolean(), nullable=False),
    sa.Column("revision", sa.BigInteger(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("last_error", sa.Text()),
    sa.Column("last_error_at", UtcDateTime()),
    sa.UniqueConstraint("mailbox_id", "name"),
)

# An account's contacts (campaign audiences). `email_key` is the address lower-cased, one contact
# per address per account; `tags` is ",a,b," so a tag is found with one LIKE on either backend.
contacts = sa.Table(
    "contacts",
    metadata,
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
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("account_id", "email_key"),
    sa.Index("ix_contacts_email_key", "email_key"),
)

# Named lists of contacts; a list with a `filter` is a segment (its members are whoever matches).
contact_lists = sa.Table(
    "contact_lists",
    metadata,
    _id(),
    _fk("account_id", "accounts.id"),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("filter", sa.JSON()),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("account_id", "name"),
)

contact_list_members = sa.Table(
    "contact_list_members",
    metadata,
    _fk("list_id", "contact_lists.id"),
    _fk("contact_id", "contacts.id"),
    sa.PrimaryKeyConstraint("list_id", "contact_id"),
    sa.Index("ix_contact_list_members_contact_id", "contact_id"),
)

# CSV imports: progress and the first row errors, written after each batch.
contact_imports = sa.Table(
    "contact_imports",
    metadata,
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
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Index("ix_contact_imports_account_id", "account_id"),
)

# Emails an account sent per calendar month ("YYYY-MM", UTC): one row, added to in the
# transaction that queues the mail, which the monthly quota reads instead of counting queue rows.
account_usage = sa.Table(
    "account_usage",
    metadata,
    _fk("account_id", "accounts.id"),
    sa.Column("month", sa.String(7), nullable=False),
    sa.Column("emails_sent", sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint("account_id", "month"),
)

# Every verified payment-provider webhook as received; the provider's event id makes a replay
# a no-op.
billing_events = sa.Table(
    "billing_events",
    metadata,
    _id(),
    sa.Column("event_id", sa.String(200), nullable=False, unique=True),
    sa.Column("event_type", sa.String(60), nullable=False),
    sa.Column("occurred_at", UtcDateTime(), nullable=False),
    sa.Column("received_at", UtcDateTime(), nullable=False),
    sa.Column("payload", sa.Text(), nullable=False),
    # What applying it did: "applied", or why it was not (stale, unknown account, ignored type).
    sa.Column("outcome", sa.String(200), nullable=False),
)

# The affiliate program (core/affiliates.py): applications, reviewed by the operator.
affiliates = sa.Table(
    "affiliates",
    metadata,
    _id(),
    _fk("account_id", "accounts.id"),
    sa.Column("code", sa.String(20), nullable=False, unique=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("website", sa.String(300), nullable=False),
    sa.Column("pitch", sa.Text(), nullable=False),
    sa.Column("applied_at", UtcDateTime(), nullable=False),
    sa.Column("reviewed_at", UtcDateTime()),
    sa.Column("payout_method", sa.String(10)),
    sa.Column("paypal_email", sa.String(320)),
    # Sealed like the other secrets: a copied database gives away no bank account.
    sa.Column("bank_details", EncryptedText("affiliates.bank_details")),
    sa.UniqueConstraint("account_id"),
)

# Clicks on a referral link, one counter per affiliate and UTC day.
affiliate_clicks = sa.Table(
    "affiliate_clicks",
    metadata,
    _fk("affiliate_id", "affiliates.id"),
    sa.Column("day", sa.String(10), nullable=False),
    sa.Column("clicks", sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint("affiliate_id", "day"),
)

# The account each referred sign-up created, attributed once (the first touch).
referrals = sa.Table(
    "referrals",
    metadata,
    sa.Column("account_id", Id, sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    _fk("affiliate_id", "affiliates.id"),
    sa.Column("clicked_at", UtcDateTime(), nullable=False),
    sa.Column("signed_up_at", UtcDateTime(), nullable=False),
    sa.Index("ix_referrals_affiliate_id", "affiliate_id"),
)

# Append-only: commissions (+), clawbacks (-) and payouts (-) in integer cents; a correction is a
# new row. `entry_key` makes recording the same order, refund or payout twice a no-op.
affiliate_ledger = sa.Table(
    "affiliate_ledger",
    metadata,
    _id(),
    _fk("affiliate_id", "affiliates.id"),
    sa.Column("entry_key", sa.String(200), nullable=False, unique=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("amount_cents", sa.BigInteger(), nullable=False),
    # The statement month the row counts in ("YYYY-MM").
    sa.Column("month", sa.String(7), nullable=False),
    sa.Column("order_id", sa.String(100)),
    sa.Column("referred_account_id", Id),
    sa.Column("occurred_at", UtcDateTime(), nullable=False),
    sa.Column("recorded_at", UtcDateTime(), nullable=False),
    sa.Index("ix_affiliate_ledger_affiliate_id_month", "affiliate_id", "month"),
    sa.Index("ix_affiliate_ledger_order_id", "order_id"),
)

# One statement per affiliate and closed month, written once.
affiliate_statements = sa.Table(
    "affiliate_statements",
    metadata,
    _fk("affiliate_id", "affiliates.id"),
    sa.Column("month", sa.String(7), nullable=False),
    sa.Column("opening_cents", sa.BigInteger(), nullable=False),
    sa.Column("earned_cents", sa.BigInteger(), nullable=False),
    sa.Column("payout_cents", sa.BigInteger(), nullable=False),
    sa.Column("payable_on", sa.Date(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint("affiliate_id", "month"),
)

# Campaigns: sequences of stages sent to an audience from a mailbox or a sender group.
# `audience`, `stages` and `schedule` are the JSON the API takes (core/campaign_engine.py).
campaigns = sa.Table(
    "campaigns",
    metadata,
    _id(),
    _fk("account_id", "accounts.id"),
    _fk("domain_id", "domains.id"),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    _fk("mailbox_id", "mailboxes.id", ondelete="SET NULL", nullable=True),
    _fk("sender_group_id", "sender_groups.id", ondelete="SET NULL", nullable=True),
    sa.Column("audience", sa.JSON(), nullable=False),
    sa.Column("stages", sa.JSON(), nullable=False),
    sa.Column("schedule", sa.JSON(), nullable=False),
    sa.Column("pause_reason", sa.Text(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("launched_at", UtcDateTime()),
    sa.Column("finished_at", UtcDateTime()),
    sa.Index("ix_campaigns_domain_id", "domain_id"),
    sa.Index("ix_campaigns_status", "status"),
)

# One row per recipient of a launched campaign: its state and the stage it gets next, when.
campaign_recipients = sa.Table(
    "campaign_recipients",
    metadata,
    _id(),
    _fk("campaign_id", "campaigns.id"),
    _fk("contact_id", "contacts.id", ondelete="SET NULL", nullable=True),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("email_key", sa.String(320), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("next_stage", sa.Integer(), nullable=False),
    sa.Column("next_send_at", UtcDateTime(), nullable=False),
    # The mailbox that sent the thread's first message: follow-ups come from it too.
    _fk("mailbox_id", "mailboxes.id", ondelete="SET NULL", nullable=True),
    sa.Column("thread_subject", sa.Text()),
    sa.Column("thread_references", sa.Text()),
    sa.Column("last_outbound_id", Id),
    sa.Column("auto_replies", sa.Integer(), nullable=False),
    sa.Column("stop_reason", sa.Text(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("campaign_id", "email_key"),
    sa.Index(
        "ix_campaign_recipients_campaign_id_state_next_send_at",
        "campaign_id",
        "state",
        "next_send_at",
    ),
    sa.Index("ix_campaign_recipients_contact_id", "contact_id"),
)

# One row per (recipient, stage) sent, committed with the queued message: a stage is never sent
# twice (the unique pair) nor lost (the recipient's next stage moves in the same transaction).
campaign_messages = sa.Table(
    "campaign_messages",
    metadata,
    _id(),
    _fk("campaign_id", "campaigns.id"),
    _fk("recipient_id", "campaign_recipients.id"),
    sa.Column("stage", sa.Integer(), nullable=False),
    sa.Column("variant", sa.Integer(), nullable=False),
    _fk("outbound_id", "outbound_messages.id", ondelete="SET NULL", nullable=True),
    sa.Column("message_id", sa.String(998), nullable=False),
    _fk("mailbox_id", "mailboxes.id", ondelete="SET NULL", nullable=True),
    sa.Column("sent_at", UtcDateTime(), nullable=False),
    sa.Column("replied_at", UtcDateTime()),
    sa.UniqueConstraint("recipient_id", "stage"),
    sa.Index("ix_campaign_messages_message_id", "message_id"),
    sa.Index("ix_campaign_messages_mailbox_id_sent_at", "mailbox_id", "sent_at"),
    sa.Index("ix_campaign_messages_campaign_id_stage", "campaign_id", "stage"),
    sa.Index("ix_campaign_messages_outbound_id", "outbound_id"),
)
