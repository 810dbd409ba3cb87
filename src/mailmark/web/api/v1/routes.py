"""The /v1 router: every API route, behind the API-key guard, with the services it needs."""

from __future__ import annotations

from dataclasses import dataclass

from litestar import Router
from litestar.di import Provide

from mailmark.core.aliases import AliasService
from mailmark.core.apikeys import ApiKeyService
from mailmark.core.campaign_engine import CampaignService
from mailmark.core.campaigns import CampaignExpansion
from mailmark.core.contacts import ContactService
from mailmark.core.emails import EmailService
from mailmark.core.idempotency import IdempotencyService
from mailmark.core.sender_groups import SenderGroupService
from mailmark.core.webhooks import WebhookService
from mailmark.web.api.v1.aliases import AliasController
from mailmark.web.api.v1.auth import api_key_guard, current_principal
from mailmark.web.api.v1.campaigns import CampaignController
from mailmark.web.api.v1.contacts import ContactController
from mailmark.web.api.v1.emails import EmailController
from mailmark.web.api.v1.lists import ListController
from mailmark.web.api.v1.mailboxes import MailboxController
from mailmark.web.api.v1.send import send
from mailmark.web.api.v1.sender_groups import SenderGroupController
from mailmark.web.api.v1.suppressions import SuppressionController
from mailmark.web.api.v1.webhooks import WebhookController

BEARER_SCHEME = "bearerAuth"


@dataclass(frozen=True)
class ApiServices:
    """The core services the /v1 routes call."""

    api_keys: ApiKeyService
    campaigns: CampaignExpansion
    campaign_service: CampaignService
    sender_groups: SenderGroupService
    contacts: ContactService
    emails: EmailService
    idempotency: IdempotencyService
    webhooks: WebhookService
    aliases: AliasService | None = None


def v1_router(api: ApiServices) -> Router:
    return Router(
        path="/v1",
        route_handlers=[
            MailboxController,
            *([AliasController] if api.aliases is not None else []),
            SenderGroupController,
            send,
            EmailController,
            SuppressionController,
            WebhookController,
            ContactController,
            ListController,
            CampaignController,
        ],
        guards=[api_key_guard(api.api_keys)],
        dependencies={
            "principal": Provide(current_principal, sync_to_thread=False),
            "campaigns": Provide(lambda: api.campaigns, use_cache=True, sync_to_thread=False),
            "campaign_service": Provide(
                lambda: api.campaign_service, use_cache=True, sync_to_thread=False
            ),
            "sender_groups": Provide(
                lambda: api.sender_groups, use_cache=True, sync_to_thread=False
            ),
            "contacts": Provide(lambda: api.contacts, use_cache=True, sync_to_thread=False),
            "emails": Provide(lambda: api.emails, use_cache=True, sync_to_thread=False),
            "idempotency": Provide(lambda: api.idempotency, use_cache=True, sync_to_thread=False),
            "webhooks": Provide(lambda: api.webhooks, use_cache=True, sync_to_thread=False),
            "aliases": Provide(lambda: api.aliases, use_cache=True, sync_to_thread=False),
        },
        security=[{BEARER_SCHEME: []}],
    )
