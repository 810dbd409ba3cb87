"""Delivery to Postfix's smtp-sink: another receiving MTA than our own test sink."""

from __future__ import annotations

from collections.abc import Iterator

import dkim  # type: ignore[import-untyped]
import pytest

from mailmark.bootstrap import Services, outbound_worker
from mailmark.dns_tools.resolver import DnsResolver
from tests.fakedns import FakeDns
from tests.smtp_out.conftest import publish_dkim
from tests.support.smtp_sink import SMTP_SINK, SmtpSinkProcess
from tests.support.world import World

pytestmark = pytest.mark.skipif(
    not SMTP_SINK.exists(), reason="needs Postfix's smtp-sink (Debian package postfix)"
)
MESSAGES = 12


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSinkProcess]:
    sink = SmtpSinkProcess()
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()


def message_of_dump(dump: bytes) -> bytes:
    """The message in an smtp-sink dump: its own X-* fields and three-line Received dropped, LF
    turned back into CRLF, the empty line it appends removed."""
    lines = dump.split(b"\n")
    start = next(i for i, line in enumerate(lines) if line.startswith(b"Received: from "))
    body = lines[start + 3 :]
    assert body[-2:] == [b"", b""]
    return b"\r\n".join(body[:-2]) + b"\r\n"


async def test_smtp_sink_receives_every_message_signed(
    services: Services, world: World, remote_dns: FakeDns, smtp_sink: SmtpSinkProcess
) -> None:
    await publish_dkim(services, remote_dns, world.domain)
    worker = outbound_worker(services, port=smtp_sink.port)
    worker.start()
    try:
        for n in range(MESSAGES):
            await services.sending.submit(
                mailbox=world.sales,
                to=[f"user{n}@remote.test"],
                subject=f"Sink {n}",
                text=f"Message {n}\n.\nwith a dot line\n",
            )
        await worker.wait_until_idle()
    finally:
        await worker.stop()
    assert {entry.status for entry in await services.queue_admin.list(limit=100)} == {"delivered"}
    dumps = smtp_sink.dumps()
    assert len(dumps) == MESSAGES
    recipients = sorted(
        line.split(b"<")[1].split(b">")[0].decode()
        for dump in dumps
        for line in dump.split(b"\n")
        if line.startswith(b"X-Rcpt-Args: ")
    )
    assert recipients == sorted(f"user{n}@remote.test" for n in range(MESSAGES))
    resolver = DnsResolver([remote_dns.address])
    for dump in dumps:
        message = message_of_dump(dump)
        assert b"\r\n.\r\nwith a dot line" in message  # unstuffed by the receiver
        assert dkim.verify(message, dnsfunc=resolver.dkim_dnsfunc)
