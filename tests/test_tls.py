"""What every TLS port offers (one server context for IMAPS, submissions and STARTTLS): TLS 1.2 or
later, and under TLS 1.2 only forward-secret AEAD suites, as testssl.sh checks."""

from __future__ import annotations

import asyncio
import ssl

import pytest

from mailmark.bootstrap import Listeners


def client(ciphers: str) -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(ciphers)
    return context


async def cipher_agreed(port: int, ciphers: str) -> str | None:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client(ciphers))
    except (ssl.SSLError, ConnectionError):
        return None
    name = writer.get_extra_info("cipher")[0]
    writer.close()
    return str(name)


@pytest.mark.parametrize("port_name", ["imaps_port", "submissions_port"])
async def test_tls_1_2_offers_aead_suites_and_no_cbc(listeners: Listeners, port_name: str) -> None:
    port = getattr(listeners, port_name)
    assert await cipher_agreed(port, "ECDHE-RSA-AES128-GCM-SHA256") == "ECDHE-RSA-AES128-GCM-SHA256"
    for cbc in ("ECDHE-RSA-AES128-SHA256", "ECDHE-RSA-AES256-SHA384", "ECDHE-RSA-AES128-SHA"):
        assert await cipher_agreed(port, cbc) is None, cbc
