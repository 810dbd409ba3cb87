"""Plans and their quotas, with the product's exact error texts (PRODUCT.md "Quotas & Limits")."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from mailmark.core.errors import AccountPaused, InvalidInput, QuotaExceeded
from mailmark.core.model import Account
from mailmark.core.states import AccountStatus

TRIAL_LENGTH = timedelta(days=7)
# PRODUCT.md: "After the trial, the account pauses until a plan is selected."
TRIAL_ENDED_TEXT = "Your free trial has ended. Choose a plan to continue using Mailmark."
PAUSED_TEXT = "Your account is paused. Choose a plan to continue using Mailmark."


@dataclass(frozen=True)
class Plan:
    name: str
    domains: int | None  # None: unlimited
    mailboxes: int | None
    emails_per_month: int | None
    # What one mailbox may hold (IMAP QUOTA, RFC 9208): bytes of messages, and messages. No plan
    # of PRODUCT.md's limits either, so they are None (unlimited) unless a plan says otherwise.
    mailbox_storage: int | None = None
    mailbox_messages: int | None = None


PLANS: dict[str, Plan] = {
    "starter": Plan("starter", domains=1, mailboxes=3, emails_per_month=1_000),
    "pro": Plan("pro", domains=5, mailboxes=None, emails_per_month=25_000),
    "business": Plan("business", domains=None, mailboxes=None, emails_per_month=100_000),
    # For self-hosters: the server's owner decides the limits, so there are none.
    "unlimited": Plan("unlimited", domains=None, mailboxes=None, emails_per_month=None),
}


# Plans whose accounts' sends nobody needs to count.
UNCOUNTED_PLANS = tuple(name for name, plan in PLANS.items() if plan.emails_per_month is None)


def plan_named(name: str) -> Plan:
    try:
        return PLANS[name]
    except KeyError:
        raise InvalidInput(f"Unknown plan {name!r}; choose one of {', '.join(PLANS)}.") from None


def effective_plan(account: Account, now: datetime) -> Plan:
    """Accounts without an active subscription (trial) get Starter limits; a lapsed trial pauses.
    At the end of the paid period a cancelled plan pauses and a scheduled downgrade takes over,
    whether or not the change has been written back yet (core/billing.py settles it)."""
    if account.status == AccountStatus.ACTIVE:
        if account.current_period_end is not None and now >= account.current_period_end:
            if account.cancel_at_period_end:
                raise AccountPaused(PAUSED_TEXT)
            if account.scheduled_plan is not None:
                return plan_named(account.scheduled_plan)
        return plan_named(account.plan)
    if (
        account.status == AccountStatus.TRIAL
        and account.trial_ends_at is not None
        and now < account.trial_ends_at
    ):
        return PLANS["starter"]
    if account.status == AccountStatus.PAUSED:
        raise AccountPaused(PAUSED_TEXT)
    raise AccountPaused(TRIAL_ENDED_TEXT)


def mailbox_plan(account: Account, now: datetime) -> Plan:
    """The plan whose per-mailbox limits apply: the effective one, or for a paused account the
    one it had (a pause stops sending, not the mail already held or filed)."""
    try:
        return effective_plan(account, now)
    except AccountPaused:
        return plan_named(account.plan)


def settled(account: Account, now: datetime) -> Account:
    """The account with what its dates decided written in: a lapsed trial is paused; at the end
    of the paid period a cancelled plan is paused and a scheduled downgrade takes over (the
    rules `effective_plan` already applies when the account is read)."""
    if (
        account.status == AccountStatus.TRIAL
        and account.trial_ends_at is not None
        and now >= account.trial_ends_at
    ):
        return replace(account, status=AccountStatus.PAUSED)
    if (
        account.status == AccountStatus.ACTIVE
        and account.current_period_end is not None
        and now >= account.current_period_end
    ):
        if account.cancel_at_period_end:
            return replace(
                account,
                status=AccountStatus.PAUSED,
                cancel_at_period_end=False,
                scheduled_plan=None,
            )
        if account.scheduled_plan is not None:
            return replace(account, plan=account.scheduled_plan, scheduled_plan=None)
    return account


def month_start(now: datetime) -> datetime:
    """The start of the calendar month the email quota counts from."""
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def usage_month(now: datetime) -> str:
    """The key of the calendar month (UTC) whose usage row counts a send at `now`."""
    return now.astimezone(UTC).strftime("%Y-%m")


def next_month_start(now: datetime) -> datetime:
    """When the email quota next resets."""
    start = month_start(now)
    return (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )


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


@dataclass(frozen=True)
class MailboxQuota:
    """A mailbox's use of its plan's per-mailbox limits (None: unlimited)."""

    storage_used: int  # bytes
    storage_limit: int | None
    messages_used: int
    messages_limit: int | None


def ensure_mailbox_room(quota: MailboxQuota, adding_bytes: int, adding_messages: int) -> None:
    """Refuse what would take a mailbox over its plan's storage or message limit."""
    if quota.storage_limit is not None and quota.storage_used + adding_bytes > quota.storage_limit:
        raise QuotaExceeded(
            f"Mailbox storage limit reached ({quota.storage_limit} bytes). "
            "Delete messages or upgrade your plan."
        )
    if (
        quota.messages_limit is not None
        and quota.messages_used + adding_messages > quota.messages_limit
    ):
        raise QuotaExceeded(
            f"Mailbox message limit reached ({quota.messages_limit} messages). "
            "Delete messages or upgrade your plan."
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


def held_reason(account: Account, sent_this_month: int | None, now: datetime) -> str | None:
    """Why the account's due mail may not go out now (the product's text for a paused account or
    for the monthly limit), or None. `sent_this_month` already counts the mail in question when it
    was accepted this month (None: a plan without a limit, not counted), so only a count above
    the limit holds it: what a lowered plan or a pause leaves waiting."""
    try:
        plan = effective_plan(account, now)
        if sent_this_month is not None:
            ensure_email_quota(plan, sent_this_month, about_to_send=0)
    except (AccountPaused, QuotaExceeded) as refused:
        return refused.message
    return None
