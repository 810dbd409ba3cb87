"""The TLS client side of tests: the servers under test present a self-signed certificate."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from pathlib import Path


def client_tls() -> ssl.SSLContext:
    """Encrypt, do not verify. Built bare rather than with `ssl.create_default_context()`, which
    loads the system's CA bundle (~30 ms each time) only for verification to be switched off."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def trusting(certificate: Path) -> ssl.SSLContext:
    """Verify that the server presents this (self-signed) certificate, whatever host name the
    test connects with (127.0.0.1, where the certificate names the server's host name)."""
    context = ssl.create_default_context(cafile=str(certificate))
    context.check_hostname = False
    return context


# How each protocol asks for TLS on its plain port: the greeting's last line, the command, and
# the start of the answer after which the handshake begins.
STARTTLS = {
    "smtp": (b"220 ", b"EHLO client.test\r\nSTARTTLS\r\n", b"220 "),
    "imap": (b"* OK", b"t1 STARTTLS\r\n", b"t1 OK"),
    "managesieve": (b"OK", b"STARTTLS\r\n", b"OK"),
}


async def _read_until(reader: asyncio.StreamReader, prefix: bytes) -> None:
    for _ in range(100):
        line = await asyncio.wait_for(reader.readline(), 10)
        if not line:
            raise ConnectionError(f"closed before a line starting {prefix!r}")
        if line.startswith(prefix):
            return
    raise ConnectionError(f"no line starting {prefix!r}")


async def tls_connection(
    port: int,
    context: ssl.SSLContext,
    *,
    starttls: str | None = None,
    server_hostname: str | None = None,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TLS connection to a listener on 127.0.0.1: implicit TLS, or the plain port upgraded
    with `starttls` ("smtp", "imap" or "managesieve")."""
    if starttls is None:
        return await asyncio.open_connection(
            "127.0.0.1", port, ssl=context, server_hostname=server_hostname
        )
    greeting, command, ready = STARTTLS[starttls]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await _read_until(reader, greeting)
    writer.write(command)
    await _read_until(reader, ready)
    await writer.start_tls(context, server_hostname=server_hostname)
    return reader, writer


async def presented_certificate(
    port: int,
    context: ssl.SSLContext | None = None,
    *,
    starttls: str | None = None,
    server_hostname: str | None = None,
) -> bytes:
    """The DER leaf certificate a listener presents to a new connection."""
    _, writer = await tls_connection(
        port, context or client_tls(), starttls=starttls, server_hostname=server_hostname
    )
    try:
        certificate = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        assert isinstance(certificate, bytes)
        return certificate
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()
