"""/api/mailboxes: create, list, edit, set passwords, delete and connect mailboxes. Owners and
admins manage every mailbox of the account; a member sees and edits those assigned to them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, delete, get, patch, post, put
from litestar.params import FromPath, JSONBody

from mailmark.core.access import Viewer
from mailmark.core.mailboxes import (
    MAX_DISPLAY_NAME,
    MAX_PASSWORD,
    MAX_SIGNATURE,
    MailboxService,
    MailboxView,
)
from mailmark.dns_tools.record_set import MailServer
from mailmark.web.api.v1.auth import Injected
from mailmark.web.autoconfig import ClientSettings, client_settings

Address = Annotated[str, msgspec.Meta(max_length=320)]


class MailboxOut(msgspec.Struct, rename="camel"):
    id: int
    address: str
    local_part: str
    domain: str
    display_name: str
    signature: str
    signature_format: str
    track_opens: bool
    has_password: bool
    # Whether SMTP submission files a copy in Sent (clients that save their own turn it off).
    save_sent_copy: bool
    assigned_user_ids: list[int]
    created_at: datetime


class MailboxIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    domain: Annotated[str, msgspec.Meta(max_length=253)]
    local_part: Annotated[str, msgspec.Meta(max_length=64)]
    display_name: Annotated[str, msgspec.Meta(max_length=MAX_DISPLAY_NAME)] = ""
    signature: Annotated[str, msgspec.Meta(max_length=MAX_SIGNATURE)] = ""
    signature_format: Annotated[str, msgspec.Meta(max_length=10)] = "text"
    password: Annotated[str, msgspec.Meta(max_length=MAX_PASSWORD)] | None = None


class MailboxPatchIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    display_name: Annotated[str, msgspec.Meta(max_length=MAX_DISPLAY_NAME)] | None = None
    signature: Annotated[str, msgspec.Meta(max_length=MAX_SIGNATURE)] | None = None
    signature_format: Annotated[str, msgspec.Meta(max_length=10)] | None = None
    track_opens: bool | None = None
    save_sent_copy: bool | None = None


class PasswordIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    password: Annotated[str, msgspec.Meta(max_length=MAX_PASSWORD)]


class GeneratedPasswordOut(msgspec.Struct, rename="camel"):
    password: str


class ConfirmIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    confirm: Address


class ServerOut(msgspec.Struct, rename="camel"):
    host: str
    port: int
    security: str  # "STARTTLS" | "TLS"


class ConnectionOut(msgspec.Struct, rename="camel"):
    username: str
    imap: ServerOut
    imaps: ServerOut
    submission: ServerOut
    submissions: ServerOut
    autoconfig_url: str
    mobileconfig_url: str


def mailbox_out(view: MailboxView) -> MailboxOut:
    mailbox = view.mailbox
    assert mailbox.id is not None
    return MailboxOut(
        id=mailbox.id,
        address=mailbox.address,
        local_part=mailbox.local_part,
        domain=mailbox.domain_name,
        display_name=mailbox.display_name,
        signature=mailbox.signature,
        signature_format=mailbox.signature_format,
        track_opens=mailbox.track_opens,
        has_password=mailbox.password_hash is not None,
        save_sent_copy=mailbox.save_sent_copy,
        assigned_user_ids=list(view.assigned_user_ids),
        created_at=mailbox.created_at,
    )


def connection_out(settings: ClientSettings) -> ConnectionOut:
    def server(entry: tuple[str, int, str]) -> ServerOut:
        return ServerOut(*entry)

    return ConnectionOut(
        username=settings.username,
        imap=server(settings.imap),
        imaps=server(settings.imaps),
        submission=server(settings.submission),
        submissions=server(settings.submissions),
        autoconfig_url=settings.autoconfig_url,
        mobileconfig_url=settings.mobileconfig_url,
    )


class MailboxController(Controller):
    path = "/mailboxes"
    tags = ("Mailboxes",)

    @get(operation_id="appListMailboxes", summary="List mailboxes")
    async def list_mailboxes(
        self,
        viewer: Injected[Viewer],
        mailboxes: Injected[MailboxService],
        domain: Annotated[str, msgspec.Meta(max_length=253)] | None = None,
    ) -> list[MailboxOut]:
        """The account's mailboxes by address (of one domain with `domain`); a member's list
        holds only the mailboxes assigned to them."""
        return [mailbox_out(view) for view in await mailboxes.list_for(viewer, domain)]

    @post(operation_id="appCreateMailbox", summary="Create a mailbox")
    async def create_mailbox(
        self,
        viewer: Injected[Viewer],
        mailboxes: Injected[MailboxService],
        data: JSONBody[MailboxIn],
    ) -> MailboxOut:
        """A mailbox from its local part on a verified domain of the account; with `password`,
        IMAP and SMTP submission can log in with it at once. Over the plan's mailbox limit: 403
        with the plan's text."""
        return mailbox_out(
            await mailboxes.create_for(
                viewer,
                data.domain,
                data.local_part,
                display_name=data.display_name,
                signature=data.signature,
                signature_format=data.signature_format,
                password=data.password,
            )
        )

    @get("/{address:str}", operation_id="appGetMailbox", summary="A mailbox")
    async def get_mailbox(
        self,
        viewer: Injected[Viewer],
        mailboxes: Injected[MailboxService],
        address: FromPath[Address],
    ) -> MailboxOut:
        return mailbox_out(await mailboxes.get_for(viewer, address))

    @patch("/{address:str}", operation_id="appUpdateMailbox", summary="Edit a mailbox")
    async def update_mailbox(
        self,
        viewer: Injected[Viewer],
        mailboxes: Injected[MailboxService],
        address: FromPath[Address],
        data: JSONBody[MailboxPatchIn],
    ) -> MailboxOut:
        """Change the display name, the signature (`html` signatures are sanitised), open
        tracking (`trackOpens`: a 1×1 image in the HTML of mail sent from the mailbox records
        when it is opened), or `saveSentCopy`: whether the server files a copy in Sent of what
        a mail client submits over SMTP (turn it off when the client saves its own)."""
        return mailbox_out(
            await mailboxes.update_for(
                viewer,
                address,
                display_name=data.display_name,
                signature=data.signature,
                signature_format=data.signature_format,
                track_opens=data.track_opens,
                save_sent_copy=data.save_sent_copy,
            )
        )

    @delete("/{address:str}", operation_id="appDeleteMailbox", summary="Delete a mailbox")
    async def delete_mailbox(
        self,
        viewer: Injected[Viewer],
        mailboxes: Injected[MailboxService],
        address: FromPath[Address],
        data: JSONBody[ConfirmIn],
    ) -> None:
        """Delete the mailbox and all its mail; `confirm` must repeat its address."""
        await mailboxes.delete_for(viewer, address, confirm=data.confirm)

    @put(
        "/{address:str}/password",
        operation_id="appSetMailboxPassword",
        summary="Set the mailbox's IMAP/SMTP password",
        status_code=204,
    )
    async def set_password(
        self,
        viewer: Injected[Viewer],
        mailboxes: Injected[MailboxService],
        address: FromPath[Address],
        data: JSONBody[PasswordIn],
    ) -> None:
        await mailboxes.set_password(viewer, address, data.password)

    @post(
        "/{address:str}/password/generate",
        operation_id="appGenerateMailboxPassword",
        summary="Set a new random IMAP/SMTP password",
        status_code=200,
    )
    async def generate_password(
        self,
        viewer: Injected[Viewer],
        mailboxes: Injected[MailboxService],
        address: FromPath[Address],
    ) -> GeneratedPasswordOut:
        """The new password is shown this once; it is stored only as a hash."""
        return GeneratedPasswordOut(await mailboxes.generate_password(viewer, address))

    @get(
        "/{address:str}/connection",
        operation_id="appMailboxConnection",
        summary="Settings for desktop and phone mail clients",
    )
    async def connection(
        self,
        viewer: Injected[Viewer],
        mailboxes: Injected[MailboxService],
        mail_server: Injected[MailServer],
        address: FromPath[Address],
    ) -> ConnectionOut:
        view = await mailboxes.get_for(viewer, address)
        return connection_out(client_settings(mail_server, view.mailbox.address))
