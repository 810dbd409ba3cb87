"""Issue 16's conformance items, each as the exact exchange (byte-level transcripts).

The clock stands still here: what happens "within the same second" happens in this module."""

from __future__ import annotations

import asyncio
import imaplib
import re

import pytest

from mailmark.bootstrap import Listeners
from mailmark.core.ports import Clock
from mailmark.imap.reader import MAX_DISCARD
from tests.imap.raw import session
from tests.support.clock import SettableClock
from tests.support.tls import client_tls
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


QP_MESSAGE = (
    b"From: a@example.org\r\n"
    b"Subject: padded\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"Caf=C3=A9 au lait   \r\n"
    b"a long line that conti=  \r\n"
    b"nues here\r\n"
    b"tab at the end\t\r\n"
    b"last line"
)
QP_DECODED = (
    b"Caf\xc3\xa9 au lait\r\na long line that continues here\r\ntab at the end\r\nlast line"
)


async def test_binary_undoes_quoted_printable_padding_and_soft_breaks(
    listeners: Listeners, world: World
) -> None:
    """Item 3, RFC 2045 §6.7 rules 3 and 5, through RFC 3516 BINARY."""
    assert world.sales.id is not None
    await world.services.mailstore.append(world.sales.id, "INBOX", QP_MESSAGE)
    async with session(listeners.imaps_port, select="INBOX") as client:
        assert await client.ok(b"B1", b"FETCH 1 (BINARY.SIZE[1] BINARY.PEEK[1])") == [
            b"* 1 FETCH (BINARY.SIZE[1] %d BINARY[1] {%d}\r\n" % (len(QP_DECODED), len(QP_DECODED))
            + QP_DECODED
            + b")\r\n",
            b"B1 OK FETCH completed\r\n",
        ]
        assert await client.ok(b"B2", b"FETCH 1 (BINARY.PEEK[1]<14.20>)") == [
            b"* 1 FETCH (BINARY[1]<14> {20}\r\n" + QP_DECODED[14:34] + b")\r\n",
            b"B2 OK FETCH completed\r\n",
        ]


async def test_envelope_defaults_sender_and_reply_to_and_keeps_the_comment_name(
    listeners: Listeners, world: World
) -> None:
    """Item 4, RFC 9051 §7.5.2: an empty Sender or Reply-To is the From; the comment of
    `user@domain (Real Name)` is the name."""
    assert world.sales.id is not None
    raw = (
        b"From: chloe@example.org (Chloe Martin)\r\n"
        b"Sender:\r\n"
        b"Reply-To:  \r\n"
        b'To: "Bob" <bob@example.net> (work), (nobody\'s name) carol@example.net\r\n'
        b"Subject: comments\r\n"
        b"Message-ID: <c-1@example.org>\r\n"
        b"\r\n"
        b"Hi.\r\n"
    )
    await world.services.mailstore.append(world.sales.id, "INBOX", raw)
    chloe = b'(("Chloe Martin" NIL "chloe" "example.org"))'
    async with session(listeners.imaps_port, select="INBOX") as client:
        assert await client.ok(b"E1", b"FETCH 1 (ENVELOPE)") == [
            b'* 1 FETCH (ENVELOPE (NIL "comments" '
            + chloe
            + b" "
            + chloe
            + b" "
            + chloe
            + b' (("Bob" NIL "bob" "example.net")(NIL NIL "carol" "example.net"))'
            b' NIL NIL NIL "<c-1@example.org>"))\r\n',
            b"E1 OK FETCH completed\r\n",
        ]


SYSTEM = b"\\Seen \\Answered \\Flagged \\Deleted \\Draft"


async def test_a_keyword_added_elsewhere_is_in_flags_before_any_fetch_uses_it(
    listeners: Listeners, world: World
) -> None:
    """Item 9, RFC 9051 §7.3.5, with three sessions: one adds a keyword; one FETCHes (FLAGS
    comes first, with PERMANENTFLAGS); one that EXAMINEd the folder hears of it on NOOP."""
    assert world.sales.id is not None
    await world.services.mailstore.append(world.sales.id, "INBOX", b"Subject: one\r\n\r\nx\r\n")
    port = listeners.imaps_port
    async with (
        session(port, select="INBOX") as fetcher,
        session(port) as reader,
        session(port, select="INBOX") as writer,
    ):
        await reader.ok(b"X1", b"EXAMINE INBOX")
        assert await writer.ok(b"S1", b"STORE 1 +FLAGS.SILENT ($Important)") == [
            b"* FLAGS (" + SYSTEM + b" $Important)\r\n",
            b"* OK [PERMANENTFLAGS (" + SYSTEM + b" $Important \\*)] Flags permitted\r\n",
            b"S1 OK STORE completed\r\n",
        ]
        assert await fetcher.ok(b"F1", b"FETCH 1 (FLAGS)") == [
            b"* FLAGS (" + SYSTEM + b" $Important)\r\n",
            b"* OK [PERMANENTFLAGS (" + SYSTEM + b" $Important \\*)] Flags permitted\r\n",
            # The fetcher selected the folder first: the message is \Recent to it (item 7).
            b"* 1 FETCH (FLAGS ($Important \\Recent))\r\n",
            b"F1 OK FETCH completed\r\n",
        ]
        assert await fetcher.ok(b"N1", b"NOOP") == [b"N1 OK NOOP completed\r\n"]
        assert await reader.ok(b"N2", b"NOOP") == [
            b"* FLAGS (" + SYSTEM + b" $Important)\r\n",
            b"* 1 FETCH (FLAGS ($Important) UID 1)\r\n",
            b"N2 OK NOOP completed\r\n",
        ]


async def test_recent_belongs_to_the_first_imap4rev1_session_to_see_a_message(
    listeners: Listeners, world: World
) -> None:
    """Item 7, RFC 3501 §2.3.2 and §6.4.4 (RECENT, NEW, OLD)."""
    assert world.sales.id is not None
    store = world.services.mailstore
    for n in (1, 2):
        await store.append(world.sales.id, "INBOX", b"Subject: %d\r\n\r\nx\r\n" % n)
    port = listeners.imaps_port
    async with session(port) as first, session(port) as second, session(port) as third:
        assert await third.ok(b"T1", b"STATUS INBOX (MESSAGES RECENT)") == [
            b'* STATUS "INBOX" (MESSAGES 2 RECENT 2)\r\n',
            b"T1 OK STATUS completed\r\n",
        ]
        selected = await first.ok(b"S1", b"SELECT INBOX")
        assert b"* 2 EXISTS\r\n" in selected and b"* 2 RECENT\r\n" in selected
        assert await first.ok(b"F1", b"FETCH 1:* (FLAGS)") == [
            b"* 1 FETCH (FLAGS (\\Recent))\r\n",
            b"* 2 FETCH (FLAGS (\\Recent))\r\n",
            b"F1 OK FETCH completed\r\n",
        ]
        await first.ok(b"W1", b"STORE 1 +FLAGS.SILENT (\\Seen)")
        assert await first.ok(b"R1", b"SEARCH RECENT") == [
            b"* SEARCH 1 2\r\n",
            b"R1 OK SEARCH completed\r\n",
        ]
        assert await first.ok(b"R2", b"SEARCH NEW") == [
            b"* SEARCH 2\r\n",
            b"R2 OK SEARCH completed\r\n",
        ]
        assert await first.ok(b"R3", b"SEARCH OLD") == [
            b"* SEARCH\r\n",
            b"R3 OK SEARCH completed\r\n",
        ]

        # Seen by the first session: recent to no other.
        examined = await second.ok(b"S2", b"SELECT INBOX")
        assert b"* 2 EXISTS\r\n" in examined and b"* 0 RECENT\r\n" in examined
        assert await third.ok(b"T2", b"STATUS INBOX (RECENT)") == [
            b'* STATUS "INBOX" (RECENT 0)\r\n',
            b"T2 OK STATUS completed\r\n",
        ]

        # A new message is recent to the session that hears of it first.
        await store.append(world.sales.id, "INBOX", b"Subject: 3\r\n\r\nx\r\n")
        assert await second.ok(b"N1", b"NOOP") == [
            b"* 3 EXISTS\r\n",
            b"* 1 RECENT\r\n",
            b"N1 OK NOOP completed\r\n",
        ]
        assert await first.ok(b"N2", b"NOOP") == [
            b"* 3 EXISTS\r\n",
            b"* 2 RECENT\r\n",
            b"N2 OK NOOP completed\r\n",
        ]
        assert await second.ok(b"F2", b"FETCH 3 (FLAGS)") == [
            b"* 3 FETCH (FLAGS (\\Recent))\r\n",
            b"F2 OK FETCH completed\r\n",
        ]
        # IMAP4rev2 has no \Recent (RFC 9051 §2.3.2).
        await third.ok(b"E1", b"ENABLE IMAP4rev2")
        selected = await third.ok(b"S3", b"SELECT INBOX")
        assert not any(b"RECENT" in line for line in selected)


async def test_folder_names_that_climb_out_of_a_maildir_are_refused(
    listeners: Listeners, world: World
) -> None:
    """Item 12: a `..` level or a leading `/` would be path traversal in clients that mirror
    folders to a local Maildir."""
    async with session(listeners.imaps_port) as client:
        assert await client.run(b"C1", b'CREATE "../evil"') == [
            b"C1 NO [CANNOT] '../evil' is not a valid folder name: no level may be . or ..\r\n"
        ]
        assert await client.run(b"C2", b'CREATE "Work/../../evil"') == [
            b"C2 NO [CANNOT] 'Work/../../evil' is not a valid folder name: no level may be "
            b". or ..\r\n"
        ]
        assert await client.run(b"C3", b'CREATE "/etc"') == [
            b"C3 NO [CANNOT] '/etc' is not a valid folder name.\r\n"
        ]
        await client.ok(b"C4", b"CREATE Work")
        assert await client.run(b"R1", b'RENAME Work "Work/.."') == [
            b"R1 NO [CANNOT] 'Work/..' is not a valid folder name: no level may be . or ..\r\n"
        ]
        assert await client.ok(b"C5", b'CREATE "Work/..hidden.."') == [
            b"C5 OK CREATE completed\r\n"
        ]
        assert (await client.ok(b"L1", b'LIST "" "*"'))[-2:] == [
            b'* LIST (\\HasNoChildren) "/" "Work/..hidden.."\r\n',
            b"L1 OK LIST completed\r\n",
        ]


async def test_condstore_highestmodseq_on_first_use_and_esearch_min_max_modseq(
    listeners: Listeners, world: World
) -> None:
    """Item 5: RFC 7162 §3.1 (the first CONDSTORE-enabling command while selected reports
    HIGHESTMODSEQ) and §3.1.5 (MIN/MAX report the MODSEQ of the messages they return)."""
    assert world.sales.id is not None
    for n in (1, 2, 3):
        await world.services.mailstore.append(world.sales.id, "INBOX", b"Subject: %d\r\n\r\n" % n)
    async with session(listeners.imaps_port, select="INBOX") as client:
        await client.ok(b"W1", b"STORE 3 +FLAGS.SILENT (\\Flagged)")
        await client.ok(b"W2", b"STORE 1 +FLAGS.SILENT (\\Flagged)")
        status = await client.ok(b"T1", b"STATUS INBOX (HIGHESTMODSEQ)")
        highest = int(re.search(rb"HIGHESTMODSEQ (\d+)", status[0])[1])  # type: ignore[index]
        # STATUS (HIGHESTMODSEQ) was the first CONDSTORE-enabling command here.
        assert status[:2] == [
            b"* OK [HIGHESTMODSEQ %d] Highest\r\n" % highest,
            b'* STATUS "INBOX" (HIGHESTMODSEQ %d)\r\n' % highest,
        ]
        lines = await client.ok(b"F1", b"FETCH 1:3 (MODSEQ)")
        modseqs = [int(re.search(rb"MODSEQ \((\d+)\)", line)[1]) for line in lines[:3]]  # type: ignore[index]
        assert modseqs[0] == highest and modseqs[2] == highest - 1
        assert await client.ok(b"E1", b"SEARCH RETURN (MIN) MODSEQ 1") == [
            b'* ESEARCH (TAG "E1") MIN 1 MODSEQ %d\r\n' % modseqs[0],
            b"E1 OK SEARCH completed\r\n",
        ]
        assert await client.ok(b"E2", b"SEARCH RETURN (MAX) MODSEQ 1") == [
            b'* ESEARCH (TAG "E2") MAX 3 MODSEQ %d\r\n' % modseqs[2],
            b"E2 OK SEARCH completed\r\n",
        ]
        assert await client.ok(b"E3", b"SEARCH RETURN (MIN COUNT) UNFLAGGED MODSEQ 1") == [
            b'* ESEARCH (TAG "E3") MIN 2 COUNT 1 MODSEQ %d\r\n' % modseqs[1],
            b"E3 OK SEARCH completed\r\n",
        ]


async def test_body_sections_holding_nul_are_sent_as_literal8(
    listeners: Listeners, world: World
) -> None:
    """Item 2: no literal may carry a NUL (RFC 9051 §4.3); literal8 (RFC 3516) can."""
    assert world.sales.id is not None
    part = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
    raw = (
        b"From: a@example.org\r\nSubject: bin\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        b"--b\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        + part
        + b"\r\n--b--\r\n"
    )
    await world.services.mailstore.append(world.sales.id, "INBOX", raw)
    async with session(listeners.imaps_port, select="INBOX") as client:
        assert await client.ok(b"F1", b"FETCH 1 (BODY.PEEK[1] BODY.PEEK[2])") == [
            b"* 1 FETCH (BODY[1] {12}\r\nsee attached BODY[2] ~{%d}\r\n" % len(part)
            + part
            + b")\r\n",
            b"F1 OK FETCH completed\r\n",
        ]
        assert await client.ok(b"F2", b"FETCH 1 (BODY.PEEK[])") == [
            b"* 1 FETCH (BODY[] ~{%d}\r\n" % len(raw) + raw + b")\r\n",
            b"F2 OK FETCH completed\r\n",
        ]
        assert await client.ok(b"F3", b"FETCH 1 (BODY.PEEK[2]<4.6>)") == [
            b"* 1 FETCH (BODY[2]<4> ~{6}\r\n" + part[4:10] + b")\r\n",
            b"F3 OK FETCH completed\r\n",
        ]


async def test_search_on_addresses_matches_names_and_addresses_however_written(
    listeners: Listeners, world: World
) -> None:
    """Item 8: SEARCH FROM/TO match the name and address parts of each address (RFC 3501
    §6.4.4), written as a quoted and escaped name or in the old comment form."""
    assert world.sales.id is not None
    store = world.services.mailstore
    await store.append(
        world.sales.id,
        "INBOX",
        b"From: chloe@example.org (Chloe Martin)\r\n"
        b'To: "Bob \\"BJ\\" Smith" <bob@example.net>\r\nSubject: one\r\n\r\nx\r\n',
    )
    await store.append(
        world.sales.id, "INBOX", b"From: Dan <dan@example.org>\r\nSubject: two\r\n\r\nx\r\n"
    )
    async with session(listeners.imaps_port, select="INBOX") as client:
        for tag, criteria, expected in [
            (b"Q1", b'FROM "Chloe Martin <chloe@example.org>"', b"1"),
            (b"Q2", b'FROM "Martin <chloe@"', b"1"),
            (b"Q3", b'TO "Bob \\"BJ\\" Smith"', b"1"),
            (b"Q4", b'TO "Smith <bob@example.net>"', b"1"),
            (b"Q5", b'FROM "Dan <dan@"', b"2"),
            (b"Q6", b"FROM example.org", b"1 2"),
        ]:
            assert await client.ok(tag, b"SEARCH " + criteria) == [
                b"* SEARCH " + expected + b"\r\n",
                tag + b" OK SEARCH completed\r\n",
            ]


async def test_subscriptions_are_a_list_of_names_of_their_own(
    listeners: Listeners, world: World
) -> None:
    """Item 6: CREATE subscribes nothing, DELETE keeps the name's subscription (RFC 9051 §6.3.7),
    LSUB shows an unsubscribed parent reached by "%" as \\Noselect (RFC 3501 §6.3.9), LIST
    (SUBSCRIBED) a subscribed name without a folder as \\NonExistent and a parent reached by
    RECURSIVEMATCH with CHILDINFO (RFC 5258 §3.1, §3.5). The default folders start subscribed."""
    async with session(listeners.imaps_port) as client:
        assert await client.ok(b"L1", b'LSUB "" "INBOX"') == [
            b'* LSUB () "/" "INBOX"\r\n',
            b"L1 OK LSUB completed\r\n",
        ]
        assert await client.ok(b"L2", b'LIST (SUBSCRIBED) "" "Sent"') == [
            b'* LIST (\\HasNoChildren \\Sent \\Subscribed) "/" "Sent"\r\n',
            b"L2 OK LIST completed\r\n",
        ]
        await client.ok(b"C1", b"CREATE Projects/2026")
        assert await client.ok(b"L3", b'LSUB "" "Projects*"') == [b"L3 OK LSUB completed\r\n"]
        assert await client.ok(b"S1", b"SUBSCRIBE Projects/2026") == [
            b"S1 OK SUBSCRIBE completed\r\n"
        ]
        assert await client.ok(b"L4", b'LSUB "" "P%"') == [
            b'* LSUB (\\Noselect) "/" "Projects"\r\n',
            b"L4 OK LSUB completed\r\n",
        ]
        assert await client.ok(b"L5", b'LSUB "" "Projects*"') == [
            b'* LSUB () "/" "Projects/2026"\r\n',
            b"L5 OK LSUB completed\r\n",
        ]
        assert await client.ok(b"L6", b'LIST (SUBSCRIBED RECURSIVEMATCH) "" "P%"') == [
            b'* LIST (\\HasChildren) "/" "Projects" ("CHILDINFO" ("SUBSCRIBED"))\r\n',
            b"L6 OK LIST completed\r\n",
        ]
        assert await client.ok(b"L7", b'LIST (SUBSCRIBED) "" "P%"') == [b"L7 OK LIST completed\r\n"]
        await client.ok(b"D1", b"DELETE Projects/2026")
        assert await client.ok(b"L8", b'LSUB "" "Projects/*"') == [
            b'* LSUB (\\Noselect) "/" "Projects/2026"\r\n',
            b"L8 OK LSUB completed\r\n",
        ]
        assert await client.ok(b"L9", b'LIST (SUBSCRIBED) "" "Projects/*"') == [
            b'* LIST (\\NonExistent \\Subscribed) "/" "Projects/2026"\r\n',
            b"L9 OK LIST completed\r\n",
        ]
        assert await client.ok(b"M1", b'LIST "" "Projects/*" RETURN (SUBSCRIBED)') == [
            b"M1 OK LIST completed\r\n"
        ]
        await client.ok(b"C2", b"CREATE Projects/2026")
        assert await client.ok(b"M2", b'LIST "" "Projects/*" RETURN (SUBSCRIBED)') == [
            b'* LIST (\\HasNoChildren \\Subscribed) "/" "Projects/2026"\r\n',
            b"M2 OK LIST completed\r\n",
        ]
        # RENAME takes the subscription along, as Dovecot does.
        await client.ok(b"R1", b"RENAME Projects Work")
        assert await client.ok(b"M3", b'LSUB "" "*o*/2026"') == [
            b'* LSUB () "/" "Work/2026"\r\n',
            b"M3 OK LSUB completed\r\n",
        ]
        assert await client.ok(b"U1", b"UNSUBSCRIBE Work/2026") == [
            b"U1 OK UNSUBSCRIBE completed\r\n"
        ]
        assert await client.ok(b"U2", b"UNSUBSCRIBE Work") == [b"U2 OK UNSUBSCRIBE completed\r\n"]
        assert await client.run(b"U3", b"UNSUBSCRIBE Nowhere") == [
            b"U3 NO [NONEXISTENT] Nowhere is not subscribed.\r\n"
        ]
        assert await client.run(b"S2", b"SUBSCRIBE Nowhere") == [
            b"S2 NO [NONEXISTENT] No folder Nowhere.\r\n"
        ]
        assert await client.ok(b"M4", b'LSUB "" "*o*/2026"') == [b"M4 OK LSUB completed\r\n"]
        # A folder made in the webmail is subscribed, so clients showing only subscribed folders
        # see it.
        assert world.sales.id is not None
        await world.services.mailstore.create_folder(world.sales.id, "Receipts")
        assert await client.ok(b"M5", b'LSUB "" "Receipts"') == [
            b'* LSUB () "/" "Receipts"\r\n',
            b"M5 OK LSUB completed\r\n",
        ]


def _mail(subject: str) -> bytes:
    return b"From: a@example.org\r\nSubject: %s\r\n\r\nbody\r\n" % subject.encode()


async def test_literal_plus_and_multiappend(listeners: Listeners, world: World) -> None:
    """Item 11: LITERAL+ (RFC 7888, replacing LITERAL-: §5 forbids advertising both) and
    MULTIAPPEND (RFC 3502): the messages of one APPEND, non-synchronising and synchronising
    literals mixed, land together with APPENDUID giving their UIDs in order (RFC 4315 §3); one
    refused message leaves the folder untouched (RFC 3502 §6.3.11)."""
    one, two, three = _mail("one"), _mail("two"), _mail("three")
    async with session(listeners.imaps_port) as client:
        capability = (await client.ok(b"C1", b"CAPABILITY"))[0]
        assert b" LITERAL+ " in capability and b"LITERAL-" not in capability
        assert b" MULTIAPPEND " in capability
        await client.ok(b"C2", b"CREATE Projects")
        await client.send(
            b'A1 APPEND Projects (\\Seen) {%d+}\r\n%s " 3-Feb-2026 10:11:12 +0000" {%d}\r\n'
            % (len(one), one, len(two))
        )
        assert await client.line() == b"+ Ready for literal data\r\n"
        await client.send(two + b" ($Work) {%d+}\r\n%s\r\n" % (len(three), three))
        answer = await client.until(b"A1")
        validity = _validity(await client.ok(b"S1", b"STATUS Projects (UIDVALIDITY)"))
        assert answer == [b"A1 OK [APPENDUID %d 1:3] APPEND completed\r\n" % validity]
        await client.ok(b"S2", b"SELECT Projects")
        assert await client.ok(b"F1", b"FETCH 1:* (UID FLAGS)") == [
            b"* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent))\r\n",
            b"* 2 FETCH (UID 2 FLAGS (\\Recent))\r\n",
            b"* 3 FETCH (UID 3 FLAGS ($Work \\Recent))\r\n",
            b"F1 OK FETCH completed\r\n",
        ]
        assert await client.ok(
            b"F2", b"FETCH 2 (INTERNALDATE BODY.PEEK[HEADER.FIELDS (SUBJECT)])"
        ) == [
            b'* 2 FETCH (INTERNALDATE " 3-Feb-2026 10:11:12 +0000" '
            b"BODY[HEADER.FIELDS (SUBJECT)] {16}\r\nSubject: two\r\n\r\n)\r\n",
            b"F2 OK FETCH completed\r\n",
        ]
        # All or nothing: the second message loops (too many Received fields), so neither stays.
        looping = b"Received: from x by y\r\n" * 101 + _mail("loop")
        await client.send(
            b"A2 APPEND Projects {%d+}\r\n%s {%d+}\r\n%s\r\n"
            % (len(one), one, len(looping), looping)
        )
        assert (await client.until(b"A2"))[-1].startswith(b"A2 NO ")
        assert await client.ok(b"N1", b"NOOP") == [b"N1 OK NOOP completed\r\n"]
        assert (await client.ok(b"S3", b"STATUS Projects (MESSAGES UIDNEXT)"))[0] == (
            b'* STATUS "Projects" (MESSAGES 3 UIDNEXT 4)\r\n'
        )


async def test_a_non_synchronising_literal_over_the_limit(
    listeners: Listeners, world: World
) -> None:
    """RFC 7888 §4: its octets are on their way. Up to MAX_DISCARD they are read and dropped,
    with the rest of the command (a later literal's octets are data, never a command), and the
    command is NO [TOOBIG]; beyond that, BAD [TOOBIG] and the connection closes."""
    limit = world.services.settings.max_message_size
    injected = b"A9 DELETE INBOX\r\n"
    async with session(listeners.imaps_port) as client:
        await client.send(
            b"A1 APPEND INBOX {%d+}\r\n" % (limit + 1)
            + b"x" * (limit + 1)
            + b" {%d+}\r\n%s\r\n" % (len(injected), injected)
        )
        assert await client.until(b"A1") == [b"A1 NO [TOOBIG] Literal is larger than allowed\r\n"]
        assert await client.ok(b"A2", b"STATUS INBOX (MESSAGES)") == [
            b'* STATUS "INBOX" (MESSAGES 0)\r\n',
            b"A2 OK STATUS completed\r\n",
        ]
        await client.send(b"A3 APPEND INBOX {%d+}\r\n" % (MAX_DISCARD + 1))
        assert await client.line() == (
            b"A3 BAD [TOOBIG] Non-synchronizing literal is larger than allowed\r\n"
        )
        assert await client.line() == b"* BYE Closing the connection\r\n"
        with pytest.raises((EOFError, ConnectionError)):
            await client.line()


async def test_imaplib_appends_several_messages_with_literal_plus(
    listeners: Listeners, world: World
) -> None:
    """A second client library: imaplib has no MULTIAPPEND call, but with LITERAL+ its plain
    command sender carries one, literals inline."""
    one, two = _mail("one"), _mail("two")

    def scenario() -> tuple[str, list[bytes], list[bytes]]:
        client = imaplib.IMAP4_SSL("127.0.0.1", listeners.imaps_port, ssl_context=client_tls())
        try:
            client.login("sales@acme.test", "sales-pass-1")
            body = b"(\\Flagged) {%d+}\r\n%s {%d+}\r\n%s" % (len(one), one, len(two), two)
            typ, data = client._simple_command("APPEND", "INBOX", body)
            client.select("INBOX")
            _, fetched = client.uid("FETCH", "1:*", "(FLAGS)")
            return typ, data, fetched
        finally:
            client.logout()

    typ, data, fetched = await asyncio.to_thread(scenario)
    assert typ == "OK"
    assert re.fullmatch(rb"\[APPENDUID \d+ 1:2\] APPEND completed", data[0]), data
    assert fetched == [b"1 (UID 1 FLAGS (\\Flagged \\Recent))", b"2 (UID 2 FLAGS (\\Recent))"]
