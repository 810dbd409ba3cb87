"""Certificates from a real ACME CA on loopback (Pebble): HTTP-01 answered by our HTTP listener,
the issued chain presented by every TLS listener, and a renewal seen by IMAPS clients while the
listener, and the sessions already open, stay up."""

from __future__ import annotations

import asyncio

import pytest
from acme import errors
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mailmark.bootstrap import Listeners
from mailmark.certificates.acme_issuer import describe_failure
from mailmark.config import Settings
from tests.support.pebble import ACME_NAMES, Pebble, issued
from tests.support.tls import presented_certificate, tls_connection
from tests.support.world import HOSTNAME, World


@pytest.fixture
def settings(settings: Settings, pebble: Pebble, acme_http_port: int) -> Settings:
    return settings.model_copy(
        update={
            "http_port": acme_http_port,
            "public_url": f"http://{HOSTNAME}:{acme_http_port}",
            "acme_directory": pebble.directory_url,
            "acme_email": "postmaster@acme.test",
            "acme_ca_bundle": pebble.ca_file,
        }
    )


async def test_every_tls_listener_presents_the_chain_the_ca_issued(
    world: World, listeners: Listeners, pebble: Pebble, settings: Settings
) -> None:
    leaf = await issued(listeners)
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(names.get_values_for_type(x509.DNSName)) == sorted(ACME_NAMES)
    account_key = settings.data_dir / "acme" / "account.key"
    assert account_key.stat().st_mode & 0o777 == 0o600
    assert (settings.data_dir / "acme" / "key.pem").stat().st_mode & 0o777 == 0o600
    assert not list((settings.data_dir / "acme" / "challenges").iterdir())  # answers cleaned up

    client = pebble.verifying_client()
    ports = [
        (listeners.submissions_port, None),
        (listeners.imaps_port, None),
        (listeners.mx_port, "smtp"),
        (listeners.submission_port, "smtp"),
        (listeners.imap_port, "imap"),
        (listeners.managesieve.port, "managesieve"),
    ]
    for port, starttls in ports:
        # Verification against Pebble's root, for the host name, is the check: it fails for any
        # other certificate.
        presented = await presented_certificate(
            port, client, starttls=starttls, server_hostname=HOSTNAME
        )
        assert x509.load_der_x509_certificate(presented) == leaf, (port, starttls)


async def test_renewal_is_seen_by_new_imaps_connections_while_open_sessions_go_on(
    world: World, listeners: Listeners, pebble: Pebble
) -> None:
    first = await issued(listeners)
    client = pebble.verifying_client()
    reader, writer = await tls_connection(listeners.imaps_port, client, server_hostname=HOSTNAME)
    try:
        assert (await reader.readline()).startswith(b"* OK")
        writer.write(b"a1 LOGIN sales@acme.test sales-pass-1\r\n")
        assert (await _tagged(reader, b"a1")).startswith(b"a1 OK")
        seen_before = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        assert x509.load_der_x509_certificate(seen_before) == first

        assert listeners.acme is not None
        assert await listeners.acme.run_once(force=True)
        second = listeners.certificates.loaded.leaf
        assert second.serial_number != first.serial_number

        presented = await presented_certificate(
            listeners.imaps_port, client, server_hostname=HOSTNAME
        )
        assert x509.load_der_x509_certificate(presented) == second

        # The session opened before the reload still works, over its first certificate.
        writer.write(b"a2 SELECT INBOX\r\n")
        assert (await _tagged(reader, b"a2")).startswith(b"a2 OK")
        assert writer.get_extra_info("ssl_object").getpeercert(binary_form=True) == seen_before
    finally:
        writer.close()


async def _tagged(reader: asyncio.StreamReader, tag: bytes) -> bytes:
    for _ in range(50):
        line = await asyncio.wait_for(reader.readline(), 10)
        if line.startswith(tag + b" ") or not line:
            return line
    raise AssertionError(f"no tagged answer for {tag!r}")


async def test_a_failed_validation_keeps_the_certificate_in_use(
    world: World, listeners: Listeners, pebble: Pebble
) -> None:
    before = await issued(listeners)
    # A newly verified domain whose names do not resolve yet: the CA cannot validate them.
    await world.services.domains.add("late.test", account_name="acme", trust=True)
    assert listeners.acme is not None
    with pytest.raises(errors.ValidationError) as failure:
        await listeners.acme.run_once()
    assert "mta-sts.late.test" in describe_failure(failure.value)
    assert listeners.certificates.loaded.leaf == before
    assert await presented_certificate(
        listeners.imaps_port, pebble.verifying_client(), server_hostname=HOSTNAME
    ) == before.public_bytes(serialization.Encoding.DER)
