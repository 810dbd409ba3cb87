"""GET/POST /v1/webhooks, DELETE /v1/webhooks/{id}."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
from litestar import Controller, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from mailmark.core.apikeys import ApiPrincipal
from mailmark.core.errors import NotFound
from mailmark.core.model import Webhook, WebhookDeliveryState
from mailmark.core.webhooks import (
    WebhookService,
    WebhookView,
    event_id,
    public_event_type,
)
from mailmark.web.api.v1.docs import samples

EXAMPLE_URL = "https://hooks.example.com/mailmark"
EXAMPLE = {
    "id": "7",
    "url": EXAMPLE_URL,
    "events": ["email.delivered", "email.bounced"],
    "createdAt": "2026-12-03T13:00:00Z",
}
EXAMPLE_DELIVERY = {
    "eventId": "evt_1042",
    "event": "email.delivered",
    "status": "pending",
    "attempts": 2,
    "lastStatusCode": 500,
    "lastError": "HTTP 500",
    "nextAttemptAt": "2026-12-03T13:02:30Z",
    "createdAt": "2026-12-03T13:00:00Z",
    "updatedAt": "2026-12-03T13:00:30Z",
}


class WebhookIn(msgspec.Struct, forbid_unknown_fields=True):
    url: str
    events: list[str] | None = None


class DeliveryOut(msgspec.Struct, rename="camel"):
    event_id: str
    event: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: str | None
    created_at: str
    updated_at: str


class WebhookOut(msgspec.Struct, rename="camel"):
    id: str
    url: str
    events: list[str]
    created_at: str
    deliveries: list[DeliveryOut] | msgspec.UnsetType = msgspec.UNSET
    secret: str | msgspec.UnsetType = msgspec.UNSET


class Deleted(msgspec.Struct):
    deleted: bool = True


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def delivery_out(state: WebhookDeliveryState) -> DeliveryOut:
    return DeliveryOut(
        event_id=event_id(state.event_id),
        event=public_event_type(state.event_type) or state.event_type,
        status=state.status,
        attempts=state.attempts,
        last_status_code=state.last_code,
        last_error=state.last_error,
        next_attempt_at=_iso(state.next_attempt_at) if state.next_attempt_at else None,
        created_at=_iso(state.created_at),
        updated_at=_iso(state.updated_at),
    )


def webhook_out(webhook: Webhook) -> WebhookOut:
    return WebhookOut(str(webhook.id), webhook.url, list(webhook.events), _iso(webhook.created_at))


def view_out(view: WebhookView) -> WebhookOut:
    out = webhook_out(view.webhook)
    out.deliveries = [delivery_out(state) for state in view.recent]
    return out


def webhook_id(text: str) -> int:
    """The id in the path; anything that is not one of ours is simply not found."""
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise NotFound("Webhook not found.")
    return int(text)


class WebhookController(Controller):
    path = "/webhooks"
    tags = ("Webhooks",)

    @get(
        operation_id="listWebhooks",
        summary="List webhooks with their recent deliveries",
        operation_class=samples(
            "GET",
            "/v1/webhooks",
            response=[{**EXAMPLE, "deliveries": [EXAMPLE_DELIVERY]}],
            sdk="await client.listWebhooks();",
        ),
    )
    async def list_webhooks(
        self, principal: NamedDependency[ApiPrincipal], webhooks: NamedDependency[WebhookService]
    ) -> list[WebhookOut]:
        """Every webhook of the API key's domain, oldest first, each with its newest deliveries
        (status `pending`, `delivered` or `failed` after the last retry, attempts, last HTTP
        status or error, next attempt)."""
        return [view_out(view) for view in await webhooks.list_for_domain(principal.domain_id)]

    @post(
        operation_id="createWebhook",
        summary="Register a webhook",
        operation_class=samples(
            "POST",
            "/v1/webhooks",
            body={"url": EXAMPLE_URL, "events": ["email.delivered", "email.bounced"]},
            response={**EXAMPLE, "secret": "whsec_..."},
            status=201,
            sdk=(
                f"await client.createWebhook({{ url: '{EXAMPLE_URL}',"
                " events: ['email.delivered', 'email.bounced'] });"
            ),
        ),
    )
    async def create_webhook(
        self,
        principal: NamedDependency[ApiPrincipal],
        webhooks: NamedDependency[WebhookService],
        data: JSONBody[WebhookIn],
    ) -> WebhookOut:
        """Register an https URL for the domain's events: `events` lists some of email.received,
        email.delivered, email.deferred, email.bounced, email.complained, email.opened,
        email.clicked, email.canceled and campaign.replied (all of them when left out). The URL
        must resolve to public addresses only
        (422 naming `url` otherwise). The answer carries the signing `secret`, shown this once:
        each request has `Mailmark-Signature: t=<unix>,v1=<hex>`, the HMAC-SHA256 of
        `<unix>.<body>` with it."""
        created = await webhooks.create(
            principal.account_id, principal.domain_id, data.url, data.events
        )
        out = webhook_out(created.webhook)
        out.secret = created.secret
        return out

    @delete(
        "/{webhook:str}",
        operation_id="deleteWebhook",
        summary="Delete a webhook",
        status_code=200,
        operation_class=samples(
            "DELETE",
            "/v1/webhooks/7",
            response={"deleted": True},
            sdk="await client.deleteWebhook('7');",
        ),
    )
    async def delete_webhook(
        self,
        principal: NamedDependency[ApiPrincipal],
        webhooks: NamedDependency[WebhookService],
        webhook: FromPath[str],
    ) -> Deleted:
        """Delete the webhook; deliveries still pending for it are dropped."""
        await webhooks.delete(principal.domain_id, webhook_id(webhook))
        return Deleted()
