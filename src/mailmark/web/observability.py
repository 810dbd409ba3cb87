"""Health, readiness and metrics endpoints, and the measuring and logging of every HTTP request.

- `GET /healthz`: the process answers (liveness); touches nothing else.
- `GET /readyz`: each readiness check (mailmark.health) by name; 200 when all pass, else 503.
- `GET /metrics`: the Prometheus text format. With `MAILMARK_METRICS_TOKEN` set, only with
  `Authorization: Bearer <token>`; without one, only from loopback and not through a proxy (a
  request carrying Forwarded or X-Forwarded-For came through one, from who knows where).

`RequestObserver` wraps the app's router, so that every request (an unknown route, a refused
method, an error) is timed by its route template and logged once, with a request id.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from litestar import MediaType, Request, Response, get
from litestar.enums import ScopeType
from litestar.types import ASGIApp, ControllerRouterHandler, Message, Receive, Scope, Send

from mailmark.core.queue_admin import QueueDepth
from mailmark.health import Readiness
from mailmark.metrics import CONTENT_TYPE, UNMATCHED_ROUTE, Metrics, method_label, status_class
from mailmark.web.errors import error_body

log = logging.getLogger(__name__)
access_log = logging.getLogger("mailmark.access")

HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
METRICS_PATH = "/metrics"
# Probes run every few seconds: their access lines are DEBUG, not INFO.
_PROBE_ROUTES = frozenset({HEALTH_PATH, READY_PATH})
# An X-Request-ID a client (or the proxy in front) sent is kept when it looks like an id.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")
_NO_STORE = {"Cache-Control": "no-store"}

QueueDepthSource = Callable[[], Awaitable[Sequence[QueueDepth]]]


@dataclass(frozen=True)
class Observability:
    """What the endpoints need: the process's metrics, its readiness checks, where the queue's
    figures come from (None: this process reports none), and the metrics token (None: loopback
    only)."""

    metrics: Metrics
    readiness: Readiness
    queue_depth: QueueDepthSource | None = None
    metrics_token: str | None = None


def observability_handlers(observability: Observability) -> list[ControllerRouterHandler]:
    @get(HEALTH_PATH, include_in_schema=False, sync_to_thread=False)
    def healthz() -> Response[dict[str, str]]:
        return Response({"status": "ok"}, headers=_NO_STORE)

    @get(READY_PATH, include_in_schema=False)
    async def readyz() -> Response[dict[str, Any]]:
        results = await observability.readiness.check()
        ready = all(result.ok for result in results)
        body: dict[str, Any] = {
            "status": "ok" if ready else "unavailable",
            "checks": {result.name: result.detail for result in results},
        }
        if not ready:
            body["failing"] = [result.name for result in results if not result.ok]
        return Response(body, status_code=200 if ready else 503, headers=_NO_STORE)

    @get(METRICS_PATH, include_in_schema=False)
    async def metrics(request: Request[Any, Any, Any]) -> Response[Any]:
        refusal = _metrics_refusal(request, observability.metrics_token)
        if refusal is not None:
            return refusal
        depths: Sequence[QueueDepth] | None = None
        if observability.queue_depth is not None:
            try:
                depths = await observability.queue_depth()
            except Exception:
                log.warning("queue figures for /metrics unavailable", exc_info=True)
        return Response(
            observability.metrics.exposition(depths),
            media_type=CONTENT_TYPE,
            headers=_NO_STORE,
        )

    return [healthz, readyz, metrics]


def _metrics_refusal(request: Request[Any, Any, Any], token: str | None) -> Response[Any] | None:
    if token is not None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        # Constant time: how much of a guess matches must not show in the answer's timing.
        if scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), token.encode()
        ):
            return None
        return Response(
            error_body(
                "unauthenticated",
                "The metrics need Authorization: Bearer <MAILMARK_METRICS_TOKEN>.",
            ),
            status_code=401,
            media_type=MediaType.JSON,
            headers={"WWW-Authenticate": 'Bearer realm="metrics"', **_NO_STORE},
        )
    client = request.client.host if request.client else ""
    proxied = any(name in request.headers for name in _PROXY_HEADERS)
    if _is_loopback(client) and not proxied:
        return None
    return Response(
        error_body(
            "forbidden",
            "The metrics are served to this machine only; set MAILMARK_METRICS_TOKEN to scrape "
            "them from elsewhere or through a proxy.",
        ),
        status_code=403,
        media_type=MediaType.JSON,
        headers=_NO_STORE,
    )


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class RequestObserver:
    """ASGI middleware around the app: a request id (X-Request-ID, kept from the request when it
    looks like one), the latency histogram by route template and status class, one access line."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.wrapped = app
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.wrapped(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        status = 500  # what the client sees if the app ends without answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers") or [])
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.wrapped(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            # Set by Litestar's router on the same scope; none when no route matched.
            route = str(scope.get("path_template") or UNMATCHED_ROUTE)
            method = scope.get("method", "")
            self._metrics.http_request_duration.labels(
                method_label(method), route, status_class(status)
            ).observe(elapsed)
            level = logging.DEBUG if route in _PROBE_ROUTES else logging.INFO
            if access_log.isEnabledFor(level):
                _log_access(level, method, route, status, elapsed, request_id, scope)


def _log_access(
    level: int,
    method: str,
    route: str,
    status: int,
    elapsed: float,
    request_id: str,
    scope: Scope,
) -> None:
    client = scope.get("client")
    access_log.log(
        level,
        "%s %s %d %.1f ms %s",
        method,
        route,
        status,
        elapsed * 1000,
        request_id,
        extra={
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": round(elapsed * 1000, 3),
            "request_id": request_id,
            "client_ip": client[0] if client else None,
        },
    )


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            given = value.decode("latin-1")
            if _REQUEST_ID.fullmatch(given):
                return given
            break
    return secrets.token_hex(8)
