"""GET/POST /v1/aliases, DELETE /v1/aliases/{address}: the aliases of the API key's domain."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, delete, get, post
from litestar.params import FromPath, JSONBody

from mailmark.core.aliases import MAX_ALIAS_TARGETS, AliasService
from mailmark.core.apikeys import ApiPrincipal
from mailmark.core.errors import naming
from mailmark.core.model import Alias
from mailmark.web.api.v1.auth import Injected
from mailmark.web.api.v1.docs import samples
from mailmark.web.api.v1.mailboxes import Deleted, full_address

EXAMPLE = {
    "_id": "7",
    "address": "team",
    "fullAddress": "team@yourdomain.com",
    "targets": ["alice@yourdomain.com", "bob@yourdomain.com"],
    "createdAt": "2026-12-06T04:30:00Z",
}


class AliasOut(msgspec.Struct, rename="camel"):
    id: str = msgspec.field(name="_id")
    address: str = ""
    full_address: str = ""
    targets: list[str] = msgspec.field(default_factory=list)
    created_at: datetime | None = None


class AliasIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    address: Annotated[str, msgspec.Meta(max_length=320)]
    # Mailboxes of the key's domain, by local part or full address.
    targets: Annotated[
        list[Annotated[str, msgspec.Meta(max_length=320)]],
        msgspec.Meta(max_length=MAX_ALIAS_TARGETS),
    ]


def alias_out(alias: Alias) -> AliasOut:
    return AliasOut(
        str(alias.id),
        alias.local_part,
        alias.address,
        [mailbox.address for mailbox in alias.targets],
        alias.created_at,
    )


class AliasController(Controller):
    path = "/aliases"
    tags = ("Aliases",)

    @get(
        operation_id="listAliases",
        summary="List aliases",
        operation_class=samples(
            "GET", "/v1/aliases", response=[EXAMPLE], sdk="await client.listAliases();"
        ),
    )
    async def list_aliases(
        self, principal: Injected[ApiPrincipal], aliases: Injected[AliasService]
    ) -> list[AliasOut]:
        """Every alias on the domain of the API key, by address, with its mailboxes."""
        return [
            alias_out(alias)
            for alias in await aliases.list(principal.domain_name, account_id=principal.account_id)
        ]

    @post(
        operation_id="createAlias",
        summary="Create an alias",
        operation_class=samples(
            "POST",
            "/v1/aliases",
            body={"address": "team", "targets": ["alice", "bob"]},
            response=EXAMPLE,
            status=201,
            sdk="await client.createAlias({ address: 'team', targets: ['alice', 'bob'] });",
        ),
    )
    async def create_alias(
        self,
        principal: Injected[ApiPrincipal],
        aliases: Injected[AliasService],
        data: JSONBody[AliasIn],
    ) -> AliasOut:
        """An address delivering to one or more mailboxes of the domain. 409 when a mailbox or
        alias already has that address; aliases do not count against the mailbox limit."""
        with naming("address"):
            address = full_address(principal, data.address)
        with naming("targets"):
            targets = [full_address(principal, target) for target in data.targets]
        alias = await aliases.add(address, targets, account_id=principal.account_id)
        return alias_out(alias)

    @delete(
        "/{address:str}",
        operation_id="deleteAlias",
        summary="Delete an alias",
        status_code=200,
        operation_class=samples(
            "DELETE",
            "/v1/aliases/team",
            response={"deleted": True},
            sdk="await client.deleteAlias('team');",
        ),
    )
    async def delete_alias(
        self,
        principal: Injected[ApiPrincipal],
        aliases: Injected[AliasService],
        address: FromPath[str],
    ) -> Deleted:
        """Remove the alias (local part or full address); its mailboxes keep their mail."""
        await aliases.remove(full_address(principal, address), account_id=principal.account_id)
        return Deleted()
