"""GET/POST /v1/mailboxes, PATCH/DELETE /v1/mailboxes/{address}."""

from __future__ import annotations

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.params import FromPath, JSONBody

from mailmark.core.addresses import normalize_local_part
from mailmark.core.apikeys import ApiPrincipal
from mailmark.core.errors import InvalidInput, NotFound, naming
from mailmark.core.mailboxes import MailboxService
from mailmark.core.model import Mailbox
from mailmark.web.api.v1.auth import Injected
from mailmark.web.api.v1.docs import samples

EXAMPLE = {
    "_id": "3",
    "address": "hello",
    "fullAddress": "hello@yourdomain.com",
    "displayName": "Hello Team",
}


class MailboxOut(msgspec.Struct, rename="camel"):
    id: str = msgspec.field(name="_id")
    address: str = ""
    full_address: str = ""
    display_name: str = ""


class MailboxIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    address: str
    display_name: str = ""
    signature: str = ""


class MailboxPatch(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """Only the fields given change."""

    display_name: str | None = None
    signature: str | None = None
    signature_format: str | None = None
    # The password IMAP and SMTP submission log in with; never shown back.
    password: str | None = None


class Deleted(msgspec.Struct):
    deleted: bool = True


def mailbox_out(mailbox: Mailbox) -> MailboxOut:
    return MailboxOut(str(mailbox.id), mailbox.local_part, mailbox.address, mailbox.display_name)


def full_address(principal: ApiPrincipal, address: str) -> str:
    """`hello` or `hello@<the key's domain>` → `hello@<the key's domain>`.

    Another domain's address is NotFound: whether it exists is none of this key's business."""
    local, at, domain = address.strip().rpartition("@")
    if not at:
        local = domain
    elif domain.strip().lower().rstrip(".") != principal.domain_name:
        raise NotFound(f"No mailbox {address} here.")
    if not local:
        raise InvalidInput("Give the mailbox's local part, like hello.", field="address")
    return f"{local}@{principal.domain_name}"


class MailboxController(Controller):
    path = "/mailboxes"
    tags = ("Mailboxes",)

    @get(
        operation_id="listMailboxes",
        summary="List mailboxes",
        operation_class=samples(
            "GET", "/v1/mailboxes", response=[EXAMPLE], sdk="await client.listMailboxes();"
        ),
    )
    async def list_mailboxes(
        self, principal: Injected[ApiPrincipal], mailboxes: Injected[MailboxService]
    ) -> list[MailboxOut]:
        """Every mailbox on the domain of the API key, oldest first."""
        return [mailbox_out(m) for m in await mailboxes.list(principal.domain_name)]

    @post(
        operation_id="createMailbox",
        summary="Create a mailbox",
        operation_class=samples(
            "POST",
            "/v1/mailboxes",
            body={"address": "hello", "displayName": "Hello Team"},
            response=EXAMPLE,
            status=201,
            sdk="await client.createMailbox({ address: 'hello', displayName: 'Hello Team' });",
        ),
    )
    async def create_mailbox(
        self,
        principal: Injected[ApiPrincipal],
        mailboxes: Injected[MailboxService],
        data: JSONBody[MailboxIn],
    ) -> MailboxOut:
        """Create a mailbox from its local part (`hello`, not `hello@domain`). 409 if it exists."""
        with naming("address"):
            address = full_address(principal, data.address)
            normalize_local_part(address.rpartition("@")[0])
        with naming("displayName"):
            mailbox = await mailboxes.create(
                address, display_name=data.display_name, signature=data.signature
            )
        return mailbox_out(mailbox)

    @patch(
        "/{address:str}",
        operation_id="updateMailbox",
        summary="Change a mailbox's display name, signature or password",
        operation_class=samples(
            "PATCH",
            "/v1/mailboxes/hello",
            body={"displayName": "Hello Team", "signature": "-- \nThe Hello Team"},
            response=EXAMPLE,
            sdk="await client.updateMailbox('hello', { displayName: 'Hello Team' });",
        ),
    )
    async def update_mailbox(
        self,
        principal: Injected[ApiPrincipal],
        mailboxes: Injected[MailboxService],
        address: FromPath[str],
        data: JSONBody[MailboxPatch],
    ) -> MailboxOut:
        """Change the display name, the signature (`signatureFormat` `text` or `html`; HTML is
        sanitised) or the IMAP/SMTP password of a mailbox on the key's domain (local part or full
        address); the fields left out stay as they are."""
        mailbox = await mailboxes.update(
            full_address(principal, address),
            display_name=data.display_name,
            signature=data.signature,
            signature_format=data.signature_format,
            password=data.password,
            domain_id=principal.domain_id,
        )
        return mailbox_out(mailbox)

    @delete(
        "/{address:str}",
        operation_id="deleteMailbox",
        summary="Delete a mailbox and all its emails",
        status_code=200,
        operation_class=samples(
            "DELETE",
            "/v1/mailboxes/hello",
            response={"deleted": True},
            sdk="await client.deleteMailbox('hello');",
        ),
    )
    async def delete_mailbox(
        self,
        principal: Injected[ApiPrincipal],
        mailboxes: Injected[MailboxService],
        address: FromPath[str],
    ) -> Deleted:
        """Permanently delete the mailbox (local part or full address), its emails and its sender
        group memberships. Irreversible."""
        await mailboxes.delete(full_address(principal, address))
        return Deleted()
