"""One signed webhook request: re-check the target, post the body, read the status.

Each attempt connects to the address `TargetPolicy.check` has just approved — the URL's name is
not resolved again by the HTTP client — with the Host header and TLS SNI (and so the certificate
check) of the name in the URL. Redirects are never followed. The worker's deliveries and the
dashboard's test deliveries both go through here.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import OrderedDict

import httpx

from mailmark.core.errors import InvalidInput
from mailmark.core.webhooks import (
    SIGNATURE_HEADER,
    AttemptResult,
    TargetPolicy,
    WebhookTarget,
    sign,
)

CONNECT_TIMEOUT = 5.0
TOTAL_TIMEOUT = 10.0
# The receiver's answer matters only for its status: read at most this much of its body.
MAX_RESPONSE_BYTES = 4096
USER_AGENT = "Mailmark-Webhooks/1"

_PoolKey = tuple[str, str, str, int]


class WebhookPoster:
    """Posts signed events; keeps up to `max_clients` connection pools, one per (scheme, name,
    address, port): a pooled TLS connection is only ever reused for the name whose certificate
    it verified."""

    def __init__(
        self,
        targets: TargetPolicy,
        *,
        verify: ssl.SSLContext | bool = True,
        max_clients: int,
        connections_per_client: int,
    ) -> None:
        self._targets = targets
        self._verify = verify
        self._max_clients = max_clients
        self._connections = connections_per_client
        self._clients: OrderedDict[_PoolKey, httpx.AsyncClient] = OrderedDict()

    async def attempt(
        self, url: str, secret: str, body: bytes, event_id: str, event_type: str, timestamp: int
    ) -> AttemptResult:
        """Post once; the HTTP status, or why there is none, and how long it took."""
        code: int | None = None
        error: str | None = None
        started = time.perf_counter()
        try:
            async with asyncio.timeout(TOTAL_TIMEOUT):
                # Resolved and checked again now: the name may point elsewhere since it was saved.
                target = await self._targets.check(url)
                code = await self._post(target, secret, body, event_id, event_type, timestamp)
        except InvalidInput as exc:
            error = f"refused: {exc.message}"
        except TimeoutError:
            error = f"timed out after {TOTAL_TIMEOUT:g}s"
        except (httpx.HTTPError, OSError, ssl.SSLError) as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if code is not None and 300 <= code < 400:
            error = f"HTTP {code}: redirects are not followed"
        return AttemptResult(code, error, time.perf_counter() - started)

    async def close(self) -> None:
        clients = list(self._clients.values())
        self._clients.clear()
        for client in clients:
            await client.aclose()

    async def _post(
        self,
        target: WebhookTarget,
        secret: str,
        body: bytes,
        event_id: str,
        event_type: str,
        timestamp: int,
    ) -> int:
        headers = {
            "Host": target.host_header,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: sign(secret, timestamp, body),
            "Mailmark-Event-Id": event_id,
            "Mailmark-Event-Type": event_type,
        }
        address = f"[{target.address}]" if ":" in target.address else target.address
        url = f"{target.scheme}://{address}:{target.port}{target.target}"
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        client = await self._client((target.scheme, target.host, target.address, target.port))
        async with client.stream(
            "POST", url, content=body, headers=headers, extensions=extensions
        ) as response:
            read = 0
            async for chunk in response.aiter_raw():
                read += len(chunk)
                if read >= MAX_RESPONSE_BYTES:
                    break
            return response.status_code

    async def _client(self, key: _PoolKey) -> httpx.AsyncClient:
        client = self._clients.get(key)
        if client is not None:
            self._clients.move_to_end(key)
            return client
        client = httpx.AsyncClient(
            timeout=httpx.Timeout(TOTAL_TIMEOUT, connect=CONNECT_TIMEOUT),
            follow_redirects=False,
            # No proxy from the environment: the connection must go to the checked address.
            trust_env=False,
            verify=self._verify,
            # A connection for every attempt of a batch: none waits for a pooled one, which would
            # eat into its own time bound.
            limits=httpx.Limits(max_connections=self._connections, max_keepalive_connections=4),
        )
        self._clients[key] = client
        if len(self._clients) > self._max_clients:
            _, evicted = self._clients.popitem(last=False)
            await evicted.aclose()
        return client
