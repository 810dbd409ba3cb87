"""OutgoingMessage and smtp_path: what the SMTP client puts on the wire."""

from __future__ import annotations

import pytest

from mailmark.smtp_out.client import OutgoingMessage, SmtpDialer, smtp_path
from mailmark.smtp_out.mx import MxHost
from tests.support.smtp_sink import AiosmtpdSink


@pytest.mark.parametrize(
    ("message", "wire"),
    [
        (b"a\r\nb\r\n", b"a\r\nb\r\n.\r\n"),
        (b".first\r\n", b"..first\r\n.\r\n"),
        (b"a\r\n.\r\n..b\r\n", b"a\r\n..\r\n...b\r\n.\r\n"),
        (b"a.b\r\n", b"a.b\r\n.\r\n"),
    ],
)
def test_lines_starting_with_a_period_get_another(message: bytes, wire: bytes) -> None:
    # RFC 5321 §4.5.2
    outgoing = OutgoingMessage.from_crlf(message)
    assert outgoing.wire == wire
    assert outgoing.size == len(message)


def test_eight_bit_is_noticed() -> None:
    assert not OutgoingMessage.from_crlf(b"plain\r\n").eight_bit
    assert OutgoingMessage.from_crlf("caf\u00e9\r\n".encode()).eight_bit


def test_paths() -> None:
    assert smtp_path("bob@remote.test") == b"<bob@remote.test>"
    assert smtp_path('"bob smith"@remote.test') == b'<"bob smith"@remote.test>'
    for smuggling in (
        "bob@remote.test> SIZE=1",
        "bob@remote.test\r\nRSET",
        "<a@b>",
        '"bob"@remote.test> SIZE=1',
        '"bob\r\n"@remote.test',
        "j\u00f6rg@remote.test",
    ):
        with pytest.raises(ValueError):
            smtp_path(smuggling)


async def test_an_address_that_cannot_be_sent_fails_alone_and_for_good(sink: AiosmtpdSink) -> None:
    dialer = SmtpDialer(helo_name="mx.mailmark.test", port=sink.port)
    mx = [MxHost("mx.remote.test", ("127.0.0.1",))]
    message = OutgoingMessage.from_crlf(b"Subject: hello\r\n\r\nHello.\r\n")
    connection = await dialer.open("remote.test", mx)
    try:
        replies = await connection.send(
            "bounce@acme.test",
            ["bob@remote.test", "eve@remote.test> SIZE=1", "j\u00f6rg@remote.test"],
            message,
        )
        unsendable_sender = await connection.send(
            "bounce@acme.test> SIZE=1", ["bob@remote.test"], message
        )
    finally:
        await connection.close()

    assert [(reply.code, reply.enhanced) for reply in replies[1:]] == [
        (553, "5.1.3"),
        (553, "5.1.3"),
    ]
    assert replies[0].code == 250
    assert [(reply.code, reply.enhanced) for reply in unsendable_sender] == [(553, "5.1.7")]
    [got] = sink.received
    assert got.recipients == ["bob@remote.test"]
