"""GET/POST /v1/sender-groups, PATCH/DELETE /v1/sender-groups/{id}."""

from __future__ import annotations

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.params import FromPath, JSONBody

from mailmark.core.apikeys import ApiPrincipal
from mailmark.core.sender_groups import ALL, SenderGroupService, SenderGroupView
from mailmark.web.api.v1.auth import Injected
from mailmark.web.api.v1.docs import samples
from mailmark.web.api.v1.mailboxes import Deleted

EXAMPLE = {
    "_id": "7",
    "name": "Marketing Team",
    "mailboxes": ["hello@yourdomain.com", "sales@yourdomain.com"],
    "allMailboxes": True,
    "emails": ["user1@example.com", "user2@example.com"],
}


class SenderGroupOut(msgspec.Struct, rename="camel"):
    id: str = msgspec.field(name="_id")
    name: str = ""
    mailboxes: list[str] = msgspec.field(default_factory=list)
    all_mailboxes: bool = False
    emails: list[str] = msgspec.field(default_factory=list)


class SenderGroupIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    name: str
    mailboxes: str | list[str] = ALL
    emails: list[str] = msgspec.field(default_factory=list)


class SenderGroupPatch(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    name: str | None = None
    mailboxes: str | list[str] | None = None
    emails: list[str] | None = None
    add_emails: list[str] | None = None
    remove_emails: list[str] | None = None


def group_out(view: SenderGroupView) -> SenderGroupOut:
    return SenderGroupOut(
        str(view.group.id),
        view.group.name,
        [m.address for m in view.mailboxes],
        view.group.all_mailboxes,
        list(view.group.emails),
    )


class SenderGroupController(Controller):
    path = "/sender-groups"
    tags = ("Sender groups",)

    @get(
        operation_id="listSenderGroups",
        summary="List sender groups",
        operation_class=samples(
            "GET", "/v1/sender-groups", response=[EXAMPLE], sdk="await client.listSenderGroups();"
        ),
    )
    async def list_groups(
        self,
        principal: Injected[ApiPrincipal],
        sender_groups: Injected[SenderGroupService],
    ) -> list[SenderGroupOut]:
        """Every sender group of the domain."""
        return [group_out(v) for v in await sender_groups.list(principal.domain_id)]

    @post(
        operation_id="createSenderGroup",
        summary="Create a sender group",
        operation_class=samples(
            "POST",
            "/v1/sender-groups",
            body={"name": "Marketing Team", "mailboxes": "all", "emails": ["user1@example.com"]},
            response=EXAMPLE,
            status=201,
            sdk=(
                "await client.createSenderGroup({ name: 'Marketing Team', mailboxes: 'all', "
                "emails: ['user1@example.com'] });"
            ),
        ),
    )
    async def create_group(
        self,
        principal: Injected[ApiPrincipal],
        sender_groups: Injected[SenderGroupService],
        data: JSONBody[SenderGroupIn],
    ) -> SenderGroupOut:
        """`mailboxes`: "all" (every mailbox of the domain), a comma-separated string or a list of
        local parts or addresses; `emails`: the recipient list."""
        view = await sender_groups.create(
            principal.domain_id,
            principal.domain_name,
            name=data.name,
            mailboxes=data.mailboxes,
            emails=data.emails,
        )
        return group_out(view)

    @patch(
        "/{group_id:str}",
        operation_id="updateSenderGroup",
        summary="Update a sender group",
        operation_class=samples(
            "PATCH",
            "/v1/sender-groups/7",
            body={"addEmails": ["new@example.com"]},
            response=EXAMPLE,
            sdk="await client.updateSenderGroup('7', { addEmails: ['new@example.com'] });",
        ),
    )
    async def update_group(
        self,
        principal: Injected[ApiPrincipal],
        sender_groups: Injected[SenderGroupService],
        group_id: FromPath[str],
        data: JSONBody[SenderGroupPatch],
    ) -> SenderGroupOut:
        """All fields optional: `name`, `addEmails`, `removeEmails`, `emails` (replaces the list),
        `mailboxes` (replaces the senders: list, comma-separated or "all")."""
        view = await sender_groups.update(
            principal.domain_id,
            principal.domain_name,
            group_id,
            name=data.name,
            mailboxes=data.mailboxes,
            emails=data.emails,
            add_emails=data.add_emails,
            remove_emails=data.remove_emails,
        )
        return group_out(view)

    @delete(
        "/{group_id:str}",
        operation_id="deleteSenderGroup",
        summary="Delete a sender group",
        status_code=200,
        operation_class=samples(
            "DELETE",
            "/v1/sender-groups/7",
            response={"deleted": True},
            sdk="await client.deleteSenderGroup('7');",
        ),
    )
    async def delete_group(
        self,
        principal: Injected[ApiPrincipal],
        sender_groups: Injected[SenderGroupService],
        group_id: FromPath[str],
    ) -> Deleted:
        """Delete the group; its mailboxes are not affected."""
        await sender_groups.delete(principal.domain_id, group_id)
        return Deleted()
