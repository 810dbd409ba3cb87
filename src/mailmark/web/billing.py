"""The payment provider's webhook: `POST /billing/polar/webhook`. No session or key: the
Standard Webhooks signature made with the shared secret is the authentication."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from litestar import MediaType, Request, Response, post
from litestar.handlers import HTTPRouteHandler

from mailmark.billing.polar import (
    MAX_WEBHOOK_BYTES,
    WebhookSignatureInvalid,
    parse_event,
    verify_webhook,
)
from mailmark.core.billing import BillingService
from mailmark.web.errors import error_body


@dataclass(frozen=True)
class PolarWebhook:
    billing: BillingService
    secret: str
    products: Mapping[str, str]  # plan → Polar product id


def polar_webhook_handler(hook: PolarWebhook) -> HTTPRouteHandler:
    @post(
        "/billing/polar/webhook",
        operation_id="receivePolarWebhook",
        media_type=MediaType.JSON,
        status_code=200,
        request_max_body_size=MAX_WEBHOOK_BYTES,
        include_in_schema=False,
    )
    async def polar_webhook(request: Request[Any, Any, Any]) -> Response[dict[str, Any]]:
        """Verify, keep and apply one Polar event. A forged or stale-dated signature is 401 (Polar
        then retries, and gives up); an event this server cannot read is 400; one it has seen
        before is answered 200 again and changes nothing."""
        body = await request.body()
        try:
            event_id = verify_webhook(hook.secret, body, request.headers)
        except WebhookSignatureInvalid as refused:
            return Response(
                error_body("invalid_signature", f"The webhook signature is not valid: {refused}."),
                status_code=401,
            )
        outcome = await hook.billing.handle_event(parse_event(event_id, body, hook.products))
        return Response({"received": True, "outcome": outcome})

    return polar_webhook
