"""The web app's files: the single-page app built from web/ui, and the /schema API explorer.

`npm run build` in web/ui writes the app to `static/ui/` (package data: a wheel serves a prebuilt
UI without Node). Hashed files under /assets/ are cached for a year; index.html is answered for
every path of the app (the browser's router draws the page) and is never cached, so a new build
is picked up on the next load. Other paths (/api, /v1, /schema, /.well-known, …) keep their own
handlers, and an unknown /api path stays a JSON 404.
"""

from __future__ import annotations

import html
import json
import mimetypes
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from litestar import MediaType, Request, Response, get
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.params import FromPath
from litestar.response import File
from litestar.types import ControllerRouterHandler, Message, Scope

from mailmark.core.errors import NotFound
from mailmark.web.errors import error_body

UI_DIR = Path(__file__).resolve().parent / "static" / "ui"

# The app's own paths (web/ui/src/App.tsx keeps the same list); `{rest:path}` covers the subtree.
SPA_PATHS = [
    "/",
    "/setup",
    "/sign-in",
    "/sign-up",
    "/forgot-password",
    "/reset-password",
    "/invite/{rest:path}",
    "/dashboard",
    "/dashboard/{rest:path}",
    "/mail",
    "/mail/{rest:path}",
]

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
SCHEMA_PAGES = frozenset({"/schema", "/schema/"})

BUILD_HINT = (
    "Build it with `npm ci && npm run build` in web/ui, or start the server with ./scripts/serve."
)
NOT_BUILT_MESSAGE = f"The web app is not built. {BUILD_HINT}"
_MEDIA_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".woff2": "font/woff2",
    ".png": "image/png",
    ".ico": "image/x-icon",
}


def _media_type(path: Path) -> str:
    return (
        _MEDIA_TYPES.get(path.suffix)
        or mimetypes.guess_type(path.name)[0]
        or "application/octet-stream"
    )


def _not_built(request: Request[Any, Any, Any]) -> Response[Any]:
    """503 with how to build the app: a page for a browser, the error shape for a program."""
    headers = {"Cache-Control": "no-store", "Retry-After": "60"}
    if "text/html" in request.headers.get("accept", ""):
        page = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            "<title>Mailmark: the web app is not built</title></head><body>"
            "<h1>The web app is not built</h1>"
            f"<p>{html.escape(BUILD_HINT)}</p>"
            "<p>The API (<code>/v1</code>, <code>/api</code>) and mail services are running.</p>"
            "</body></html>"
        )
        return Response(page, status_code=503, media_type=MediaType.HTML, headers=headers)
    return Response(
        error_body("ui_not_built", NOT_BUILT_MESSAGE),
        status_code=503,
        media_type=MediaType.JSON,
        headers=headers,
    )


def spa_handlers(ui_dir: Path = UI_DIR) -> list[ControllerRouterHandler]:
    """The app's page paths and its asset files, served from `ui_dir`."""
    assets_dir = ui_dir / "assets"

    @get(SPA_PATHS, include_in_schema=False, sync_to_thread=False)
    def app_page(request: Request[Any, Any, Any]) -> Response[Any]:
        try:
            page = (ui_dir / "index.html").read_bytes()
        except FileNotFoundError:
            return _not_built(request)
        return Response(page, media_type=MediaType.HTML, headers={"Cache-Control": REVALIDATE})

    @get("/assets/{name:str}", include_in_schema=False, sync_to_thread=False)
    def asset(name: FromPath[str]) -> File:
        # Built names only (`index-B8IP4NY9.js`): one path segment, never a dot file.
        path = assets_dir / name
        if name.startswith(".") or "/" in name or "\\" in name or not path.is_file():
            raise NotFound(f"No asset {name!r}; the page may be from an older build, reload it.")
        return File(
            path,
            filename=name,
            content_disposition_type="inline",
            media_type=_media_type(path),
            headers={"Cache-Control": IMMUTABLE},
        )

    @get("/favicon.svg", include_in_schema=False, sync_to_thread=False)
    def favicon() -> File:
        path = ui_dir / "favicon.svg"
        if not path.is_file():
            raise NotFound("No favicon: the web app is not built.")
        return File(
            path,
            content_disposition_type="inline",
            media_type="image/svg+xml",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    return [app_page, asset, favicon]


class SchemaExplorer(OpenAPIRenderPlugin):
    """/schema: Scalar's API explorer from our own /assets (no CDN), started by an external
    script, so the page needs no inline script (and works offline)."""

    def __init__(self, ui_dir: Path = UI_DIR, *, path: str = "/") -> None:
        super().__init__(path=path)
        self.ui_dir = ui_dir

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        title = html.escape(str(openapi_schema.get("info", {}).get("title", "API")))
        spec_url = html.escape(self.get_openapi_json_route(request))
        try:
            files = json.loads((self.ui_dir / "schema.json").read_text())
            scalar, init = html.escape(files["scalar"]), html.escape(files["init"])
        except (OSError, ValueError, KeyError, TypeError):
            return (
                '<!doctype html><html lang="en"><head><meta charset="utf-8">'
                f"<title>{title} API</title></head><body><h1>{title} API</h1>"
                f"<p>The explorer is part of the web app, which is not built. {html.escape(BUILD_HINT)}</p>"
                f'<p>The OpenAPI document is at <a href="{spec_url}">{spec_url}</a>.</p>'
                "</body></html>"
            ).encode()
        return (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{title} API</title><link rel="icon" type="image/svg+xml" href="/favicon.svg">'
            "</head><body>"
            "<noscript>The API explorer needs JavaScript; the OpenAPI document is at "
            f'<a href="{spec_url}">{spec_url}</a>.</noscript>'
            f'<div id="schema-explorer" data-openapi-url="{spec_url}"></div>'
            f'<script src="{scalar}"></script><script src="{init}"></script>'
            "</body></html>"
        ).encode()


def schema_page_csp(policy: str) -> str:
    """`policy` with inline styles allowed: the /schema page's.

    Scalar writes its stylesheet, its theme and some style attributes at run time, so that page
    alone needs them; scripts stay 'self' only there too."""
    return policy.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")


def schema_page_policy(policy: str) -> Callable[[Message, Scope], Awaitable[None]]:
    """A before-send hook that gives the /schema page `schema_page_csp(policy)`. It runs before
    the hook that adds the usual policy, which keeps a policy that is there already."""
    relaxed = schema_page_csp(policy).encode()

    async def hook(message: Message, scope: Scope) -> None:
        if message["type"] == "http.response.start" and scope.get("path") in SCHEMA_PAGES:
            headers = list(message.get("headers") or [])
            headers.append((b"content-security-policy", relaxed))
            message["headers"] = headers

    return hook
