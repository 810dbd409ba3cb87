"""Issue 16 item 12: a delivery report the outbound queue files in the sender's INBOX wakes an
IMAP session idling there at once (the poll interval here is longer than any test)."""

from __future__ import annotations

import pytest

from mailmark.bootstrap import Listeners
from mailmark.config import Settings
from tests.imap.raw import NO_POLL, session
from tests.support.world import World


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"imap_poll_interval": NO_POLL})


async def test_a_bounce_notice_wakes_idle_at_once(listeners: Listeners, world: World) -> None:
    async with session(listeners.imaps_port, select="INBOX") as idler:
        await idler.send(b"I1 IDLE\r\n")
        assert await idler.line() == b"+ idling\r\n"
        # No MX and no address for nowhere.test in the fake DNS: the queue gives up at once and
        # files an RFC 3464 report in sales' INBOX.
        await world.services.sending.submit(
            mailbox=world.sales, to=["someone@nowhere.test"], subject="Lost", text="Hello.\n"
        )
        assert await idler.line(timeout=30) == b"* 1 EXISTS\r\n"
        assert await idler.line() == b"* 1 RECENT\r\n"
        await idler.send(b"DONE\r\n")
        assert await idler.line() == b"I1 OK IDLE terminated\r\n"
