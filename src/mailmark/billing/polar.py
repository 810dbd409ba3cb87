"""Polar (https://polar.sh): checkout, the customer portal and plan changes through its SDK, and
its webhooks verified with the Standard Webhooks scheme and read into core billing events.

The SDK gives the API address for the chosen environment, the `Polar-Version` and bearer headers
and its error types. Answers are read for the few fields used (`url`, `customer_portal_url`)
rather than loaded into the SDK's full models, so a field Polar adds or drops elsewhere in a
checkout does not stop anyone paying.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, TypeGuard

import standardwebhooks

from mailmark.core.affiliates import PaidOrder
from mailmark.core.billing import BillingEvent, SubscriptionSnapshot
from mailmark.core.errors import InvalidInput, PaymentProviderUnavailable

# Polar's events that move the lifecycle; every other verified event is kept and not applied.
SUBSCRIPTION_EVENTS = (
    "subscription.created",
    "subscription.updated",
    "subscription.active",
    "subscription.canceled",
    "subscription.uncanceled",
    "subscription.revoked",
)
ORDER_EVENTS = ("order.created", "order.paid", "order.refunded", "order.updated")
# An order in one of these states was paid (a refund, whole or part, comes after a payment).
PAID_ORDER_STATES = ("paid", "refunded", "partially_refunded")
MAX_WEBHOOK_BYTES = 1024 * 1024


class WebhookSignatureInvalid(Exception):
    """The body is not signed with this installation's webhook secret."""


class PolarProvider:
    """The `PaymentProvider` port over Polar's API."""

    def __init__(
        self,
        access_token: str,
        products: Mapping[str, str],
        *,
        server: Literal["production", "sandbox"] = "production",
        base_url: str | None = None,
    ) -> None:
        # The SDK is imported here, not with the module: its generated models take about a
        # second to import, which every command would pay for an installation that never bills.
        from polar.v2026_04 import PolarAsync

        self._polar = PolarAsync(access_token, environment=server, base_url=base_url or None)
        self._products = dict(products)

    async def close(self) -> None:
        await self._polar.__aexit__()

    async def checkout_url(
        self, plan: str, *, account_ref: str, email: str, success_url: str, return_url: str
    ) -> str:
        body = {
            "products": [self._products[plan]],
            "external_customer_id": account_ref,
            "customer_email": email,
            "success_url": success_url,
            "return_url": return_url,
            "metadata": {"account_id": account_ref, "plan": plan},
        }
        answer = await self._call("POST", "/v1/checkouts/", body)
        return _text_field(answer, "url")

    async def portal_url(self, *, account_ref: str, return_url: str) -> str:
        body = {"external_customer_id": account_ref, "return_url": return_url}
        answer = await self._call("POST", "/v1/customer-sessions/", body)
        return _text_field(answer, "customer_portal_url")

    async def change_plan(self, subscription_id: str, plan: str, *, at_once: bool) -> None:
        # Polar prorates an upgrade on an invoice now; "next_period" keeps the current product
        # (and price) until the period ends.
        body = {
            "product_id": self._products[plan],
            "proration_behavior": "invoice" if at_once else "next_period",
        }
        await self._call("PATCH", f"/v1/subscriptions/{subscription_id}", body)

    async def set_cancel_at_period_end(self, subscription_id: str, cancel: bool) -> None:
        body = {"cancel_at_period_end": cancel}
        await self._call("PATCH", f"/v1/subscriptions/{subscription_id}", body)

    async def _call(self, method: str, url: str, body: dict[str, Any]) -> Any:
        from polar.base import PolarError, parse_response_json

        client = self._polar.checkouts.client
        try:
            response = await client.send_request(client.build_request(method, url, body=body))
            return parse_response_json(response)
        except (PolarError, ValueError) as error:
            raise PaymentProviderUnavailable(
                f"Polar could not {method} {url.split('?')[0]}: {error}"
            ) from error


def _text_field(answer: Any, name: str) -> str:
    value = answer.get(name) if isinstance(answer, dict) else None
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        raise PaymentProviderUnavailable(f"Polar's answer has no {name}.")
    return value


def verify_webhook(secret: str, body: bytes, headers: Mapping[str, str]) -> str:
    """The webhook-id of a body whose Standard Webhooks signature (and timestamp, within five
    minutes) checks out with `secret`; Polar signs with the secret's own bytes, not a base64
    decoding of it. WebhookSignatureInvalid otherwise; the body is not parsed here."""
    wanted = {
        name: headers.get(name, "")
        for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
    }
    try:
        standardwebhooks.Webhook(secret.encode()).verify(body, wanted, json_parse=False)
    except standardwebhooks.WebhookVerificationError as error:
        raise WebhookSignatureInvalid(str(error)) from None
    return wanted["webhook-id"]


def parse_event(event_id: str, raw: bytes, products: Mapping[str, str]) -> BillingEvent:
    """A verified Polar event in core terms; InvalidInput when the body is not one."""
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("The webhook body is not JSON.") from None
    if not isinstance(document, dict) or not isinstance(document.get("type"), str):
        raise InvalidInput("The webhook body has no event type.")
    event_type: str = document["type"][:60]
    data = document.get("data")
    if not isinstance(data, dict):
        raise InvalidInput("The webhook body has no data object.")
    plans = {product: plan for plan, product in products.items()}
    subscription: SubscriptionSnapshot | None = None
    if event_type in SUBSCRIPTION_EVENTS:
        subscription = _snapshot(data, data, plans)
    elif event_type in ("order.paid", "order.created") and data.get("status") == "paid":
        held = data.get("subscription")
        if isinstance(held, dict):
            subscription = _snapshot(held, data, plans)
    order = _paid_order(data) if event_type in ORDER_EVENTS else None
    occurred = _moment(document.get("timestamp")) or (
        subscription.modified_at if subscription else None
    )
    if occurred is None:
        raise InvalidInput("The webhook body has no timestamp.")
    return BillingEvent(
        event_id=event_id[:200],
        event_type=event_type,
        occurred_at=occurred,
        payload=raw.decode("utf-8", errors="replace"),
        subscription=subscription,
        revoked=event_type == "subscription.revoked",
        order=order,
    )


def _paid_order(order: dict[str, Any]) -> PaidOrder | None:
    """A paid order of the event's data, with what was refunded of it; None for an unpaid
    one. The commission's base is the net amount (after discounts, before tax)."""
    if order.get("status") not in PAID_ORDER_STATES and order.get("paid") is not True:
        return None
    order_id = order.get("id")
    net = order.get("net_amount", order.get("total_amount"))
    paid_at = _moment(order.get("created_at"))
    if not isinstance(order_id, str) or not _cents(net) or paid_at is None:
        raise InvalidInput("The order in the webhook has no id, amount or time.")
    refunded = order.get("refunded_amount", 0)
    customer = _object(order.get("customer"))
    external = customer.get("external_id") or _object(order.get("metadata")).get("account_id")
    return PaidOrder(
        order_id=order_id[:100],
        account_ref=None if external is None else str(external)[:40],
        amount_cents=net,
        refunded_cents=refunded if _cents(refunded) else 0,
        occurred_at=paid_at,
    )


def _cents(value: Any) -> TypeGuard[int]:
    """Money in a Polar body: an integer count of cents (never a float)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**12


def _snapshot(
    subscription: dict[str, Any], holder: dict[str, Any], plans: Mapping[str, str]
) -> SubscriptionSnapshot:
    """The subscription object of an event; `holder` (the event's data) names the customer."""
    subscription_id = subscription.get("id")
    stamp = _moment(subscription.get("modified_at")) or _moment(subscription.get("created_at"))
    if not isinstance(subscription_id, str) or stamp is None:
        raise InvalidInput("The subscription in the webhook has no id or no time.")
    customer = _object(holder.get("customer"))
    metadata = _object(subscription.get("metadata"))
    external = customer.get("external_id") or metadata.get("account_id")
    product = subscription.get("product_id")
    return SubscriptionSnapshot(
        subscription_id=subscription_id[:100],
        customer_id=_text(subscription.get("customer_id") or customer.get("id")),
        account_ref=None if external is None else str(external)[:40],
        plan=plans.get(product) if isinstance(product, str) else None,
        status=str(subscription.get("status", ""))[:40],
        current_period_end=_moment(subscription.get("current_period_end")),
        cancel_at_period_end=subscription.get("cancel_at_period_end") is True,
        modified_at=stamp,
    )


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value[:100] if isinstance(value, str) and value else None


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None
