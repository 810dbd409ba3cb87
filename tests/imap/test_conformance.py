"""Issue 16's conformance items, each as the exact exchange (byte-level transcripts).

The clock stands still here: what happens "within the same second" happens in this module."""

from __future__ import annotations

import re

import pytest

from mailmark.bootstrap import Listeners
from mailmark.core.ports import Clock
from tests.imap.raw import session
from tests.support.clock import SettableClock
from tests.support.world import World


@pytest.fixture
def clock() -> Clock:
    return SettableClock()


def _validity(lines: list[bytes]) -> int:
    found = re.search(rb"UIDVALIDITY (\d+)", lines[0])
    assert found, lines
    return int(found[1])


async def test_uidvalidity_never_repeats_for_a_name_even_within_a_second(
    listeners: Listeners, world: World
) -> None:
    """Item 1, RFC 9051 §2.3.1.1."""
    async with session(listeners.imaps_port) as client:
        assert await client.ok(b"C1", b"CREATE Projects") == [b"C1 OK CREATE completed\r\n"]
        first = _validity(await client.ok(b"S1", b"STATUS Projects (UIDVALIDITY UIDNEXT)"))
        await client.ok(b"A1", b"APPEND Projects {12+}\r\nSubject: x\r\n")
        assert await client.ok(b"D1", b"DELETE Projects") == [b"D1 OK DELETE completed\r\n"]
        assert await client.ok(b"C2", b"CREATE Projects") == [b"C2 OK CREATE completed\r\n"]
        lines = await client.ok(b"S2", b"STATUS Projects (UIDVALIDITY UIDNEXT)")
        second = _validity(lines)
        assert second > first
        assert lines[0] == b'* STATUS "Projects" (UIDVALIDITY %d UIDNEXT 1)\r\n' % second
        # And again, and for a child created with its parent.
        await client.ok(b"D2", b"DELETE Projects")
        await client.ok(b"C3", b"CREATE Projects/2027")
        third = _validity(await client.ok(b"S3", b"STATUS Projects (UIDVALIDITY)"))
        assert third > second
