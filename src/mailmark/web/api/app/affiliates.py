"""/api/affiliates: the affiliate program. An account applies, and once the operator approves it
sees its referral link, its dashboard and statements, and sets where it is paid; the operator
reviews applications and exports each month's payouts. /api/operator: the operator's view of every
account."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

import msgspec
from litestar import Controller, Response, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody

from mailmark.core.access import Viewer
from mailmark.core.accounts import AccountService
from mailmark.core.affiliates import (
    MAX_BANK_DETAILS,
    MAX_PITCH,
    MAX_WEBSITE,
    Affiliate,
    AffiliateService,
    Application,
    Dashboard,
    PayoutMethod,
    Statement,
    check_month,
)
from mailmark.core.identity import IdentityService
from mailmark.web.api.app.account import AccountOut, account_out
from mailmark.web.api.v1.auth import Injected


class ApplicationOut(msgspec.Struct, rename="camel"):
    id: int
    status: str
    website: str
    pitch: str
    applied_at: datetime
    reviewed_at: datetime | None


class StatementOut(msgspec.Struct, rename="camel"):
    month: str
    opening_cents: int
    earned_cents: int
    balance_cents: int
    # 0: below the $50 minimum, rolled over to the next month.
    payout_cents: int
    payable_on: date


class DashboardOut(msgspec.Struct, rename="camel"):
    link: str
    clicks: int
    signups: int
    paying_customers: int
    earned_cents: int
    pending_cents: int
    paid_cents: int
    payout_method: str | None
    paypal_email: str | None
    # The bank details are never sent back, only whether they are on file.
    has_bank_details: bool
    statements: list[StatementOut]


class AffiliateOut(msgspec.Struct, rename="camel"):
    application: ApplicationOut | None
    dashboard: DashboardOut | None


class ApplyIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    website: Annotated[str, msgspec.Meta(max_length=MAX_WEBSITE)]
    pitch: Annotated[str, msgspec.Meta(max_length=MAX_PITCH)]


class PayoutMethodIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    method: Literal["paypal", "bank"]
    paypal_email: Annotated[str, msgspec.Meta(max_length=320)] | None = None
    bank_details: Annotated[str, msgspec.Meta(max_length=MAX_BANK_DETAILS)] | None = None


class ReviewOut(msgspec.Struct, rename="camel"):
    application: ApplicationOut
    code: str
    account: str
    email: str


class PayoutOut(msgspec.Struct, rename="camel"):
    code: str
    account: str
    email: str
    month: str
    payable_on: date
    amount_cents: int
    method: str | None
    paypal_email: str | None
    has_bank_details: bool


class OperatorOut(msgspec.Struct, rename="camel"):
    operator: bool
    affiliate_program: bool


def application_out(affiliate: Affiliate) -> ApplicationOut:
    assert affiliate.id is not None
    return ApplicationOut(
        affiliate.id,
        affiliate.status,
        affiliate.website,
        affiliate.pitch,
        affiliate.applied_at,
        affiliate.reviewed_at,
    )


def statement_out(statement: Statement) -> StatementOut:
    return StatementOut(
        statement.month,
        statement.opening_cents,
        statement.earned_cents,
        statement.balance_cents,
        statement.payout_cents,
        statement.payable_on,
    )


def dashboard_out(dashboard: Dashboard) -> DashboardOut:
    totals, affiliate = dashboard.totals, dashboard.affiliate
    return DashboardOut(
        link=dashboard.link,
        clicks=totals.clicks,
        signups=totals.signups,
        paying_customers=totals.paying_customers,
        earned_cents=totals.earned_cents,
        pending_cents=dashboard.pending_cents,
        paid_cents=totals.paid_cents,
        payout_method=affiliate.payout_method,
        paypal_email=affiliate.paypal_email,
        has_bank_details=affiliate.bank_details is not None,
        statements=[statement_out(s) for s in dashboard.statements],
    )


def review_out(application: Application) -> ReviewOut:
    return ReviewOut(
        application_out(application.affiliate),
        application.affiliate.code,
        application.account_name,
        application.email,
    )


async def affiliate_state(affiliates: AffiliateService, viewer: Viewer) -> AffiliateOut:
    mine = await affiliates.mine(viewer)
    if mine is None:
        return AffiliateOut(None, None)
    dashboard = None
    if mine.status == "approved":
        dashboard = dashboard_out(await affiliates.dashboard(viewer))
    return AffiliateOut(application_out(mine), dashboard)


class AffiliateController(Controller):
    path = "/affiliates"
    tags = ("Affiliates",)

    @get(operation_id="appGetAffiliate", summary="The account's application and dashboard")
    async def get_affiliate(
        self, viewer: Injected[Viewer], affiliates: Injected[AffiliateService]
    ) -> AffiliateOut:
        """No application: both null. Approved: the dashboard (clicks, sign-ups, paying
        customers, earned, pending and paid, in cents) and the monthly statements."""
        return await affiliate_state(affiliates, viewer)

    @post(
        "/application",
        operation_id="appApplyAffiliate",
        summary="Apply to the affiliate program",
        status_code=201,
    )
    async def apply(
        self,
        viewer: Injected[Viewer],
        affiliates: Injected[AffiliateService],
        data: JSONBody[ApplyIn],
    ) -> AffiliateOut:
        await affiliates.apply(viewer, website=data.website, pitch=data.pitch)
        return await affiliate_state(affiliates, viewer)

    @put(
        "/payout-method",
        operation_id="appSetPayoutMethod",
        summary="Where commissions are paid: PayPal or a bank transfer",
    )
    async def set_payout_method(
        self,
        viewer: Injected[Viewer],
        affiliates: Injected[AffiliateService],
        data: JSONBody[PayoutMethodIn],
    ) -> AffiliateOut:
        await affiliates.set_payout_method(
            viewer,
            PayoutMethod(data.method),
            paypal_email=data.paypal_email,
            bank_details=data.bank_details,
        )
        return await affiliate_state(affiliates, viewer)

    @get(
        "/applications",
        operation_id="appListAffiliateApplications",
        summary="Every application, pending first (the operator)",
    )
    async def list_applications(
        self, viewer: Injected[Viewer], affiliates: Injected[AffiliateService]
    ) -> list[ReviewOut]:
        return [review_out(a) for a in await affiliates.applications(viewer)]

    @post(
        "/applications/{affiliate_id:int}/{decision:str}",
        operation_id="appReviewAffiliateApplication",
        summary="Approve or reject an application (the operator)",
        status_code=200,
    )
    async def review(
        self,
        viewer: Injected[Viewer],
        affiliates: Injected[AffiliateService],
        affiliate_id: FromPath[int],
        decision: FromPath[Literal["approve", "reject"]],
    ) -> ApplicationOut:
        reviewed = await affiliates.review(viewer, affiliate_id, approve=decision == "approve")
        return application_out(reviewed)

    @get(
        "/payouts",
        operation_id="appListAffiliatePayouts",
        summary="A month's payouts, paid on the 15th of the next (the operator)",
    )
    async def list_payouts(
        self,
        viewer: Injected[Viewer],
        affiliates: Injected[AffiliateService],
        month: FromQuery[str],
    ) -> list[PayoutOut]:
        return [
            PayoutOut(
                code=line.affiliate.code,
                account=line.account_name,
                email=line.email,
                month=line.statement.month,
                payable_on=line.statement.payable_on,
                amount_cents=line.statement.payout_cents,
                method=line.affiliate.payout_method,
                paypal_email=line.affiliate.paypal_email,
                has_bank_details=line.affiliate.bank_details is not None,
            )
            for line in await affiliates.payouts(viewer, month)
        ]

    @get(
        "/payouts.csv",
        operation_id="appExportAffiliatePayouts",
        summary="A month's payouts as CSV, with each payout method's details (the operator)",
        media_type="text/csv",
    )
    async def export_payouts(
        self,
        viewer: Injected[Viewer],
        affiliates: Injected[AffiliateService],
        month: FromQuery[str],
    ) -> Response[str]:
        text = await affiliates.payouts_csv(viewer, month)
        return Response(
            text,
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="payouts-{check_month(month)}.csv"',
                "Cache-Control": "no-store",
            },
        )


class OperatorController(Controller):
    path = "/operator"
    tags = ("Operator",)

    @get(operation_id="appGetOperator", summary="Whether the viewer operates this server")
    async def get_operator(
        self,
        viewer: Injected[Viewer],
        accounts: Injected[AccountService],
        affiliates: Injected[AffiliateService | None],
    ) -> OperatorOut:
        return OperatorOut(await accounts.is_operator(viewer), affiliates is not None)

    @get(
        "/accounts",
        operation_id="appListAccounts",
        summary="Every account with its plan, status and usage (the operator)",
    )
    async def list_accounts(
        self,
        viewer: Injected[Viewer],
        accounts: Injected[AccountService],
        identity: Injected[IdentityService],
    ) -> list[AccountOut]:
        return [
            account_out(overview, identity.signup_open)
            for overview in await accounts.list_for_operator(viewer)
        ]
