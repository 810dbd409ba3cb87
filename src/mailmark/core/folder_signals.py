"""In-process change notification per mailbox: IMAP IDLE wakes when something commits.

Every mutation of a mailbox's folders (delivery, flags, copy, expunge, append, folder changes)
calls `publish(mailbox_id)` after its commit. A session remembers `generation(mailbox_id)` when it
last looked at its folder and then awaits `wait(mailbox_id, timeout, after=that)`: a change
published in between wakes it at once, so nothing slips through the gap.

Nodes sharing a PostgreSQL database reach each other through `relay` (set by bootstrap to the
node bus): `publish` hands the mailbox id to it, and the bus calls `wake` on every other node.
After the bus lost its connection (notices may have been missed), `wake_all` wakes everyone.
Sessions also poll the folder's HIGHESTMODSEQ now and then, should a notice be lost anyway.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class FolderSignals:
    def __init__(self) -> None:
        self._generations: dict[int, int] = {}
        # Added to every mailbox's generation: `wake_all` moves them all at once.
        self._epoch = 0
        # Called with the mailbox id of every change published here, to tell the other nodes.
        self.relay: Callable[[int], None] | None = None
        # One event per mailbox while someone waits on it, with the number of its waiters.
        self._events: dict[int, tuple[asyncio.Event, list[int]]] = {}

    def generation(self, mailbox_id: int) -> int:
        """A number that grows with every change published for the mailbox."""
        return self._epoch + self._generations.get(mailbox_id, 0)

    def publish(self, mailbox_id: int) -> None:
        """Wake every waiter on the mailbox, here and on the other nodes. Call only after the
        change has committed."""
        self.wake(mailbox_id)
        if self.relay is not None:
            self.relay(mailbox_id)

    def wake(self, mailbox_id: int) -> None:
        """Wake this process's waiters on the mailbox (a change another node published)."""
        self._generations[mailbox_id] = self._generations.get(mailbox_id, 0) + 1
        entry = self._events.pop(mailbox_id, None)
        if entry is not None:
            entry[0].set()

    def wake_all(self) -> None:
        """Wake every waiter on every mailbox once (changes may have been missed)."""
        self._epoch += 1
        events, self._events = self._events, {}
        for event, _ in events.values():
            event.set()

    async def wait(self, mailbox_id: int, timeout: float, after: int | None = None) -> bool:
        """Wait up to `timeout` seconds for a change; True when one was published (or had been
        since generation `after`), False on timeout."""
        if after is not None and self.generation(mailbox_id) != after:
            return True
        entry = self._events.get(mailbox_id)
        if entry is None:
            entry = self._events[mailbox_id] = (asyncio.Event(), [0])
        event, waiters = entry
        waiters[0] += 1
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            return False
        finally:
            waiters[0] -= 1
            # The last waiter to leave drops the event, so idle mailboxes hold nothing.
            if waiters[0] == 0 and self._events.get(mailbox_id) is entry:
                del self._events[mailbox_id]
        return True
