"""The plain-HTTP listener in front of the HTTPS one (in production, port 80 in front of 443).

It answers two things itself: ACME HTTP-01 challenges (RFC 8555 §8.3: the CA fetches them over
plain HTTP, on port 80) and /healthz. Every other request is sent to the same path and query over
https with 308 Permanent Redirect (RFC 9110 §15.4.9: unlike 301, the method and body are kept, so
a POST stays a POST).

The Location names the host the request asked for only when the certificate presented over HTTPS
names it, so the browser lands where it meant to, on a certificate it accepts. Any other Host (an
IP address, a name someone else pointed here, garbage) gets the public host instead: a request
header is never copied into the redirect unchecked.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import quote

from litestar.enums import ScopeType
from litestar.types import (
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    HTTPScope,
    Receive,
    Scope,
    Send,
)

from mailmark.certificates.acme_issuer import ChallengeResponses
from mailmark.web.observability import HEALTH_PATH

CHALLENGE_PREFIX = "/.well-known/acme-challenge/"
# RFC 1123 host names, lower case: labels of letters, digits and inner hyphens, up to 63 each.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST_NAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*")
# What is kept as sent in the Location's path: RFC 3986 §3.3 pchar (unreserved, sub-delims, ':'
# and '@'), '/', and '%' of the escapes already there; anything else is percent-encoded. The
# query may also hold '?' (§3.4).
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"
_QUERY_SAFE = _PATH_SAFE + "?"
_PROBES = ("GET", "HEAD")
_NOT_PENDING = b"No ACME challenge with this token is pending here.\n"


class HttpsRedirect:
    """The ASGI app of the redirect listener.

    `public_host`: where requests for a name the certificate does not cover are sent;
    `https_port`: the HTTPS listener's port (left out of the Location when 443); `served`: whether
    the certificate presented over HTTPS names a host (asked at each request: a renewal that adds
    a name takes effect at once)."""

    def __init__(
        self,
        *,
        challenges: ChallengeResponses,
        public_host: str,
        https_port: int,
        served: Callable[[str], bool],
    ) -> None:
        self._challenges = challenges
        self._public_host = public_host
        self._port = "" if https_port == 443 else f":{https_port}"
        self._served = served

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            return
        path: str = scope["path"]
        if scope["method"] in _PROBES and path.startswith(CHALLENGE_PREFIX):
            answer = self._challenges.get(path.removeprefix(CHALLENGE_PREFIX))
            if answer is None:
                await _respond(send, 404, _NOT_PENDING)
            else:
                await _respond(send, 200, answer.encode("ascii"))
        elif scope["method"] in _PROBES and path == HEALTH_PATH:
            await _respond(send, 200, b'{"status": "ok"}', content_type=b"application/json")
        else:
            await _respond(send, 308, b"", location=self.location(scope).encode("ascii"))

    def location(self, scope: HTTPScope) -> str:
        """https://<host>[:port]<path>?<query> for the request in `scope`."""
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        # An absolute-form or asterisk-form request target (RFC 9112 §3.2.2, §3.2.4) has no
        # path of ours to keep.
        path = quote(raw_path, safe=_PATH_SAFE) if raw_path.startswith(b"/") else "/"
        query: bytes = scope.get("query_string", b"")
        suffix = f"?{quote(query, safe=_QUERY_SAFE)}" if query else ""
        return f"https://{self._host(scope)}{self._port}{path}{suffix}"

    def _host(self, scope: HTTPScope) -> str:
        asked = _host_header(scope)
        if asked is not None and self._served(asked):
            return asked
        host = self._public_host
        return f"[{host}]" if ":" in host else host


def _host_header(scope: HTTPScope) -> str | None:
    """The host name of the request's Host header without its port, when it is a DNS name."""
    for name, value in scope["headers"]:
        if name == b"host":
            host = value.decode("latin-1").strip().lower()
            host = host.rpartition(":")[0] if re.fullmatch(r".*:\d{1,5}", host) else host
            host = host.removesuffix(".")
            return host if _HOST_NAME.fullmatch(host) else None
    return None


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    *,
    content_type: bytes = b"text/plain; charset=utf-8",
    location: bytes | None = None,
) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    if location is not None:
        headers.append((b"location", location))
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": status,
        "headers": headers,
    }
    await send(start)
    end: HTTPResponseBodyEvent = {"type": "http.response.body", "body": body, "more_body": False}
    await send(end)
