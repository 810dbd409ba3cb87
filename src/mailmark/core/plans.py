"""Plans and their quotas, with the product's exact error texts (PRODUCT.md "Quotas & Limits")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from mailmark.core.errors import AccountPaused, InvalidInput, QuotaExceeded
from mailmark.core.model import Account
from mailmark.core.states import AccountStatus

TRIAL_LENGTH = timedelta(days=7)


@dataclass(frozen=True)
class Plan:
    name: str
    domains: int | None  # None: unlimited
    mailboxes: int | None
    emails_per_month: int | None


PLANS: dict[str, Plan] = {
    "starter": Plan("starter", domains=1, mailboxes=3, emails_per_month=1_000),
    "pro": Plan("pro", domains=5, mailboxes=None, emails_per_month=25_000),
    "business": Plan("business", domains=None, mailboxes=None, emails_per_month=100_000),
    # For self-hosters: the server's owner decides the limits, so there are none.
    "unlimited": Plan("unlimited", domains=None, mailboxes=None, emails_per_month=None),
}


def plan_named(name: str) -> Plan:
    try:
        return PLANS[name]
    except KeyError:
        raise InvalidInput(f"Unknown plan {name!r}; choose one of {', '.join(PLANS)}.") from None


def effective_plan(account: Account, now: datetime) -> Plan:
    """Accounts without an active subscription (trial) get Starter limits; a lapsed trial pauses."""
    if account.status == AccountStatus.ACTIVE:
        return plan_named(account.plan)
    if (
        account.status == AccountStatus.TRIAL
        and account.trial_ends_at is not None
        and now < account.trial_ends_at
    ):
        return PLANS["starter"]
    raise AccountPaused("Your free trial has ended. Choose a plan to continue using Mailmark.")


def month_start(now: datetime) -> datetime:
    """The start of the calendar month the email quota counts from."""
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def ensure_domain_quota(plan: Plan, domains_in_use: int) -> None:
    if plan.domains is not None and domains_in_use >= plan.domains:
        raise QuotaExceeded(
            f"Domain limit reached. Your plan allows {plan.domains} domain(s). "
            "Please upgrade to add more."
        )


def ensure_mailbox_quota(plan: Plan, mailboxes_in_use: int) -> None:
    if plan.mailboxes is not None and mailboxes_in_use >= plan.mailboxes:
        raise QuotaExceeded(
            f"Mailbox limit reached. Your plan allows {plan.mailboxes} mailbox(es). "
            "Please upgrade to add more."
        )


def ensure_email_quota(plan: Plan, sent_this_month: int, about_to_send: int = 1) -> None:
    """The quota resets at the start of each calendar month; the caller counts this month's sends."""
    if (
        plan.emails_per_month is not None
        and sent_this_month + about_to_send > plan.emails_per_month
    ):
        raise QuotaExceeded(
            f"Monthly email limit reached ({plan.emails_per_month} emails). Please upgrade your plan."
        )
