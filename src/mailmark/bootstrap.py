"""Composition root: Settings → engine, blob store, resolver, clock → services → listeners.

The only module that imports every subpackage. Tests use it too, so what they start is what
`mailmark serve` starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import logging
import os
import secrets
import socket
import ssl
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from mailmark.certificates.acme_issuer import (
    CHECK_INTERVAL,
    AcmeIssuer,
    AcmeRenewer,
    ChallengeResponses,
)
from mailmark.certificates.holder import (
    CertificateFileWatcher,
    CertificateHolder,
    CertificateRefused,
)
from mailmark.certificates.names import certificate_names, public_host
from mailmark.config import Settings
from mailmark.connections import (
    ConnectionLimits,
    DescriptorBudget,
    listening_socket,
    raise_descriptor_limit,
)
from mailmark.core.accounts import AccountService
from mailmark.core.affiliates import AffiliateService
from mailmark.core.aliases import AliasService
from mailmark.core.apikeys import ApiKeyService, BucketRule, KeyBuckets, TokenBucket
from mailmark.core.billing import BillingService
from mailmark.core.campaign_engine import CampaignEngine, CampaignScheduler, CampaignService
from mailmark.core.campaign_replies import CampaignReplies
from mailmark.core.campaigns import CampaignExpansion
from mailmark.core.contacts import ContactService
from mailmark.core.cpu_pool import CpuPool
from mailmark.core.cpu_ration import ProcessorRation
from mailmark.core.delivery import InboundDelivery
from mailmark.core.delivery_reports import DeliveryReports
from mailmark.core.domain_rechecks import DomainRechecker
from mailmark.core.domains import DomainService
from mailmark.core.emails import EmailService
from mailmark.core.forwarding import Forwarder, ForwardingRule, ForwardingService
from mailmark.core.idempotency import IdempotencyService
from mailmark.core.identity import IdentityService
from mailmark.core.inbound import InboundMail
from mailmark.core.logins import LoginThrottle, MailboxLogins
from mailmark.core.mailboxes import MailboxService
from mailmark.core.mailstore import MailStore, NodeRenewal
from mailmark.core.maintenance import Maintenance
from mailmark.core.oidc import OidcProvider, OidcSignIn
from mailmark.core.passwords import Passwords
from mailmark.core.ports import BlobStore, Clock, PasswordHasher, SystemClock
from mailmark.core.queue import OutboundQueue
from mailmark.core.queue_admin import QueueAdmin
from mailmark.core.relays import Relay, RelayService, RelayTls, default_relay_port
from mailmark.core.reports import ReportService
from mailmark.core.retention import Retention, RetentionPolicy
from mailmark.core.sender_groups import SenderGroupService
from mailmark.core.sending import SendingService
from mailmark.core.sieve.filter import SieveFilter
from mailmark.core.sieve.scripts import SieveScripts
from mailmark.core.signing_keys import SigningKeys
from mailmark.core.spam import SpamFilter, SpamFilters, SpamLearning, SpamThresholds
from mailmark.core.srs import Srs
from mailmark.core.system_mail import SystemMail
from mailmark.core.team import TeamService
from mailmark.core.text_index import TextIndexer
from mailmark.core.tracking import LinkSigner, Tracking
from mailmark.core.unsubscribe import Unsubscribes
from mailmark.core.vacation import Responder, VacationRule, VacationService
from mailmark.core.webhooks import TargetPolicy, WebhookService
from mailmark.core.webmail import ImageSigner, WebmailService
from mailmark.core.webmail_compose import WebmailCompose
from mailmark.dns_tools.record_set import MailServer
from mailmark.dns_tools.resolver import DnsResolver
from mailmark.dns_tools.verification import DomainDns
from mailmark.health import Check, Readiness, check_blob_store, running_check
from mailmark.imap.server import ImapListener, start_imap_listener
from mailmark.loop_lag import LoopLagMonitor
from mailmark.managesieve.server import ManageSieveListener, start_managesieve_listener
from mailmark.metrics import Metrics
from mailmark.oidc.client import HttpOidcClient
from mailmark.process_memory import freeze_startup_heap, give_large_blocks_back
from mailmark.sanitize import MailHtmlSanitizer, Nh3Sanitizer
from mailmark.security import (
    Argon2PasswordHasher,
    DkimKeyFactory,
    PyotpTotp,
    ensure_self_signed_certificate,
)
from mailmark.service import must_switch, notify, require_usable_paths, run_as, switch_user
from mailmark.smtp_in.authentication import MessageAuthenticator
from mailmark.smtp_in.mx import MxHandler
from mailmark.smtp_in.server import SmtpListener, start_smtp_listener
from mailmark.smtp_in.spool import DataSpooling
from mailmark.smtp_in.submission import SubmissionHandler
from mailmark.smtp_out.client import SmtpDialer, SmtpTimeouts, relay_tls_context
from mailmark.smtp_out.mta_sts import MtaStsPolicies
from mailmark.smtp_out.mx import MxResolver
from mailmark.smtp_out.worker import OutboundWorker
from mailmark.spam.blocklists import DnsBlocklists
from mailmark.spam.rspamd import Rspamd
from mailmark.startup import StartupError, hostname_problem, prepare_data_dir
from mailmark.storage.backup import (
    BackupSummary,
    Progress,
    RestoreSummary,
    create_backup,
    restore_backup,
)
from mailmark.storage.blobstore import FileBlobStore
from mailmark.storage.db import create_engine, load_database_driver, ping
from mailmark.storage.key_buckets import PgKeyBuckets
from mailmark.storage.migrate import migrate
from mailmark.storage.node_bus import NodeBus, asyncpg_dsn
from mailmark.storage.secrets import (
    KEY_FILE,
    SecretBox,
    SecretKeyError,
    encrypt_plaintext_secrets,
    load_key,
)
from mailmark.storage.secrets import install as install_secret_box
from mailmark.storage.tables import dkim_keys
from mailmark.storage.tables import users as users_table
from mailmark.storage.tables import webhooks as webhooks_table
from mailmark.storage.uow import SqlUnitOfWorkFactory
from mailmark.web.api.app.routes import AppServices
from mailmark.web.api.v1.routes import ApiServices
from mailmark.web.app import create_app
from mailmark.web.billing import PolarWebhook
from mailmark.web.image_proxy import ImageProxy
from mailmark.web.observability import Observability
from mailmark.web.redirect import HttpsRedirect
from mailmark.web.server import GRACEFUL_SHUTDOWN_SECONDS, HttpListener, start_http_listener
from mailmark.webhooks.poster import WebhookPoster
from mailmark.webhooks.resolver import WebhookHostResolver
from mailmark.webhooks.worker import WebhookWorker

if TYPE_CHECKING:
    # Imported where used: each costs a noticeable share of a CLI command's start.
    from litestar import Litestar

    from mailmark.billing.polar import PolarProvider

log = logging.getLogger(__name__)
# An extra HTTP process checks this often whether the process that started it is still there.
PARENT_CHECK_SECONDS = 1.0
# How long `serve --imap-processes` waits for an IMAP process to listen (a migration-free start
# with the processor pool's workers takes a second or two).
IMAP_START_SECONDS = 60.0
# The pauses before an IMAP process that ended is started again: longer while they keep ending;
# one that ran for longer than the last starts the sequence over.
IMAP_RESTART_PAUSES = (1.0, 2.0, 5.0, 10.0, 30.0)
# Password hashes run on at most this many threads (fewer on a machine with fewer cores).
PASSWORD_THREADS = 4
T = TypeVar("T")


@dataclass
class Services:
    settings: Settings
    engine: AsyncEngine
    uow: SqlUnitOfWorkFactory
    blobs: BlobStore
    clock: Clock
    resolver: DnsResolver
    accounts: AccountService
    billing: BillingService
    affiliates: AffiliateService
    domains: DomainService
    mailboxes: MailboxService
    aliases: AliasService
    delivery: InboundDelivery
    mailstore: MailStore
    logins: MailboxLogins
    queue: OutboundQueue
    delivery_reports: DeliveryReports
    signing_keys: SigningKeys
    queue_admin: QueueAdmin
    sending: SendingService
    webhooks: WebhookService
    api_keys: ApiKeyService
    # The API keys' token buckets (in the database on PostgreSQL, else in process).
    key_buckets: KeyBuckets
    sender_groups: SenderGroupService
    emails: EmailService
    idempotency: IdempotencyService
    campaigns: CampaignExpansion
    identity: IdentityService
    team: TeamService
    oidc: OidcSignIn
    webmail: WebmailService
    images: ImageProxy
    compose: WebmailCompose
    tracking: Tracking
    unsubscribes: Unsubscribes
    passwords: Passwords
    reports: ReportService
    relays: RelayService
    forwarding: ForwardingService
    forwarder: Forwarder
    vacation: VacationService
    auto_replies: Responder
    sieve: SieveScripts
    sieve_filter: SieveFilter
    vacation_rule: VacationRule
    forwarding_rule: ForwardingRule
    retention: Retention
    contacts: ContactService
    campaign_service: CampaignService
    campaign_engine: CampaignEngine
    campaign_replies: CampaignReplies
    # This process's Prometheus metrics, which every listener and worker counts into.
    metrics: Metrics
    # Worker processes for parsing and decoding large messages; started with the listeners.
    cpu: CpuPool
    # Inbound spam filtering (None: not configured), and the rspamd client behind it, if any.
    spam_filter: SpamFilter | None = None
    rspamd: Rspamd | None = None
    spam_learning: SpamLearning | None = None
    # Selling plans through Polar (None: billing is off).
    polar: PolarProvider | None = None
    # Signals to and from the other nodes sharing a PostgreSQL database (None on SQLite).
    bus: NodeBus | None = None

    def is_leader(self) -> bool:
        """Whether this node runs the singleton jobs (always, alone on SQLite)."""
        return self.bus is None or self.bus.is_leader()

    async def close(self) -> None:
        if self.bus is not None:
            await self.bus.close()
        await self.key_buckets.close()
        if self.polar is not None:
            await self.polar.close()
        if self.spam_learning is not None:
            await self.spam_learning.close()
        if self.rspamd is not None:
            await self.rspamd.close()
        self.passwords.close()
        await self.cpu.stop()
        await self.sending.close()
        await self.tracking.close()
        await self.delivery.close()
        await self.webhooks.aclose()
        self.images.close()
        await self.contacts.stop_imports()
        await self.blobs.close()
        await self.engine.dispose()


def polar_provider(settings: Settings) -> PolarProvider | None:
    if settings.billing != "polar" or settings.polar_access_token is None:
        return None
    from mailmark.billing.polar import PolarProvider

    return PolarProvider(
        settings.polar_access_token.get_secret_value(),
        polar_products(settings),
        server=settings.polar_server,
        base_url=settings.polar_base_url or None,
    )


def polar_products(settings: Settings) -> dict[str, str]:
    """Each plan's Polar product id."""
    return {
        "starter": settings.polar_product_starter,
        "pro": settings.polar_product_pro,
        "business": settings.polar_product_business,
    }


def polar_webhook(services: Services) -> PolarWebhook | None:
    """Polar's webhook endpoint, when plans are sold through Polar."""
    settings = services.settings
    if services.polar is None or settings.polar_webhook_secret is None:
        return None
    return PolarWebhook(
        services.billing,
        settings.polar_webhook_secret.get_secret_value(),
        polar_products(settings),
    )


def affiliate_program(services: Services) -> AffiliateService | None:
    """The affiliate program runs where plans are sold (it pays a share of their payments)."""
    return services.affiliates if services.polar is not None else None


def rspamd_client(settings: Settings, resolver: DnsResolver | None = None) -> Rspamd | None:
    if not settings.rspamd_url:
        return None
    return Rspamd(
        url=settings.rspamd_url,
        controller_url=settings.rspamd_controller_url or None,
        password=(
            settings.rspamd_password.get_secret_value() if settings.rspamd_password else None
        ),
        timeout=settings.rspamd_timeout,
        thresholds=SpamThresholds(
            reject_score=settings.spam_reject_score,
            junk_score=settings.spam_junk_score,
            greylisting=settings.spam_greylisting,
        ),
        when_unavailable=settings.rspamd_unavailable,
        resolver=resolver,
    )


def spam_filters(
    settings: Settings, resolver: DnsResolver, rspamd: Rspamd | None
) -> SpamFilter | None:
    """DNS blocklists first (one lookup is cheaper than a scan), then rspamd."""
    filters: list[SpamFilter] = []
    if settings.dnsbl_zones:
        filters.append(DnsBlocklists(resolver, settings.dnsbl_zones))
    if rspamd is not None:
        filters.append(rspamd)
    if not filters:
        return None
    return filters[0] if len(filters) == 1 else SpamFilters(filters)


def password_hasher(settings: Settings) -> PasswordHasher:
    """argon2id at the recommended cost, or at its lowest where the settings are a test's."""
    if settings.password_hash_cost == "test":
        return Argon2PasswordHasher(time_cost=1, memory_cost_kib=1024)
    return Argon2PasswordHasher()


async def build_services(
    settings: Settings, *, clock: Clock | None = None, passwords: PasswordHasher | None = None
) -> Services:
    """Create the data dir, migrate the database, and wire the core services."""
    await asyncio.to_thread(prepare_data_dir, settings)
    engine = create_engine(
        settings.database_url,
        sqlite_synchronous=settings.sqlite_synchronous,
        sqlite_busy_timeout_ms=int(settings.sqlite_busy_timeout.total_seconds() * 1000),
    )
    try:
        await _check_database(engine)
        await migrate(engine)
        key = settings.secrets_key.get_secret_value() if settings.secrets_key else None
        try:
            secret_key = await asyncio.to_thread(load_key, key, settings.data_dir)
            secret_box = SecretBox(secret_key)
            install_secret_box(engine, secret_box)
            await encrypt_plaintext_secrets(
                engine,
                [dkim_keys.c.private_key_pem, webhooks_table.c.secret, users_table.c.totp_secret],
            )
        except SecretKeyError as error:
            raise StartupError(f"{error} (MAILMARK_SECRETS_KEY or secrets.key)") from None
        blobs = await open_blob_store(settings)
    except BaseException:
        await engine.dispose()
        raise
    clock = clock or SystemClock()
    uow = SqlUnitOfWorkFactory(engine)
    # A few threads of their own: a burst of logins waits its turn there instead of holding the
    # default executor's threads, which blob reads and message parsing need meanwhile.
    passwords_service = Passwords(
        passwords or password_hasher(settings),
        clock,
        workers=min(PASSWORD_THREADS, os.cpu_count() or 1),
        cache_seconds=settings.login_cache_ttl.total_seconds(),
    )
    # Verification re-runs right after a person fixes their DNS: never answer from a cache.
    domain_dns = DomainDns(
        DnsResolver(settings.dns_nameservers or None, cache=False), mail_server(settings)
    )
    mailboxes = MailboxService(uow, clock, passwords_service, blobs, Nh3Sanitizer())
    cpu = CpuPool(workers=settings.cpu_workers, threshold=settings.cpu_offload_threshold)
    delivery = InboundDelivery(uow, blobs, clock, cpu=cpu)
    reports = DeliveryReports(uow, blobs, clock, delivery, settings.hostname)
    queue = OutboundQueue(
        uow,
        blobs,
        clock,
        delivery,
        mailboxes,
        reports,
        retry_schedule=settings.retry_schedule,
        queue_lifetime=settings.queue_lifetime,
        hostname=settings.hostname,
    )
    # Webhook targets are re-resolved before every attempt; a cached answer would hide a change.
    webhook_targets = TargetPolicy(
        WebhookHostResolver(DnsResolver(settings.dns_nameservers or None, cache=False)),
        [ipaddress.ip_network(net) for net in settings.webhook_allow_private_networks],
    )
    link_signer = LinkSigner(secret_key, settings.public_url)
    tracking = Tracking(uow, clock, link_signer)
    sending = SendingService(
        uow,
        blobs,
        clock,
        queue,
        delivery,
        hostname=settings.hostname,
        max_recipients=settings.max_recipients,
        max_message_size=settings.max_message_size,
        tracking=tracking,
    )
    sender_groups = SenderGroupService(uow, clock)
    # One throttle for every way in (IMAP, SMTP submission, the web app's sign-in): a guesser
    # gains nothing by switching protocol.
    throttle = LoginThrottle(clock)
    domains = DomainService(uow, clock, DkimKeyFactory(), domain_dns, blobs)
    system_mail = SystemMail(uow, blobs, clock, queue, domains, hostname=settings.hostname)
    resolver = DnsResolver(settings.dns_nameservers or None)
    rspamd = rspamd_client(settings, resolver)
    spam_filter = spam_filters(settings, resolver, rspamd)
    learning = SpamLearning(rspamd) if rspamd is not None and rspamd.trains else None
    accounts = AccountService(uow, clock, passwords_service, wake_queue=queue.kick)
    polar = polar_provider(settings)
    # The store publishes on the signals delivery uses, so MX mail and IMAP changes both wake IDLE.
    mailstore = MailStore(
        uow,
        blobs,
        clock,
        delivery.signals,
        max_message_size=settings.max_message_size,
        delivery=delivery,
        learning=learning,
    )
    sieve_filter = SieveFilter(uow, mailstore, clock)
    vacation_rule = VacationRule(uow, clock)
    forwarding_rule = ForwardingRule(uow, clock)
    campaign_engine = CampaignEngine(
        uow, clock, sending, sender_groups, batch=settings.campaign_batch
    )
    key_buckets = api_key_buckets(
        engine, BucketRule(settings.api_rate_limit, settings.api_rate_burst)
    )
    services = Services(
        settings=settings,
        engine=engine,
        uow=uow,
        blobs=blobs,
        clock=clock,
        resolver=resolver,
        accounts=accounts,
        billing=BillingService(uow, clock, accounts, polar, wake_queue=queue.kick),
        affiliates=AffiliateService(uow, clock, accounts, settings.public_url),
        polar=polar,
        domains=domains,
        mailboxes=mailboxes,
        aliases=AliasService(uow, clock, mailboxes),
        delivery=delivery,
        mailstore=mailstore,
        logins=MailboxLogins(uow, passwords_service, throttle),
        queue=queue,
        delivery_reports=reports,
        signing_keys=SigningKeys(uow, clock),
        queue_admin=QueueAdmin(uow, clock, queue),
        sending=sending,
        webhooks=WebhookService(
            uow,
            clock,
            webhook_targets,
            # Test deliveries from the dashboard: one at a time, through the worker's own path.
            WebhookPoster(webhook_targets, max_clients=4, connections_per_client=2),
        ),
        api_keys=ApiKeyService(uow, clock, key_buckets),
        key_buckets=key_buckets,
        sender_groups=sender_groups,
        contacts=ContactService(uow, clock),
        emails=EmailService(uow, clock, queue),
        idempotency=IdempotencyService(uow, clock),
        campaigns=CampaignExpansion(sending, mailboxes, sender_groups, clock),
        identity=IdentityService(
            uow,
            clock,
            passwords_service,
            throttle,
            PyotpTotp(),
            accounts=accounts,
            mail=system_mail,
            public_url=settings.public_url,
            signup_open=settings.signup == "open",
        ),
        team=TeamService(
            uow, clock, passwords_service, mail=system_mail, public_url=settings.public_url
        ),
        oidc=OidcSignIn(
            uow,
            clock,
            HttpOidcClient(clock),
            [
                OidcProvider(
                    id=provider.id,
                    name=provider.name,
                    issuer=provider.issuer,
                    client_id=provider.client_id,
                    client_secret=provider.client_secret.get_secret_value(),
                    scopes=tuple(provider.scopes),
                    trust_mfa=provider.trust_mfa,
                    timeout=provider.timeout.total_seconds(),
                )
                for provider in settings.oidc_providers
            ],
            signup_open=settings.signup == "open",
            public_url=settings.public_url,
        ),
        webmail=WebmailService(
            uow,
            clock,
            mailboxes,
            mailstore,
            MailHtmlSanitizer(),
            ImageSigner(secret_key),
            hostname=settings.hostname,
        ),
        # Remote images are fetched like webhooks are posted: every address of the host checked.
        images=ImageProxy(
            TargetPolicy(
                WebhookHostResolver(DnsResolver(settings.dns_nameservers or None, cache=False)),
                [ipaddress.ip_network(net) for net in settings.image_proxy_allow_private_networks],
            )
        ),
        compose=WebmailCompose(
            uow,
            blobs,
            clock,
            mailboxes=mailboxes,
            mailstore=mailstore,
            sending=sending,
            queue=queue,
            delivery=delivery,
            max_message_size=settings.max_message_size,
        ),
        tracking=tracking,
        unsubscribes=Unsubscribes(uow, clock, link_signer),
        passwords=passwords_service,
        reports=ReportService(uow, clock),
        relays=RelayService(uow, clock, installation_relay(settings)),
        forwarding=ForwardingService(uow, clock, on_change=forwarding_rule.forget),
        forwarder=Forwarder(uow, clock, system_mail, Srs(secret_key)),
        spam_filter=spam_filter,
        rspamd=rspamd,
        spam_learning=learning,
        vacation=VacationService(
            uow, clock, mailboxes, Nh3Sanitizer(), on_change=vacation_rule.forget
        ),
        auto_replies=Responder(uow, clock, system_mail, Nh3Sanitizer()),
        sieve=SieveScripts(uow, clock, on_change=sieve_filter.forget),
        sieve_filter=sieve_filter,
        vacation_rule=vacation_rule,
        forwarding_rule=forwarding_rule,
        retention=Retention(uow, clock, blobs, retention_policy(settings)),
        campaign_service=CampaignService(
            uow, clock, sending, sender_groups, wake=campaign_engine.wake
        ),
        campaign_engine=campaign_engine,
        campaign_replies=CampaignReplies(uow, clock),
        metrics=Metrics(destination_domains=settings.metrics_destination_domains),
        cpu=cpu,
    )
    if engine.dialect.name == "postgresql":
        services.bus = NodeBus(asyncpg_dsn(engine.url))
        connect_nodes(services, services.bus, throttle)
        await services.bus.start()
    # Messages a previous run kept for its IMAP sessions after they were expunged (MailStore).
    await services.mailstore.remove_unplaced()
    return services


def api_key_buckets(engine: AsyncEngine, rule: BucketRule) -> KeyBuckets:
    """On PostgreSQL each key has one bucket in the database that every node and HTTP worker
    takes from; on SQLite (one node) each process keeps its own."""
    if engine.dialect.name == "postgresql":
        return PgKeyBuckets(engine, rule)
    return TokenBucket(rule)


def connect_nodes(services: Services, bus: NodeBus, throttle: LoginThrottle) -> None:
    """Relay this node's in-process signals to the other nodes, and theirs to this one: folder
    changes wake IDLE and the webmail's live updates, queue changes wake the outbound workers,
    revoked API keys leave every cache, failed logins count on every node. After a reconnection
    (notices may have been missed) everything is treated as changed once."""
    signals = services.delivery.signals
    signals.relay = partial(bus.publish, "folder")

    def folders(mailbox_ids: list[Any]) -> None:
        for mailbox_id in mailbox_ids:
            if type(mailbox_id) is int:
                signals.wake(mailbox_id)

    bus.subscribe("folder", folders)
    services.queue.relay = partial(bus.publish, "queue", 1)
    bus.subscribe("queue", lambda _: services.queue.wake())

    async def key_revoked(prefix: str) -> None:
        bus.publish("apikey", prefix)
        await bus.published()

    services.api_keys.revocation_relay = key_revoked
    bus.subscribe("apikey", lambda prefixes: services.api_keys.forget(map(str, prefixes)))
    # A sequence number keeps two identical failures apart (the bus merges identical items).
    attempts = itertools.count()
    throttle.relay = lambda ip, target, failed: bus.publish(
        "login", [ip, target, failed, next(attempts)]
    )

    def logins(attempts: list[Any]) -> None:
        for attempt in attempts:
            if isinstance(attempt, list) and len(attempt) == 4:
                throttle.record(str(attempt[0]), str(attempt[1]), failed=bool(attempt[2]))

    bus.subscribe("login", logins)
    throttle.relayed = bus.published
    throttle.caught_up = bus.caught_up
    bus.on_resync(signals.wake_all)
    bus.on_resync(services.queue.wake)
    bus.on_resync(services.api_keys.forget_all)


def retention_policy(settings: Settings) -> RetentionPolicy:
    def days(count: int) -> timedelta | None:
        return timedelta(days=count) if count else None

    return RetentionPolicy(
        events_kept=days(settings.events_kept_days),
        webhook_deliveries_kept=days(settings.webhook_deliveries_kept_days),
        unreferenced_blob_grace=timedelta(hours=settings.unreferenced_blob_grace_hours),
    )


async def backup(settings: Settings, destination: Path, progress: Progress) -> BackupSummary:
    """`mailmark backup`: the database and its blobs, while `serve` may be running."""
    engine = create_engine(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)
    try:
        await _check_database(engine)
        blobs = await open_blob_store(settings)
        try:
            return await create_backup(
                engine,
                blobs,
                destination,
                # A key given as a setting is the operator's to keep; the file is the data dir's.
                secrets_key_file=None if settings.secrets_key else settings.data_dir / KEY_FILE,
                progress=progress,
            )
        finally:
            await blobs.close()
    finally:
        await engine.dispose()


async def restore(
    settings: Settings, source: Path, *, force: bool, progress: Progress
) -> RestoreSummary:
    """`mailmark restore`: a backup into this (empty) installation, migrated to this version."""
    await asyncio.to_thread(prepare_data_dir, settings)
    blobs = await open_blob_store(settings)
    try:
        return await restore_backup(
            source,
            settings.database_url,
            blobs,
            data_dir=settings.data_dir,
            secrets_key_setting=settings.secrets_key is not None,
            force=force,
            progress=progress,
        )
    finally:
        await blobs.close()


def installation_relay(settings: Settings) -> Relay | None:
    """The relay host of MAILMARK_RELAY_*, or None: mail goes to each recipient's MX."""
    if not settings.relay_host:
        return None
    tls = RelayTls(settings.relay_tls)
    password = settings.relay_password.get_secret_value() if settings.relay_password else None
    return Relay(
        host=settings.relay_host.strip("[]").lower(),
        port=settings.relay_port or default_relay_port(tls),
        tls=tls,
        username=settings.relay_username or None,
        password=password or None,
    )


async def open_blob_store(settings: Settings) -> BlobStore:
    """The blob store MAILMARK_BLOB_URL names, checked: a file store with its half-written
    files swept, or an S3 store that took a write and a read (else one StartupError line)."""
    location = settings.blob_bucket
    if location is None:
        files = FileBlobStore(settings.blob_path)
        await asyncio.to_thread(files.sweep_temporary)
        return files
    from mailmark.storage.s3blobstore import S3BlobStore, S3Location, S3SetupError

    bucket, prefix = location
    secret = settings.s3_secret_key.get_secret_value() if settings.s3_secret_key else None
    store = S3BlobStore(
        S3Location(
            bucket=bucket,
            prefix=prefix,
            endpoint_url=settings.s3_endpoint_url or None,
            region=settings.s3_region,
            access_key=settings.s3_access_key or None,
            secret_key=secret,
            path_style=settings.s3_path_style,
            timeout=settings.s3_timeout,
        )
    )
    try:
        await store.open()
    except S3SetupError as error:
        raise StartupError(f"cannot use the blob store: {error} (check {error.setting})") from None
    return store


async def _check_database(engine: AsyncEngine) -> None:
    """Connect once, so that a wrong URL or a database that is down ends in one clear line."""
    try:
        async with engine.connect():
            pass
    except (OSError, DBAPIError) as error:
        reason = error.orig if isinstance(error, DBAPIError) else error
        url = engine.url.render_as_string(hide_password=True)
        raise StartupError(
            f"cannot open the database {url}: {reason} (check MAILMARK_DATABASE_URL)"
        ) from None


def mail_server(settings: Settings) -> MailServer:
    """How clients and other servers reach this one, for DNS records and autoconfiguration."""
    return MailServer(
        hostname=settings.hostname,
        public_ips=tuple(settings.public_ips),
        submission_port=settings.submission_port,
        submissions_port=settings.submissions_port,
        imap_port=settings.imap_port,
        imaps_port=settings.imaps_port,
        mta_sts_mode=settings.mta_sts_mode,
    )


def acme_pair_paths(settings: Settings) -> tuple[Path, Path]:
    """Where the certificate chain and key issued by the ACME CA are kept."""
    directory = settings.data_dir / "acme"
    return directory / "cert.pem", directory / "key.pem"


def acme_challenges(settings: Settings) -> ChallengeResponses:
    return ChallengeResponses(settings.data_dir / "acme" / "challenges")


def certificate_holder(settings: Settings) -> CertificateHolder:
    """The certificate every TLS listener presents: the configured pair; else, with an ACME CA,
    the pair it issued when there is a usable one; else a self-signed pair generated in the data
    dir on first start (and again whenever the hostname changes). Loads go through the data dir,
    which a hardened service (ProtectSystem=strict) can write where /tmp may not be."""
    if settings.tls_cert is not None and settings.tls_key is not None:
        try:
            return CertificateHolder(settings.tls_cert, settings.tls_key, scratch=settings.data_dir)
        except (OSError, CertificateRefused, ssl.SSLError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else error
            raise StartupError(
                f"cannot load the TLS certificate {settings.tls_cert} and key {settings.tls_key}: "
                f"{reason} (check MAILMARK_TLS_CERT and MAILMARK_TLS_KEY)"
            ) from None
    if settings.acme_directory:
        cert, key = acme_pair_paths(settings)
        if cert.exists() or key.exists():
            try:
                return CertificateHolder(cert, key, scratch=settings.data_dir)
            except (OSError, CertificateRefused, ssl.SSLError) as error:
                log.warning(
                    "the certificate from the ACME CA in %s is not usable (%s): presenting a "
                    "self-signed one until the CA issues a new one",
                    cert.parent,
                    error,
                )
    cert, key = ensure_self_signed_certificate(settings.data_dir / "tls", settings.hostname)
    return CertificateHolder(cert, key, scratch=settings.data_dir)


def acme_renewer(services: Services, holder: CertificateHolder) -> AcmeRenewer | None:
    """The background renewal from MAILMARK_ACME_DIRECTORY (not started), or None without it."""
    settings = services.settings
    if not settings.acme_directory:
        return None
    cert, key = acme_pair_paths(settings)

    async def names() -> list[str]:
        domains = await services.domains.list_all()
        verified = [s.domain.name for s in domains if s.domain.verified_at is not None]
        web_host = public_host(settings.public_url) if settings.public_url_configured else None
        return certificate_names(settings.hostname, verified, web_host)

    issuer = AcmeIssuer(
        settings.acme_directory,
        account_key_path=settings.data_dir / "acme" / "account.key",
        responses=acme_challenges(settings),
        email=settings.acme_email or None,
        ca_bundle=settings.acme_ca_bundle,
    )
    return AcmeRenewer(
        issuer, holder, names=names, cert_path=cert, key_path=key, interval=CHECK_INTERVAL
    )


@dataclass
class Listeners:
    mx: SmtpListener
    submission: SmtpListener
    submissions: SmtpListener
    http: HttpListener
    outbound: OutboundWorker
    # None when IMAP is served by processes of its own (`serve --imap-processes`).
    imap: ImapListener | None
    imaps: ImapListener | None
    webhooks: WebhookWorker
    domain_rechecks: DomainRechecker
    maintenance: Maintenance
    campaigns: CampaignScheduler
    loop_lag: LoopLagMonitor
    imap_node: NodeRenewal
    # Adds delivered mail's body text to the full-text index after the 250.
    text_index: TextIndexer
    cpu: CpuPool
    managesieve: ManageSieveListener
    certificates: CertificateHolder
    # Reloads MAILMARK_TLS_CERT/_KEY when they change; None for a pair Mailmark makes itself.
    certificate_files: CertificateFileWatcher | None
    # Orders and renews the certificate from MAILMARK_ACME_DIRECTORY; None without one.
    acme: AcmeRenewer | None
    # The web app over TLS (MAILMARK_HTTPS_PORT), and the plain-HTTP listener sending to it
    # (MAILMARK_HTTP_REDIRECT_PORT); None when not configured.
    https: HttpListener | None = None
    http_redirect: HttpListener | None = None

    @property
    def mx_port(self) -> int:
        return self.mx.port

    @property
    def submission_port(self) -> int:
        return self.submission.port

    @property
    def submissions_port(self) -> int:
        return self.submissions.port

    @property
    def http_port(self) -> int:
        return self.http.port

    @property
    def https_port(self) -> int | None:
        return self.https.port if self.https is not None else None

    @property
    def http_redirect_port(self) -> int | None:
        return self.http_redirect.port if self.http_redirect is not None else None

    @property
    def imap_port(self) -> int:
        assert self.imap is not None, "IMAP is served by processes of its own"
        return self.imap.port

    @property
    def imaps_port(self) -> int:
        assert self.imaps is not None, "IMAPS is served by processes of its own"
        return self.imaps.port

    async def close(self) -> None:
        await asyncio.gather(
            self.outbound.stop(),
            self.webhooks.stop(),
            self.domain_rechecks.stop(),
            self.maintenance.stop(),
            self.campaigns.stop(),
            self.loop_lag.stop(),
            self.text_index.stop(),
            *([self.certificate_files.stop()] if self.certificate_files else []),
            *([self.acme.stop()] if self.acme else []),
        )
        await asyncio.gather(
            self.mx.close(),
            self.submission.close(),
            self.submissions.close(),
            self.http.close(),
            *(web.close() for web in (self.https, self.http_redirect) if web is not None),
            *(imap.close() for imap in (self.imap, self.imaps) if imap is not None),
            self.managesieve.close(),
        )
        await self.imap_node.stop()
        await self.cpu.stop()


def data_spooling(settings: Settings) -> DataSpooling:
    """Where SMTP DATA and IMAP APPEND literals larger than the threshold wait, under one memory
    budget for the process."""
    return DataSpooling.create(
        threshold=settings.smtp_spool_threshold,
        directory=settings.data_dir / "spool",
        memory=settings.smtp_data_memory,
    )


def connection_limits(settings: Settings) -> Callable[[], ConnectionLimits]:
    """Raise the process's descriptor limit, and make each listener's connection limits: all
    share the descriptor budget (mailmark.connections)."""
    raise_descriptor_limit()
    descriptors = DescriptorBudget.for_process(settings.descriptor_reserve)

    def limits() -> ConnectionLimits:
        return ConnectionLimits(
            max_per_ip=settings.max_connections_per_ip,
            max_total=settings.max_connections,
            descriptors=descriptors,
        )

    return limits


async def start_listeners(
    services: Services,
    *,
    reuse_http_port: bool = False,
    sockets: Mapping[str, socket.socket] | None = None,
    serve_imap: bool = True,
) -> Listeners:
    """Start every listener and worker. `sockets` (from `bind_listeners`, by listener name) are
    served instead of binding the configured ports here. Without `serve_imap`, IMAP is left to
    processes of its own (`serve --imap-processes`)."""
    settings = services.settings
    bound = sockets or {}
    limits = connection_limits(settings)
    spooling = data_spooling(settings)
    certificates = await asyncio.to_thread(certificate_holder, settings)
    services.cpu.start()
    context = certificates.context
    # Built (not started) before the web app, whose readiness check asks whether it runs. Both
    # take a while to build (the worker's TLS contexts load the CA roots, the web app inspects
    # every route's signature: ~0.5 s together), so they are built in a thread and before any
    # listener accepts a connection that would wait for them.
    worker = await asyncio.to_thread(outbound_worker, services)
    app = await asyncio.to_thread(
        create_app,
        mail_server=mail_server(settings),
        domains=services.domains,
        mailboxes=services.mailboxes,
        api=api_services(services),
        web=app_services(services),
        tracking=services.tracking,
        unsubscribes=services.unsubscribes,
        acme_challenges=acme_challenges(settings),
        observability=observability(
            services, [("queue_worker", running_check("queue worker", lambda: worker.running))]
        ),
        billing_webhook=polar_webhook(services),
        referrals=affiliate_program(services),
    )
    inbound = InboundMail(
        delivery=services.delivery,
        reports=services.delivery_reports,
        authentication=MessageAuthenticator(services.resolver, settings.hostname),
        clock=services.clock,
        hostname=settings.hostname,
        aggregate_reports=services.reports,
        # In order (issue 15): the mailbox's filters, its vacation responder, its forwarding.
        rules=[
            services.sieve_filter,
            services.vacation_rule,
            services.forwarding_rule,
        ],
        redirector=services.forwarder,
        responder=services.auto_replies,
        returns=services.forwarder,
        spam=services.spam_filter,
        observers=[services.campaign_replies],
    )
    handler = MxHandler(
        mailboxes=services.mailboxes,
        domains=services.domains,
        inbound=inbound,
        max_recipients=settings.max_recipients,
        reports=services.reports,
        forwarder=services.forwarder,
    )
    mx = await _listening(
        "MX",
        settings.bind,
        settings.mx_port,
        start_smtp_listener(
            "MX",
            handler,
            host=settings.bind,
            port=settings.mx_port,
            hostname=settings.hostname,
            limits=limits(),
            spooling=spooling,
            data_size_limit=settings.max_message_size,
            tls_context=context,
            metrics=services.metrics,
            sock=bound.get("MX"),
        ),
    )
    started = [mx]
    imap_listeners: list[ImapListener] = []
    managesieve: ManageSieveListener | None = None
    web_listeners: list[HttpListener] = []
    try:
        submission_handler = SubmissionHandler(
            logins=services.logins, sending=services.sending, max_recipients=settings.max_recipients
        )
        for implicit_tls in (False, True):
            # RFC 6409 port 587: STARTTLS before anything else; RFC 8314 port 465: implicit TLS.
            name = "submissions" if implicit_tls else "submission"
            port = settings.submissions_port if implicit_tls else settings.submission_port
            started.append(
                await _listening(
                    name,
                    settings.bind,
                    port,
                    start_smtp_listener(
                        name,
                        submission_handler,
                        host=settings.bind,
                        port=port,
                        hostname=settings.hostname,
                        limits=limits(),
                        spooling=spooling,
                        data_size_limit=settings.max_message_size,
                        tls_context=context,
                        implicit_tls=implicit_tls,
                        sock=bound.get(name),
                        require_starttls=not implicit_tls,
                        auth_required=True,
                        metrics=services.metrics,
                    ),
                )
            )
        if serve_imap:
            imap_listeners = await start_imap_listeners(
                services, context, limits, spooling, sockets=bound
            )
        managesieve = await _listening(
            "ManageSieve",
            settings.bind,
            settings.managesieve_port,
            start_managesieve_listener(
                scripts=services.sieve,
                logins=services.logins,
                host=settings.bind,
                port=settings.managesieve_port,
                tls_context=context,
                limits=limits(),
                sock=bound.get("ManageSieve"),
            ),
        )
        http = await _listening(
            "HTTP",
            settings.http_bind,
            settings.http_port,
            start_http_listener(
                app,
                host=settings.http_bind,
                port=settings.http_port,
                limits=limits(),
                header_timeout=settings.http_header_timeout.total_seconds(),
                reuse_port=reuse_http_port,
                sock=bound.get("HTTP"),
            ),
        )
        web_listeners.append(http)
        web_listeners += await start_https_listeners(
            settings, app, certificates, limits, sockets=bound
        )
    except BaseException:
        await asyncio.gather(
            *(listener.close() for listener in started),
            *(imap.close() for imap in imap_listeners),
            *([managesieve.close()] if managesieve is not None else []),
            *(web.close() for web in web_listeners),
        )
        raise
    worker.start()
    hooks = webhook_worker(services)
    hooks.start()
    if services.bus is not None:
        # This process runs the timers below: it may lead them (see Services.is_leader).
        services.bus.stand_for_leader()
    rechecks = DomainRechecker(
        services.domains,
        interval=settings.domain_recheck_interval.total_seconds(),
        leader=services.is_leader,
    )
    rechecks.start()
    maintenance = Maintenance(
        [
            (
                "expunge tombstones pruned",
                partial(services.mailstore.prune_tombstones, settings.tombstones_kept),
            ),
            *services.retention.tasks(),
            *(
                [("affiliate statements closed", services.affiliates.close_statements)]
                if services.polar is not None
                else []
            ),
        ],
        interval=settings.maintenance_interval.total_seconds(),
        leader=services.is_leader,
    )
    maintenance.start()
    campaigns = CampaignScheduler(
        services.campaign_engine,
        interval=settings.campaign_interval.total_seconds(),
        leader=services.is_leader,
    )
    campaigns.start()
    loop_lag = LoopLagMonitor(settings.loop_lag_warning.total_seconds())
    loop_lag.start()
    imap_node = NodeRenewal(services.mailstore)
    imap_node.start()
    text_index = services.delivery.texts
    text_index.start()
    certificate_files = None
    if settings.tls_cert is not None:
        certificate_files = CertificateFileWatcher(
            certificates, interval=settings.tls_reload_interval.total_seconds()
        )
        certificate_files.start()
    acme = acme_renewer(services, certificates)
    if acme is not None:
        acme.start()
    return Listeners(
        mx=mx,
        submission=started[1],
        submissions=started[2],
        http=http,
        outbound=worker,
        imap=imap_listeners[0] if imap_listeners else None,
        imaps=imap_listeners[1] if imap_listeners else None,
        webhooks=hooks,
        domain_rechecks=rechecks,
        maintenance=maintenance,
        campaigns=campaigns,
        loop_lag=loop_lag,
        imap_node=imap_node,
        text_index=text_index,
        cpu=services.cpu,
        managesieve=managesieve,
        certificates=certificates,
        certificate_files=certificate_files,
        acme=acme,
        https=_named(web_listeners, "HTTPS"),
        http_redirect=_named(web_listeners, "HTTP redirect"),
    )


async def start_imap_listeners(
    services: Services,
    context: ssl.SSLContext,
    limits: Callable[[], ConnectionLimits],
    spooling: DataSpooling,
    *,
    sockets: Mapping[str, socket.socket],
) -> list[ImapListener]:
    """IMAP (STARTTLS) and IMAPS, on `sockets` where bound already."""
    settings = services.settings
    listeners: list[ImapListener] = []
    # One ration for both ports: an address is one client whichever port it uses.
    ration = ProcessorRation(
        share=settings.imap_cpu_share, burst=settings.imap_cpu_burst.total_seconds()
    )
    try:
        for implicit_tls in (False, True):
            # RFC 8314: 993 is TLS from the first byte; 143 offers STARTTLS (RFC 9051 §6.2.1).
            port = settings.imaps_port if implicit_tls else settings.imap_port
            name = "IMAPS" if implicit_tls else "IMAP"
            listeners.append(
                await _listening(
                    name,
                    settings.bind,
                    port,
                    start_imap_listener(
                        store=services.mailstore,
                        logins=services.logins,
                        host=settings.bind,
                        port=port,
                        hostname=settings.hostname,
                        tls_context=context,
                        implicit_tls=implicit_tls,
                        max_message_size=settings.max_message_size,
                        limits=limits(),
                        idle_timeout=settings.imap_idle_timeout.total_seconds(),
                        poll_interval=settings.imap_poll_interval.total_seconds(),
                        metrics=services.metrics,
                        sock=sockets.get(name),
                        cpu=services.cpu,
                        # Large APPEND literals wait where SMTP DATA does, under one budget.
                        spooling=spooling,
                        ration=ration,
                    ),
                )
            )
    except BaseException:
        await asyncio.gather(*(listener.close() for listener in listeners))
        raise
    return listeners


def _named(listeners: list[HttpListener], name: str) -> HttpListener | None:
    return next((listener for listener in listeners if listener.name == name), None)


async def start_https_listeners(
    settings: Settings,
    app: Litestar,
    certificates: CertificateHolder,
    limits: Callable[[], ConnectionLimits],
    *,
    sockets: Mapping[str, socket.socket],
) -> list[HttpListener]:
    """The HTTPS listener (MAILMARK_HTTPS_PORT), serving `app` with the holder's HTTPS context,
    then the plain-HTTP redirect listener in front of it (MAILMARK_HTTP_REDIRECT_PORT), each when
    configured."""
    if settings.https_port is None:
        return []
    header_timeout = settings.http_header_timeout.total_seconds()
    https = await _listening(
        "HTTPS",
        settings.bind,
        settings.https_port,
        start_http_listener(
            app,
            host=settings.bind,
            port=settings.https_port,
            limits=limits(),
            header_timeout=header_timeout,
            sock=sockets.get("HTTPS"),
            tls=certificates.https_context,
            name="HTTPS",
        ),
    )
    if settings.http_redirect_port is None:
        return [https]
    redirect = HttpsRedirect(
        challenges=acme_challenges(settings),
        public_host=urlsplit(settings.public_url).hostname or settings.hostname,
        https_port=https.port,
        served=certificates.covers,
    )
    try:
        return [
            https,
            await _listening(
                "HTTP redirect",
                settings.bind,
                settings.http_redirect_port,
                start_http_listener(
                    redirect,
                    host=settings.bind,
                    port=settings.http_redirect_port,
                    limits=limits(),
                    header_timeout=header_timeout,
                    sock=sockets.get("HTTP redirect"),
                    name="HTTP redirect",
                ),
            ),
        ]
    except BaseException:
        await https.close()
        raise


# The setting that moves each listener, for the message when it cannot listen.
_PORT_SETTINGS = {
    "MX": "MAILMARK_MX_PORT",
    "submission": "MAILMARK_SUBMISSION_PORT",
    "submissions": "MAILMARK_SUBMISSIONS_PORT",
    "IMAP": "MAILMARK_IMAP_PORT",
    "IMAPS": "MAILMARK_IMAPS_PORT",
    "HTTP": "MAILMARK_HTTP_PORT",
    "HTTPS": "MAILMARK_HTTPS_PORT",
    "HTTP redirect": "MAILMARK_HTTP_REDIRECT_PORT",
    "ManageSieve": "MAILMARK_MANAGESIEVE_PORT",
}


async def _listening(name: str, host: str, port: int, starting: Awaitable[T]) -> T:
    """Await a listener's start; a port in use, or one this user may not bind, ends in one line."""
    try:
        return await starting
    except OSError as error:
        raise _cannot_listen(name, host, port, error) from None


def _cannot_listen(name: str, host: str, port: int, error: OSError) -> StartupError:
    # asyncio words the errno's text into a longer sentence that repeats the address.
    reason = os.strerror(error.errno) if error.errno and error.errno > 0 else str(error)
    return StartupError(
        f"cannot listen for {name} on {host}:{port}: {reason} "
        f"(set {_PORT_SETTINGS[name]} or MAILMARK_BIND)"
    )


def bind_listeners(
    settings: Settings, *, reuse_http_port: bool = False, reuse_imap_ports: bool = False
) -> dict[str, socket.socket]:
    """Bind every port `serve` listens on, by listener name, before anything else happens: a
    server started as root can then drop to MAILMARK_RUN_AS_USER with its ports in hand.
    `reuse_http_port`, `reuse_imap_ports`: other processes may listen there too (SO_REUSEPORT)."""
    ports = {
        "MX": settings.mx_port,
        "submission": settings.submission_port,
        "submissions": settings.submissions_port,
        "IMAP": settings.imap_port,
        "IMAPS": settings.imaps_port,
        "ManageSieve": settings.managesieve_port,
        "HTTP": settings.http_port,
        "HTTPS": settings.https_port,
        "HTTP redirect": settings.http_redirect_port,
    }
    bound: dict[str, socket.socket] = {}
    try:
        for name, port in ports.items():
            if port is None:
                continue
            host = settings.http_bind if name == "HTTP" else settings.bind
            shared = (reuse_http_port and name == "HTTP") or (
                reuse_imap_ports and name in ("IMAP", "IMAPS")
            )
            bound[name] = _bind(name, host, port, reuse_port=shared)
    except BaseException:
        _close_all(bound)
        raise
    return bound


def _bind(name: str, host: str, port: int, *, reuse_port: bool) -> socket.socket:
    try:
        return listening_socket(host, port, reuse_port=reuse_port)
    except OSError as error:
        raise _cannot_listen(name, host, port, error) from None


def _close_all(sockets: Mapping[str, socket.socket]) -> None:
    for sock in sockets.values():
        sock.close()


def observability(services: Services, process_checks: list[tuple[str, Check]]) -> Observability:
    """/healthz, /readyz and /metrics: the database and blob store checks every process has,
    then `process_checks` (this process's workers)."""
    token = services.settings.metrics_token
    return Observability(
        metrics=services.metrics,
        readiness=Readiness(
            [
                ("database", partial(ping, services.engine)),
                ("blob_store", partial(check_blob_store, services.blobs)),
                *process_checks,
            ]
        ),
        queue_depth=services.queue_admin.depth,
        metrics_token=token.get_secret_value() if token is not None else None,
    )


def api_services(services: Services) -> ApiServices:
    return ApiServices(
        api_keys=services.api_keys,
        campaigns=services.campaigns,
        campaign_service=services.campaign_service,
        sender_groups=services.sender_groups,
        contacts=services.contacts,
        emails=services.emails,
        idempotency=services.idempotency,
        webhooks=services.webhooks,
        aliases=services.aliases,
    )


def app_services(services: Services) -> AppServices:
    return AppServices(
        identity=services.identity,
        team=services.team,
        accounts=services.accounts,
        api_keys=services.api_keys,
        webhooks=services.webhooks,
        public_url=services.settings.public_url,
        oidc=services.oidc,
        webmail=services.webmail,
        images=services.images,
        compose=services.compose,
        reports=services.reports,
        relays=services.relays,
        forwarding=services.forwarding,
        aliases=services.aliases,
        vacation=services.vacation,
        sieve=services.sieve,
        billing=services.billing,
        affiliates=affiliate_program(services),
        contacts=services.contacts,
        campaigns=services.campaign_service,
    )


def setup_url(
    settings: Settings, token: str, *, http_port: int | None = None, https_port: int | None = None
) -> str:
    """The first-run page for a setup token: on MAILMARK_PUBLIC_URL when it is set, else on the
    address the web app binds (the host name when it binds every address), over HTTPS when its
    listener is on. `http_port`, `https_port`: the ports bound, when the settings say 0."""
    if settings.public_url_configured:
        base = settings.public_url.rstrip("/")
    else:
        host = settings.bind
        if host in ("0.0.0.0", "::", ""):
            host = settings.hostname
        elif ":" in host:
            host = f"[{host}]"
        if settings.https_port is not None:
            port = https_port or settings.https_port
            base = f"https://{host}" + ("" if port == 443 else f":{port}")
        else:
            base = f"http://{host}:{http_port or settings.http_port}"
    return f"{base}/setup?token={token}"


def outbound_worker(
    services: Services,
    *,
    port: int | None = None,
    verified_tls: ssl.SSLContext | None = None,
    policy_tls: ssl.SSLContext | None = None,
    policy_origin: Callable[[str], str] | None = None,
) -> OutboundWorker:
    """The queue's delivery worker (not started). The keyword arguments replace, for tests, the
    remote port, the trusted roots for MTA-STS and where its policies are fetched from."""
    settings = services.settings
    lease = settings.delivery_lease
    # A transaction is cut off before the lease ends, so no other worker can take it meanwhile.
    bound = min(lease / 2, timedelta(minutes=12))
    return OutboundWorker(
        services.queue,
        services.signing_keys,
        services.blobs,
        services.clock,
        routes=MxResolver(services.resolver),
        policies=MtaStsPolicies(
            services.resolver, services.clock, tls=policy_tls, policy_origin=policy_origin
        ),
        dialer=SmtpDialer(
            helo_name=settings.hostname,
            port=port or settings.remote_smtp_port,
            timeouts=SmtpTimeouts(transaction=bound.total_seconds()),
            verified_tls=verified_tls,
            relay_tls=relay_tls_context(
                str(settings.relay_ca_file) if settings.relay_ca_file else None
            ),
        ),
        relays=services.relays,
        owner=f"{settings.hostname}/{os.getpid()}/{secrets.token_hex(4)}",
        lease_for=lease,
        transaction_bound=bound,
        metrics=services.metrics,
    )


def webhook_worker(services: Services, *, verify: ssl.SSLContext | None = None) -> WebhookWorker:
    """The webhook delivery worker (not started); `verify` replaces, for tests, the trusted roots."""
    return WebhookWorker(
        services.webhooks,
        owner=f"{services.settings.hostname}/{os.getpid()}/{secrets.token_hex(4)}",
        lease_for=services.settings.webhook_lease,
        verify=verify if verify is not None else True,
        metrics=services.metrics,
    )


async def serve(
    settings: Settings,
    stop: asyncio.Event,
    *,
    http_workers: int = 1,
    delivery_workers: int = 1,
    imap_processes: int = 0,
) -> None:
    """Run every listener until `stop` is set, then shut down cleanly.

    With `http_workers` > 1, that many minus one more processes serve HTTP only, on the same port
    (SO_REUSEPORT) and against the same database; with `delivery_workers` > 1, that many minus one
    more processes deliver the outbound queue beside this one's worker, so signing and delivery
    use more than one core. With `imap_processes` > 0, IMAP and IMAPS are served by that many
    processes of their own and not by this one (`ImapProcesses`). They all stop with this one.

    Every port is bound first; then, started as root with MAILMARK_RUN_AS_USER set, the process
    becomes that user before it opens the database or writes a file. Under systemd's
    Type=notify, READY=1 is sent once every listener is up."""
    target = run_as(settings)
    switching = must_switch(target)
    if switching and (http_workers > 1 or imap_processes > 0):
        option = "--http-workers above 1" if http_workers > 1 else "--imap-processes"
        raise StartupError(
            f"{option} cannot be combined with MAILMARK_RUN_AS_USER: the extra processes could "
            "not share a port bound by root (run as the user with CAP_NET_BIND_SERVICE instead, "
            "as the systemd unit in deploy/ does)"
        )
    sockets = await asyncio.to_thread(
        bind_listeners,
        settings,
        reuse_http_port=http_workers > 1,
        reuse_imap_ports=imap_processes > 0,
    )
    try:
        if switching:
            assert target is not None
            load_database_driver(settings.database_url)
            switch_user(target)
            await asyncio.to_thread(require_usable_paths, settings, target)
        give_large_blocks_back()
        services = await build_services(settings)
    except BaseException:
        _close_all(sockets)
        raise
    log.info(
        "data directory %s, database %s, settings file %s",
        settings.data_dir.absolute(),
        services.engine.url.render_as_string(hide_password=True),
        settings.config_file.absolute() if settings.config_file else "none",
    )
    if problem := hostname_problem(settings.hostname):
        log.warning(
            "MAILMARK_HOSTNAME %r %s: other mail servers check the name this server says HELO "
            "with, and may refuse or junk its mail; set MAILMARK_HOSTNAME to its public name "
            "(e.g. mx.example.com, with A and PTR records)",
            settings.hostname,
            problem,
        )
    if settings.password_hash_cost == "test":
        log.warning(
            "MAILMARK_PASSWORD_HASH_COST=test: new passwords are hashed at argon2id's lowest cost, "
            "which is cheap to crack; it is meant for test suites, never for real mailboxes"
        )
    try:
        try:
            listeners = await start_listeners(
                services,
                reuse_http_port=http_workers > 1,
                sockets=sockets,
                serve_imap=imap_processes == 0,
            )
        except BaseException:
            _close_all(sockets)
            raise
        workers: list[asyncio.subprocess.Process] = []
        # IMAP's sockets stay bound here without listening: they hold the ports (the ones picked
        # for port 0, too) for the IMAP processes, which listen on them with SO_REUSEPORT.
        imap = ImapProcesses(settings, imap_processes, sockets) if imap_processes else None
        if imap is not None and services.bus is None:
            log.info(
                "IMAP runs in %d processes of its own; on SQLite they see mail delivered here "
                "within MAILMARK_IMAP_POLL_INTERVAL (%s), where PostgreSQL's node bus tells them "
                "at once",
                imap_processes,
                settings.imap_poll_interval,
            )
        try:
            if imap is not None:
                await imap.start()
            if await services.identity.setup_required():
                token = await services.identity.issue_setup_link()
                log.warning(
                    "this installation has no owner yet: open %s to create the owner account "
                    "(single use, valid 24 hours; `mailmark setup-link` prints a new one)",
                    setup_url(
                        settings,
                        token,
                        http_port=listeners.http_port,
                        https_port=listeners.https_port,
                    ),
                )
            for _ in range(http_workers - 1):
                workers.append(
                    await _start_helper_process(
                        settings, "HTTP", "--http-only", "--http-port", str(listeners.http_port)
                    )
                )
            for _ in range(delivery_workers - 1):
                workers.append(await _start_helper_process(settings, "delivery", "--delivery-only"))
            freeze_startup_heap()
            notify("READY=1\nSTATUS=listening")
            await stop.wait()
            log.info("shutting down")
            notify("STOPPING=1")
        finally:
            if imap is not None:
                await imap.stop()
            await _stop_helper_processes(workers)
            await listeners.close()
            if imap is not None:
                _close_all({name: sockets[name] for name in ("IMAP", "IMAPS")})
    finally:
        await services.close()


async def _start_helper_process(
    settings: Settings, role: str, *arguments: str, pass_fds: tuple[int, ...] = ()
) -> asyncio.subprocess.Process:
    """An extra `serve` process in `role` (`--http-only`, `--delivery-only`, `--imap-only`),
    told this process's pid so it stops once this one is gone."""
    # The same settings file and data directory as this process, whichever way they were found.
    where = ["--data-dir", str(settings.data_dir.absolute())]
    if settings.config_file is not None:
        where += ["--config", str(settings.config_file.absolute())]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mailmark",
        *where,
        "serve",
        *arguments,
        "--parent-pid",
        str(os.getpid()),
        pass_fds=pass_fds,
    )
    log.info("%s worker process %d started", role, process.pid)
    return process


async def _stop_helper_processes(workers: list[asyncio.subprocess.Process]) -> None:
    for process in workers:
        if process.returncode is None:
            process.terminate()
    for process in workers:
        try:
            await asyncio.wait_for(process.wait(), GRACEFUL_SHUTDOWN_SECONDS + 5)
        except TimeoutError:
            process.kill()
            await process.wait()


class ImapProcesses:
    """The processes of `serve --imap-processes`: IMAP and IMAPS served apart from MX,
    submission, HTTP and the queue, as Dovecot's imap processes are apart from Postfix's, so
    that a client's work on IMAP (a large FETCH, a pathological LIST) never delays the others,
    and IMAP uses processors of its own. Each listens on the main process's IMAP ports with
    SO_REUSEPORT (the kernel spreads connections over them) and is an IMAP node of its own
    (MailStore.node_id): an expunge in one keeps what sessions in the others still see.

    A process says it listens by writing a byte to a pipe; `start` waits for each, so the main
    process says it is ready only once IMAP answers. One that ends while the server runs is
    started again, after a pause that grows while they keep ending (IMAP_RESTART_PAUSES)."""

    def __init__(self, settings: Settings, count: int, sockets: Mapping[str, socket.socket]):
        self._settings = settings
        self._count = count
        self._ports = [str(sockets[name].getsockname()[1]) for name in ("IMAP", "IMAPS")]
        self._processes: list[asyncio.subprocess.Process] = []
        self._keepers: list[asyncio.Task[None]] = []

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self._processes]

    async def start(self) -> None:
        started = await asyncio.gather(
            *(self._start_one() for _ in range(self._count)), return_exceptions=True
        )
        self._processes = [item for item in started if isinstance(item, asyncio.subprocess.Process)]
        failed = [item for item in started if isinstance(item, BaseException)]
        if failed:
            await _stop_helper_processes(self._processes)
            raise failed[0]
        self._keepers = [asyncio.create_task(self._keep(slot)) for slot in range(self._count)]
        log.info("IMAP and IMAPS are served by processes %s", " ".join(map(str, self.pids)))

    async def stop(self) -> None:
        for keeper in self._keepers:
            keeper.cancel()
        await asyncio.gather(*self._keepers, return_exceptions=True)
        await _stop_helper_processes(self._processes)

    async def _start_one(self) -> asyncio.subprocess.Process:
        """A new IMAP process, once it listens; StartupError when it ends or hangs first."""
        ready, told = os.pipe()
        try:
            process = await _start_helper_process(
                self._settings,
                "IMAP",
                "--imap-only",
                "--imap-port",
                self._ports[0],
                "--imaps-port",
                self._ports[1],
                "--ready-fd",
                str(told),
                pass_fds=(told,),
            )
        except BaseException:
            os.close(ready)
            raise
        finally:
            os.close(told)
        reader = asyncio.StreamReader()
        transport, _ = await asyncio.get_running_loop().connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(ready, "rb", 0)
        )
        try:
            # The byte, or nothing once the process has ended.
            said = await asyncio.wait_for(reader.read(1), IMAP_START_SECONDS)
        except BaseException as error:
            # Hung, or the server stops meanwhile: the process goes with the start.
            if process.returncode is None:
                process.kill()
            if isinstance(error, TimeoutError):
                await process.wait()
                raise StartupError(
                    f"the IMAP process {process.pid} did not listen within "
                    f"{IMAP_START_SECONDS:.0f} s"
                ) from None
            raise
        finally:
            transport.close()
        if not said:
            status = await process.wait()
            raise StartupError(
                f"the IMAP process {process.pid} ended with status {status} before it listened "
                "(its log says why)"
            )
        return process

    async def _keep(self, slot: int) -> None:
        """Start the slot's process again each time it ends, and again after each failed start;
        the pauses grow while processes keep ending, and start over after one ran a while."""
        pauses = iter(IMAP_RESTART_PAUSES)
        while True:
            ended = self._processes[slot]
            started = time.monotonic()
            status = await ended.wait()
            if time.monotonic() - started > IMAP_RESTART_PAUSES[-1]:
                pauses = iter(IMAP_RESTART_PAUSES)
            pause = next(pauses, IMAP_RESTART_PAUSES[-1])
            log.error(
                "IMAP process %d ended with status %d; starting another in %.0f s",
                ended.pid,
                status,
                pause,
            )
            while True:
                await asyncio.sleep(pause)
                try:
                    self._processes[slot] = await self._start_one()
                    break
                except StartupError as error:
                    pause = next(pauses, IMAP_RESTART_PAUSES[-1])
                    log.error("%s; trying again in %.0f s", error, pause)
            log.info("IMAP process %d replaces %d", self._processes[slot].pid, ended.pid)


async def serve_imap(
    settings: Settings, stop: asyncio.Event, *, parent: int, ready_fd: int | None = None
) -> None:
    """One process of `serve --imap-processes`: IMAP and IMAPS only, on the ports the main
    process holds (SO_REUSEPORT), with its own processor pool, IMAP node renewal and loop-lag
    monitor. It hears of other processes' changes through the node bus (PostgreSQL) or by
    polling (MAILMARK_IMAP_POLL_INTERVAL), and presents the certificate the main process's
    files hold (reloaded when they change). Writes a byte to `ready_fd` once it listens; stops
    as `serve_http` does."""
    give_large_blocks_back()
    services = await build_services(settings)
    try:
        certificates = await asyncio.to_thread(certificate_holder, settings)
        services.cpu.start()
        sockets: dict[str, socket.socket] = {}
        try:
            for name, port in (("IMAP", settings.imap_port), ("IMAPS", settings.imaps_port)):
                sockets[name] = _bind(name, settings.bind, port, reuse_port=True)
        except BaseException:
            _close_all(sockets)
            raise
        spooling = data_spooling(settings)
        try:
            listeners = await start_imap_listeners(
                services,
                certificates.context,
                connection_limits(settings),
                spooling,
                sockets=sockets,
            )
        except BaseException:
            _close_all(sockets)
            raise
        acme_pair = (
            acme_pair_paths(settings)
            if settings.acme_directory and settings.tls_cert is None
            else None
        )
        node = NodeRenewal(services.mailstore)
        node.start()
        loop_lag = LoopLagMonitor(settings.loop_lag_warning.total_seconds())
        loop_lag.start()
        certificate_files = CertificateFileWatcher(
            certificates, interval=settings.tls_reload_interval.total_seconds(), pair=acme_pair
        )
        certificate_files.start()
        freeze_startup_heap()
        if ready_fd is not None:
            os.write(ready_fd, b"1")
            os.close(ready_fd)
        try:
            await _until_stopped_or_orphaned(stop, parent)
        finally:
            await asyncio.gather(certificate_files.stop(), loop_lag.stop())
            await asyncio.gather(*(listener.close() for listener in listeners))
            await node.stop()
            await services.cpu.stop()
    finally:
        await services.close()


async def serve_http(settings: Settings, stop: asyncio.Event, *, parent: int) -> None:
    """One extra HTTP process of `serve --http-workers`: the web app only, no mail listeners or
    workers (the main process delivers what it queues, within the queue's idle poll). It stops
    with `stop`, or once `parent`, the process that started it, is no longer its parent: the pid
    is handed in, because one read here could already see the main process's successor (init),
    had it been killed while this one started."""
    give_large_blocks_back()
    services = await build_services(settings)
    try:
        app = create_app(
            mail_server=mail_server(settings),
            domains=services.domains,
            mailboxes=services.mailboxes,
            api=api_services(services),
            web=app_services(services),
            tracking=services.tracking,
            unsubscribes=services.unsubscribes,
            acme_challenges=acme_challenges(settings),
            # The main process runs the queue worker; this one serves HTTP only.
            observability=observability(services, []),
            billing_webhook=polar_webhook(services),
            referrals=affiliate_program(services),
        )
        http = await _listening(
            "HTTP",
            settings.http_bind,
            settings.http_port,
            start_http_listener(
                app,
                host=settings.http_bind,
                port=settings.http_port,
                limits=connection_limits(settings)(),
                header_timeout=settings.http_header_timeout.total_seconds(),
                reuse_port=True,
            ),
        )
        freeze_startup_heap()
        try:
            await _until_stopped_or_orphaned(stop, parent)
        finally:
            await http.close()
    finally:
        await services.close()


async def serve_delivery(settings: Settings, stop: asyncio.Event, *, parent: int) -> None:
    """One extra process of `serve --delivery-workers`: the outbound queue's worker only. It
    leases its own rows beside the main process's worker (the leases name their process), and
    hears of new mail through the node bus (PostgreSQL) or its idle poll. It stops as
    `serve_http` does."""
    give_large_blocks_back()
    services = await build_services(settings)
    try:
        worker = await asyncio.to_thread(outbound_worker, services)
        worker.start()
        freeze_startup_heap()
        try:
            await _until_stopped_or_orphaned(stop, parent)
        finally:
            await worker.stop()
    finally:
        await services.close()


async def _until_stopped_or_orphaned(stop: asyncio.Event, parent: int) -> None:
    while not stop.is_set() and os.getppid() == parent:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), PARENT_CHECK_SECONDS)
