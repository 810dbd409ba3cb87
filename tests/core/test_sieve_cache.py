"""Delivery's cache of compiled Sieve scripts: a change saved on this node applies to the next
message; one written by another node (straight into the shared database here) within
RECHECK_AFTER."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from mailmark.core.dispositions import Disposition, InboundMessage
from mailmark.core.ports import Clock
from mailmark.core.sieve.filter import RECHECK_AFTER
from mailmark.storage.tables import sieve_scripts
from tests.support.clock import SettableClock
from tests.support.world import World

SALES = "sales@acme.test"


@pytest.fixture
def clock() -> Clock:
    return SettableClock()


def message() -> InboundMessage:
    return InboundMessage(
        raw=b"From: ann@example.org\r\nSubject: Hi\r\n\r\nHello.\r\n",
        trace_prefix=b"",
        mail_from="ann@example.org",
        rcpt_tos=[SALES],
        transaction_id="T1",
    )


async def test_changes_from_another_node_apply_within_the_recheck_time(
    world: World, clock: SettableClock
) -> None:
    rule = world.services.sieve_filter
    start = Disposition(world.sales, ("INBOX",))
    assert (await rule.apply(message(), start)).folders == ("INBOX",)
    # Saved here: the next message sees it at once.
    await world.services.sieve.put(SALES, "discard;")
    assert (await rule.apply(message(), start)).folders == ()
    # Written by another node: the cached script runs until its revision is checked again.
    async with world.services.engine.begin() as conn:
        await conn.execute(
            sa.update(sieve_scripts).values(content="keep;", revision=sieve_scripts.c.revision + 1)
        )
    assert (await rule.apply(message(), start)).folders == ()
    clock.advance(RECHECK_AFTER + timedelta(seconds=1))
    assert (await rule.apply(message(), start)).folders == ("INBOX",)
