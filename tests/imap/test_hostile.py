"""Hostile input over raw sockets: oversized literals, deep nesting, endless lines, garbage, commands
in the wrong state and idle clients. Each is refused with a clear answer, memory stays bounded, and
the session goes on wherever it can."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import re
import socket
import ssl
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import pytest

from mailmark.bootstrap import Listeners, start_listeners
from tests.imap.raw import TIMEOUT, Raw
from tests.support.world import World

PASSWORD = "sales-pass-1"
MiB = 1024 * 1024


class RawImap(Raw):
    """`Raw`, also telling whether the server has closed the connection."""

    async def closed(self, timeout: float = TIMEOUT) -> bool:
        """True when the server closes the connection before `timeout`; False if it is silent."""
        try:
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
        except TimeoutError:
            return False
        except (ConnectionError, ssl.SSLError):
            return True
        assert data == b"", f"unexpected data before close: {data[:200]!r}"
        return True


def tagged_status(lines: list[bytes]) -> bytes:
    """b"OK", b"NO" or b"BAD" of the last (tagged) line."""
    return lines[-1].split(b" ", 2)[1]


@pytest.fixture
async def mailbox(listeners: Listeners, world: World) -> World:
    """Three messages in sales@'s INBOX."""
    for n in range(3):
        raw = (
            f"From: a@example.org\r\nTo: sales@acme.test\r\nSubject: Hostile {n}\r\n"
            f"Message-ID: <hostile-{n}@example.org>\r\n\r\nBody {n}\r\n"
        ).encode()
        await world.services.delivery.deliver(
            raw, recipients=[world.sales], mail_from="a@example.org"
        )
    return world


@pytest.fixture
async def plain(listeners: Listeners, mailbox: World) -> AsyncIterator[RawImap]:
    client = await RawImap.connect(listeners.imap.port, tls=False)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def authed(listeners: Listeners, mailbox: World) -> AsyncIterator[RawImap]:
    """Logged in over implicit TLS, nothing selected."""
    client = await RawImap.connect(listeners.imaps.port, tls=True)
    try:
        await client.login()
        yield client
    finally:
        await client.close()


@pytest.fixture
async def selected(authed: RawImap) -> RawImap:
    done = await authed.run(b"S1", b"SELECT INBOX")
    assert done[-1].startswith(b"S1 OK"), done
    return authed


async def assert_alive(client: RawImap, tag: bytes = b"N1") -> None:
    done = await client.run(tag, b"NOOP")
    assert done[-1].startswith(tag + b" OK"), done


@contextlib.contextmanager
def traced() -> Iterator[list[int]]:
    """The peak Python heap growth (bytes) inside the block, in-process server included."""
    result: list[int] = []
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        yield result
        _, peak = tracemalloc.get_traced_memory()
        result.append(peak - base)
    finally:
        tracemalloc.stop()


# ------------------------------------------------------------------------------------------------
# Literals
# ------------------------------------------------------------------------------------------------


async def test_four_gigabyte_synchronising_literal_gets_toobig_without_allocation(
    selected: RawImap,
) -> None:
    with traced() as grown:
        await selected.send(b"A1 APPEND INBOX {4294967295}\r\n")
        answer = await selected.line()
    # RFC 7888 §4 / RFC 9051 §7.1: refused instead of a "+" continuation, so nothing is sent.
    assert re.match(rb"A1 NO \[TOOBIG\] ", answer), answer
    assert grown[0] < MiB, f"refusing the literal allocated {grown[0]} bytes"
    await assert_alive(selected)
    status = await selected.run(b"A2", b"STATUS INBOX (MESSAGES)")
    assert b"(MESSAGES 3)" in status[0], status


async def test_literal_over_the_message_size_limit_is_toobig(
    selected: RawImap, listeners: Listeners, mailbox: World
) -> None:
    limit = mailbox.services.settings.max_message_size
    await selected.send(b"A1 APPEND INBOX (\\Seen) {%d}\r\n" % (limit + 1))
    answer = await selected.line()
    assert answer.startswith(b"A1 NO [TOOBIG]"), answer
    await assert_alive(selected)


async def test_huge_literal_before_login_is_refused(plain: RawImap) -> None:
    await plain.send(b"A1 LOGIN {4294967295}\r\n")
    answer = await plain.line()
    assert re.match(rb"A1 (NO|BAD) ", answer), answer
    await assert_alive(plain)


async def test_huge_non_synchronising_literal_is_refused_and_never_read_as_commands(
    selected: RawImap,
) -> None:
    with traced() as grown:
        # LITERAL+ / LITERAL- (RFC 7888 §4, §5): the client does not wait, so the octets after the
        # CRLF are the literal's, whatever they look like.
        await selected.send(b"A1 APPEND INBOX {999999999+}\r\nA2 NOOP\r\n")
        answer = await selected.line()
        assert re.match(rb"(A1 (BAD|NO) |\* BYE )", answer), answer
        # What followed was literal data: answering it as a command would be command injection.
        rest = b""
        with contextlib.suppress(TimeoutError, EOFError, ConnectionError, ssl.SSLError):
            while True:
                rest += await selected.line(timeout=1.0)
    assert b"A2 " not in rest, rest
    assert grown[0] < MiB, f"refusing the literal allocated {grown[0]} bytes"


async def test_small_non_synchronising_literal_is_accepted(selected: RawImap) -> None:
    message = b"From: a@example.org\r\nSubject: Plus\r\n\r\nLiteral plus\r\n"
    await selected.send(b"A1 APPEND INBOX {%d+}\r\n%s\r\n" % (len(message), message))
    done = await selected.until(b"A1")
    assert done[-1].startswith(b"A1 OK"), done
    assert re.search(rb"\[APPENDUID \d+ 4\]", done[-1]), done


# ------------------------------------------------------------------------------------------------
# Lines and nesting
# ------------------------------------------------------------------------------------------------


async def test_four_thousand_nested_parentheses_are_bad_and_the_session_goes_on(
    selected: RawImap,
) -> None:
    nested = b"(" * 4000 + b"ALL" + b")" * 4000
    done = await selected.run(b"P1", b"SEARCH " + nested)
    assert tagged_status(done) == b"BAD", done
    done = await selected.run(b"P2", b"FETCH 1 " + b"(" * 4000 + b"FLAGS" + b")" * 4000)
    assert tagged_status(done) == b"BAD", done
    done = await selected.run(b"P3", b'SEARCH (((SUBJECT "Hostile 1")))')
    assert done[0] == b"* SEARCH 2\r\n", done
    assert done[-1].startswith(b"P3 OK"), done


async def test_long_command_lines_are_accepted(selected: RawImap) -> None:
    uids = b",".join(b"%d" % n for n in range(1, 7000, 2))  # about 17 KiB
    assert len(uids) > 16 * 1024
    done = await selected.run(b"L2", b"UID SEARCH UID " + uids)
    assert done[0] == b"* SEARCH 1 3\r\n", done
    assert done[-1].startswith(b"L2 OK"), done


def _send_blocking(port: int, data: bytes, then: bytes) -> bytes:
    """Send `data` then `then` on a plain socket and read until the server stops answering.
    Runs in a thread: sendall never copies the buffer, so the only heap growth traced is the
    server's."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        received = sock.recv(4096)  # the greeting
        with contextlib.suppress(OSError):
            sock.sendall(data)
            sock.sendall(then)
        sock.settimeout(2.0)
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                received += chunk
                if b"N2 " in received:
                    break
        return received


@pytest.mark.parametrize("size", [2 * MiB, 8 * MiB], ids=["2MiB", "8MiB"])
async def test_endless_line_without_crlf_is_refused_without_memory_growth(
    listeners: Listeners, mailbox: World, size: int
) -> None:
    line = b"T1 NOOP " + b"a" * size
    with traced() as grown:
        received = await asyncio.to_thread(
            _send_blocking, listeners.imap.port, line, b"\r\nN2 NOOP\r\n"
        )
    assert re.search(rb"(T1|\*) BAD ", received) or b"* BYE" in received, received[-300:]
    # The line is never held whole: the heap holds about the 1 MiB line limit (twice, while the
    # over-long head is read off), the same for 2 MiB as for 8 MiB.
    assert grown[0] < 2.5 * MiB, f"the server's heap grew by {grown[0] / MiB:.2f} MiB"
    if b"* BYE" not in received:
        assert re.search(rb"N2 OK", received), received[-300:]


async def test_line_over_the_limit_then_a_good_command(plain: RawImap) -> None:
    await plain.send(b"T1 NOOP " + b"x" * (MiB + 100) + b"\r\n")
    answer = await plain.line()
    assert re.match(rb"(T1|\*) BAD ", answer), answer[:200]
    await assert_alive(plain)


async def test_search_keys_nested_without_parentheses_are_bounded(selected: RawImap) -> None:
    # OR and NOT nest by prefix, not by parentheses: a recursive parser must bound them too.
    for deep in (b"NOT " * 100_000 + b"ALL", b"OR " * 50_000 + b"ALL " * 50_001):
        done = await selected.run(b"D1", b"SEARCH " + deep.strip())
        assert tagged_status(done) == b"BAD", done[-1][:200]
        await assert_alive(selected)
    done = await selected.run(b"D2", b'SEARCH NOT NOT NOT SUBJECT "Hostile 2"')
    assert done[0] == b"* SEARCH 1 2\r\n", done


async def test_a_thousand_and_more_literals_in_one_command_are_refused(selected: RawImap) -> None:
    literals = b"".join(b" OR SUBJECT {1+}\r\nx" for _ in range(2000))
    with traced() as grown:
        await selected.send(b"M1 SEARCH" + literals + b" ALL\r\n")
        answer = await selected.until(b"M1")
    assert tagged_status(answer) in (b"BAD", b"NO"), answer[-1]
    assert grown[0] < MiB, f"{grown[0]} bytes for a 20 KiB command"


async def test_sections_and_partials_out_of_range(selected: RawImap) -> None:
    deep_part = b".".join([b"1"] * 1000)
    for command in (
        b"FETCH 1 BODY.PEEK[" + deep_part + b"]",
        b"FETCH 1 BODY.PEEK[]<0.4294967296>",
        b"FETCH 1 BODY.PEEK[]<4294967296.1>",
        b"FETCH 1 BODY.PEEK[0]",
        b"FETCH 1 BODY.PEEK[1.0]",
        b"FETCH 1 BODY.PEEK[HEADER.FIELDS ()]",
        b"FETCH 1 BODY.PEEK[HEADER.FIELDS (" + b" ".join([b"X-A"] * 20_000) + b")]",
        b"FETCH 1 BINARY.PEEK[HEADER]",
    ):
        done = await selected.run(b"B1", command)
        # Either refused, or answered: never a crash or a hang.
        assert tagged_status(done) in (b"OK", b"BAD", b"NO"), (command[:60], done[-1])
        await assert_alive(selected)
    done = await selected.run(b"B2", b"FETCH 1 BODY.PEEK[]<4.5>")
    assert done[0] == b"* 1 FETCH (BODY[]<4> {5}\r\na@exa)\r\n" or b"BODY[]<4>" in done[0], done


def nested_multipart(depth: int, parts: int) -> bytes:
    """A message nested `depth` multiparts deep whose innermost level holds `parts` parts."""
    head = b"From: a@example.org\r\nSubject: Nested\r\nMIME-Version: 1.0\r\n"
    body = (
        b"".join(
            b"--inner\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % n for n in range(parts)
        )
        + b"--inner--\r\n"
    )
    content_type = b'Content-Type: multipart/mixed; boundary="inner"\r\n'
    for level in range(depth):
        boundary = b"b%d" % level
        body = (
            b"--"
            + boundary
            + b"\r\n"
            + content_type
            + b"\r\n"
            + body
            + b"--"
            + boundary
            + b"--\r\n"
        )
        content_type = b'Content-Type: multipart/mixed; boundary="' + boundary + b'"\r\n'
    return head + content_type + b"\r\n" + body


@pytest.mark.parametrize(("depth", "parts"), [(300, 1), (1, 20_000)], ids=["deep", "wide"])
async def test_hostile_mime_is_stored_and_fetched_within_bounds(
    selected: RawImap, depth: int, parts: int
) -> None:
    raw = nested_multipart(depth, parts)
    await selected.send(b"H1 APPEND INBOX {%d}\r\n" % len(raw))
    assert (await selected.line()).startswith(b"+ ")
    await selected.send(raw + b"\r\n")
    done = await selected.until(b"H1")
    assert done[-1].startswith(b"H1 OK"), done
    done = await selected.run(b"H2", b"UID FETCH 4 (BODYSTRUCTURE ENVELOPE BODY.PEEK[1.1.1])")
    assert done[-1].startswith(b"H2 OK"), done[-1]
    answer = b"".join(done[:-1])
    assert answer.count(b"(") == answer.count(b")"), "unbalanced BODYSTRUCTURE"
    assert len(answer) < 2 * len(raw) + 64 * 1024
    done = await selected.run(b"H3", b"UID FETCH 4 (BODY.PEEK[])")
    assert raw in done[0], "BODY[] of a hostile message is not byte-exact"
    await assert_alive(selected)


async def test_abandoned_literal_leaves_nothing_behind(
    listeners: Listeners, selected: RawImap
) -> None:
    await selected.send(b"A1 APPEND INBOX {1000}\r\n")
    assert (await selected.line()).startswith(b"+ ")
    await selected.send(b"From: half@example.org\r\n")
    await selected.close()
    again = await RawImap.connect(listeners.imaps.port, tls=True)
    try:
        await again.login()
        status = await again.run(b"A2", b"STATUS INBOX (MESSAGES)")
        assert b"(MESSAGES 3)" in status[0], status
    finally:
        await again.close()


async def test_idle_ended_by_anything_but_done_is_bad(selected: RawImap) -> None:
    await selected.send(b"I1 IDLE\r\n")
    assert (await selected.line()).startswith(b"+ ")
    await selected.send(b"NOOP\r\n")
    done = await selected.until(b"I1")
    assert tagged_status(done) in (b"BAD", b"NO"), done  # RFC 2177: only DONE ends IDLE
    await assert_alive(selected)


@pytest.mark.parametrize("response", [b"!!!not base64!!!", b"*", b"AGEAYg==", b"A" * 20_000])
async def test_authenticate_with_a_bad_response_is_refused(
    listeners: Listeners, mailbox: World, response: bytes
) -> None:
    client = await RawImap.connect(listeners.imaps.port, tls=True)
    try:
        await client.send(b"U1 AUTHENTICATE PLAIN\r\n")
        assert (await client.line()).startswith(b"+")
        await client.send(response + b"\r\n")
        done = await client.until(b"U1")
        assert tagged_status(done) in (b"BAD", b"NO"), done  # RFC 3501 §6.2.2: "*" cancels with BAD
        await assert_alive(client)
        await client.login()
    finally:
        await client.close()


@pytest.mark.parametrize(
    "name",
    [
        b'"' + b"x" * 20_000 + b'"',
        b'"a//b"',
        b'"/leading"',
        b'"&Jjo"',
        b'"&-&"',
        b'""',
        b'"with*wildcard"',
        b'"INBOX"',
        b'"with\x7fdelete"',
        b'"tab\there"',
        b'"line\xe2\x80\xa8sep"',
    ],
)
async def test_bad_folder_names_are_refused_and_nothing_is_created(
    authed: RawImap, name: bytes
) -> None:
    before = await authed.run(b"C0", b'LIST "" *')
    done = await authed.run(b"C1", b"CREATE " + name)
    assert tagged_status(done) in (b"BAD", b"NO"), done
    after = await authed.run(b"C2", b'LIST "" *')
    assert after[:-1] == before[:-1], after


# ------------------------------------------------------------------------------------------------
# Garbage, unknown commands, the wrong state
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x00\x01\x02\xff\xfe\r\n",
        b"G1 NOOP\x00junk\r\n",
        b"G1 \xc3\x28\xa0\xa1 FETCH\r\n",
        b"G1 FROBNICATE\r\n",
        b"G1 LOGIN\r\n",
        b"G1 LOGIN a b c d\r\n",
        b"G1 UID FROB 1\r\n",
        b'G1 SELECT "unterminated\r\n',
        b"G1 SELECT {abc}\r\n",
        b"G{1 NOOP\r\n",
        b"G1\r\n",
        b")))(((\r\n",
    ],
)
async def test_garbage_gets_bad_and_the_session_goes_on(plain: RawImap, garbage: bytes) -> None:
    await plain.send(garbage)
    answer = await plain.line()
    assert re.match(rb"(G1|\*|G\{1) BAD ", answer), answer
    await assert_alive(plain)


@pytest.mark.parametrize(
    "command",
    [
        b"SELECT INBOX",
        b"FETCH 1 FLAGS",
        b"STORE 1 +FLAGS (\\Seen)",
        b"APPEND INBOX {1}",
        b"IDLE",
        b"EXPUNGE",
        b'LIST "" *',
    ],
)
async def test_commands_before_login_are_refused(plain: RawImap, command: bytes) -> None:
    done = await plain.run(b"W1", command)
    assert tagged_status(done) in (b"BAD", b"NO"), done
    assert not any(line.startswith(b"+") for line in done), done
    await assert_alive(plain)


@pytest.mark.parametrize(
    "command",
    [
        b"FETCH 1 FLAGS",
        b"UID FETCH 1 FLAGS",
        b"STORE 1 +FLAGS (\\Seen)",
        b"SEARCH ALL",
        b"EXPUNGE",
        b"CLOSE",
        b"COPY 1 Trash",
        b"MOVE 1 Trash",
    ],
)
async def test_selected_state_commands_without_a_selection_are_refused(
    authed: RawImap, command: bytes
) -> None:
    done = await authed.run(b"W2", command)
    assert tagged_status(done) in (b"BAD", b"NO"), done
    await assert_alive(authed)


async def test_login_is_refused_in_the_authenticated_state_and_on_cleartext(
    authed: RawImap, plain: RawImap
) -> None:
    done = await authed.run(b"W3", b'LOGIN "sales@acme.test" "sales-pass-1"')
    assert tagged_status(done) in (b"BAD", b"NO"), done
    await assert_alive(authed)
    # RFC 3501 §6.2.3: LOGINDISABLED before TLS.
    done = await plain.run(b"W4", b'LOGIN "sales@acme.test" "sales-pass-1"')
    assert tagged_status(done) in (b"BAD", b"NO"), done
    await assert_alive(plain)


async def test_sequence_numbers_out_of_range_and_bad_sets(selected: RawImap) -> None:
    done = await selected.run(b"R1", b"FETCH 99 FLAGS")
    assert tagged_status(done) in (b"BAD", b"NO"), done  # RFC 9051 §6.4.5: invalid message sequence
    for bad in (
        b"FETCH 0 FLAGS",
        b"FETCH 1:4294967296 FLAGS",
        b"FETCH -1 FLAGS",
        b"FETCH 1 (FLAGS",
    ):
        done = await selected.run(b"R2", bad)
        assert tagged_status(done) == b"BAD", (bad, done)
    done = await selected.run(b"R3", b"UID FETCH 1:4294967295 (FLAGS)")
    assert tagged_status(done) == b"OK", done
    assert sum(line.startswith(b"* ") and b"FETCH" in line for line in done) == 3, done


async def test_many_pipelined_commands_are_all_answered(selected: RawImap) -> None:
    count = 500
    await selected.send(b"".join(b"Q%d NOOP\r\n" % n for n in range(count)))
    tagged = 0
    while tagged < count:
        line = await selected.line()
        if line.startswith(b"Q"):
            assert line.startswith(b"Q%d OK" % tagged), line
            tagged += 1


# ------------------------------------------------------------------------------------------------
# Idle clients
# ------------------------------------------------------------------------------------------------


@pytest.fixture
async def impatient(listeners: Listeners, mailbox: World) -> AsyncIterator[Listeners]:
    """A second set of listeners whose IMAP sessions time out after one second of silence."""
    services = mailbox.services
    settings = services.settings.model_copy(update={"imap_idle_timeout": timedelta(seconds=1)})
    started = await start_listeners(dataclasses.replace(services, settings=settings))
    try:
        yield started
    finally:
        await started.close()


async def test_idle_timeout_closes_with_bye(impatient: Listeners) -> None:
    client = await RawImap.connect(impatient.imap.port, tls=False)
    try:
        await assert_alive(client)
        answer = await client.line(timeout=5.0)  # RFC 3501 §5.4: the autologout timer
        assert answer.startswith(b"* BYE "), answer
        assert await client.closed(timeout=5.0)
    finally:
        await client.close()


async def test_half_sent_command_times_out_too(impatient: Listeners) -> None:
    client = await RawImap.connect(impatient.imaps.port, tls=True)
    try:
        await client.send(b"H1 LOGIN {5}\r\n")
        assert (await client.line()).startswith(b"+ ")
        answer = await client.line(timeout=5.0)  # the literal never comes
        assert answer.startswith(b"* BYE "), answer
        assert await client.closed(timeout=5.0)
    finally:
        await client.close()


# ------------------------------------------------------------------------------------------------
# LIST patterns
# ------------------------------------------------------------------------------------------------


async def test_list_with_a_backtracking_pattern_answers_and_the_session_goes_on(
    authed: RawImap,
) -> None:
    await authed.ok(b"C1", b"CREATE Projects/q")
    # 5,000 `*%` pairs: a backtracking matcher never finishes on a name that almost matches.
    done = await authed.run(b"L1", b'LIST "" "' + b"*%" * 5000 + b'q"')
    assert done[-1].startswith(b"L1 OK"), done[-1][:200]
    assert done[:-1] == [b'* LIST (\\HasNoChildren) "/" "Projects/q"\r\n'], done
    done = await authed.run(b"L2", b'LSUB "" "' + b"*a" * 500 + b'y"')
    assert done[-1].startswith(b"L2 OK"), done[-1][:200]


async def test_list_pattern_over_the_bound_gets_bad(authed: RawImap) -> None:
    done = await authed.run(b"L1", b'LIST "" "' + b"a" * 5000 + b'"')
    assert tagged_status(done) == b"BAD", done
    await assert_alive(authed)


# ------------------------------------------------------------------------------------------------
# FETCH BINARY partials
# ------------------------------------------------------------------------------------------------


async def test_binary_partials_decode_each_part_once_per_command(
    listeners: Listeners, world: World
) -> None:
    payload = bytes(range(256)) * (8 * 1024)  # 2 MiB
    encoded = base64.encodebytes(payload)
    raw = (
        b"From: a@example.org\r\nTo: sales@acme.test\r\nSubject: Large part\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        b"--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + encoded.replace(b"\n", b"\r\n")
        + b"--b--\r\n"
    )
    await world.services.delivery.deliver(raw, recipients=[world.sales], mail_from="a@example.org")
    client = await RawImap.connect(listeners.imaps.port, tls=True)
    try:
        await client.login()
        await client.ok(b"S1", b"SELECT INBOX")
        counters = listeners.imaps.counters
        before = counters.bytes_decoded
        offsets = range(0, len(payload), len(payload) // 99)[:99]
        items = b" ".join(b"BINARY.PEEK[2]<%d.1>" % offset for offset in offsets)
        done = await client.ok(b"F1", b"FETCH 1 (" + items + b" BINARY.SIZE[2])")
        decoded = counters.bytes_decoded - before
        answer = b"".join(done[:-1])
        for offset in offsets:
            literal = b"~{1}" if payload[offset] == 0 else b"{1}"
            assert b"BINARY[2]<%d> %s\r\n%c" % (offset, literal, payload[offset]) in answer
        assert b"BINARY.SIZE[2] %d" % len(payload) in answer
        # One decode of the part for the whole command, not one per item.
        assert 0 < decoded <= len(raw), f"{decoded} bytes decoded for a {len(raw)}-byte message"
        await assert_alive(client)
    finally:
        await client.close()


# ------------------------------------------------------------------------------------------------
# Processor time per client address
# ------------------------------------------------------------------------------------------------


@pytest.fixture
async def rationed(listeners: Listeners, mailbox: World) -> AsyncIterator[Listeners]:
    """Listeners whose IMAP clients may use one core each, with no burst: any processor time an
    address has used delays its next command by as much."""
    services = mailbox.services
    settings = services.settings.model_copy(
        update={"imap_cpu_share": 1.0, "imap_cpu_burst": timedelta(0)}
    )
    started = await start_listeners(dataclasses.replace(services, settings=settings))
    try:
        yield started
    finally:
        await started.close()


async def test_an_address_over_its_processor_ration_waits_before_its_next_command(
    rationed: Listeners,
) -> None:
    ration = rationed.imaps.ration
    assert ration is not None and ration is rationed.imap.ration  # one ration for both ports
    expensive = b'L1 LIST "" "' + b"*%" * 5000 + b'q"\r\nN1 NOOP\r\n'
    client = await RawImap.connect(rationed.imaps.port, tls=True, source="127.0.0.2")
    try:
        await client.login()
        await asyncio.sleep(ration.owed("127.0.0.2") / ration.share + 0.01)  # LOGIN's cost, paid
        assert ration.owed("127.0.0.2") == 0
        # From here debts do not fall with time, so what is owed does not depend on how fast
        # the machine runs the two commands.
        moment = ration.clock()
        ration.clock = lambda: moment
        before = dataclasses.replace(ration.counters)
        await client.send(expensive)  # pipelined: NOOP is read the moment LIST has finished
        assert (await client.until(b"L1"))[-1].startswith(b"L1 OK")
        assert (await client.until(b"N1"))[-1].startswith(b"N1 OK")
        assert ration.counters.commands - before.commands == 2
        charged = ration.counters.charged - before.charged
        waited = ration.counters.waited - before.waited
        assert charged > 0
        # The session waits after each command, before it reads the next, for as long as the
        # address's debt takes to pay at one core: NOOP waited for what LIST cost, and the
        # next command would wait for both.
        assert ration.counters.delayed - before.delayed == 2
        assert charged < waited <= 2 * charged
    finally:
        await client.close()
    # Local clients (127.0.0.1) are exempt, as from the connection limits.
    local = await RawImap.connect(rationed.imaps.port, tls=True)
    try:
        await local.login()
        before = dataclasses.replace(ration.counters)
        await local.send(expensive)
        assert (await local.until(b"N1"))[-1].startswith(b"N1 OK")
        assert ration.counters == before
    finally:
        await local.close()
