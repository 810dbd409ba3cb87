"""Affiliates, their clicks and referred accounts, the append-only ledger and the statements.

The ledger is only ever inserted into (no UPDATE or DELETE here): see core/affiliates.py."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from mailmark.core.affiliates import (
    Affiliate,
    AffiliateStatus,
    Application,
    LedgerEntry,
    LedgerKind,
    Payout,
    PayoutMethod,
    Statement,
    Totals,
    following_month,
    month_of,
)
from mailmark.storage.sql import Repository, row_values, shallow_fields
from mailmark.storage.tables import (
    accounts,
    affiliate_clicks,
    affiliate_ledger,
    affiliate_statements,
    affiliates,
    referrals,
    users,
)

_EARNINGS = (LedgerKind.COMMISSION, LedgerKind.CLAWBACK)


def _affiliate(columns: Mapping[Any, Any]) -> Affiliate:
    values = dict(columns)
    values["status"] = AffiliateStatus(values["status"])
    method = values["payout_method"]
    values["payout_method"] = PayoutMethod(method) if method else None
    return Affiliate(**values)


def _entry(row: Any) -> LedgerEntry:
    values = {name: value for name, value in row._mapping.items() if name != "id"}
    values["kind"] = LedgerKind(values["kind"])
    return LedgerEntry(**values)


def _statement(row: Any) -> Statement:
    return Statement(**row._mapping)


def _owner_email() -> sa.ScalarSelect[str]:
    """The email of the affiliate's account owner, correlated to the outer `affiliates`."""
    return (
        sa.select(sa.func.min(users.c.email))
        .where(users.c.account_id == affiliates.c.account_id, users.c.role == "owner")
        .correlate(affiliates)
        .scalar_subquery()
    )


def _sum(*where: sa.ColumnElement[bool]) -> sa.Select[Any]:
    return sa.select(sa.func.coalesce(sa.func.sum(affiliate_ledger.c.amount_cents), 0)).where(
        *where
    )


class SqlAffiliates(Repository):
    async def add(self, affiliate: Affiliate) -> Affiliate:
        new_id = await self._insert(affiliates, row_values(affiliate))
        return Affiliate(**{**affiliate.__dict__, "id": new_id})

    async def save(self, affiliate: Affiliate) -> None:
        values = row_values(affiliate)
        del values["account_id"], values["code"]
        await self._conn.execute(
            affiliates.update().where(affiliates.c.id == affiliate.id).values(**values)
        )

    async def _one(self, *where: sa.ColumnElement[bool]) -> Affiliate | None:
        row = (await self._conn.execute(affiliates.select().where(*where))).first()
        return _affiliate(row._mapping) if row else None

    async def get(self, affiliate_id: int) -> Affiliate | None:
        return await self._one(affiliates.c.id == affiliate_id)

    async def get_by_account(self, account_id: int) -> Affiliate | None:
        return await self._one(affiliates.c.account_id == account_id)

    async def get_by_code(self, code: str) -> Affiliate | None:
        return await self._one(affiliates.c.code == code)

    async def lock(self, affiliate_id: int) -> None:
        await self._dialect.lock_row(self._conn, affiliates, affiliate_id)

    async def applications(self) -> list[Application]:
        pending_first = sa.case((affiliates.c.status == AffiliateStatus.PENDING.value, 0), else_=1)
        query = (
            sa.select(
                affiliates, accounts.c.name.label("account_name"), _owner_email().label("email")
            )
            .join(accounts, accounts.c.id == affiliates.c.account_id)
            .order_by(pending_first, affiliates.c.applied_at.desc(), affiliates.c.id.desc())
        )
        found = []
        for row in await self._conn.execute(query):
            values = dict(row._mapping)
            name, email = values.pop("account_name"), values.pop("email")
            found.append(Application(_affiliate(values), name, email or ""))
        return found

    async def approved_ids(self) -> list[int]:
        query = sa.select(affiliates.c.id).where(
            affiliates.c.status == AffiliateStatus.APPROVED.value
        )
        return [int(row[0]) for row in await self._conn.execute(query.order_by(affiliates.c.id))]

    async def add_click(self, affiliate_id: int, day: str) -> None:
        # As the usage row: UPDATE the day's counter, INSERT it on the day's first click, and
        # add to the row a racing first click created.
        for _ in range(2):
            changed = await self._conn.execute(
                affiliate_clicks.update()
                .where(
                    affiliate_clicks.c.affiliate_id == affiliate_id,
                    affiliate_clicks.c.day == day,
                )
                .values(clicks=affiliate_clicks.c.clicks + 1)
            )
            if changed.rowcount:
                return
            inserted = await self._conn.execute(
                self._dialect.insert_or_ignore(affiliate_clicks).values(
                    affiliate_id=affiliate_id, day=day, clicks=1
                )
            )
            if inserted.rowcount:
                return
        raise RuntimeError(f"click counter of affiliate {affiliate_id} could not be written")

    async def add_referral(
        self, account_id: int, affiliate_id: int, clicked_at: datetime, now: datetime
    ) -> bool:
        inserted = await self._conn.execute(
            self._dialect.insert_or_ignore(referrals).values(
                account_id=account_id,
                affiliate_id=affiliate_id,
                clicked_at=clicked_at,
                signed_up_at=now,
            )
        )
        return bool(inserted.rowcount)

    async def referral_of(self, account_id: int) -> int | None:
        query = sa.select(referrals.c.affiliate_id).where(referrals.c.account_id == account_id)
        found = (await self._conn.execute(query)).scalar()
        return None if found is None else int(found)

    async def add_entry(self, entry: LedgerEntry) -> bool:
        values = shallow_fields(entry)
        values["kind"] = entry.kind.value
        inserted = await self._conn.execute(
            self._dialect.insert_or_ignore(affiliate_ledger).values(**values)
        )
        return bool(inserted.rowcount)

    async def entries_for_order(self, order_id: str) -> list[LedgerEntry]:
        query = (
            affiliate_ledger.select()
            .where(affiliate_ledger.c.order_id == order_id)
            .order_by(affiliate_ledger.c.id)
        )
        return [_entry(row) for row in await self._conn.execute(query)]

    async def totals(self, affiliate_id: int) -> Totals:
        mine = affiliate_ledger.c.affiliate_id == affiliate_id
        kinds = [kind.value for kind in _EARNINGS]
        earned = await self._conn.scalar(_sum(mine, affiliate_ledger.c.kind.in_(kinds)))
        paid = await self._conn.scalar(
            _sum(mine, affiliate_ledger.c.kind == LedgerKind.PAYOUT.value)
        )
        paying = await self._conn.scalar(
            sa.select(sa.func.count(sa.distinct(affiliate_ledger.c.referred_account_id))).where(
                mine, affiliate_ledger.c.kind == LedgerKind.COMMISSION.value
            )
        )
        clicks = await self._conn.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(affiliate_clicks.c.clicks), 0)).where(
                affiliate_clicks.c.affiliate_id == affiliate_id
            )
        )
        signups = await self._conn.scalar(
            sa.select(sa.func.count()).where(referrals.c.affiliate_id == affiliate_id)
        )
        return Totals(
            clicks=int(clicks or 0),
            signups=int(signups or 0),
            paying_customers=int(paying or 0),
            earned_cents=int(earned or 0),
            paid_cents=-int(paid or 0),
        )

    async def month_sums(self, affiliate_id: int) -> dict[str, tuple[int, int]]:
        amount = affiliate_ledger.c.amount_cents
        earning = affiliate_ledger.c.kind.in_([kind.value for kind in _EARNINGS])
        query = (
            sa.select(
                affiliate_ledger.c.month,
                sa.func.coalesce(sa.func.sum(sa.case((earning, amount), else_=0)), 0),
                sa.func.coalesce(sa.func.sum(amount), 0),
            )
            .where(affiliate_ledger.c.affiliate_id == affiliate_id)
            .group_by(affiliate_ledger.c.month)
        )
        return {
            str(month): (int(earned), int(net))
            for month, earned, net in await self._conn.execute(query)
        }

    async def first_open_month(self, affiliate_id: int) -> str | None:
        last = await self._conn.scalar(
            sa.select(sa.func.max(affiliate_statements.c.month)).where(
                affiliate_statements.c.affiliate_id == affiliate_id
            )
        )
        if last is not None:
            return following_month(str(last))
        affiliate = await self.get(affiliate_id)
        if affiliate is None or affiliate.reviewed_at is None:
            return None
        return month_of(affiliate.reviewed_at)

    async def add_statement(self, statement: Statement) -> None:
        await self._conn.execute(affiliate_statements.insert().values(**shallow_fields(statement)))

    async def statements(self, affiliate_id: int) -> list[Statement]:
        query = (
            affiliate_statements.select()
            .where(affiliate_statements.c.affiliate_id == affiliate_id)
            .order_by(affiliate_statements.c.month.desc())
        )
        return [_statement(row) for row in await self._conn.execute(query)]

    async def payouts(self, month: str) -> list[Payout]:
        query = (
            sa.select(
                affiliates,
                accounts.c.name.label("account_name"),
                _owner_email().label("email"),
                *[column.label(f"statement_{column.name}") for column in affiliate_statements.c],
            )
            .join(affiliate_statements, affiliate_statements.c.affiliate_id == affiliates.c.id)
            .join(accounts, accounts.c.id == affiliates.c.account_id)
            .where(affiliate_statements.c.month == month, affiliate_statements.c.payout_cents > 0)
            .order_by(affiliates.c.id)
        )
        found = []
        for row in await self._conn.execute(query):
            values = dict(row._mapping)
            statement = Statement(
                **{
                    column.name: values.pop(f"statement_{column.name}")
                    for column in affiliate_statements.c
                }
            )
            name, email = values.pop("account_name"), values.pop("email")
            found.append(Payout(_affiliate(values), name, email or "", statement))
        return found
