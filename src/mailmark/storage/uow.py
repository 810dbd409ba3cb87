"""The unit of work: one connection and one transaction shared by every repository."""

from __future__ import annotations

from typing import Self

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from mailmark.storage.accounts import SqlAccounts
from mailmark.storage.affiliates import SqlAffiliates
from mailmark.storage.aliases import SqlAliases
from mailmark.storage.api_keys import SqlApiKeys
from mailmark.storage.billing import SqlBillingEvents, SqlUsage
from mailmark.storage.campaigns import SqlCampaigns
from mailmark.storage.contacts import SqlContacts
from mailmark.storage.db import READ_ONLY_OPTION, storage_fault
from mailmark.storage.deliveries import SqlDeliveries
from mailmark.storage.dialect import Dialect, dialect_named
from mailmark.storage.domains import SqlDomains
from mailmark.storage.events import SqlEvents
from mailmark.storage.folders import SqlFolders
from mailmark.storage.forwarding import SqlForwarding
from mailmark.storage.idempotency import SqlIdempotencyKeys
from mailmark.storage.invitations import SqlInvitations
from mailmark.storage.mailbox_assignments import SqlMailboxAssignments
from mailmark.storage.mailboxes import SqlMailboxes
from mailmark.storage.mailstore import SqlMailStore
from mailmark.storage.messages import SqlMessages
from mailmark.storage.oidc import SqlOidcIdentities, SqlOidcLogins
from mailmark.storage.one_time_tokens import SqlOneTimeTokens
from mailmark.storage.outbound import SqlOutbound
from mailmark.storage.recovery_codes import SqlRecoveryCodes
from mailmark.storage.relays import SqlRelays
from mailmark.storage.reports import SqlReports
from mailmark.storage.sender_groups import SqlSenderGroups
from mailmark.storage.sent_emails import SqlSentEmails
from mailmark.storage.sessions import SqlSessions
from mailmark.storage.sieve_scripts import SqlSieveScripts
from mailmark.storage.suppressions import SqlSuppressions
from mailmark.storage.users import SqlUsers
from mailmark.storage.vacations import SqlVacations
from mailmark.storage.webhook_deliveries import SqlWebhookDeliveries
from mailmark.storage.webhooks import SqlWebhooks
from mailmark.storage.webmail_compose import SqlCompose


class SqlUnitOfWork:
    """One connection and one transaction; rolled back on exit unless committed."""

    accounts: SqlAccounts
    usage: SqlUsage
    billing_events: SqlBillingEvents
    users: SqlUsers
    domains: SqlDomains
    mailboxes: SqlMailboxes
    folders: SqlFolders
    messages: SqlMessages
    events: SqlEvents
    outbound: SqlOutbound
    deliveries: SqlDeliveries
    suppressions: SqlSuppressions
    mailstore: SqlMailStore
    webhooks: SqlWebhooks
    webhook_deliveries: SqlWebhookDeliveries
    api_keys: SqlApiKeys
    sender_groups: SqlSenderGroups
    idempotency: SqlIdempotencyKeys
    sent_emails: SqlSentEmails
    oidc_identities: SqlOidcIdentities
    oidc_logins: SqlOidcLogins
    sessions: SqlSessions
    one_time_tokens: SqlOneTimeTokens
    invitations: SqlInvitations
    mailbox_assignments: SqlMailboxAssignments
    recovery_codes: SqlRecoveryCodes
    compose: SqlCompose
    reports: SqlReports
    relays: SqlRelays
    aliases: SqlAliases
    vacations: SqlVacations
    sieve_scripts: SqlSieveScripts
    contacts: SqlContacts
    affiliates: SqlAffiliates
    campaigns: SqlCampaigns

    def __init__(self, engine: AsyncEngine, dialect: Dialect, read_only: bool = False) -> None:
        self._engine = engine
        self._dialect = dialect
        self._read_only = read_only
        self._conn: AsyncConnection | None = None

    async def __aenter__(self) -> Self:
        try:
            self._conn = await self._engine.connect()
        except Exception as error:
            _raise_fault(error)
            raise
        try:
            if self._read_only:
                # Begun by the first statement (SQLAlchemy's autobegin), so a unit whose reads
                # all go through `Dialect.all_rows` pays for no BEGIN and ROLLBACK on either database.
                await self._conn.execution_options(**{READ_ONLY_OPTION: True})
            else:
                await self._conn.begin()
        except BaseException as error:
            await self._conn.close()
            _raise_fault(error)
            raise
        conn, dialect = self._conn, self._dialect
        self.accounts = SqlAccounts(conn, dialect)
        self.usage = SqlUsage(conn, dialect)
        self.billing_events = SqlBillingEvents(conn, dialect)
        self.users = SqlUsers(conn, dialect)
        self.domains = SqlDomains(conn, dialect)
        self.mailboxes = SqlMailboxes(conn, dialect)
        self.folders = SqlFolders(conn, dialect)
        self.messages = SqlMessages(conn, dialect)
        self.events = SqlEvents(conn, dialect)
        self.outbound = SqlOutbound(conn, dialect)
        self.deliveries = SqlDeliveries(conn, dialect)
        self.suppressions = SqlSuppressions(conn, dialect)
        self.mailstore = SqlMailStore(conn, dialect)
        self.webhooks = SqlWebhooks(conn, dialect)
        self.webhook_deliveries = SqlWebhookDeliveries(conn, dialect)
        self.api_keys = SqlApiKeys(conn, dialect)
        self.sender_groups = SqlSenderGroups(conn, dialect)
        self.idempotency = SqlIdempotencyKeys(conn, dialect)
        self.sent_emails = SqlSentEmails(conn, dialect)
        self.oidc_identities = SqlOidcIdentities(conn, dialect)
        self.oidc_logins = SqlOidcLogins(conn, dialect)
        self.sessions = SqlSessions(conn, dialect)
        self.one_time_tokens = SqlOneTimeTokens(conn, dialect)
        self.invitations = SqlInvitations(conn, dialect)
        self.mailbox_assignments = SqlMailboxAssignments(conn, dialect)
        self.recovery_codes = SqlRecoveryCodes(conn, dialect)
        self.compose = SqlCompose(conn, dialect)
        self.reports = SqlReports(conn, dialect)
        self.relays = SqlRelays(conn, dialect)
        self.forwarding = SqlForwarding(conn, dialect)
        self.aliases = SqlAliases(conn, dialect)
        self.vacations = SqlVacations(conn, dialect)
        self.sieve_scripts = SqlSieveScripts(conn, dialect)
        self.contacts = SqlContacts(conn, dialect)
        self.affiliates = SqlAffiliates(conn, dialect)
        self.campaigns = SqlCampaigns(conn, dialect)
        return self

    async def __aexit__(self, *exc: object) -> None:
        error = exc[1] if isinstance(exc[1], BaseException) else None
        assert self._conn is not None
        try:
            if self._conn.in_transaction():
                await self._conn.rollback()
        finally:
            await self._conn.close()
            self._conn = None
        if error is not None:
            _raise_fault(error)

    async def commit(self) -> None:
        assert self._conn is not None
        try:
            await self._conn.commit()
        except Exception as error:
            _raise_fault(error)
            raise

    async def rollback(self) -> None:
        assert self._conn is not None
        await self._conn.rollback()


def _raise_fault(error: BaseException) -> None:
    """Raise a locked, read-only or full database as the core error adapters answer
    (mailmark.storage.db.storage_fault); return for anything else."""
    fault = storage_fault(error)
    if fault is not None:
        raise fault from error


class SqlUnitOfWorkFactory:
    """Units of work over one engine, in the dialect of its database (chosen here, once)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = dialect_named(engine.dialect.name)

    def __call__(self, *, read_only: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine, self.dialect, read_only)
