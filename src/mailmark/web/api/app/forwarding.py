"""/api/mailboxes/{address}/forwarding: where a mailbox's mail is sent on to, and whether a copy
stays in the mailbox. Whoever can see the mailbox (a member: their own) can change it."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, get, put
from litestar.params import FromPath, JSONBody

from mailmark.core.access import Viewer
from mailmark.core.forwarding import MAX_FORWARDING_ADDRESSES, ForwardingService
from mailmark.core.model import MailboxForwarding
from mailmark.web.api.app.mailboxes import Address
from mailmark.web.api.v1.auth import Injected


class ForwardingOut(msgspec.Struct, rename="camel"):
    addresses: list[str]  # empty: the mailbox does not forward
    keep_copy: bool
    max_addresses: int


class ForwardingIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    # A few more than the limit are accepted here, so that going over it gets the limit's text.
    addresses: Annotated[list[Address], msgspec.Meta(max_length=MAX_FORWARDING_ADDRESSES * 4)]
    keep_copy: bool = True


def forwarding_out(forwarding: MailboxForwarding) -> ForwardingOut:
    return ForwardingOut(list(forwarding.addresses), forwarding.keep_copy, MAX_FORWARDING_ADDRESSES)


class ForwardingController(Controller):
    path = "/mailboxes/{address:str}/forwarding"
    tags = ("Mailboxes",)

    @get(operation_id="appGetForwarding", summary="A mailbox's forwarding")
    async def get_forwarding(
        self,
        viewer: Injected[Viewer],
        forwarding: Injected[ForwardingService],
        address: FromPath[Address],
    ) -> ForwardingOut:
        return forwarding_out(await forwarding.get_for(viewer, address))

    @put(operation_id="appSetForwarding", summary="Forward a mailbox's mail")
    async def set_forwarding(
        self,
        viewer: Injected[Viewer],
        forwarding: Injected[ForwardingService],
        address: FromPath[Address],
        data: JSONBody[ForwardingIn],
    ) -> ForwardingOut:
        """Send the mailbox's mail on to up to five other addresses (none: stop forwarding),
        keeping a copy in the mailbox or not. Mail filed as spam is not forwarded, and a paused
        account forwards nothing."""
        return forwarding_out(
            await forwarding.set_for(viewer, address, data.addresses, keep_copy=data.keep_copy)
        )
