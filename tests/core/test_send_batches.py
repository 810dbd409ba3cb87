"""Group commit of sends: concurrent submissions share transactions, yet each is answered on its
own (a refused one fails alone), and a campaign of many messages is one transaction."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from mailmark.core.errors import Suppressed
from mailmark.core.model import Suppression
from mailmark.core.sending import Draft
from mailmark.storage.tables import deliveries
from tests.support.world import World


def count_write_transactions(world: World) -> list[int]:
    """A counter of the write transactions the engine begins from now on."""
    seen = [0]
    engine = world.services.engine.sync_engine

    @event.listens_for(engine, "begin")
    def begun(connection: sa.Connection) -> None:
        if not connection.get_execution_options().get("mailmark_read_only"):
            seen[0] += 1

    return seen


async def queued(world: World) -> int:
    async with world.services.engine.connect() as conn:
        return int(
            (await conn.execute(sa.select(sa.func.count()).select_from(deliveries))).scalar_one()
        )


async def test_concurrent_sends_share_transactions_and_fail_alone(world: World) -> None:
    services = world.services
    async with services.uow() as uow:
        await uow.suppressions.add(
            Suppression(
                world.sales.domain_id, "gone@example.com", "bounce", "550", services.clock.now()
            )
        )
        await uow.commit()
    later = services.clock.now() + timedelta(days=1)
    recipients = [f"user{n}@example.com" for n in range(30)]
    recipients[17] = "gone@example.com"
    writes = count_write_transactions(world)

    results = await asyncio.gather(
        *(
            services.sending.submit(
                mailbox=world.sales, to=[to], subject=f"n{n}", text="x", scheduled_at=later
            )
            for n, to in enumerate(recipients)
        ),
        return_exceptions=True,
    )

    transactions = writes[0]

    assert isinstance(results[17], Suppressed)
    assert all(not isinstance(r, BaseException) for i, r in enumerate(results) if i != 17)
    assert len({r.message_id for r in results if not isinstance(r, BaseException)}) == 29
    assert await queued(world) == 29
    assert transactions < 10, f"{transactions} write transactions for 30 concurrent sends"


@pytest.mark.parametrize("count", [1, 300])
async def test_a_campaign_is_one_transaction(world: World, count: int) -> None:
    services = world.services
    drafts = [
        Draft(
            mailbox=world.sales,
            to=(f"user{n}@example.com",),
            subject="Hi",
            text="x",
            scheduled_at=services.clock.now() + timedelta(days=1),
            batch_id="batch_1",
        )
        for n in range(count)
    ]
    writes = count_write_transactions(world)

    submitted = await services.sending.submit_many(drafts)
    transactions = writes[0]

    assert transactions == 1
    assert len(submitted) == count and await queued(world) == count
