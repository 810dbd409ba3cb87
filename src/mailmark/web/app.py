"""The Litestar application: thin handlers that parse a request, call core services and render.

`create_app` takes every service it needs as an argument; nothing here reads settings or globals.
Core errors are mapped to HTTP once, in `web.errors`.
"""

from __future__ import annotations

import html
import logging
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from litestar import Litestar, MediaType, Request, Response, asgi, get, post
from litestar.di import NamedDependency, Provide
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.handlers import ASGIRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.params import FromPath, FromQuery
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import (
    ControllerRouterHandler,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Message,
    Receive,
    Scope,
    Send,
)

from mailmark.certificates.acme_issuer import ChallengeResponses
from mailmark.core.addresses import normalize_domain
from mailmark.core.affiliates import AffiliateService
from mailmark.core.domains import DomainService
from mailmark.core.errors import InvalidInput, MailmarkError, NotFound
from mailmark.core.mailboxes import MailboxService, split_address
from mailmark.core.tracking import PIXEL_GIF, Tracking
from mailmark.core.unsubscribe import ONE_CLICK_BODY, Unsubscribes
from mailmark.dns_tools.record_set import MailServer, mta_sts_policy
from mailmark.metrics import Metrics
from mailmark.web.api.app.routes import AppServices, api_router
from mailmark.web.api.v1.routes import BEARER_SCHEME, ApiServices, v1_router
from mailmark.web.autoconfig import (
    MAX_AUTODISCOVER_REQUEST,
    MOBILECONFIG_MEDIA_TYPE,
    XML_MEDIA_TYPE,
    apple_mobileconfig,
    mobileconfig_filename,
    outlook_autodiscover,
    parse_autodiscover_request,
    thunderbird_config,
)
from mailmark.web.billing import PolarWebhook, polar_webhook_handler
from mailmark.web.errors import error_response
from mailmark.web.observability import Observability, RequestObserver, observability_handlers
from mailmark.web.referrals import referral_link_handler
from mailmark.web.spa import UI_DIR, SchemaExplorer, schema_page_policy, spa_handlers

log = logging.getLogger(__name__)


# --- client autoconfiguration ------------------------------------------------------------------


@get(
    ["/.well-known/autoconfig/mail/config-v1.1.xml", "/mail/config-v1.1.xml"],
    operation_id="thunderbirdAutoconfig",
    include_in_schema=False,
)
async def thunderbird_autoconfig(
    request: Request[Any, Any, Any],
    domains: NamedDependency[DomainService],
    mail_server: NamedDependency[MailServer],
    emailaddress: FromQuery[str | None] = None,
) -> Response[bytes]:
    """Thunderbird autoconfig for the domain of `emailaddress` (or of the Host it was asked at).

    Only the domain must be hosted here: the answer is the same whether the mailbox exists."""
    if emailaddress:
        _, domain_name = split_address(emailaddress)
    else:
        # Thunderbird may leave the address out; it asked autoconfig.<domain> or <domain> itself.
        domain_name = _hosted_name_from_host(request, prefix="autoconfig.")
    domain = await domains.get(domain_name)
    return Response(thunderbird_config(mail_server, domain.name), media_type=XML_MEDIA_TYPE)


@post(
    ["/autodiscover/autodiscover.xml", "/Autodiscover/Autodiscover.xml"],
    operation_id="outlookAutodiscover",
    status_code=200,
    include_in_schema=False,
)
async def outlook_autodiscover_settings(
    request: Request[Any, Any, Any],
    domains: NamedDependency[DomainService],
    mail_server: NamedDependency[MailServer],
) -> Response[bytes]:
    """Outlook autodiscover (POX, 2006a schema) for the EMailAddress in the request body."""
    address = parse_autodiscover_request(await _read_body(request, MAX_AUTODISCOVER_REQUEST))
    local_part, domain_name = split_address(address)
    domain = await domains.get(domain_name)
    return Response(
        outlook_autodiscover(mail_server, f"{local_part}@{domain.name}"), media_type=XML_MEDIA_TYPE
    )


@get("/mobileconfig", operation_id="appleMobileconfig", include_in_schema=False)
async def apple_profile(
    mailboxes: NamedDependency[MailboxService],
    mail_server: NamedDependency[MailServer],
    emailaddress: FromQuery[str],
) -> Response[bytes]:
    """An Apple configuration profile for an existing mailbox, as a file download."""
    mailbox = await mailboxes.get(emailaddress)
    filename = mobileconfig_filename(mailbox.address)
    return Response(
        apple_mobileconfig(mail_server, mailbox.address, mailbox.display_name),
        media_type=MOBILECONFIG_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@get(
    "/.well-known/mta-sts.txt",
    operation_id="mtaStsPolicy",
    include_in_schema=False,
    media_type=MediaType.TEXT,
)
async def mta_sts_policy_file(
    request: Request[Any, Any, Any],
    domains: NamedDependency[DomainService],
    mail_server: NamedDependency[MailServer],
) -> str:
    """The MTA-STS policy, only at https://mta-sts.<hosted domain>/ (RFC 8461 §3.2)."""
    await domains.get(_hosted_name_from_host(request, prefix="mta-sts.", required=True))
    return mta_sts_policy(mail_server)


def _hosted_name_from_host(
    request: Request[Any, Any, Any], *, prefix: str, required: bool = False
) -> str:
    """The domain named by the Host header, without `prefix` and any port.

    Raises NotFound when the host is not `prefix` + a domain name (and `required`), or is not a
    domain name at all (an IP literal, say): there is nothing to serve for such a host."""
    host = request.headers.get("host", "").strip().lower()
    if not host.startswith("["):  # an IPv6 literal keeps its colons
        host = host.partition(":")[0]
    host = host.removesuffix(".")
    if host.startswith(prefix):
        host = host.removeprefix(prefix)
    elif required:
        raise NotFound(f"Nothing is served here for host {host!r}; use {prefix}<your domain>.")
    try:
        return normalize_domain(host)
    except InvalidInput:
        raise NotFound(f"Nothing is served here for host {host!r}.") from None


async def _read_body(request: Request[Any, Any, Any], limit: int) -> bytes:
    """At most limit + 1 bytes of the body: enough for the parser to refuse what is too long."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise InvalidInput(f"The request body is larger than {limit // 1024} KiB.")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:  # chunked bodies announce no length: stop reading here
            break
    return bytes(body)


# --- ACME HTTP-01 challenges ------------------------------------------------------------------


@get(
    "/.well-known/acme-challenge/{token:str}",
    operation_id="acmeChallenge",
    include_in_schema=False,
    media_type=MediaType.TEXT,
)
async def acme_challenge(
    acme_challenges: NamedDependency[ChallengeResponses], token: FromPath[str]
) -> str:
    """RFC 8555 §8.3: the key authorization of a pending HTTP-01 challenge, for the CA (no
    authentication: the CA fetches it over plain HTTP; answers are public by design)."""
    answer = acme_challenges.get(token)
    if answer is None:
        raise NotFound("No ACME challenge with this token is pending here.")
    return answer


# --- open and click tracking -------------------------------------------------------------------

# Answers that never leak whether a token exists or why a URL was refused.
NOT_FOUND_PAGE = (
    b"<!doctype html><html lang=en><meta charset=utf-8><title>Not found</title>"
    b"<h1>Not found</h1><p>This link is not known here.</p></html>"
)
UNTRACKED = {"Cache-Control": "no-store, private", "Referrer-Policy": "no-referrer"}
_UNTRACKED_RAW = [(name.lower().encode(), value.encode()) for name, value in UNTRACKED.items()]
# The paths below the /t mount (which strips the /t and may add a slash).
_PIXEL = re.compile(r"^/o/([^/]{1,64})/([^/]{1,64})\.gif/?$")
_CLICK = re.compile(r"^/c/([^/]{1,64})/([^/]{1,8})/([^/]{1,64})/?$")


def tracking_endpoints(tracking: Tracking) -> ASGIRouteHandler:
    """The pixel (`/t/o/<token>/<signature>.gif`) and the click redirects
    (`/t/c/<token>/<index>/<signature>`), as one plain ASGI handler: they are the hottest routes
    (every open and click of every campaign) and need nothing of the framework's request
    parsing, so they skip it. A URL this server did not write, or an index the message has no
    link for, is a plain 404 page: never a redirect (this is no open redirector). GET and HEAD
    (a HEAD is a link checker's, recorded as a machine's)."""

    @asgi("/t", is_mount=True, copy_scope=False, include_in_schema=False)
    async def endpoints(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            return
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            await _answer(send, 405, [(b"allow", b"GET, HEAD")], b"")
            return
        agent = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"user-agent"), None)
        peer = scope.get("client")
        client = peer[0] if peer else None
        path = scope["path"]
        if (opened := _PIXEL.match(path)) is not None:
            token, signature = opened.groups()
            if await tracking.record_open(
                token, signature, method=method, user_agent=agent, client=client
            ):
                await _answer(send, 200, [(b"content-type", b"image/gif")], PIXEL_GIF, method)
                return
        elif (clicked := _CLICK.match(path)) is not None:
            token, index, signature = clicked.groups()
            url = await tracking.record_click(
                token, index, signature, method=method, user_agent=agent, client=client
            )
            if url is not None:
                await _answer(send, 302, [(b"location", url.encode())], b"", method)
                return
        page = [(b"content-type", b"text/html; charset=utf-8")]
        await _answer(send, 404, page, NOT_FOUND_PAGE, method)

    return endpoints


async def _answer(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes, method: str = "GET"
) -> None:
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": status,
        "headers": [*headers, *_UNTRACKED_RAW, (b"content-length", str(len(body)).encode())],
    }
    await send(start)
    done: HTTPResponseBodyEvent = {
        "type": "http.response.body",
        "body": b"" if method == "HEAD" else body,
        "more_body": False,
    }
    await send(done)


def _not_found() -> Response[bytes]:
    return Response(NOT_FOUND_PAGE, status_code=404, media_type=MediaType.HTML, headers=UNTRACKED)


# --- unsubscribe (RFC 8058) ---------------------------------------------------------------------

MAX_UNSUBSCRIBE_BODY = 4096
# The unsubscribe pages carry their own small style and nothing else.
UNSUBSCRIBE_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
_PAGE_STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;"
    "color:#111;background:#fff}button{font:inherit;padding:.6rem 1.2rem;border:2px solid #111;"
    "border-radius:.4rem;background:#111;color:#fff;cursor:pointer}button:focus{outline:3px "
    "solid #2563eb;outline-offset:2px}@media (prefers-color-scheme:dark){body{color:#eee;"
    "background:#111}button{background:#eee;color:#111;border-color:#eee}}"
)


def _page(title: str, body: str, status: int = 200) -> Response[bytes]:
    document = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_PAGE_STYLE}</style></head>"
        f"<body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>"
    )
    return Response(
        document.encode(),
        status_code=status,
        media_type=MediaType.HTML,
        headers={**UNTRACKED, "Content-Security-Policy": UNSUBSCRIBE_POLICY},
    )


@get("/u/{token:str}/{signature:str}", operation_id="unsubscribePage", include_in_schema=False)
async def unsubscribe_page(
    unsubscribes: NamedDependency[Unsubscribes], token: FromPath[str], signature: FromPath[str]
) -> Response[bytes]:
    """The page a person opening the unsubscribe link sees: one button, which POSTs the same
    one-click body a mail provider would (no sign-in; opening the page changes nothing, so that
    link scanners do not unsubscribe anyone)."""
    if not unsubscribes.valid(token, signature):
        return _not_found()
    name, _, value = ONE_CLICK_BODY.partition("=")
    return _page(
        "Unsubscribe",
        "<p>Stop receiving these emails? Press the button to unsubscribe.</p>"
        f'<form method=post><input type=hidden name="{name}" value="{value}">'
        "<button type=submit>Unsubscribe</button></form>",
    )


@post(
    "/u/{token:str}/{signature:str}",
    operation_id="unsubscribeOneClick",
    include_in_schema=False,
    status_code=200,
)
async def unsubscribe_one_click(
    request: Request[Any, Any, Any],
    unsubscribes: NamedDependency[Unsubscribes],
    token: FromPath[str],
    signature: FromPath[str],
) -> Response[bytes]:
    """RFC 8058 §3.2: a POST with `List-Unsubscribe=One-Click` unsubscribes, with no cookie, no
    sign-in and no CSRF token (it is the recipient's mail provider calling)."""
    if not unsubscribes.valid(token, signature):
        return _not_found()
    if not _one_click(
        request.headers.get("content-type", ""), await _read_body(request, MAX_UNSUBSCRIBE_BODY)
    ):
        return _page(
            "Unsubscribe",
            f"<p>The request must carry <code>{ONE_CLICK_BODY}</code>.</p>",
            status=400,
        )
    if not await unsubscribes.unsubscribe(token, signature):
        return _not_found()
    return _page("Unsubscribed", "<p>You will not receive these emails any more.</p>")


def _one_click(content_type: str, body: bytes) -> bool:
    """Whether the body says `List-Unsubscribe=One-Click`, form-encoded or as multipart form
    data (RFC 8058 §3.1 allows both)."""
    text = body.decode("utf-8", "replace")
    name, _, value = ONE_CLICK_BODY.partition("=")
    if content_type.lower().startswith("multipart/form-data"):
        return f'name="{name}"' in text and value in text
    return value in parse_qs(text, max_num_fields=20).get(name, [])


# --- security headers ----------------------------------------------------------------------------

# Every asset is ours: no inline script, no other origin, never framed (clickjacking).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
)
# Only over https (RFC 6797 §7.2: a browser ignores it over plain http anyway).
HSTS = (b"strict-transport-security", b"max-age=31536000")


async def add_security_headers(message: Message, scope: Scope) -> None:
    """On every response, whichever handler (or error, or unknown route) made it."""
    if message["type"] != "http.response.start":
        return
    headers = list(message.get("headers") or [])
    present = {name.lower() for name, _ in headers}
    extra = [*SECURITY_HEADERS, HSTS] if scope.get("scheme") == "https" else SECURITY_HEADERS
    headers.extend(header for header in extra if header[0] not in present)
    message["headers"] = headers


# --- the application ---------------------------------------------------------------------------


def create_app(
    *,
    mail_server: MailServer,
    domains: DomainService,
    mailboxes: MailboxService,
    api: ApiServices | None = None,
    web: AppServices | None = None,
    tracking: Tracking | None = None,
    unsubscribes: Unsubscribes | None = None,
    acme_challenges: ChallengeResponses | None = None,
    observability: Observability | None = None,
    billing_webhook: PolarWebhook | None = None,
    referrals: AffiliateService | None = None,
    ui_dir: Path = UI_DIR,
) -> Litestar:
    """The web application, bound to the services it serves; the /v1 API when `api` is given,
    the web app's /api when `web` is; /healthz, /readyz and /metrics when `observability` is;
    Polar's webhook when `billing_webhook` is; the affiliates' /r/{code} links when `referrals` is;
    the single-page app (and the /schema explorer's files) from `ui_dir`."""
    handlers: list[ControllerRouterHandler] = [
        thunderbird_autoconfig,
        outlook_autodiscover_settings,
        apple_profile,
        mta_sts_policy_file,
    ]
    if api is not None:
        handlers.append(v1_router(api))
    if web is not None:
        handlers.append(api_router(web))
    if tracking is not None:
        handlers.append(tracking_endpoints(tracking))
    if unsubscribes is not None:
        handlers.extend([unsubscribe_page, unsubscribe_one_click])
    if acme_challenges is not None:
        handlers.append(acme_challenge)
    if observability is not None:
        handlers.extend(observability_handlers(observability))
    if billing_webhook is not None:
        handlers.append(polar_webhook_handler(billing_webhook))
    if referrals is not None:
        handlers.append(referral_link_handler(referrals))
    handlers.extend(spa_handlers(ui_dir))
    app = Litestar(
        route_handlers=handlers,
        dependencies={
            "mail_server": Provide(lambda: mail_server, use_cache=True, sync_to_thread=False),
            "domains": Provide(lambda: domains, use_cache=True, sync_to_thread=False),
            "mailboxes": Provide(lambda: mailboxes, use_cache=True, sync_to_thread=False),
            "tracking": Provide(lambda: tracking, use_cache=True, sync_to_thread=False),
            "unsubscribes": Provide(lambda: unsubscribes, use_cache=True, sync_to_thread=False),
            "acme_challenges": Provide(
                lambda: acme_challenges, use_cache=True, sync_to_thread=False
            ),
        },
        before_send=[schema_page_policy(CONTENT_SECURITY_POLICY), add_security_headers],
        exception_handlers={
            MailmarkError: error_response,
            HTTPException: error_response,
            HTTP_500_INTERNAL_SERVER_ERROR: error_response,
        },
        # Litestar's default logging config rewires the root logger; `mailmark` configures logging
        # once, in the CLI, and unhandled errors are logged by `_error_response`.
        logging_config=None,
        # /schema: the interactive explorer; /schema/openapi.json: the document itself.
        openapi_config=OpenAPIConfig(
            title="Mailmark",
            version="1",
            description="The Mailmark REST API. Every /v1 route takes `Authorization: Bearer "
            "dm_live_…`, a key scoped to one domain; errors are "
            '`{"error": {"code", "message", "field"}}`.',
            path="/schema",
            render_plugins=[SchemaExplorer(ui_dir)],
            components=Components(
                security_schemes={
                    BEARER_SCHEME: SecurityScheme(
                        type="http", scheme="bearer", bearer_format="dm_live_…"
                    )
                }
            ),
        ),
    )
    # Around the router and its error handling, so that every request is timed and logged once,
    # an unknown route or a refused method included (Litestar's middleware runs after routing).
    metrics = observability.metrics if observability is not None else Metrics()
    app.asgi_handler = RequestObserver(app.asgi_handler, metrics)
    return app
