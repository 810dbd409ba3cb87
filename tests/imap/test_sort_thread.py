"""SORT and THREAD (RFC 5256), byte for byte over IMAPS, and through imaplib's sort() and
thread(): a second client library driving them."""

from __future__ import annotations

import asyncio
import imaplib
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from mailmark.bootstrap import Listeners
from tests.imap.raw import Raw, session
from tests.support.tls import client_tls
from tests.support.world import World

# (arrival day, sent day and hour, header fields) of the messages, days counted from ten days
# ago: the conversation "Plan" (1, 2, 4, 5: 2 and 4 answer 1, 5 answers 2), "Other" (3), and 6,
# a reply to "Other" by subject only (no References), which delivery threads with 3.
MESSAGES = [
    (
        0,
        (0, 9),
        b"Message-ID: <a@x.test>\r\nFrom: Carol <carol@remote.test>\r\nTo: zed@acme.test\r\n"
        b"Subject: Plan\r\n",
    ),
    (
        1,
        (1, 9),
        b"Message-ID: <b@x.test>\r\nIn-Reply-To: <a@x.test>\r\nReferences: <a@x.test>\r\n"
        b"From: alice@remote.test\r\nTo: bob@acme.test\r\nSubject: Re: Plan\r\n",
    ),
    (
        2,
        (2, 9),
        b"Message-ID: <c@x.test>\r\nFrom: Bob <bob@remote.test>\r\nTo: amy@acme.test\r\n"
        b"Subject: [list] Other\r\n",
    ),
    (
        # Written before message 3 was, though it arrived after it.
        3,
        (1, 12),
        b"Message-ID: <d@x.test>\r\nReferences: <a@x.test>\r\nFrom: dave@remote.test\r\n"
        b"To: amy@acme.test\r\nSubject: RE: Plan\r\n",
    ),
    (
        4,
        (4, 9),
        b"Message-ID: <e@x.test>\r\nReferences: <a@x.test> <b@x.test>\r\n"
        b"From: Carol <carol@remote.test>\r\nTo: bob@acme.test\r\nSubject: Re: Re: Plan\r\n",
    ),
    (
        5,
        (5, 9),
        b"Message-ID: <f@x.test>\r\nFrom: amy@remote.test\r\nTo: bob@acme.test\r\n"
        b"Subject: Re: Other\r\n",
    ),
]
# Sizes, each message padded to its own: 3 is the largest, then 6, 5, 2, 4, 1.
SIZES = {1: 300, 2: 330, 3: 500, 4: 320, 5: 340, 6: 400}


async def _fill(client: Raw) -> None:
    first = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=10)
    for number, (arrival, (sent_day, sent_hour), fields) in enumerate(MESSAGES, start=1):
        sent = first.replace(hour=sent_hour) + timedelta(days=sent_day)
        head = fields + b"Date: " + format_datetime(sent).encode() + b"\r\n\r\n"
        raw = head + b"x" * (SIZES[number] - len(head) - 2) + b"\r\n"
        arrived = (first + timedelta(days=arrival)).strftime("%d-%b-%Y %H:%M:%S +0000")
        await client.send(
            b'A%d APPEND INBOX "%s" {%d+}\r\n%s\r\n' % (number, arrived.encode(), len(raw), raw)
        )
        assert (await client.until(b"A%d" % number))[-1].startswith(b"A%d OK" % number)


async def test_sort_orders_by_each_key_with_ties_in_mailbox_order(
    listeners: Listeners, world: World
) -> None:
    async with session(listeners.imaps_port) as client:
        assert b" SORT " in (await client.ok(b"C1", b"CAPABILITY"))[0]
        await _fill(client)
        await client.ok(b"S1", b"SELECT INBOX")

        async def sorted_by(criteria: bytes) -> bytes:
            [line, done] = await client.ok(b"T1", criteria)
            assert done == b"T1 OK SORT completed\r\n"
            return line

        assert await sorted_by(b"SORT (ARRIVAL) UTF-8 ALL") == b"* SORT 1 2 3 4 5 6\r\n"
        # The Date field, not the arrival: 4 was written before 3.
        assert await sorted_by(b"SORT (DATE) UTF-8 ALL") == b"* SORT 1 2 4 3 5 6\r\n"
        assert await sorted_by(b"SORT (REVERSE DATE) UTF-8 ALL") == b"* SORT 6 5 3 4 2 1\r\n"
        # Base subjects (RFC 5256 §2.1): "other" x2, then "plan" x4; ties in mailbox order.
        assert await sorted_by(b"SORT (SUBJECT) UTF-8 ALL") == b"* SORT 3 6 1 2 4 5\r\n"
        # FROM compares local parts (alice, amy, bob, carol, carol, dave); the two carols are
        # ordered by the second key, newest first.
        assert await sorted_by(b"SORT (FROM REVERSE DATE) UTF-8 ALL") == b"* SORT 2 6 3 5 1 4\r\n"
        assert await sorted_by(b"SORT (TO SUBJECT) UTF-8 ALL") == b"* SORT 3 4 6 2 5 1\r\n"
        assert await sorted_by(b"SORT (REVERSE SIZE) UTF-8 ALL") == b"* SORT 3 6 5 2 4 1\r\n"
        assert await sorted_by(b"SORT (SUBJECT) UTF-8 FROM carol") == b"* SORT 1 5\r\n"
        # UID SORT names UIDs: after an expunge, sequence numbers and UIDs differ.
        await client.ok(b"E1", b"STORE 1 +FLAGS.SILENT (\\Deleted)")
        await client.ok(b"E2", b"EXPUNGE")
        assert await sorted_by(b"UID SORT (REVERSE ARRIVAL) UTF-8 ALL") == b"* SORT 6 5 4 3 2\r\n"
        assert await sorted_by(b"SORT (REVERSE ARRIVAL) UTF-8 ALL") == b"* SORT 5 4 3 2 1\r\n"
        assert await sorted_by(b"SORT (DATE) UTF-8 SUBJECT nothing-like-it") == b"* SORT\r\n"


async def test_thread_by_references_and_by_ordered_subject(
    listeners: Listeners, world: World
) -> None:
    async with session(listeners.imaps_port) as client:
        capability = (await client.ok(b"C1", b"CAPABILITY"))[0]
        assert b" THREAD=REFERENCES " in capability and b" THREAD=ORDEREDSUBJECT " in capability
        await _fill(client)
        await client.ok(b"S1", b"SELECT INBOX")
        # 2 and 4 answer 1 (children by sent date: 2, then 4), 5 answers 2; 3 and 6 share a
        # conversation without a References link between them: siblings under no parent.
        assert await client.ok(b"T1", b"THREAD REFERENCES UTF-8 ALL") == [
            b"* THREAD (1 (2 5)(4))((3)(6))\r\n",
            b"T1 OK THREAD completed\r\n",
        ]
        assert await client.ok(b"T2", b"THREAD ORDEREDSUBJECT UTF-8 ALL") == [
            b"* THREAD (1 (2)(4)(5))(3 6)\r\n",
            b"T2 OK THREAD completed\r\n",
        ]
        # Only the matching messages are threaded: without 2, 5's nearest parent is 1.
        assert await client.ok(b"T3", b"THREAD REFERENCES UTF-8 NOT FROM alice") == [
            b"* THREAD (1 (4)(5))((3)(6))\r\n",
            b"T3 OK THREAD completed\r\n",
        ]
        await client.ok(b"E1", b"STORE 3 +FLAGS.SILENT (\\Deleted)")
        await client.ok(b"E2", b"EXPUNGE")
        assert await client.ok(b"T4", b"UID THREAD REFERENCES UTF-8 ALL") == [
            b"* THREAD (1 (2 5)(4))(6)\r\n",
            b"T4 OK THREAD completed\r\n",
        ]
        assert await client.ok(b"T5", b"THREAD REFERENCES UTF-8 SUBJECT none-such") == [
            b"* THREAD\r\n",
            b"T5 OK THREAD completed\r\n",
        ]


async def test_bad_sort_and_thread_commands_are_refused_clearly(
    listeners: Listeners, world: World
) -> None:
    async with session(listeners.imaps_port, select="INBOX") as client:
        refused = {
            b"B1 SORT (COLOUR) UTF-8 ALL": b"B1 BAD ",
            b"B2 SORT (REVERSE) UTF-8 ALL": b"B2 BAD ",
            b"B3 SORT () UTF-8 ALL": b"B3 BAD ",
            b"B4 SORT (DATE) ALL": b"B4 BAD ",
            b"B5 THREAD SPAGHETTI UTF-8 ALL": b"B5 BAD ",
            b"B6 SORT (DATE) KOI8-R ALL": b"B6 NO [BADCHARSET (UTF-8 US-ASCII)]",
        }
        for command, answer in refused.items():
            await client.send(command + b"\r\n")
            lines = await client.until(command.split(b" ")[0])
            assert lines[-1].startswith(answer), lines
        assert await client.ok(b"N1", b"NOOP") == [b"N1 OK NOOP completed\r\n"]


async def test_imaplib_sorts_and_threads(listeners: Listeners, world: World) -> None:
    async with session(listeners.imaps_port) as client:
        await _fill(client)

    def scenario() -> tuple[list[bytes], list[bytes]]:
        imap = imaplib.IMAP4_SSL("127.0.0.1", listeners.imaps_port, ssl_context=client_tls())
        try:
            imap.login("sales@acme.test", "sales-pass-1")
            imap.select("INBOX")
            _, by_date = imap.sort("(REVERSE DATE)", "UTF-8", "ALL")
            _, threads = imap.uid("THREAD", "REFERENCES", "UTF-8", "ALL")
            return by_date, threads
        finally:
            imap.logout()

    by_date, threads = await asyncio.to_thread(scenario)
    assert by_date == [b"6 5 3 4 2 1"]
    assert threads == [b"(1 (2 5)(4))((3)(6))"]
