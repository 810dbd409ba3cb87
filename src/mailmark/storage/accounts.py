"""Accounts: who owns domains, and the row their quota checks lock."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import asdict

import sqlalchemy as sa

from mailmark.core.model import Account
from mailmark.core.states import AccountStatus
from mailmark.storage.sql import Repository, chunks, row_values
from mailmark.storage.tables import account_usage, accounts, domains, mailboxes


def _sent_in(month: str) -> sa.ScalarSelect[int]:
    """The account's emails of the calendar month (its usage row, 0 without one), correlated to
    the outer account."""
    return (
        sa.select(sa.func.coalesce(sa.func.max(account_usage.c.emails_sent), 0))
        .where(account_usage.c.account_id == accounts.c.id, account_usage.c.month == month)
        .correlate(accounts)
        .scalar_subquery()
    )


class SqlAccounts(Repository):
    async def add(self, account: Account) -> Account:
        new_id = await self._insert(accounts, row_values(account))
        return Account(**{**asdict(account), "id": new_id})

    async def get(self, account_id: int) -> Account | None:
        row = (
            await self._conn.execute(accounts.select().where(accounts.c.id == account_id))
        ).first()
        return Account(**row._mapping) if row else None

    async def get_by_name(self, name: str) -> Account | None:
        row = (await self._conn.execute(accounts.select().where(accounts.c.name == name))).first()
        return Account(**row._mapping) if row else None

    async def list_with_usage(self, month: str) -> list[tuple[Account, int, int, int]]:
        domain_count = (
            sa.select(sa.func.count())
            .where(domains.c.account_id == accounts.c.id)
            .correlate(accounts)
            .scalar_subquery()
        )
        mailbox_count = (
            sa.select(sa.func.count())
            .select_from(mailboxes.join(domains))
            .where(domains.c.account_id == accounts.c.id)
            .correlate(accounts)
            .scalar_subquery()
        )
        query = sa.select(
            *accounts.c,
            domain_count.label("n_domains"),
            mailbox_count.label("n_mailboxes"),
            _sent_in(month).label("n_emails"),
        ).order_by(accounts.c.name)
        found = []
        for row in await self._conn.execute(query):
            values = dict(row._mapping)
            n_domains, n_mailboxes, n_emails = (
                int(values.pop(n)) for n in ("n_domains", "n_mailboxes", "n_emails")
            )
            found.append((Account(**values), n_domains, n_mailboxes, n_emails))
        return found

    async def sending_states(
        self,
        account_ids: Sequence[int],
        month: str,
        count_ids: Collection[int],
        uncounted_plans: Sequence[str],
    ) -> list[tuple[Account, int | None]]:
        # One statement for a whole batch. The CASE never evaluates its subquery for an account
        # the caller does not ask to count, nor for an active one on a plan without a limit.
        unlimited = sa.and_(
            accounts.c.status == AccountStatus.ACTIVE, accounts.c.plan.in_(list(uncounted_plans))
        )
        counted = accounts.c.id.in_(sorted(count_ids)) if count_ids else sa.false()
        sent = sa.case((unlimited, sa.null()), (counted, _sent_in(month)), else_=sa.null())
        found: list[tuple[Account, int | None]] = []
        for chunk in chunks(sorted(set(account_ids))):
            query = sa.select(*accounts.c, sent.label("sent")).where(accounts.c.id.in_(chunk))
            for row in await self._conn.execute(query):
                values = dict(row._mapping)
                count = values.pop("sent")
                found.append((Account(**values), None if count is None else int(count)))
        return found

    async def lock(self, account_id: int) -> None:
        await self._dialect.lock_row(self._conn, accounts, account_id)

    async def set_name(self, account_id: int, name: str) -> None:
        await self._conn.execute(
            accounts.update().where(accounts.c.id == account_id).values(name=name)
        )

    async def get_by_subscription(self, subscription_id: str) -> Account | None:
        query = accounts.select().where(accounts.c.subscription_id == subscription_id)
        row = (await self._conn.execute(query)).first()
        return Account(**row._mapping) if row else None

    async def first_id(self) -> int | None:
        found = await self._conn.scalar(sa.select(sa.func.min(accounts.c.id)))
        return None if found is None else int(found)

    async def save_lifecycle(self, account: Account) -> None:
        """Write the account's plan, status, period and billing ids as given."""
        values = {
            name: getattr(account, name)
            for name in (
                "plan",
                "status",
                "trial_ends_at",
                "current_period_end",
                "cancel_at_period_end",
                "scheduled_plan",
                "billing_customer_id",
                "subscription_id",
                "subscription_modified_at",
            )
        }
        await self._conn.execute(
            accounts.update().where(accounts.c.id == account.id).values(**values)
        )
