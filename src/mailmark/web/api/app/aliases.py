"""/api/domains/{name}/aliases and /api/domains/{name}/catch-all: a domain's aliases and its
catch-all mailbox. Owners and admins only; the rules are core's (AliasService)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, delete, get, post, put
from litestar.params import FromPath, JSONBody

from mailmark.core.access import Viewer
from mailmark.core.aliases import MAX_ALIAS_TARGETS, AliasService
from mailmark.core.model import Alias, Mailbox
from mailmark.web.api.v1.auth import Injected

Address = Annotated[str, msgspec.Meta(max_length=320)]
LocalPart = Annotated[str, msgspec.Meta(max_length=64)]


class AliasOut(msgspec.Struct, rename="camel"):
    address: str
    local_part: str
    targets: list[str]
    created_at: datetime


class AliasIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    local_part: LocalPart
    targets: Annotated[list[Address], msgspec.Meta(max_length=MAX_ALIAS_TARGETS)]


class CatchAllOut(msgspec.Struct, rename="camel"):
    mailbox: str | None


class CatchAllIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    # A mailbox's address (or local part) of the account; null turns the catch-all off.
    mailbox: Address | None


def alias_out(alias: Alias) -> AliasOut:
    return AliasOut(
        alias.address,
        alias.local_part,
        [mailbox.address for mailbox in alias.targets],
        alias.created_at,
    )


def catch_all_out(mailbox: Mailbox | None) -> CatchAllOut:
    return CatchAllOut(mailbox.address if mailbox is not None else None)


class AliasController(Controller):
    path = "/domains/{name:str}"
    tags = ("Domains",)

    @get("/aliases", operation_id="appListAliases", summary="A domain's aliases")
    async def list_aliases(
        self, viewer: Injected[Viewer], aliases: Injected[AliasService], name: FromPath[str]
    ) -> list[AliasOut]:
        """Every alias of the domain by local part, with the mailboxes it delivers to."""
        return [alias_out(alias) for alias in await aliases.list_for(viewer, name)]

    @post("/aliases", operation_id="appAddAlias", summary="Add an alias")
    async def add_alias(
        self,
        viewer: Injected[Viewer],
        aliases: Injected[AliasService],
        name: FromPath[str],
        data: JSONBody[AliasIn],
    ) -> AliasOut:
        """A new address delivering to one or more of the account's mailboxes. 409 when a
        mailbox or alias already has that address."""
        return alias_out(await aliases.add_for(viewer, name, data.local_part, data.targets))

    @delete("/aliases/{local_part:str}", operation_id="appRemoveAlias", summary="Remove an alias")
    async def remove_alias(
        self,
        viewer: Injected[Viewer],
        aliases: Injected[AliasService],
        name: FromPath[str],
        local_part: FromPath[str],
    ) -> None:
        await aliases.remove_for(viewer, f"{local_part}@{name}")

    @get("/catch-all", operation_id="appGetCatchAll", summary="A domain's catch-all mailbox")
    async def get_catch_all(
        self, viewer: Injected[Viewer], aliases: Injected[AliasService], name: FromPath[str]
    ) -> CatchAllOut:
        return catch_all_out(await aliases.catch_all_for(viewer, name))

    @put("/catch-all", operation_id="appSetCatchAll", summary="Set or turn off the catch-all")
    async def set_catch_all(
        self,
        viewer: Injected[Viewer],
        aliases: Injected[AliasService],
        name: FromPath[str],
        data: JSONBody[CatchAllIn],
    ) -> CatchAllOut:
        """Mail for local parts no mailbox or alias takes goes to this mailbox (off: refused
        with 550 5.1.1, the default)."""
        return catch_all_out(await aliases.set_catch_all_for(viewer, name, data.mailbox))
