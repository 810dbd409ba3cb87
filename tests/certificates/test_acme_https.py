"""The HTTPS listener with certificates from a real ACME CA on loopback (Pebble): the redirect
listener (port 80 in production) answers the HTTP-01 challenges, HTTPS presents the issued chain
to clients that check it, and a renewal is seen by the next HTTPS connection without a restart."""

from __future__ import annotations

import httpx
import pytest
from cryptography import x509

from mailmark.bootstrap import Listeners
from mailmark.config import Settings
from tests.support.pebble import Pebble, issued
from tests.support.world import HOSTNAME, World


@pytest.fixture
def settings(settings: Settings, pebble: Pebble, acme_http_port: int) -> Settings:
    """The CA validates at the redirect listener; the plain HTTP port is elsewhere."""
    return settings.model_copy(
        update={
            "https_port": 0,
            "http_redirect_port": acme_http_port,
            "public_url": f"https://{HOSTNAME}",
            "acme_directory": pebble.directory_url,
            "acme_email": "postmaster@acme.test",
            "acme_ca_bundle": pebble.ca_file,
        }
    )


async def served(listeners: Listeners, pebble: Pebble) -> tuple[httpx.Response, x509.Certificate]:
    """GET /healthz on a new HTTPS connection that verifies the chain against Pebble's root and
    the host name; the answer and the certificate it was served with."""
    async with httpx.AsyncClient(
        verify=pebble.verifying_client(), trust_env=False, timeout=10
    ) as client:
        response = await client.get(
            f"https://127.0.0.1:{listeners.https_port}/healthz",
            extensions={"sni_hostname": HOSTNAME},
        )
        stream = response.extensions["network_stream"]
        der = stream.get_extra_info("ssl_object").getpeercert(binary_form=True)
    return response, x509.load_der_x509_certificate(der)


async def test_https_presents_the_issued_chain_and_its_renewal(
    world: World, listeners: Listeners, pebble: Pebble
) -> None:
    first = await issued(listeners)
    response, presented = await served(listeners, pebble)
    assert response.status_code == 200
    assert response.headers["strict-transport-security"].startswith("max-age=")
    assert presented == first

    assert listeners.acme is not None
    assert await listeners.acme.run_once(force=True)
    second = listeners.certificates.loaded.leaf
    assert second.serial_number != first.serial_number
    response, presented = await served(listeners, pebble)
    assert response.status_code == 200
    assert presented == second
