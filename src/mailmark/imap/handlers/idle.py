"""IDLE (RFC 2177): report changes as they commit until the client sends DONE.

Changes on this node wake the session through the folder signals at once; changes made by
other nodes sharing the database are found by polling HIGHESTMODSEQ every poll interval (MAILMARK_IMAP_POLL_INTERVAL)."""

from __future__ import annotations

import asyncio
import contextlib
import time

from mailmark.imap import encoder
from mailmark.imap.commands import Command
from mailmark.imap.session import Done, Reply, Session


async def do_idle(session: Session, command: Command) -> Done | None:
    await session.send(encoder.continuation("idling"))
    done_line = asyncio.ensure_future(session.reader.read_line())
    deadline = time.monotonic() + session.config.idle_timeout
    try:
        while True:
            generation = None
            if session.selected is not None:
                await session.announce_changes(expunges=True)
                generation = session.selected.generation
            waiter = asyncio.ensure_future(
                session.signals.wait(
                    session.mailbox_id, session.config.poll_interval, after=generation
                )
            )
            remaining = deadline - time.monotonic()
            finished, _ = await asyncio.wait(
                {done_line, waiter}, timeout=max(remaining, 0), return_when=asyncio.FIRST_COMPLETED
            )
            if done_line not in finished:
                waiter.cancel()
                if not finished:
                    raise TimeoutError  # the autologout timer runs during IDLE too
                if session.selected is not None and not waiter.result():
                    session.selected.polled_at = 0.0  # quiet here: look for other nodes' changes
                continue
            waiter.cancel()
            line = done_line.result()
            if line.upper() != b"DONE":
                raise Reply("BAD", "Expected DONE to end IDLE")
            return Done("IDLE terminated")
    finally:
        if not done_line.done():
            done_line.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await done_line
