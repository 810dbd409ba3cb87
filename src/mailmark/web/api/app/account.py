"""/api/account: the account's name, plan, limits, usage and the notices its limits call for."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, get, patch
from litestar.params import JSONBody

from mailmark.core.access import Viewer
from mailmark.core.accounts import AccountOverview, AccountService
from mailmark.core.identity import IdentityService
from mailmark.web.api.v1.auth import Injected


class PlanOut(msgspec.Struct, rename="camel"):
    name: str
    label: str
    # null: unlimited
    domains: int | None
    mailboxes: int | None
    emails_per_month: int | None


class UsageOut(msgspec.Struct, rename="camel"):
    domains: int
    mailboxes: int
    emails_this_month: int


class AccountOut(msgspec.Struct, rename="camel"):
    name: str
    status: str
    plan: PlanOut
    trial_ends_at: datetime | None
    trial_days_left: int | None
    usage: UsageOut
    notices: list[str]
    signup: str


class AccountPatchIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(max_length=63)]


def account_out(overview: AccountOverview, signup_open: bool) -> AccountOut:
    plan, usage = overview.plan, overview.usage
    return AccountOut(
        name=overview.account.name,
        status=overview.status,
        plan=PlanOut(
            plan.name, overview.plan_label, plan.domains, plan.mailboxes, plan.emails_per_month
        ),
        trial_ends_at=overview.account.trial_ends_at,
        trial_days_left=overview.trial_days_left,
        usage=UsageOut(usage.domains, usage.mailboxes, usage.emails_this_month),
        notices=list(overview.notices),
        signup="open" if signup_open else "closed",
    )


class AccountController(Controller):
    path = "/account"
    tags = ("Account",)

    @get(operation_id="appGetAccount", summary="The account's plan, limits and usage")
    async def get_account(
        self,
        viewer: Injected[Viewer],
        accounts: Injected[AccountService],
        identity: Injected[IdentityService],
    ) -> AccountOut:
        """Plan and limits, this month's email count, trial days left, and the product's texts
        for each limit reached or for a paused account."""
        return account_out(await accounts.overview(viewer), identity.signup_open)

    @patch(operation_id="appRenameAccount", summary="Rename the account")
    async def rename_account(
        self,
        viewer: Injected[Viewer],
        accounts: Injected[AccountService],
        identity: Injected[IdentityService],
        data: JSONBody[AccountPatchIn],
    ) -> AccountOut:
        return account_out(await accounts.rename(viewer, data.name), identity.signup_open)
