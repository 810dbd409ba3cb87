"""The Litestar application: thin handlers that parse a request, call core services and render.

`create_app` takes every service it needs as an argument; nothing here reads settings or globals.
Core errors are mapped to HTTP once, in `web.errors`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from litestar import Litestar, MediaType, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.params import FromPath, FromQuery
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import ControllerRouterHandler, Message, Scope

from mailmark.certificates.acme_issuer import ChallengeResponses
from mailmark.core.addresses import normalize_domain
from mailmark.core.domains import DomainService
from mailmark.core.errors import InvalidInput, MailmarkError, NotFound
from mailmark.core.mailboxes import MailboxService, split_address
from mailmark.core.tracking import PIXEL_GIF, OpenTracking
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


# --- open tracking ----------------------------------------------------------------------------


@get(
    "/t/o/{token:str}/{signature:str}",
    operation_id="openTrackingPixel",
    include_in_schema=False,
    media_type="image/gif",
)
async def open_pixel(
    request: Request[Any, Any, Any],
    tracking: NamedDependency[OpenTracking],
    token: str,
    signature: str,
) -> Response[bytes]:
    """The 1×1 image of a tracked message: records the open, answers the image uncached (each
    load is asked for again). A URL this server did not write is 404."""
    await tracking.record_open(
        token, signature.removesuffix(".gif"), request.headers.get("user-agent")
    )
    return Response(
        PIXEL_GIF,
        media_type="image/gif",
        headers={"Cache-Control": "no-store, private", "Referrer-Policy": "no-referrer"},
    )


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
    tracking: OpenTracking | None = None,
    acme_challenges: ChallengeResponses | None = None,
    observability: Observability | None = None,
    billing_webhook: PolarWebhook | None = None,
    ui_dir: Path = UI_DIR,
) -> Litestar:
    """The web application, bound to the services it serves; the /v1 API when `api` is given,
    the web app's /api when `web` is; /healthz, /readyz and /metrics when `observability` is;
    Polar's webhook when `billing_webhook` is;
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
        handlers.append(open_pixel)
    if acme_challenges is not None:
        handlers.append(acme_challenge)
    if observability is not None:
        handlers.extend(observability_handlers(observability))
    if billing_webhook is not None:
        handlers.append(polar_webhook_handler(billing_webhook))
    handlers.extend(spa_handlers(ui_dir))
    app = Litestar(
        route_handlers=handlers,
        dependencies={
            "mail_server": Provide(lambda: mail_server, use_cache=True, sync_to_thread=False),
            "domains": Provide(lambda: domains, use_cache=True, sync_to_thread=False),
            "mailboxes": Provide(lambda: mailboxes, use_cache=True, sync_to_thread=False),
            "tracking": Provide(lambda: tracking, use_cache=True, sync_to_thread=False),
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
