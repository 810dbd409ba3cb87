"""The HTTP listener admits connections as the mail listeners do (per-IP and per-listener caps, a
descriptor reserve shared by the process) and closes a connection whose request headers do not
arrive in time. Raw sockets: a well-behaved client library would never hold a request half-sent."""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import httpx
import pytest

from mailmark.bootstrap import Listeners, Services, start_listeners
from mailmark.connections import Refusal, RefusalLog
from tests.support.tls import client_tls

TIMEOUT = 10.0
CLIENT_KEEP_ALIVE_EXPIRY = httpx.Limits().keepalive_expiry or 5.0
HALF_REQUEST = b"GET /v1/mailboxes HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
REQUEST = b"GET /v1/mailboxes HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@contextlib.asynccontextmanager
async def started(services: Services, **settings: Any) -> AsyncIterator[Listeners]:
    changed = services.settings.model_copy(update=settings)
    listeners = await start_listeners(replace(services, settings=changed))
    try:
        yield listeners
    finally:
        await listeners.close()


async def connect(port: int, source: str = "127.0.0.1", *, tls: bool = False) -> Connection:
    return await asyncio.open_connection(
        "127.0.0.1", port, local_addr=(source, 0), ssl=client_tls() if tls else None
    )


async def response(connection: Connection) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of one response (Content-Length framed)."""
    reader, _ = connection
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {
        name.lower(): value.strip()
        for name, _, value in (line.partition(":") for line in lines if line)
    }
    body = await asyncio.wait_for(
        reader.readexactly(int(headers.get("content-length", "0"))), TIMEOUT
    )
    return int(status_line.split()[1]), headers, body


async def closed_by_server(connection: Connection) -> bool:
    reader, _ = connection
    try:
        data = await asyncio.wait_for(reader.read(65536), TIMEOUT)
    except ConnectionError:
        return True
    return data == b""


def close(connections: list[Connection]) -> None:
    for _, writer in connections:
        writer.close()


async def test_connections_per_address_are_capped_but_127_0_0_1_is_not(services: Services) -> None:
    async with started(services, max_connections_per_ip=2) as listeners:
        port = listeners.http_port
        held = [await connect(port, "127.0.0.2") for _ in range(2)]
        for _, writer in held:
            writer.write(HALF_REQUEST)
        refused = await connect(port, "127.0.0.2")
        status, headers, body = await response(refused)
        assert status == 503
        assert headers["retry-after"] == "5"
        assert json.loads(body)["error"]["code"] == "server_busy"
        assert await closed_by_server(refused)
        # The loopback address a reverse proxy connects from is not capped.
        local = [await connect(port) for _ in range(3)]
        for connection in local:
            connection[1].write(REQUEST)
            assert (await response(connection))[0] == 401
        close(held + local)
        await asyncio.sleep(0.2)
        again = await connect(port, "127.0.0.2")
        again[1].write(REQUEST)
        assert (await response(again))[0] == 401
        close([again])


async def test_a_flood_of_refused_connections_is_one_log_line_then_a_count(
    services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    async with started(services, max_connections_per_ip=1) as listeners:
        port = listeners.http_port
        held = await connect(port, "127.0.0.2")
        held[1].write(HALF_REQUEST)
        for _ in range(30):
            refused = await connect(port, "127.0.0.2")
            assert (await response(refused))[0] == 503
            close([refused])
        close([held])
    lines = [r.getMessage() for r in caplog.records if "refusing HTTP" in r.getMessage()]
    assert lines == [
        "refusing HTTP connection from 127.0.0.2: too many connections from this address"
    ]


def test_refusals_after_the_first_of_a_period_are_counted_in_the_next_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    refusals = RefusalLog(clock=lambda: now[0])
    for _ in range(5):
        refusals.refused("SMTP", "192.0.2.1", Refusal.PER_IP)
    refusals.refused("SMTP", "192.0.2.2", Refusal.TOTAL)
    now[0] += RefusalLog.PERIOD
    refusals.refused("SMTP", "192.0.2.1", Refusal.PER_IP)
    assert [r.getMessage() for r in caplog.records] == [
        "refusing SMTP connection from 192.0.2.1: too many connections from this address",
        "refusing SMTP connection from 192.0.2.2: too many connections to this listener",
        "refusing SMTP connection from 192.0.2.1: too many connections from this address"
        " (and 4 more refused since the last such line)",
    ]


async def test_a_listener_takes_at_most_max_connections(services: Services) -> None:
    async with started(services, max_connections=2) as listeners:
        held = [await connect(listeners.http_port) for _ in range(2)]
        refused = await connect(listeners.http_port)
        assert (await response(refused))[0] == 503
        # The mail listeners count their own connections.
        reader, writer = await connect(listeners.mx_port)
        assert (await asyncio.wait_for(reader.readline(), TIMEOUT)).startswith(b"220 ")
        close([*held, refused, (reader, writer)])


async def test_half_sent_headers_are_closed_after_the_header_timeout(services: Services) -> None:
    async with started(services, http_header_timeout=timedelta(seconds=0.5)) as listeners:
        slow = await connect(listeners.http_port)
        slow[1].write(HALF_REQUEST)
        assert await closed_by_server(slow)
        # The same deadline holds for the next request on a kept-alive connection.
        kept = await connect(listeners.http_port)
        kept[1].write(REQUEST)
        assert (await response(kept))[0] == 401
        kept[1].write(HALF_REQUEST)
        assert await closed_by_server(kept)
        # A request sent in time is answered.
        prompt = await connect(listeners.http_port)
        prompt[1].write(REQUEST)
        assert (await response(prompt))[0] == 401
        close([slow, kept, prompt])


@pytest.mark.parametrize("port_name", ["https_port", "http_redirect_port"])
async def test_the_https_and_redirect_listeners_admit_and_time_out_like_http(
    services: Services, port_name: str
) -> None:
    web = {"https_port": 0, "http_redirect_port": 0}
    tls = port_name == "https_port"
    async with started(
        services, **web, max_connections=1, http_header_timeout=timedelta(seconds=0.5)
    ) as listeners:
        port = getattr(listeners, port_name)
        slow = await connect(port, tls=tls)
        slow[1].write(HALF_REQUEST)
        refused = await connect(port, tls=tls)
        status, _, body = await response(refused)
        assert status == 503 and json.loads(body)["error"]["code"] == "server_busy"
        assert await closed_by_server(slow)
        close([slow, refused])
        await asyncio.sleep(0.2)
        prompt = await connect(port, tls=tls)
        prompt[1].write(REQUEST)
        # /v1 wants a key over HTTPS; the redirect listener sends the request there.
        assert (await response(prompt))[0] == (401 if tls else 308)
        close([prompt])


async def test_an_idle_kept_alive_connection_outlasts_a_clients_keep_alive_expiry(
    services: Services,
) -> None:
    """httpx, like most client libraries, drops a pooled connection after 5 s idle: were the
    server to close it at the same moment, a request sent on it would be lost in the race."""
    async with started(services, http_header_timeout=timedelta(seconds=8)) as listeners:
        kept = await connect(listeners.http_port)
        kept[1].write(REQUEST)
        assert (await response(kept))[0] == 401
        await asyncio.sleep(CLIENT_KEEP_ALIVE_EXPIRY + 0.5)
        kept[1].write(REQUEST)
        assert (await response(kept))[0] == 401
        close([kept])


@pytest.mark.parametrize("port_name", ["mx_port", "imap_port"])
async def test_near_the_descriptor_limit_a_flooded_protocol_leaves_the_others_room(
    services: Services, port_name: str
) -> None:
    # A reserve as large as the limit: the process is always "near" it, so each listener keeps
    # to its share of the descriptors, which this makes one connection.
    async with started(services, descriptor_reserve=10**9) as listeners:
        held = await connect(listeners.http_port)
        held[1].write(HALF_REQUEST)
        flood = await connect(listeners.http_port)
        assert (await response(flood))[0] == 503
        reader, writer = await connect(getattr(listeners, port_name))
        greeting = await asyncio.wait_for(reader.readline(), TIMEOUT)
        assert greeting.startswith((b"220 ", b"* OK")), greeting
        close([held, flood, (reader, writer)])


async def test_the_soft_descriptor_limit_is_raised_to_the_hard_limit(services: Services) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lowered = min(1024, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowered, hard))
    try:
        async with started(services):
            assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == hard
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
