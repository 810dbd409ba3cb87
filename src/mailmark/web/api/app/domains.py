"""/api/domains: the account's domains, their DNS records with live checks, the BIND zone, DKIM
rotation and removal. Owners and admins only; the rules are core's (DomainService)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, Response, delete, get, post, put
from litestar.params import FromPath, JSONBody

from mailmark.core.access import Viewer
from mailmark.core.domains import DomainDetail, DomainService, RecordStatus
from mailmark.dns_tools.record_set import zone_fragment
from mailmark.web.api.v1.auth import Injected

DomainName = Annotated[str, msgspec.Meta(max_length=253)]


class DomainOut(msgspec.Struct, rename="camel"):
    name: str
    status: str
    verified: bool
    created_at: datetime
    mailbox_count: int
    last_checked_at: datetime | None
    # The domain whose addresses this alias domain delivers as; null for a domain of its own.
    alias_of: str | None = None


class ContentsOut(msgspec.Struct, rename="camel"):
    mailboxes: int
    messages: int
    api_keys: int
    webhooks: int
    queued: int = 0  # outbound deliveries not yet delivered or given up


class RecordOut(msgspec.Struct, rename="camel"):
    type: str
    host: str
    relative_host: str
    value: str
    priority: int | None
    purpose: str
    required: bool
    status: str
    found: list[str]
    fix: str | None
    checked_at: datetime | None


class DomainDetailOut(msgspec.Struct, rename="camel"):
    name: str
    status: str
    verified: bool
    created_at: datetime
    last_checked_at: datetime | None
    contains: ContentsOut
    records: list[RecordOut]
    alias_of: str | None = None
    alias_domains: list[str] = msgspec.field(default_factory=list)
    # The name tracking and unsubscribe links use (a CNAME to this server); null: the public URL.
    tracking_host: str | None = None


class DomainIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    name: DomainName
    # Another domain of the account: the new one becomes its alias domain.
    alias_of: DomainName | None = None


class TrackingHostIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    host: DomainName | None


class ConfirmIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    confirm: DomainName


def record_out(row: RecordStatus) -> RecordOut:
    record = row.record
    return RecordOut(
        type=record.type,
        host=record.name,
        relative_host=row.relative_host,
        value=record.value,
        priority=record.priority,
        purpose=record.purpose,
        required=record.required,
        status=row.status,
        found=list(row.found),
        fix=row.fix,
        checked_at=row.checked_at,
    )


def detail_out(detail: DomainDetail) -> DomainDetailOut:
    domain, contains = detail.domain, detail.contains
    return DomainDetailOut(
        name=domain.name,
        status=domain.status,
        verified=domain.verified_at is not None,
        created_at=domain.created_at,
        last_checked_at=domain.last_checked_at,
        contains=ContentsOut(
            contains.mailboxes,
            contains.messages,
            contains.api_keys,
            contains.webhooks,
            contains.queued,
        ),
        records=[record_out(row) for row in detail.records],
        alias_of=detail.alias_of,
        alias_domains=list(detail.alias_domains),
        tracking_host=domain.tracking_host,
    )


class DomainController(Controller):
    path = "/domains"
    tags = ("Domains",)

    @get(operation_id="appListDomains", summary="List the account's domains")
    async def list_domains(
        self, viewer: Injected[Viewer], domains: Injected[DomainService]
    ) -> list[DomainOut]:
        """Every domain of the account by name, with its mailbox count and last DNS check."""
        return [
            DomainOut(
                s.domain.name,
                s.domain.status,
                s.domain.verified_at is not None,
                s.domain.created_at,
                s.mailbox_count,
                s.domain.last_checked_at,
                s.alias_of,
            )
            for s in await domains.list_for(viewer)
        ]

    @post(operation_id="appAddDomain", summary="Add a domain")
    async def add_domain(
        self, viewer: Injected[Viewer], domains: Injected[DomainService], data: JSONBody[DomainIn]
    ) -> DomainDetailOut:
        """Add a domain with new DKIM keys; its records are checked in the background until it
        verifies. Over the plan's domain limit: 403 with the plan's text. With `aliasOf`, an
        alias domain: its addresses deliver as the same ones of that domain."""
        return detail_out(await domains.add_for(viewer, data.name, alias_of=data.alias_of))

    @get("/{name:str}", operation_id="appGetDomain", summary="A domain and its DNS records")
    async def get_domain(
        self, viewer: Injected[Viewer], domains: Injected[DomainService], name: FromPath[str]
    ) -> DomainDetailOut:
        """The records to publish, each with the host fully qualified and as registrars want it,
        and the status, found values and fix of its last check."""
        return detail_out(await domains.detail(viewer, name))

    @post(
        "/{name:str}/verify",
        operation_id="appVerifyDomain",
        summary="Check a domain's records now",
        status_code=200,
    )
    async def verify_domain(
        self, viewer: Injected[Viewer], domains: Injected[DomainService], name: FromPath[str]
    ) -> DomainDetailOut:
        return detail_out(await domains.verify_for(viewer, name))

    @get(
        "/{name:str}/zone",
        operation_id="appDomainZone",
        summary="The domain's records as a BIND zone file",
        media_type="text/plain",
    )
    async def zone(
        self, viewer: Injected[Viewer], domains: Injected[DomainService], name: FromPath[str]
    ) -> Response[str]:
        domain, records = await domains.records_for(viewer, name)
        return Response(
            zone_fragment(records),
            media_type="text/plain; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{domain.name}.zone"'},
        )

    @post(
        "/{name:str}/dkim/rotate",
        operation_id="appRotateDkim",
        summary="Start a DKIM key rotation",
        status_code=200,
    )
    async def rotate_dkim(
        self, viewer: Injected[Viewer], domains: Injected[DomainService], name: FromPath[str]
    ) -> DomainDetailOut:
        """New keys are published beside the current ones and sign once their records verify."""
        return detail_out(await domains.rotate_dkim_for(viewer, name))

    @put(
        "/{name:str}/tracking-host",
        operation_id="appSetTrackingHost",
        summary="Set the domain's tracking host",
    )
    async def set_tracking_host(
        self,
        viewer: Injected[Viewer],
        domains: Injected[DomainService],
        name: FromPath[str],
        data: JSONBody[TrackingHostIn],
    ) -> DomainDetailOut:
        """Tracking and unsubscribe links in the domain's mail use `host` (the domain or a name
        under it, published as a CNAME to this server's public host); null goes back to the
        public URL."""
        return detail_out(await domains.set_tracking_host_for(viewer, name, data.host))

    @delete("/{name:str}", operation_id="appRemoveDomain", summary="Remove a domain")
    async def remove_domain(
        self,
        viewer: Injected[Viewer],
        domains: Injected[DomainService],
        name: FromPath[str],
        data: JSONBody[ConfirmIn],
    ) -> None:
        """Remove the domain with its mailboxes and their mail, queued mail, DKIM keys, API keys
        and webhooks; `confirm` must repeat the domain's name."""
        await domains.remove(viewer, name, confirm=data.confirm)
