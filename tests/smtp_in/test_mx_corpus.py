"""Awkward real-world messages are stored byte for byte, or refused with a clear 5xx, within 2 s
of CPU time.

Parsing must never crash delivery: a message we cannot parse is stored with whatever metadata
could be read. Only the shapes listed in EXPECTED_REFUSALS may be refused, and only with that code.
The shapes share one world (one test, a subtest per shape) so the set stays fast.
"""

from __future__ import annotations

import time

import pytest

from tests.smtp_in.corpus import CORPUS, RawSmtp, Reply, data_transmission
from tests.support.world import World, stored_copies

# The server runs in this process: its CPU time bounds the work a shape costs (parsing must not
# blow up on nesting or header floods), whatever else the machine is doing. The nesting bomb, the
# costliest shape, takes ~0.45 s; the others less than 0.1 s.
CPU_LIMIT_SECONDS = 2.0
EXPECTED_REFUSALS = {
    # RFC 5321 §4.5.3.1.6 line length: we allow 64 KiB, never unbounded.
    "line_over_64k": "500 5.5.2",
    # core.message_meta header limits (10,000 lines, 1 MiB).
    "header_flood_500k_lines": "552 5.3.4",
    "header_section_over_1mib": "552 5.3.4",
    # RFC 5321 §6.3: more than 100 Received fields is a loop.
    "mail_loop_101_received": "554 5.4.6",
}
# Metadata that must still be read from shapes that are otherwise broken.
EXPECTED_SUBJECTS = {
    # RFC 6532 UTF-8, and unlabelled 8-bit read as Latin-1: not U+FFFD.
    "latin1_8bit_body_and_raw_8bit_subject": "Grüße aus Köln",
    # PostgreSQL cannot store NUL in text: dropped from metadata, kept in the stored bytes.
    "nul_bytes": "nulinsubject",
    "shift_jis_body": "会議の件",
    "raw_utf8_headers": "Grüße 日本語 🎉",
    "nesting_bomb_10000_levels": "nesting bomb",
    "deep_multipart_50_levels": "deep multipart",
    "broken_base64": "broken base64",
    "only_headers_without_blank_line": "only headers",
    "duplicate_headers": "first subject",
}


async def test_corpus_has_the_required_shapes() -> None:
    names = {name for name, _ in CORPUS}
    assert len(CORPUS) >= 20
    for required in (
        "nesting_bomb_10000_levels",
        "header_flood_500k_lines",
        "empty_message",
        "nul_bytes",
        "broken_base64",
        "broken_boundaries",
        "rfc2047_garbage",
        "binary_garbage",
        "only_headers_without_blank_line",
        "no_body",
        "duplicate_headers",
    ):
        assert required in names
    assert set(EXPECTED_REFUSALS) <= names and set(EXPECTED_SUBJECTS) <= names


async def _send_shape(port: int, message: bytes) -> tuple[Reply, float, RawSmtp]:
    """One transaction to sales@; returns the final reply, the CPU seconds DATA cost, the client."""
    client, greeting = await RawSmtp.connect(port)
    try:
        assert greeting.code == 220
        assert (await client.command("EHLO client.example.org")).code == 250
        assert (await client.command("MAIL FROM:<alice@example.org> BODY=8BITMIME")).code == 250
        assert (await client.command("RCPT TO:<sales@acme.test>")).code == 250
        started = time.process_time()
        go_ahead = await client.command("DATA")
        assert go_ahead.code == 354
        await client.send(data_transmission(message))
        final = await client.reply()
        return final, time.process_time() - started, client
    except BaseException:
        await client.close()
        raise


async def test_every_shape_is_stored_or_cleanly_refused_within_two_cpu_seconds(
    world: World, mx_port: int, subtests: pytest.Subtests
) -> None:
    for name, message in CORPUS:
        with subtests.test(msg=name):
            before = len(await stored_copies(world.services, world.sales))
            reply, cpu, client = await _send_shape(mx_port, message)
            try:
                assert cpu < CPU_LIMIT_SECONDS, f"{name}: DATA cost {cpu:.2f} s of CPU"
                copies = await stored_copies(world.services, world.sales)
                expected = EXPECTED_REFUSALS.get(name)
                if expected is None:
                    assert reply.code == 250, f"{name}: {reply}"
                    assert len(copies) == before + 1
                    _assert_stored_exactly(copies[-1].data, message)
                    if name in EXPECTED_SUBJECTS:
                        assert copies[-1].subject == EXPECTED_SUBJECTS[name]
                else:
                    assert str(reply).startswith(expected + " "), f"{name}: {reply}"
                    assert len(reply.text) > len("5.0.0 ") + 10, "the refusal says why"
                    assert len(copies) == before
                    # A clean refusal leaves the session usable.
                    assert (await client.command("NOOP")).code == 250
            finally:
                await client.close()


def _assert_stored_exactly(stored: bytes, message: bytes) -> None:
    """Stored = our trace fields + exactly the bytes sent (after dot-unstuffing)."""
    assert stored.endswith(message)
    trace = stored[: len(stored) - len(message)]
    assert trace.startswith(b"Return-Path: <alice@example.org>\r\nReceived: from ")
    assert trace.endswith(b"\r\n")
    # Everything after the Authentication-Results field is its own continuation lines: the
    # trace ends there and the message begins.
    _, marker, rest = trace.partition(b"\r\nAuthentication-Results: mx.mailmark.test;")
    assert marker
    continuation = rest.split(b"\r\n")[1:-1]
    assert continuation and all(line.startswith(b"\t") for line in continuation)
