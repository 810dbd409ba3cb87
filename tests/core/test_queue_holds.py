"""The check a due row's account gets when it is leased: the statements it costs per batch stay
the same however many rows and accounts the batch holds, and held rows keep their attempt count."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from mailmark.bootstrap import Services
from mailmark.core.plans import PAUSED_TEXT, TRIAL_ENDED_TEXT, TRIAL_LENGTH
from mailmark.core.states import DeliveryStatus
from tests.support.clock import SettableClock

LEASE = timedelta(minutes=5)


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock()


@contextmanager
def counted_statements(services: Services) -> Iterator[list[str]]:
    """The SQL statements run on the engine meanwhile (an executemany counts once)."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(args[2])

    engine = services.engine.sync_engine
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


async def add_sender(services: Services, name: str, plan: str | None, emails: int) -> None:
    """An account with a domain and a mailbox that has sent `emails` messages to remote.test."""
    await services.accounts.create(
        name, owner_email=f"owner@{name}.test", password="owner-pass-1", plan=plan
    )
    await services.domains.add(f"{name}.test", account_name=name, trust=True)
    mailbox = await services.mailboxes.create(f"sales@{name}.test")
    for n in range(emails):
        await services.sending.submit(
            mailbox=mailbox, to=[f"r{n}@remote.test"], subject="S", text="x"
        )


async def lease_all(services: Services) -> tuple[int, list[str]]:
    with counted_statements(services) as statements:
        leased = await services.queue.lease_due("test", 500, LEASE)
    return len(leased), statements


async def test_the_account_check_costs_the_same_statements_for_any_batch(
    services: Services,
) -> None:
    await add_sender(services, "first", "starter", 2)
    one_account, one = await lease_all(services)

    # Accounts on every kind of plan, limited or not, and more rows each.
    for n, plan in enumerate(("starter", "pro", "business", "unlimited", "pro")):
        await add_sender(services, f"more{n}", plan, 4)
    five_accounts, five = await lease_all(services)

    assert (one_account, five_accounts) == (2, 20)
    assert len(five) == len(one)
    # The accounts are read, with their month's count, by one statement.
    assert sum("FROM accounts" in statement for statement in five) == 1


async def test_held_rows_cost_one_more_statement_and_keep_their_attempts(
    services: Services,
) -> None:
    await add_sender(services, "free", "pro", 3)
    _, baseline = await lease_all(services)
    for n in range(4):
        await add_sender(services, f"paused{n}", "pro", 3)
        await services.accounts.pause(f"paused{n}")
    await add_sender(services, "sending", "pro", 2)

    leased, statements = await lease_all(services)

    assert leased == 2
    assert len(statements) == len(baseline) + 1
    held = await services.queue_admin.list(DeliveryStatus.HELD, limit=100)
    assert len(held) == 12
    assert {(e.attempts, e.last_reply, e.lease_owner) for e in held} == {(0, PAUSED_TEXT, None)}
    # Not due again before the next look at their accounts.
    again, _ = await lease_all(services)
    assert again == 0


async def test_a_lapsed_trials_mail_is_held_until_a_plan_is_chosen(
    services: Services, clock: SettableClock
) -> None:
    await add_sender(services, "trial", None, 0)
    sales = await services.mailboxes.get("sales@trial.test")
    await services.sending.submit(
        mailbox=sales,
        to=["ann@remote.test"],
        subject="S",
        text="x",
        scheduled_at=clock.now() + TRIAL_LENGTH,
    )
    clock.advance(TRIAL_LENGTH)

    assert (await lease_all(services))[0] == 0
    [held] = await services.queue_admin.list(DeliveryStatus.HELD)
    assert held.last_reply == TRIAL_ENDED_TEXT

    overview, released = await services.accounts.change_plan("trial", "starter")

    assert (overview.status, released) == ("active", 1)
    assert (await lease_all(services))[0] == 1
