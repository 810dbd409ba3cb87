"""/api/billing: the account's plan with its paid period, checkout and the customer portal
(through the payment provider), plan changes and cancelling at the period end."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec
from litestar import Controller, get, post
from litestar.params import JSONBody

from mailmark.core.access import Viewer
from mailmark.core.billing import MONTHLY_PRICE_CENTS, PAID_PLANS, BillingOverview, BillingService
from mailmark.core.identity import IdentityService
from mailmark.core.plans import PLANS
from mailmark.web.api.app.account import AccountOut, PlanOut, account_out
from mailmark.web.api.v1.auth import Injected

PaidPlan = Literal["starter", "pro", "business"]


class PlanOfferOut(msgspec.Struct, rename="camel"):
    plan: PlanOut
    price_cents: int  # a month


class BillingOut(msgspec.Struct, rename="camel"):
    # false: this server does not sell plans; its operator sets them.
    enabled: bool
    account: AccountOut
    current_period_end: datetime | None
    cancel_at_period_end: bool
    # A downgrade that takes effect at current_period_end.
    scheduled_plan: str | None
    # The plans on sale, cheapest first, with their limits.
    plans: list[PlanOfferOut]


class PlanIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    plan: PaidPlan


class LinkOut(msgspec.Struct, rename="camel"):
    url: str


def billing_out(billing: BillingOverview, signup_open: bool) -> BillingOut:
    return BillingOut(
        enabled=billing.billing_enabled,
        account=account_out(billing.overview, signup_open),
        current_period_end=billing.current_period_end,
        cancel_at_period_end=billing.cancel_at_period_end,
        scheduled_plan=billing.scheduled_plan,
        plans=[
            PlanOfferOut(
                PlanOut(
                    name,
                    name.title(),
                    PLANS[name].domains,
                    PLANS[name].mailboxes,
                    PLANS[name].emails_per_month,
                ),
                MONTHLY_PRICE_CENTS[name],
            )
            for name in PAID_PLANS
        ],
    )


class BillingController(Controller):
    path = "/billing"
    tags = ("Billing",)

    @get(operation_id="appGetBilling", summary="The plan, its paid period and this month's usage")
    async def get_billing(
        self,
        viewer: Injected[Viewer],
        billing: Injected[BillingService],
        identity: Injected[IdentityService],
    ) -> BillingOut:
        return billing_out(await billing.overview(viewer), identity.signup_open)

    @post(
        "/checkout",
        operation_id="appStartCheckout",
        summary="Where to pay for a plan",
        status_code=200,
    )
    async def start_checkout(
        self,
        viewer: Injected[Viewer],
        billing: Injected[BillingService],
        billing_return_url: Injected[str],
        data: JSONBody[PlanIn],
    ) -> LinkOut:
        """The payment provider's checkout page; the plan starts when the provider reports the
        payment, not when the browser comes back."""
        url = await billing.checkout(
            viewer,
            data.plan,
            success_url=f"{billing_return_url}?checkout=done",
            return_url=billing_return_url,
        )
        return LinkOut(url)

    @post(
        "/portal",
        operation_id="appOpenBillingPortal",
        summary="The payment provider's page for card and invoices",
        status_code=200,
    )
    async def open_portal(
        self,
        viewer: Injected[Viewer],
        billing: Injected[BillingService],
        billing_return_url: Injected[str],
    ) -> LinkOut:
        return LinkOut(await billing.portal(viewer, return_url=billing_return_url))

    @post(
        "/plan",
        operation_id="appChangePlan",
        summary="Upgrade at once, or downgrade at the end of the period",
        status_code=200,
    )
    async def change_plan(
        self,
        viewer: Injected[Viewer],
        billing: Injected[BillingService],
        identity: Injected[IdentityService],
        data: JSONBody[PlanIn],
    ) -> BillingOut:
        return billing_out(await billing.change_plan(viewer, data.plan), identity.signup_open)

    @post(
        "/cancel",
        operation_id="appCancelPlan",
        summary="Cancel at the end of the paid period",
        status_code=200,
    )
    async def cancel_plan(
        self,
        viewer: Injected[Viewer],
        billing: Injected[BillingService],
        identity: Injected[IdentityService],
    ) -> BillingOut:
        return billing_out(await billing.cancel(viewer), identity.signup_open)

    @post(
        "/resume",
        operation_id="appKeepPlan",
        summary="Undo a cancellation before the period ends",
        status_code=200,
    )
    async def keep_plan(
        self,
        viewer: Injected[Viewer],
        billing: Injected[BillingService],
        identity: Injected[IdentityService],
    ) -> BillingOut:
        return billing_out(await billing.cancel(viewer, cancel=False), identity.signup_open)
