"""A blob reused by a new delivery survives a mailbox deletion removing it at the same moment."""

from __future__ import annotations

import asyncio
import hashlib

from tests.support.world import World, stored_copies

MESSAGE = b"From: a@example.org\r\nTo: sales@acme.test\r\nSubject: same bytes\r\n\r\nIdentical.\r\n"


async def test_delivery_restores_a_reused_blob_that_a_deleter_removed_under_it(
    world: World,
) -> None:
    services = world.services
    await services.delivery.deliver(MESSAGE, recipients=[world.sales], mail_from="a@example.org")
    key = hashlib.sha256(MESSAGE).hexdigest()

    # Act as MailboxService.delete does: hold the blob's lock, find it unreferenced, remove it.
    async with services.uow() as uow:
        await uow.messages.lock_blob(key)
        second = asyncio.create_task(
            services.delivery.deliver(
                MESSAGE, recipients=[world.support], mail_from="a@example.org"
            )
        )
        await asyncio.sleep(0.5)  # the delivery finds the blob present, then waits for the lock
        assert not second.done()
        await services.blobs.delete(key)
        await uow.commit()
    await asyncio.wait_for(second, 10)

    assert await services.blobs.exists(key)
    [copy] = await stored_copies(services, world.support)
    assert copy.data.endswith(MESSAGE)
