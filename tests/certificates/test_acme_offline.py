"""Without a reachable ACME CA: `serve` runs on with the self-signed pair, logs the failure and
tries again later; the HTTP-01 answers are served to whoever asks, for pending tokens only."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from mailmark.bootstrap import Listeners, acme_challenges
from mailmark.certificates.acme_issuer import FIRST_RETRY
from mailmark.config import Settings
from tests.support.serve import free_port
from tests.support.tls import presented_certificate


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Nothing listens there.
    return settings.model_copy(update={"acme_directory": f"https://127.0.0.1:{free_port()}/dir"})


async def test_an_unreachable_ca_is_logged_and_retried_while_listeners_serve(
    listeners: Listeners, caplog: pytest.LogCaptureFixture
) -> None:
    renewer = listeners.acme
    assert renewer is not None
    for _ in range(100):
        if renewer.failures:
            break
        await asyncio.sleep(0.1)
    assert renewer.failures == 1
    assert "could not get a certificate from the ACME CA (attempt 1)" in caplog.text
    assert f"trying again in {int(FIRST_RETRY)} s" in caplog.text
    self_signed = listeners.certificates.loaded
    assert self_signed.cert_path.parent.name == "tls"
    assert await presented_certificate(listeners.imaps_port) == self_signed.leaf.public_bytes(
        Encoding.DER
    )


async def test_challenge_route_answers_pending_tokens_only(
    listeners: Listeners, settings: Settings
) -> None:
    token = "A" * 43
    answer = f"{token}.{'b' * 43}"
    acme_challenges(settings).put(token, answer)
    base = f"http://127.0.0.1:{listeners.http_port}/.well-known/acme-challenge"
    async with httpx.AsyncClient() as http:
        found = await http.get(f"{base}/{token}")
        assert (found.status_code, found.text) == (200, answer)
        for bad in ["B" * 43, "short", "..%2F..%2Fmailmark.db", "a.b" * 10]:
            refused = await http.get(f"{base}/{bad}")
            assert refused.status_code == 404, bad
    acme_challenges(settings).remove(token)
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"{base}/{token}")).status_code == 404
