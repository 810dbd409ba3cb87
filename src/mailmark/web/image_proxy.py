"""The webmail's image proxy: fetches a remote image a message refers to, so that the reader's
address, cookies and Referer never reach the sender.

Only URLs the sanitiser rewrote are fetched (their HMAC is checked by `ImageSigner` first). Each
fetch resolves the host and refuses internal addresses with the webhooks' `TargetPolicy`, then
connects to the checked address itself (Host and SNI of the URL's name), follows no redirect,
reads at most MAX_IMAGE_BYTES within TOTAL_TIMEOUT, and accepts raster image types only (never
SVG, which can carry script). Answers are kept briefly in a small in-memory cache.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import OrderedDict
from dataclasses import dataclass

import httpx

from mailmark.core.errors import InvalidInput, MessageTooLarge, NotFound
from mailmark.core.webhooks import TargetPolicy

CONNECT_TIMEOUT = 5.0
TOTAL_TIMEOUT = 10.0
MAX_IMAGE_BYTES = 5 * 1024 * 1024
IMAGE_TYPES = frozenset(
    {"image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/bmp"}
)
CACHE_SECONDS = 600.0
CACHE_ENTRIES = 256
USER_AGENT = "Mailmark-ImageProxy/1"


@dataclass(frozen=True)
class RemoteImage:
    content: bytes
    content_type: str


class ImageProxy:
    def __init__(self, targets: TargetPolicy, *, verify: ssl.SSLContext | bool = True) -> None:
        self._targets = targets
        self._verify = verify
        self._cache: OrderedDict[str, tuple[float, RemoteImage]] = OrderedDict()

    def close(self) -> None:
        self._targets.close()

    async def fetch(self, url: str) -> RemoteImage:
        """The image; InvalidInput/TargetRefused for a refused URL, NotFound when the remote
        answers no image, MessageTooLarge beyond MAX_IMAGE_BYTES."""
        cached = self._cache.get(url)
        if cached is not None and cached[0] > time.monotonic():
            self._cache.move_to_end(url)
            return cached[1]
        try:
            async with asyncio.timeout(TOTAL_TIMEOUT):
                image = await self._get(url)
        except TimeoutError:
            raise NotFound(f"The image did not load within {TOTAL_TIMEOUT:g} s.") from None
        except (httpx.HTTPError, OSError, ssl.SSLError) as exc:
            raise NotFound(f"The image could not be loaded: {type(exc).__name__}.") from None
        self._cache[url] = (time.monotonic() + CACHE_SECONDS, image)
        if len(self._cache) > CACHE_ENTRIES:
            self._cache.popitem(last=False)
        return image

    async def _get(self, url: str) -> RemoteImage:
        target = await self._targets.check(url, allow_http=True, what="images")
        address = f"[{target.address}]" if ":" in target.address else target.address
        direct = f"{target.scheme}://{address}:{target.port}{target.target}"
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        headers = {"Host": target.host_header, "User-Agent": USER_AGENT, "Accept": "image/*"}
        client = httpx.AsyncClient(
            timeout=httpx.Timeout(TOTAL_TIMEOUT, connect=CONNECT_TIMEOUT),
            follow_redirects=False,
            trust_env=False,  # the connection must go to the checked address, not a proxy
            verify=self._verify,
        )
        async with (
            client,
            client.stream("GET", direct, headers=headers, extensions=extensions) as response,
        ):
            if response.status_code != 200:
                raise NotFound(f"The image's server answered HTTP {response.status_code}.")
            kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if kind not in IMAGE_TYPES:
                raise InvalidInput(
                    f"The remote file is {kind or 'of no type'}, not an image shown here.",
                    field="url",
                )
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > MAX_IMAGE_BYTES:
                raise MessageTooLarge(f"The image is larger than {MAX_IMAGE_BYTES} bytes.")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_IMAGE_BYTES:
                    raise MessageTooLarge(f"The image is larger than {MAX_IMAGE_BYTES} bytes.")
        return RemoteImage(bytes(body), kind)
