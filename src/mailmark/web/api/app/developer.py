"""/api/domains/{name}/api-keys and /api/domains/{name}/webhooks: a domain's API keys (shown
once, listed, revoked) and webhooks (created, tested, their attempts, secret rotation). Owners
and admins only."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, delete, get, post
from litestar.params import FromPath, JSONBody

from mailmark.core.access import Viewer
from mailmark.core.apikeys import MAX_NAME, ApiKeyService
from mailmark.core.errors import NotFound
from mailmark.core.model import ApiKey, Webhook
from mailmark.core.webhooks import (
    MAX_URL_LENGTH,
    WEBHOOK_EVENTS,
    WebhookService,
    public_event_type,
)
from mailmark.web.api.v1.auth import Injected


class ApiKeyOut(msgspec.Struct, rename="camel"):
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    # Only in the answer that creates the key: it is stored as a hash and never shown again.
    key: str | msgspec.UnsetType = msgspec.UNSET


class ApiKeyIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(max_length=MAX_NAME)] = ""


class WebhookOut(msgspec.Struct, rename="camel"):
    id: int
    url: str
    events: list[str]
    created_at: datetime
    # Only when created: the signing secret, shown this once (rotate for a new one).
    secret: str | msgspec.UnsetType = msgspec.UNSET


class WebhookIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    url: Annotated[str, msgspec.Meta(max_length=MAX_URL_LENGTH)]
    events: Annotated[list[str], msgspec.Meta(max_length=len(WEBHOOK_EVENTS))] | None = None


class TestDeliveryOut(msgspec.Struct, rename="camel"):
    ok: bool
    status_code: int | None
    error: str | None
    duration_ms: int


class AttemptOut(msgspec.Struct, rename="camel"):
    id: int
    event: str
    status: str
    status_code: int | None
    attempts: int
    created_at: datetime
    last_attempt_at: datetime
    error: str | None


class SecretOut(msgspec.Struct, rename="camel"):
    secret: str


def key_out(key: ApiKey) -> ApiKeyOut:
    assert key.id is not None
    return ApiKeyOut(key.id, key.name, key.prefix, key.created_at, key.last_used_at, key.revoked_at)


def webhook_out(webhook: Webhook) -> WebhookOut:
    assert webhook.id is not None
    return WebhookOut(webhook.id, webhook.url, list(webhook.events), webhook.created_at)


def path_id(text: str, what: str) -> int:
    """An id from the path; anything that is not one of ours is simply not found."""
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise NotFound(f"{what} not found.")
    return int(text)


class ApiKeyController(Controller):
    path = "/domains/{name:str}/api-keys"
    tags = ("Developer",)

    @get(operation_id="appListApiKeys", summary="List a domain's API keys")
    async def list_keys(
        self, viewer: Injected[Viewer], api_keys: Injected[ApiKeyService], name: FromPath[str]
    ) -> list[ApiKeyOut]:
        """Every key of the domain, revoked ones too, oldest first; never the keys themselves."""
        return [key_out(key) for key in await api_keys.list_for(viewer, name)]

    @post(operation_id="appCreateApiKey", summary="Create an API key")
    async def create_key(
        self,
        viewer: Injected[Viewer],
        api_keys: Injected[ApiKeyService],
        name: FromPath[str],
        data: JSONBody[ApiKeyIn],
    ) -> ApiKeyOut:
        """A new `dm_live_…` key for the domain's /v1 API, in `key` this once."""
        created = await api_keys.create_for(viewer, name, data.name)
        out = key_out(created.key)
        out.key = created.secret
        return out

    @delete("/{key_id:str}", operation_id="appRevokeApiKey", summary="Revoke an API key")
    async def revoke_key(
        self,
        viewer: Injected[Viewer],
        api_keys: Injected[ApiKeyService],
        name: FromPath[str],
        key_id: FromPath[str],
    ) -> None:
        await api_keys.revoke_for(viewer, name, path_id(key_id, "API key"))


class WebhookController(Controller):
    path = "/domains/{name:str}/webhooks"
    tags = ("Developer",)

    @get(operation_id="appListWebhooks", summary="List a domain's webhooks")
    async def list_webhooks(
        self, viewer: Injected[Viewer], webhooks: Injected[WebhookService], name: FromPath[str]
    ) -> list[WebhookOut]:
        return [webhook_out(view.webhook) for view in await webhooks.list_for(viewer, name)]

    @post(operation_id="appCreateWebhook", summary="Create a webhook")
    async def create_webhook(
        self,
        viewer: Injected[Viewer],
        webhooks: Injected[WebhookService],
        name: FromPath[str],
        data: JSONBody[WebhookIn],
    ) -> WebhookOut:
        """Post the domain's events (all of them when `events` is left out) to an https URL that
        resolves to public addresses; the signing secret is in `secret` this once."""
        created = await webhooks.create_for(viewer, name, data.url, data.events)
        out = webhook_out(created.webhook)
        out.secret = created.secret
        return out

    @delete("/{webhook_id:str}", operation_id="appDeleteWebhook", summary="Delete a webhook")
    async def delete_webhook(
        self,
        viewer: Injected[Viewer],
        webhooks: Injected[WebhookService],
        name: FromPath[str],
        webhook_id: FromPath[str],
    ) -> None:
        await webhooks.delete_for(viewer, name, path_id(webhook_id, "Webhook"))

    @post(
        "/{webhook_id:str}/test",
        operation_id="appTestWebhook",
        summary="Send a test event to a webhook",
        status_code=200,
    )
    async def test_webhook(
        self,
        viewer: Injected[Viewer],
        webhooks: Injected[WebhookService],
        name: FromPath[str],
        webhook_id: FromPath[str],
    ) -> TestDeliveryOut:
        """Post a signed `webhook.test` event now, as real deliveries are posted; the answer is
        the receiver's HTTP status (2xx: ok) or why there was none."""
        result = await webhooks.send_test(viewer, name, path_id(webhook_id, "Webhook"))
        return TestDeliveryOut(
            result.ok, result.status_code, result.error, round(result.seconds * 1000)
        )

    @get(
        "/{webhook_id:str}/attempts",
        operation_id="appWebhookAttempts",
        summary="A webhook's recent deliveries",
    )
    async def attempts(
        self,
        viewer: Injected[Viewer],
        webhooks: Injected[WebhookService],
        name: FromPath[str],
        webhook_id: FromPath[str],
    ) -> list[AttemptOut]:
        """The newest deliveries, each as its last attempt left it: status `pending` (a retry
        is planned), `delivered` or `failed` (given up), the last HTTP status or error."""
        states = await webhooks.attempts(viewer, name, path_id(webhook_id, "Webhook"))
        return [
            AttemptOut(
                id=state.id,
                event=public_event_type(state.event_type) or state.event_type,
                status=state.status,
                status_code=state.last_code,
                attempts=state.attempts,
                created_at=state.created_at,
                last_attempt_at=state.updated_at,
                error=state.last_error,
            )
            for state in states
        ]

    @post(
        "/{webhook_id:str}/rotate-secret",
        operation_id="appRotateWebhookSecret",
        summary="Replace a webhook's signing secret",
        status_code=200,
    )
    async def rotate_secret(
        self,
        viewer: Injected[Viewer],
        webhooks: Injected[WebhookService],
        name: FromPath[str],
        webhook_id: FromPath[str],
    ) -> SecretOut:
        """Requests are signed with the new secret from now on; it is shown this once."""
        return SecretOut(await webhooks.rotate_secret(viewer, name, path_id(webhook_id, "Webhook")))
