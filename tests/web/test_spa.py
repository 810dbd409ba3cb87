"""The built web app and the /schema explorer over a real listener: files, types, cache headers,
the fallback to index.html for the app's paths, and JSON 404s everywhere else."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from mailmark.bootstrap import Services
from mailmark.dns_tools.record_set import MailServer
from mailmark.web.app import CONTENT_SECURITY_POLICY, create_app
from mailmark.web.spa import IMMUTABLE, schema_page_csp
from tests.web.conftest import serving

APP_PATHS = [
    "/",
    "/setup?token=abc",
    "/sign-in",
    "/sign-in?next=%2Fdashboard%2Fteam",
    "/sign-up",
    "/forgot-password",
    "/reset-password?token=abc",
    "/invite/0123456789abcdef",
    "/dashboard",
    "/dashboard/",
    "/dashboard/domains",
    "/dashboard/domains/acme.test",
    "/dashboard/mailboxes/sales%40acme.test",
    "/dashboard/developer",
    "/dashboard/team",
    "/dashboard/settings",
    "/dashboard/settings/security",
    "/dashboard/campaigns/7/recipients/3",
    "/dashboard/not-a-page/yet",  # the app's own 404 page
]
NOT_APP_PATHS = [
    "/api/nothing-here",
    "/api/",
    "/api/dashboard",
    "/v1/nothing-here",
    "/dashboardx",
    "/sign-in/extra",
    "/invite",
    "/assets/",
    "/assets/does-not-exist.js",
    "/assets/..%2Findex.html",
    "/assets/%2E%2E%2Fschema.json",
    "/.well-known/nothing",
]


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text inside <script> and <style>."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inline: list[tuple[str, str]] = []
        self._open: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._open = tag if tag in {"script", "style"} else None

    def handle_endtag(self, tag: str) -> None:
        self._open = None

    def handle_data(self, data: str) -> None:
        if self._open and data.strip():
            self.inline.append((self._open, data))


def parse(page: str) -> Tags:
    tags = Tags()
    tags.feed(page)
    return tags


def local_references(tags: Tags) -> list[str]:
    """Every src and href of the page, which must all be paths on this server."""
    refs = [
        value
        for _, attrs in tags.tags
        for name, value in attrs.items()
        if name in {"src", "href"} and value
    ]
    for ref in refs:
        assert ref.startswith("/") and not ref.startswith("//"), f"not a local path: {ref}"
    return refs


@pytest.fixture
async def web(built_ui: Path, http: httpx.AsyncClient) -> httpx.AsyncClient:
    return http


async def test_app_paths_answer_index_html_uncached(web: httpx.AsyncClient) -> None:
    index = None
    for path in APP_PATHS:
        answer = await web.get(path, headers={"Accept": "text/html"})
        assert answer.status_code == 200, path
        assert answer.headers["content-type"] == "text/html; charset=utf-8", path
        assert answer.headers["cache-control"] == "no-cache", path
        index = index or answer.text
        assert answer.text == index, path
    assert index is not None and '<div id="root"></div>' in index


async def test_other_paths_keep_their_handlers_and_json_404(web: httpx.AsyncClient) -> None:
    for path in NOT_APP_PATHS:
        answer = await web.get(path, headers={"Accept": "text/html,application/json"})
        assert answer.status_code == 404, path
        assert answer.headers["content-type"].startswith("application/json"), path
        assert answer.json()["error"]["code"] == "not_found", path
    # An unknown method on an app path is not turned into the page either.
    answer = await web.post("/dashboard", json={})
    assert answer.status_code == 405
    assert answer.json()["error"]["code"] == "method_not_allowed"


async def test_index_has_no_inline_script_or_style_and_its_assets_are_served(
    web: httpx.AsyncClient,
) -> None:
    index = await web.get("/")
    assert index.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert index.headers["x-content-type-options"] == "nosniff"
    tags = parse(index.text)
    assert tags.inline == [], "the Content-Security-Policy refuses inline script and style"
    assert not [tag for tag, attrs in tags.tags if "style" in attrs], "no style attributes"
    assert not [attrs for _, attrs in tags.tags for name in attrs if name.startswith("on")], (
        "no inline event handlers"
    )
    refs = local_references(tags)
    scripts = [attrs["src"] for tag, attrs in tags.tags if tag == "script"]
    styles = [
        attrs["href"] for tag, attrs in tags.tags if tag == "link" and attrs["rel"] == "stylesheet"
    ]
    assert len(scripts) == 1 and len(styles) == 1, refs
    expected_types = {
        scripts[0]: "text/javascript; charset=utf-8",
        styles[0]: "text/css; charset=utf-8",
        "/favicon.svg": "image/svg+xml",
    }
    for ref in refs:
        answer = await web.get(ref)
        assert answer.status_code == 200, ref
        assert answer.headers["content-type"] == expected_types[ref], ref
        assert answer.content, ref
    for ref in (scripts[0], styles[0]):
        # Hashed names: a new build has new names, so a year of caching is safe.
        assert ref.startswith("/assets/") and "-" in ref.rsplit("/", 1)[1], ref
        answer = await web.get(ref)
        assert answer.headers["cache-control"] == IMMUTABLE
        again = await web.get(ref, headers={"If-None-Match": answer.headers["etag"]})
        assert again.status_code in {200, 304}


async def test_schema_page_loads_only_local_assets_and_the_scalar_bundle_is_served(
    web: httpx.AsyncClient,
) -> None:
    answer = await web.get("/schema")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    # Scalar writes <style> elements at run time: this page alone allows inline styles, and
    # still no script from anywhere but this server.
    [policy] = answer.headers.get_list("content-security-policy")
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["style-src"] == "'self' 'unsafe-inline'"
    assert directives["script-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert policy == schema_page_csp(CONTENT_SECURITY_POLICY)
    tags = parse(answer.text)
    assert tags.inline == [], "no inline script: the CSP allows scripts from 'self' only"
    refs = local_references(tags)
    scripts = [attrs["src"] for tag, attrs in tags.tags if tag == "script"]
    assert len(scripts) == 2 and all(src and src.startswith("/assets/") for src in scripts)
    [mount] = [attrs for _, attrs in tags.tags if attrs.get("id") == "schema-explorer"]
    assert mount["data-openapi-url"] == "/schema/openapi.json"
    bodies = {}
    for ref in refs:
        fetched = await web.get(ref)
        assert fetched.status_code == 200, ref
        bodies[ref] = fetched
    scalar, starter = (bodies[src] for src in scripts if src)
    assert scalar.headers["content-type"] == "text/javascript; charset=utf-8"
    assert scalar.headers["cache-control"] == IMMUTABLE
    assert len(scalar.content) > 1_000_000 and b"createApiReference" in scalar.content
    assert (
        b"createApiReference" in starter.content and b"withDefaultFonts: false" in starter.content
    )
    spec = await web.get(mount["data-openapi-url"] or "")
    assert spec.status_code == 200
    assert json.loads(spec.content)["info"]["title"] == "Mailmark"


@pytest.fixture
async def unbuilt(
    services: Services, mail_server: MailServer, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """The app over a directory with no build in it."""
    app = create_app(
        mail_server=mail_server,
        domains=services.domains,
        mailboxes=services.mailboxes,
        ui_dir=tmp_path / "ui",
    )
    async with serving(app, services) as client:
        yield client


async def test_without_a_build_the_pages_say_how_to_build_it(unbuilt: httpx.AsyncClient) -> None:
    page = await unbuilt.get("/dashboard", headers={"Accept": "text/html"})
    assert page.status_code == 503
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "npm ci &amp;&amp; npm run build" in page.text and "./scripts/serve" in page.text
    assert parse(page.text).inline == []
    program = await unbuilt.get("/sign-in", headers={"Accept": "application/json"})
    assert program.status_code == 503
    assert program.json()["error"]["code"] == "ui_not_built"
    assert "npm run build" in program.json()["error"]["message"]
    assert (await unbuilt.get("/assets/index-abc.js")).status_code == 404
    schema = await unbuilt.get("/schema")
    assert schema.status_code == 200
    assert "not built" in schema.text and 'href="/schema/openapi.json"' in schema.text
    assert (await unbuilt.get("/schema/openapi.json")).status_code == 200
    assert (await unbuilt.get("/api/nothing")).json()["error"]["code"] == "not_found"
