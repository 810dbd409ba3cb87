"""/v1/lists: named lists of contacts with their members, and segments (lists defined by a
saved filter)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.params import FromPath, JSONBody

from mailmark.core.apikeys import ApiPrincipal
from mailmark.core.contacts import ContactList, ContactService
from mailmark.web.api.v1.auth import Injected
from mailmark.web.api.v1.docs import samples
from mailmark.web.api.v1.mailboxes import Deleted

LIST_EXAMPLE = {
    "_id": "5",
    "name": "Customers",
    "filter": None,
    "size": 120,
    "createdAt": "2026-12-06T08:00:00+00:00",
    "updatedAt": "2026-12-06T08:00:00+00:00",
}


class ListOut(msgspec.Struct, rename="camel"):
    id: str = msgspec.field(name="_id")
    name: str = ""
    # A segment's saved filter ({"status", "tag", "field": {"name", "value"}, "suppressed"});
    # null for a list with members of its own.
    filter: dict[str, Any] | None = None
    size: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None


class ListIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    name: str
    filter: dict[str, Any] | None = None


class ListPatch(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    name: str | None = None
    filter: dict[str, Any] | None = None


class MembersIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    contact_ids: list[str] = msgspec.field(default_factory=list)
    emails: list[str] = msgspec.field(default_factory=list)


def list_out(found: ContactList) -> ListOut:
    return ListOut(
        str(found.id),
        found.name,
        found.segment.as_json() if found.segment is not None else None,
        found.size,
        found.created_at,
        found.updated_at,
    )


class ListController(Controller):
    path = "/lists"
    tags = ("Lists",)

    @get(
        operation_id="listLists",
        summary="List contact lists and segments",
        operation_class=samples(
            "GET", "/v1/lists", response=[LIST_EXAMPLE], sdk="await client.listLists();"
        ),
    )
    async def list_lists(
        self, principal: Injected[ApiPrincipal], contacts: Injected[ContactService]
    ) -> list[ListOut]:
        """Every list and segment of the account with its size; members are listed with
        `GET /v1/contacts?listId=`."""
        return [list_out(found) for found in await contacts.lists(principal.account_id)]

    @post(
        operation_id="createList",
        summary="Create a list or a segment",
        operation_class=samples(
            "POST",
            "/v1/lists",
            body={"name": "Customers"},
            response=LIST_EXAMPLE,
            status=201,
            sdk="await client.createList({ name: 'Customers' });",
        ),
    )
    async def create_list(
        self,
        principal: Injected[ApiPrincipal],
        contacts: Injected[ContactService],
        data: JSONBody[ListIn],
    ) -> ListOut:
        """With a `filter` it is a segment: its members are the contacts that match it, now
        and later (by `status`, `tag`, `field` {name, value}, `suppressed`)."""
        created = await contacts.create_list(principal.account_id, data.name, data.filter)
        return list_out(created)

    @get(
        "/{list_id:str}",
        operation_id="getList",
        summary="Get a list",
        operation_class=samples(
            "GET", "/v1/lists/5", response=LIST_EXAMPLE, sdk="await client.getList('5');"
        ),
    )
    async def get_list(
        self,
        principal: Injected[ApiPrincipal],
        contacts: Injected[ContactService],
        list_id: FromPath[str],
    ) -> ListOut:
        return list_out(await contacts.get_list(principal.account_id, list_id))

    @patch(
        "/{list_id:str}",
        operation_id="updateList",
        summary="Rename a list or change a segment's filter",
        operation_class=samples(
            "PATCH",
            "/v1/lists/5",
            body={"name": "Paying customers"},
            response=LIST_EXAMPLE,
            sdk="await client.updateList('5', { name: 'Paying customers' });",
        ),
    )
    async def update_list(
        self,
        principal: Injected[ApiPrincipal],
        contacts: Injected[ContactService],
        list_id: FromPath[str],
        data: JSONBody[ListPatch],
    ) -> ListOut:
        updated = await contacts.update_list(
            principal.account_id, list_id, name=data.name, segment=data.filter
        )
        return list_out(updated)

    @delete(
        "/{list_id:str}",
        operation_id="deleteList",
        summary="Delete a list",
        status_code=200,
        operation_class=samples(
            "DELETE",
            "/v1/lists/5",
            response={"deleted": True},
            sdk="await client.deleteList('5');",
        ),
    )
    async def delete_list(
        self,
        principal: Injected[ApiPrincipal],
        contacts: Injected[ContactService],
        list_id: FromPath[str],
    ) -> Deleted:
        """Delete the list; its contacts stay."""
        await contacts.delete_list(principal.account_id, list_id)
        return Deleted()

    @post(
        "/{list_id:str}/members",
        operation_id="addListMembers",
        summary="Add contacts to a list",
        status_code=200,
        operation_class=samples(
            "POST",
            "/v1/lists/5/members",
            body={"emails": ["ann@example.com"], "contactIds": ["42"]},
            response=LIST_EXAMPLE,
            sdk="await client.addListMembers('5', { emails: ['ann@example.com'] });",
        ),
    )
    async def add_members(
        self,
        principal: Injected[ApiPrincipal],
        contacts: Injected[ContactService],
        list_id: FromPath[str],
        data: JSONBody[MembersIn],
    ) -> ListOut:
        """Contacts by id or by address (at most 1000 per call); 404 for one that is not a
        contact; 409 on a segment."""
        updated = await contacts.add_members(
            principal.account_id, list_id, contact_ids=data.contact_ids, emails=data.emails
        )
        return list_out(updated)

    @delete(
        "/{list_id:str}/members/{contact_id:str}",
        operation_id="removeListMember",
        summary="Remove a contact from a list",
        status_code=200,
        operation_class=samples(
            "DELETE",
            "/v1/lists/5/members/42",
            response={"deleted": True},
            sdk="await client.removeListMember('5', '42');",
        ),
    )
    async def remove_member(
        self,
        principal: Injected[ApiPrincipal],
        contacts: Injected[ContactService],
        list_id: FromPath[str],
        contact_id: FromPath[str],
    ) -> Deleted:
        """The contact stays; only its membership goes."""
        await contacts.remove_member(principal.account_id, list_id, contact_id)
        return Deleted()
