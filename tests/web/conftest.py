"""A running web app on loopback, built from the same services `mailmark serve` builds."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
from litestar import Litestar

from mailmark.bootstrap import Services, connection_limits
from mailmark.dns_tools.record_set import MailServer
from mailmark.web.app import create_app
from mailmark.web.server import start_http_listener
from tests.support.world import World


@pytest.fixture
def mail_server(services: Services) -> MailServer:
    return MailServer(
        hostname=services.settings.hostname,
        submission_port=587,
        submissions_port=465,
        imap_port=143,
        imaps_port=993,
    )


@contextlib.asynccontextmanager
async def serving(app: Litestar, services: Services) -> AsyncIterator[httpx.AsyncClient]:
    """`app` on 127.0.0.1 (an ephemeral port) with the listener limits `mailmark serve` uses, and
    an HTTP client for it."""
    listener = await start_http_listener(
        app,
        host="127.0.0.1",
        port=0,
        limits=connection_limits(services.settings)(),
        header_timeout=services.settings.http_header_timeout.total_seconds(),
    )
    try:
        # trust_env=False: a proxy from the environment must not sit between the test and loopback.
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{listener.port}", trust_env=False, timeout=10
        ) as client:
            yield client
    finally:
        await listener.close()


@pytest.fixture
async def http(
    services: Services, world: World, mail_server: MailServer
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the web app."""
    app = create_app(
        mail_server=mail_server, domains=services.domains, mailboxes=services.mailboxes
    )
    async with serving(app, services) as client:
        yield client
