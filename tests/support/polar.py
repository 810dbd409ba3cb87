"""Polar as the billing tests meet it: its documented webhook bodies, signed with the real Standard
Webhooks library and posted to the running server, and the answers of its API's loopback
stand-in; a trial customer with a domain, a mailbox, an API key and HTTP clients."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import standardwebhooks

from mailmark.bootstrap import Listeners, Services
from mailmark.core.access import Viewer
from tests.support.webhook_receiver import Request
from tests.web.api.conftest import client

SECRET = "polar_whs_0123456789abcdefghijklmnop"


PRODUCTS = {"starter": "prod_starter", "pro": "prod_pro", "business": "prod_business"}


START = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)


def polar_answer(request: Request) -> object:
    """What Polar answers, reduced to the fields read (and an id, as Polar always sends)."""
    if request.target.startswith("/v1/checkouts"):
        return {"id": "chk_1", "url": "https://sandbox.polar.sh/checkout/polar_c_1"}
    if request.target.startswith("/v1/customer-sessions"):
        return {"id": "cs_1", "customer_portal_url": "https://sandbox.polar.sh/portal/cs_1"}
    return {"id": request.target.rsplit("/", 1)[-1]}


async def post_webhook(
    web: httpx.AsyncClient, event_id: str, document: dict[str, Any], secret: str = SECRET
) -> httpx.Response:
    """POST a Polar event to the server as Polar does, signed with `secret`."""
    body = json.dumps(document).encode()
    # Standard Webhooks bounds the signature's age by the real time, not the test's clock.
    signed_at = datetime.now(UTC)
    signature = standardwebhooks.Webhook(secret.encode()).sign(event_id, signed_at, body)
    return await web.post(
        "/billing/polar/webhook",
        content=body,
        headers={
            "content-type": "application/json",
            "webhook-id": event_id,
            "webhook-timestamp": str(int(signed_at.timestamp())),
            "webhook-signature": signature,
        },
    )


class Customer:
    """A trial account with one domain, a mailbox and an API key, and HTTP clients."""

    def __init__(
        self, services: Services, listeners: Listeners, viewer: Viewer, api: httpx.AsyncClient
    ) -> None:
        self.services = services
        self.listeners = listeners
        self.viewer = viewer
        self.api = api
        self.web = client(listeners.http_port, None)
        self.sent = 0

    @property
    def account_id(self) -> int:
        return self.viewer.account_id

    async def send(self) -> httpx.Response:
        self.sent += 1
        to = f"reader{self.sent}@example.com"
        return await self.api.post(
            "/v1/send", json={"from": "hi@trial.test", "to": to, "subject": "Hi", "text": "Hi"}
        )

    async def webhook(
        self, event_id: str, document: dict[str, Any], secret: str = SECRET
    ) -> httpx.Response:
        return await post_webhook(self.web, event_id, document, secret)

    async def state(self) -> tuple[str, str]:
        overview = await self.services.accounts.overview(self.viewer)
        return overview.status, overview.plan.name

    async def usage(self, month: str) -> int:
        async with self.services.uow(read_only=True) as uow:
            return await uow.usage.sent_in(self.account_id, month)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def subscription_data(
    account_id: int,
    *,
    plan: str = "pro",
    status: str = "active",
    modified_at: datetime,
    period_end: datetime,
    cancel: bool = False,
    subscription_id: str = "sub_1",
) -> dict[str, Any]:
    """A subscription object as Polar's webhooks carry it (the fields we read, and their
    neighbours)."""
    return {
        "id": subscription_id,
        "created_at": iso(START),
        "modified_at": iso(modified_at),
        "amount": {"starter": 1000, "pro": 5000, "business": 10000}[plan],
        "currency": "usd",
        "recurring_interval": "month",
        "status": status,
        "current_period_start": iso(period_end - timedelta(days=31)),
        "current_period_end": iso(period_end),
        "cancel_at_period_end": cancel,
        "canceled_at": iso(modified_at) if cancel else None,
        "started_at": iso(START),
        "ends_at": iso(period_end) if cancel else None,
        "ended_at": None,
        "customer_id": "cus_1",
        "product_id": PRODUCTS[plan],
        "discount_id": None,
        "checkout_id": "chk_1",
        "metadata": {},
        "customer": {"id": "cus_1", "external_id": str(account_id), "email": "owner@trial.test"},
        "product": {"id": PRODUCTS[plan], "name": plan.title(), "is_recurring": True},
    }


def subscription_event(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"type": f"subscription.{kind}", "timestamp": data["modified_at"], "data": data}


def order_paid(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "order.paid",
        "timestamp": data["modified_at"],
        "data": {
            "id": "ord_1",
            "created_at": data["modified_at"],
            "modified_at": data["modified_at"],
            "status": "paid",
            "paid": True,
            "billing_reason": "subscription_create",
            "total_amount": data["amount"],
            "currency": "usd",
            "customer_id": "cus_1",
            "product_id": data["product_id"],
            "subscription_id": data["id"],
            "customer": data["customer"],
            "subscription": {k: v for k, v in data.items() if k not in ("customer", "product")},
        },
    }


async def pay_for(customer: Customer, plan: str, at: datetime, period_end: datetime) -> None:
    data = subscription_data(customer.account_id, plan=plan, modified_at=at, period_end=period_end)
    assert (
        await customer.webhook(f"evt_created_{plan}", subscription_event("created", data))
    ).status_code == 200
    assert (await customer.webhook(f"evt_paid_{plan}", order_paid(data))).status_code == 200


def order_event(
    kind: str,
    order_id: str,
    account_id: int,
    *,
    amount: object,
    at: datetime,
    refunded: int = 0,
    plan: str = "pro",
) -> dict[str, Any]:
    """An `order.<kind>` event as Polar sends it for a subscription's cycle: `amount` cents net
    (the tax on top), `refunded` cents of it refunded so far."""
    status = "paid" if not refunded else "refunded" if refunded == amount else "partially_refunded"
    tax = amount // 5 if isinstance(amount, int) else 0
    return {
        "type": f"order.{kind}",
        "timestamp": iso(at),
        "data": {
            "id": order_id,
            "created_at": iso(at),
            "modified_at": iso(at),
            "status": status,
            "paid": True,
            "billing_reason": "subscription_cycle",
            "subtotal_amount": amount,
            "discount_amount": 0,
            "net_amount": amount,
            "tax_amount": tax,
            "total_amount": amount + tax if isinstance(amount, int) else amount,
            "refunded_amount": refunded,
            "refunded_tax_amount": refunded // 5,
            "currency": "usd",
            "customer_id": f"cus_{account_id}",
            "product_id": PRODUCTS[plan],
            "subscription_id": f"sub_{account_id}",
            "metadata": {},
            "customer": {"id": f"cus_{account_id}", "external_id": str(account_id)},
        },
    }
