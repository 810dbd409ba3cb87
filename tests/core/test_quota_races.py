"""Plan limits hold when creations race each other (several nodes on one PostgreSQL)."""

from __future__ import annotations

import asyncio

from mailmark.bootstrap import Services
from mailmark.core.errors import QuotaExceeded


async def test_concurrent_mailbox_creations_never_exceed_the_plan(services: Services) -> None:
    await services.accounts.create(
        "racer", owner_email="o@race.test", password="owner-pass-1", plan="starter"
    )
    await services.domains.add("race.test", account_name="racer", trust=True)
    results = await asyncio.gather(
        *(services.mailboxes.create(f"box{i}@race.test") for i in range(8)), return_exceptions=True
    )
    created = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, QuotaExceeded)]
    assert (len(created), len(refused)) == (3, 5), results
    assert len(await services.mailboxes.list("race.test")) == 3
