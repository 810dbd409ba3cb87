"""/v1/send with attachments, end to end over real sockets: HTTP in, the queue's worker out to a
receiving MTA on loopback. The files arrive byte for byte in the right MIME structure under a
DKIM signature that verifies; a send over the size limit is refused before anything is queued."""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib

import dkim  # type: ignore[import-untyped]
import pytest

from mailmark.bootstrap import Listeners, Services
from mailmark.config import Settings
from mailmark.dns_tools.resolver import DnsResolver
from tests.fakedns import FakeDns
from tests.smtp_out.conftest import publish_dkim
from tests.support.smtp_sink import AiosmtpdSink
from tests.support.world import World
from tests.web.api.conftest import assert_error, client

LIMIT = 600_000
# Every byte value, and lines of base64 that a careless encoder would break differently.
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 300
PDF = b"%PDF-1.4\n" + hashlib.sha256(b"seed").digest() * 2000


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"max_message_size": LIMIT})


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


async def test_attachments_arrive_byte_identical_and_signed(
    services: Services,
    world: World,
    listeners: Listeners,
    remote_dns: FakeDns,
    sink: AiosmtpdSink,
) -> None:
    await publish_dkim(services, remote_dns, world.domain)
    key = await services.api_keys.create(world.domain)
    async with client(listeners.http_port, key.secret) as http:
        response = await http.post(
            "/v1/send",
            json={
                "from": "sales@acme.test",
                "to": ["bob@remote.test"],
                "subject": "Your invoice",
                "text": "The invoice is attached.",
                "html": '<p>The invoice is attached.</p><img src="cid:logo@acme.test">',
                "replyTo": "billing@acme.test",
                "headers": {"X-Invoice": "2026-118"},
                "tags": ["invoice"],
                "attachments": [
                    {"filename": "Rechnung März.pdf", "content": b64(PDF)},
                    {
                        "filename": "logo.png",
                        "content": b64(PNG),
                        "contentType": "image/png",
                        "contentId": "logo@acme.test",
                    },
                ],
            },
        )
    assert response.status_code == 200, response.text

    await sink.wait_for(1)

    [got] = sink.received
    assert got.recipients == ["bob@remote.test"]
    assert dkim.verify(got.content, dnsfunc=DnsResolver([remote_dns.address]).dkim_dnsfunc)
    message = email.message_from_bytes(got.content, policy=email.policy.default)
    assert message["Reply-To"] == "billing@acme.test" and message["X-Invoice"] == "2026-118"
    assert message.get_content_type() == "multipart/mixed"
    related, pdf = message.get_payload()  # type: ignore[misc]
    assert related.get_content_type() == "multipart/related"
    assert related.get_param("type") == "multipart/alternative"
    alternative, logo = related.get_payload()
    assert [p.get_content_type() for p in alternative.get_payload()] == [
        "text/plain",
        "text/html",
    ]
    assert logo["Content-ID"] == "<logo@acme.test>"
    assert logo.get_content_disposition() == "inline"
    assert logo.get_content() == PNG
    assert pdf.get_content_type() == "application/pdf"
    assert pdf.get_content_disposition() == "attachment"
    assert pdf.get_filename() == "Rechnung März.pdf"
    assert pdf.get_content() == PDF
    assert all(not part.defects for part in message.walk())


async def test_a_send_over_the_size_limit_is_refused_and_never_reaches_the_receiver(
    services: Services,
    world: World,
    listeners: Listeners,
    remote_dns: FakeDns,
    sink: AiosmtpdSink,
) -> None:
    await publish_dkim(services, remote_dns, world.domain)
    key = await services.api_keys.create(world.domain)
    base = {"from": "sales@acme.test", "to": ["bob@remote.test"], "text": "x"}
    async with client(listeners.http_port, key.secret) as http:
        # Under the limit decoded, over it once base64-encoded in the message.
        over = await http.post(
            "/v1/send",
            json={
                **base,
                "subject": "too big",
                "attachments": [{"filename": "a.bin", "content": b64(bytes(LIMIT * 4 // 5))}],
            },
        )
        small = await http.post("/v1/send", json={**base, "subject": "small"})

    assert_error(over, 413, "message_too_large", "attachments")
    assert small.status_code == 200, small.text
    await sink.wait_for(1)
    entries = await services.queue_admin.list()
    assert [entry.recipient for entry in entries] == ["bob@remote.test"]
    assert [b"Subject: small" in got.content for got in sink.received] == [True]
