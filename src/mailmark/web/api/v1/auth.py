"""The /v1 auth guard: `Authorization: Bearer dm_live_…` → the key's domain, for every route.

The guard sits on the /v1 router, so no route under it can forget it; handlers receive the
result as the `principal` dependency.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeAlias, TypeVar

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import Dependency
from litestar.handlers.base import BaseRouteHandler
from litestar.params import SkipValidationMarker

from mailmark.core.apikeys import ApiKeyService, ApiPrincipal

T = TypeVar("T")
# A dependency handed over as provided: services and the principal are ours, and checking them
# with isinstance on every request costs time for nothing (and fails on Protocols).
Injected: TypeAlias = Annotated[T, SkipValidationMarker(), Dependency(kind="named")]
Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]


def api_key_guard(api_keys: ApiKeyService) -> Guard:
    async def require_api_key(
        connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
    ) -> None:
        # A missing, malformed, unknown or revoked key → 401; over its rate → 429 + Retry-After.
        connection.state.principal = await api_keys.authenticate(
            connection.headers.get("authorization")
        )

    return require_api_key


def current_principal(request: Request[Any, Any, Any]) -> ApiPrincipal:
    principal: ApiPrincipal = request.state.principal
    return principal
