"""Group commit: concurrent deliveries share one transaction, yet each succeeds or fails on its own."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging

import pytest

from mailmark.core.delivery import DeliveryReceipt
from mailmark.core.model import Mailbox
from tests.support.world import World, stored_copies


def message(n: int, subject: str = "Order") -> bytes:
    return (
        f"From: Customer {n} <c{n}@example.org>\r\n"
        f"To: sales@acme.test\r\n"
        f"Subject: {subject} {n}\r\n"
        f"Message-ID: <order-{n}@example.org>\r\n"
        f"\r\n"
        f"Please send {n} widgets.\r\n"
    ).encode()


def blob_files(world: World) -> list[str]:
    root = world.services.settings.blob_path
    return sorted(path.name for path in root.glob("*/*") if path.is_file())


def bogus_mailbox(world: World) -> Mailbox:
    """A recipient that passed RCPT but has no folders (e.g. deleted meanwhile): recording fails."""
    return dataclasses.replace(world.sales, id=987_654, local_part="ghost")


async def test_fifty_concurrent_deliveries_get_gap_free_uids(world: World) -> None:
    raws = [message(n) for n in range(50)]
    receipts = await asyncio.gather(
        *(
            world.services.delivery.deliver(raw, recipients=[world.sales], mail_from=f"c{n}@example.org")
            for n, raw in enumerate(raws)
        )
    )

    assert all(isinstance(r, DeliveryReceipt) for r in receipts)
    assert len({r.message_id for r in receipts}) == 50
    uids = [r.placements[0].uid for r in receipts]
    assert sorted(uids) == list(range(1, 51))

    copies = await stored_copies(world.services, world.sales)
    assert sorted(c.uid for c in copies) == list(range(1, 51))
    assert {c.folder for c in copies} == {"INBOX"}
    assert sorted(c.data for c in copies) == sorted(raws)
    assert len(blob_files(world)) == 50

    async with world.services.uow() as uow:
        inbox = await uow.folders.get_by_name(world.sales.id or 0, "INBOX")
    assert inbox is not None and inbox.uid_next == 51


async def test_one_bad_request_fails_alone_and_leaves_no_orphan_blob(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="mailmark.core.delivery")
    good = [message(n) for n in range(9)]
    bad = message(99, subject="Lost")
    calls = [
        world.services.delivery.deliver(raw, recipients=[world.sales], mail_from="c@example.org")
        for raw in good[:4]
    ]
    calls.append(
        world.services.delivery.deliver(bad, recipients=[bogus_mailbox(world)], mail_from="c@example.org")
    )
    calls += [
        world.services.delivery.deliver(raw, recipients=[world.sales], mail_from="c@example.org")
        for raw in good[4:]
    ]
    outcomes = await asyncio.gather(*calls, return_exceptions=True)

    failures = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(failures) == 1 and outcomes[4] is failures[0]
    assert isinstance(failures[0], LookupError)
    # The batch really was shared, and split up only because of the bad request.
    assert any("recording one by one" in r.getMessage() for r in caplog.records)

    copies = await stored_copies(world.services, world.sales)
    assert sorted(c.uid for c in copies) == list(range(1, 10))  # no UID burnt by the failure
    assert sorted(c.data for c in copies) == sorted(good)
    bad_key = hashlib.sha256(bad).hexdigest()
    assert not await world.services.blobs.exists(bad_key)
    assert blob_files(world) == sorted(hashlib.sha256(raw).hexdigest() for raw in good)


async def test_failed_request_keeps_a_blob_that_a_stored_neighbour_shares(world: World) -> None:
    shared = message(1)
    outcomes = await asyncio.gather(
        world.services.delivery.deliver(shared, recipients=[world.sales], mail_from="c@example.org"),
        world.services.delivery.deliver(shared, recipients=[bogus_mailbox(world)], mail_from="c@example.org"),
        world.services.delivery.deliver(message(2), recipients=[world.sales], mail_from="c@example.org"),
        return_exceptions=True,
    )

    assert isinstance(outcomes[0], DeliveryReceipt) and isinstance(outcomes[2], DeliveryReceipt)
    assert isinstance(outcomes[1], LookupError)
    assert await world.services.blobs.get(outcomes[0].blob_key) == shared


async def test_a_caller_that_goes_away_does_not_fail_its_batch(world: World) -> None:
    """An SMTP client disconnecting mid-DATA cancels its own wait, and nobody else's."""
    raws = [message(n) for n in range(10)]
    tasks = [
        asyncio.create_task(
            world.services.delivery.deliver(raw, recipients=[world.sales], mail_from="c@example.org")
        )
        for raw in raws
    ]
    await asyncio.sleep(0)  # every task has queued its request and waits for its answer
    tasks[3].cancel()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)

    assert isinstance(outcomes[3], asyncio.CancelledError)
    others = [o for i, o in enumerate(outcomes) if i != 3]
    assert all(isinstance(o, DeliveryReceipt) for o in others), others
    uids = sorted(c.uid for c in await stored_copies(world.services, world.sales))
    # The cancelled request was already in the committed batch: it is stored, which is safe (the
    # client never saw a 250 and will retry); what matters is that the others were answered.
    assert uids == list(range(1, 11))
