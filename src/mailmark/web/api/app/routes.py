"""The /api router: every route of the web app, behind the session guard, with its services."""

from __future__ import annotations

from dataclasses import dataclass

from litestar import Router
from litestar.di import Provide
from litestar.types import ControllerRouterHandler

from mailmark.core.accounts import AccountService
from mailmark.core.affiliates import AffiliateService
from mailmark.core.aliases import AliasService
from mailmark.core.apikeys import ApiKeyService
from mailmark.core.billing import BillingService
from mailmark.core.campaign_engine import CampaignService
from mailmark.core.contacts import ContactService
from mailmark.core.forwarding import ForwardingService
from mailmark.core.identity import IdentityService
from mailmark.core.oidc import OidcSignIn
from mailmark.core.relays import RelayService
from mailmark.core.reports import ReportService
from mailmark.core.sieve.scripts import SieveScripts
from mailmark.core.team import TeamService
from mailmark.core.vacation import VacationService
from mailmark.core.webhooks import WebhookService
from mailmark.core.webmail import WebmailService
from mailmark.core.webmail_compose import WebmailCompose
from mailmark.web.api.app.account import AccountController
from mailmark.web.api.app.affiliates import AffiliateController, OperatorController
from mailmark.web.api.app.aliases import AliasController
from mailmark.web.api.app.auth import AuthController, MeController, SessionController
from mailmark.web.api.app.billing import BillingController
from mailmark.web.api.app.campaigns import CampaignsController
from mailmark.web.api.app.compose import ComposeController
from mailmark.web.api.app.contacts import ContactController, ContactListController
from mailmark.web.api.app.developer import ApiKeyController, WebhookController
from mailmark.web.api.app.domains import DomainController
from mailmark.web.api.app.filters import FiltersController
from mailmark.web.api.app.forwarding import ForwardingController
from mailmark.web.api.app.mail import MailController
from mailmark.web.api.app.mailboxes import MailboxController
from mailmark.web.api.app.oidc import OidcController
from mailmark.web.api.app.relays import RelayController
from mailmark.web.api.app.reports import ReportController
from mailmark.web.api.app.session import api_guard, current_viewer
from mailmark.web.api.app.team import InvitationController, TeamController
from mailmark.web.api.app.vacation import VacationController
from mailmark.web.image_proxy import ImageProxy


@dataclass(frozen=True)
class AppServices:
    """The core services the /api routes call, and the installation's settings they show."""

    identity: IdentityService
    team: TeamService
    accounts: AccountService
    api_keys: ApiKeyService
    webhooks: WebhookService
    # Where people reach the web app (links in emails and the setup link start with it).
    public_url: str = ""
    # Sign-in through OpenID Connect providers (none configured: the routes answer not_found).
    oidc: OidcSignIn | None = None
    # The webmail's read side and its image proxy (absent: no /api/mail routes).
    webmail: WebmailService | None = None
    images: ImageProxy | None = None
    # The webmail's compose side (none: its routes are not served).
    compose: WebmailCompose | None = None
    # DMARC and TLS reports received for the account's domains.
    reports: ReportService | None = None
    # Each domain's relay host (none: no /api/domains/{name}/relay routes).
    relays: RelayService | None = None
    # Mailboxes' forwarding settings (none: their routes are not served).
    forwarding: ForwardingService | None = None
    # Aliases and catch-all mailboxes of the account's domains.
    aliases: AliasService | None = None
    # Mailboxes' vacation responders (none: their routes are not served).
    vacation: VacationService | None = None
    # Sieve filters of mailboxes (none: their routes are not served).
    sieve: SieveScripts | None = None
    # The plan lifecycle and checkout (none: no /api/billing routes).
    billing: BillingService | None = None
    # The affiliate program (none: no /api/affiliates routes, and sign-ups are not attributed).
    affiliates: AffiliateService | None = None
    # Contacts and lists, the campaigns' audiences (none: no /api/contacts or /api/lists routes).
    contacts: ContactService | None = None
    # Campaigns of the account's domains (none: no /api/campaigns routes).
    campaigns: CampaignService | None = None


def api_router(services: AppServices) -> Router:
    handlers: list[ControllerRouterHandler] = [
        SessionController,
        AuthController,
        MeController,
        TeamController,
        InvitationController,
        AccountController,
        DomainController,
        MailboxController,
        ApiKeyController,
        WebhookController,
        OperatorController,
    ]
    if services.reports is not None:
        handlers.append(ReportController)
    if services.relays is not None:
        handlers.append(RelayController)
    if services.aliases is not None:
        handlers.append(AliasController)
    if services.vacation is not None:
        handlers.append(VacationController)
    if services.oidc is not None:
        handlers.append(OidcController)
    if services.webmail is not None:
        handlers.append(MailController)
    if services.compose is not None:
        handlers.append(ComposeController)
    if services.forwarding is not None:
        handlers.append(ForwardingController)
    if services.sieve is not None:
        handlers.append(FiltersController)
    if services.billing is not None:
        handlers.append(BillingController)
    if services.affiliates is not None:
        handlers.append(AffiliateController)
    if services.contacts is not None:
        handlers.extend([ContactController, ContactListController])
    if services.campaigns is not None:
        handlers.append(CampaignsController)
    # Where the payment provider sends the browser back to (the billing page).
    billing_return_url = f"{services.public_url.rstrip('/')}/dashboard/billing"
    oidc_providers = services.oidc.providers if services.oidc is not None else []
    return Router(
        path="/api",
        route_handlers=handlers,
        guards=[api_guard(services.identity, services.public_url)],
        dependencies={
            "viewer": Provide(current_viewer, sync_to_thread=False),
            "identity": Provide(lambda: services.identity, use_cache=True, sync_to_thread=False),
            "team": Provide(lambda: services.team, use_cache=True, sync_to_thread=False),
            "accounts": Provide(lambda: services.accounts, use_cache=True, sync_to_thread=False),
            "api_keys": Provide(lambda: services.api_keys, use_cache=True, sync_to_thread=False),
            "webhooks": Provide(lambda: services.webhooks, use_cache=True, sync_to_thread=False),
            "oidc": Provide(lambda: services.oidc, use_cache=True, sync_to_thread=False),
            "compose": Provide(lambda: services.compose, use_cache=True, sync_to_thread=False),
            "reports": Provide(lambda: services.reports, use_cache=True, sync_to_thread=False),
            "relays": Provide(lambda: services.relays, use_cache=True, sync_to_thread=False),
            "forwarding": Provide(
                lambda: services.forwarding, use_cache=True, sync_to_thread=False
            ),
            "aliases": Provide(lambda: services.aliases, use_cache=True, sync_to_thread=False),
            "vacation": Provide(lambda: services.vacation, use_cache=True, sync_to_thread=False),
            "sieve": Provide(lambda: services.sieve, use_cache=True, sync_to_thread=False),
            "billing": Provide(lambda: services.billing, use_cache=True, sync_to_thread=False),
            "affiliates": Provide(
                lambda: services.affiliates, use_cache=True, sync_to_thread=False
            ),
            "campaign_service": Provide(
                lambda: services.campaigns, use_cache=True, sync_to_thread=False
            ),
            "billing_return_url": Provide(
                lambda: billing_return_url, use_cache=True, sync_to_thread=False
            ),
            "oidc_providers": Provide(lambda: oidc_providers, use_cache=True, sync_to_thread=False),
            "webmail": Provide(lambda: services.webmail, use_cache=True, sync_to_thread=False),
            "image_proxy": Provide(lambda: services.images, use_cache=True, sync_to_thread=False),
            "contacts": Provide(lambda: services.contacts, use_cache=True, sync_to_thread=False),
        },
    )
