"""Plan quotas with the product's exact texts, enforced by the real services on a real database."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mailmark.bootstrap import Services
from mailmark.core.errors import AccountPaused, InvalidInput, NotFound, QuotaExceeded
from mailmark.core.plans import (
    PLANS,
    TRIAL_LENGTH,
    effective_plan,
    ensure_domain_quota,
    ensure_email_quota,
    ensure_mailbox_quota,
)
from tests.support.clock import SettableClock

DOMAIN_LIMIT = "Domain limit reached. Your plan allows {} domain(s). Please upgrade to add more."
MAILBOX_LIMIT = (
    "Mailbox limit reached. Your plan allows {} mailbox(es). Please upgrade to add more."
)
EMAIL_LIMIT = "Monthly email limit reached ({} emails). Please upgrade your plan."


@pytest.fixture
def clock() -> SettableClock:
    """The services' clock, moved forward by the test instead of by waiting."""
    return SettableClock()


async def test_starter_account_cannot_add_a_second_domain(services: Services) -> None:
    await services.accounts.create(
        "shop", owner_email="o@shop.test", password="pass-word-1", plan="starter"
    )
    await services.domains.add("shop.test", account_name="shop", trust=True)

    with pytest.raises(QuotaExceeded) as caught:
        await services.domains.add("shop-two.test", account_name="shop", trust=True)

    assert caught.value.message == DOMAIN_LIMIT.format(1)
    with pytest.raises(NotFound):
        await services.domains.get("shop-two.test")


async def test_starter_account_cannot_add_a_fourth_mailbox(services: Services) -> None:
    await services.accounts.create(
        "shop", owner_email="o@shop.test", password="pass-word-1", plan="starter"
    )
    await services.domains.add("shop.test", account_name="shop", trust=True)
    for local in ("a", "b", "c"):
        await services.mailboxes.create(f"{local}@shop.test")

    with pytest.raises(QuotaExceeded) as caught:
        await services.mailboxes.create("d@shop.test")

    assert caught.value.message == MAILBOX_LIMIT.format(3)
    assert [m.local_part for m in await services.mailboxes.list("shop.test")] == ["a", "b", "c"]
    # Freeing a slot makes room again: the limit counts mailboxes that exist, not ever created.
    await services.mailboxes.delete("c@shop.test")
    await services.mailboxes.create("d@shop.test")


async def test_quotas_are_per_account(services: Services) -> None:
    for name in ("one", "two"):
        await services.accounts.create(
            name, owner_email=f"o@{name}.test", password="pass-word-1", plan="starter"
        )
        await services.domains.add(f"{name}.test", account_name=name, trust=True)
    for local in ("a", "b", "c"):
        await services.mailboxes.create(f"{local}@one.test")
    # Account "one" is full; account "two" is not affected.
    await services.mailboxes.create("a@two.test")


async def test_trial_gets_starter_limits(services: Services) -> None:
    trial = await services.accounts.create(
        "trial", owner_email="o@trial.test", password="pass-word-1"
    )
    assert (trial.status, trial.plan) == ("trial", "starter")
    assert trial.trial_ends_at == trial.created_at + TRIAL_LENGTH
    await services.domains.add("trial.test", account_name="trial", trust=True)

    with pytest.raises(QuotaExceeded) as caught:
        await services.domains.add("trial-two.test", account_name="trial", trust=True)
    assert caught.value.message == DOMAIN_LIMIT.format(1)


async def test_lapsed_trial_pauses_the_account(services: Services, clock: SettableClock) -> None:
    await services.accounts.create("trial", owner_email="o@trial.test", password="pass-word-1")
    await services.domains.add("trial.test", account_name="trial", trust=True)
    await services.mailboxes.create("early@trial.test")

    clock.current += TRIAL_LENGTH - timedelta(seconds=1)
    await services.mailboxes.create("lastday@trial.test")

    clock.current += timedelta(seconds=1)
    with pytest.raises(AccountPaused, match="trial has ended"):
        await services.mailboxes.create("late@trial.test")
    with pytest.raises(AccountPaused):
        await services.domains.add("trial-two.test", account_name="trial", trust=True)
    assert [m.local_part for m in await services.mailboxes.list("trial.test")] == [
        "early",
        "lastday",
    ]


async def test_paid_plan_does_not_lapse(services: Services, clock: SettableClock) -> None:
    await services.accounts.create(
        "paid", owner_email="o@paid.test", password="pass-word-1", plan="pro"
    )
    clock.current += timedelta(days=400)
    await services.domains.add("paid.test", account_name="paid", trust=True)
    for n in range(4):  # pro has no mailbox limit
        await services.mailboxes.create(f"m{n}@paid.test")


async def test_unknown_plan_is_refused(services: Services) -> None:
    with pytest.raises(
        InvalidInput, match="Unknown plan 'gold'; choose one of starter, pro, business, unlimited"
    ):
        await services.accounts.create(
            "x", owner_email="o@x.test", password="pass-word-1", plan="gold"
        )


@pytest.mark.parametrize(
    ("plan", "domains", "mailboxes", "emails"),
    [
        ("starter", 1, 3, 1_000),
        ("pro", 5, None, 25_000),
        ("business", None, None, 100_000),
        ("unlimited", None, None, None),
    ],
)
def test_plan_table(
    plan: str, domains: int | None, mailboxes: int | None, emails: int | None
) -> None:
    limits = PLANS[plan]
    assert (limits.domains, limits.mailboxes, limits.emails_per_month) == (
        domains,
        mailboxes,
        emails,
    )
    if domains is None:
        ensure_domain_quota(limits, 10_000)
    else:
        ensure_domain_quota(limits, domains - 1)
        with pytest.raises(QuotaExceeded) as caught:
            ensure_domain_quota(limits, domains)
        assert caught.value.message == DOMAIN_LIMIT.format(domains)
    if mailboxes is None:
        ensure_mailbox_quota(limits, 10_000)
    else:
        ensure_mailbox_quota(limits, mailboxes - 1)
        with pytest.raises(QuotaExceeded) as caught:
            ensure_mailbox_quota(limits, mailboxes)
        assert caught.value.message == MAILBOX_LIMIT.format(mailboxes)


@pytest.mark.parametrize(
    ("plan", "sent", "about_to_send", "allowed"),
    [
        ("starter", 999, 1, True),
        ("starter", 1_000, 1, False),
        ("starter", 999, 2, False),  # a batch that would cross the limit is refused as a whole
        ("starter", 0, 1_000, True),
        ("pro", 24_999, 1, True),
        ("pro", 25_000, 1, False),
        ("business", 100_000, 1, False),
        ("unlimited", 10**9, 10**6, True),
    ],
)
def test_ensure_email_quota(plan: str, sent: int, about_to_send: int, allowed: bool) -> None:
    limits = PLANS[plan]
    if allowed:
        ensure_email_quota(limits, sent, about_to_send)
        return
    with pytest.raises(QuotaExceeded) as caught:
        ensure_email_quota(limits, sent, about_to_send)
    assert caught.value.message == EMAIL_LIMIT.format(limits.emails_per_month)


async def test_effective_plan_of_stored_accounts(services: Services, clock: SettableClock) -> None:
    trial = await services.accounts.create(
        "trial", owner_email="o@trial.test", password="pass-word-1"
    )
    business = await services.accounts.create(
        "biz", owner_email="o@biz.test", password="pass-word-1", plan="business"
    )
    stored_trial = await services.accounts.get("trial")
    assert stored_trial == trial
    assert effective_plan(stored_trial, clock.now()) is PLANS["starter"]
    assert effective_plan(await services.accounts.get("biz"), clock.now()) is PLANS["business"]
    with pytest.raises(AccountPaused):
        effective_plan(stored_trial, clock.now() + TRIAL_LENGTH)
    assert business.status == "active"
