"""/api/contacts and /api/lists: the web app's contacts pages. Owners and admins only; every
rule (validation, de-duplication, suppression, the import itself) is core's ContactService, the
same the /v1 routes call, and the shapes are the /v1 ones."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.response import Stream

from mailmark.core.access import Viewer
from mailmark.core.contacts import MAX_UPLOAD, PREVIEW_ROWS, ContactService, contacts_account
from mailmark.web.api.v1.auth import Injected
from mailmark.web.api.v1.contacts import (
    ContactIn,
    ContactOut,
    ContactPage,
    ContactPatch,
    ImportOut,
    PreviewOut,
    contact_out,
    filter_from_query,
    import_out,
    mapping_from_query,
    preview_out,
    upload_of,
)
from mailmark.web.api.v1.lists import ListIn, ListOut, ListPatch, MembersIn, list_out


class ColumnsOut(msgspec.Struct):
    columns: list[str]
    guessed: dict[str, str]
    rows: list[list[str]]


ListId = Annotated[str | None, QueryParameter(name="listId")]


class ContactController(Controller):
    path = "/contacts"
    tags = ("Contacts",)

    @get(operation_id="appListContacts", summary="The account's contacts")
    async def list_contacts(
        self,
        viewer: Injected[Viewer],
        contacts: Injected[ContactService],
        q: FromQuery[str | None] = None,
        status: FromQuery[str | None] = None,
        tag: FromQuery[str | None] = None,
        suppressed: FromQuery[bool | None] = None,
        list_id: ListId = None,
        cursor: FromQuery[str | None] = None,
        limit: FromQuery[int | None] = None,
    ) -> ContactPage:
        """Oldest first, a page at a time; `q` searches the address, names and company."""
        account_id = contacts_account(viewer)
        where = filter_from_query(status, tag, None, suppressed, list_id, q)
        page = await contacts.page(account_id, where, cursor=cursor, limit=limit)
        return ContactPage([contact_out(c) for c in page.items], page.next_cursor)

    @post(operation_id="appCreateContact", summary="Add a contact")
    async def create_contact(
        self,
        viewer: Injected[Viewer],
        contacts: Injected[ContactService],
        data: JSONBody[ContactIn],
    ) -> ContactOut:
        """409 when the address is already a contact of the account."""
        contact = await contacts.create(
            contacts_account(viewer),
            email=data.email,
            first_name=data.first_name,
            last_name=data.last_name,
            company=data.company,
            fields=data.fields,
            tags=data.tags,
            status=data.status,
        )
        return contact_out(contact)

    @post(
        "/import/columns",
        operation_id="appContactImportColumns",
        summary="A CSV file's columns and first rows",
        status_code=200,
    )
    async def import_columns(
        self,
        request: Request[Any, Any, Any],
        viewer: Injected[Viewer],
        contacts: Injected[ContactService],
        rows: FromQuery[int] = PREVIEW_ROWS,
    ) -> ColumnsOut:
        """The body is the start of the CSV file; answers its header, what each column becomes
        when left unmapped (`""`: left out) and the first rows' cells, for choosing a mapping."""
        contacts_account(viewer)
        sample = await contacts.sample(upload_of(request), rows)
        return ColumnsOut(sample.columns, sample.guessed, sample.rows)

    @post(
        "/import/preview",
        operation_id="appPreviewContactImport",
        summary="Preview a CSV import",
        status_code=200,
    )
    async def preview_import(
        self,
        request: Request[Any, Any, Any],
        viewer: Injected[Viewer],
        contacts: Injected[ContactService],
        mapping: FromQuery[str | None] = None,
        rows: FromQuery[int] = PREVIEW_ROWS,
    ) -> PreviewOut:
        """The body is the start of the CSV file; answers its header, the mapping the import
        would apply and the first rows as contacts or errors. Nothing is saved."""
        preview = await contacts.preview(
            contacts_account(viewer), upload_of(request), mapping_from_query(mapping), rows
        )
        return preview_out(preview)

    @post(
        "/import",
        operation_id="appImportContacts",
        summary="Import contacts from a CSV file",
        status_code=202,
        request_max_body_size=MAX_UPLOAD,
    )
    async def import_contacts(
        self,
        request: Request[Any, Any, Any],
        viewer: Injected[Viewer],
        contacts: Injected[ContactService],
        mapping: FromQuery[str | None] = None,
        on_duplicate: Annotated[str, QueryParameter(name="onDuplicate")] = "update",
        list_id: ListId = None,
    ) -> ImportOut:
        """The body is the CSV file; runs in the background (poll the import for progress and
        row errors: a bad row is reported, never fails the import)."""
        job = await contacts.start_import(
            contacts_account(viewer),
            upload_of(request),
            mapping=mapping_from_query(mapping),
            on_duplicate=on_duplicate,
            list_id=list_id,
        )
        return import_out(job)

    @get(
        "/import/{import_id:str}",
        operation_id="appGetContactImport",
        summary="An import's progress",
    )
    async def get_import(
        self, viewer: Injected[Viewer], contacts: Injected[ContactService], import_id: FromPath[str]
    ) -> ImportOut:
        return import_out(await contacts.import_status(contacts_account(viewer), import_id))

    @get(
        "/export",
        operation_id="appExportContacts",
        summary="Export contacts as CSV",
        media_type="text/csv",
    )
    async def export_contacts(
        self,
        viewer: Injected[Viewer],
        contacts: Injected[ContactService],
        q: FromQuery[str | None] = None,
        status: FromQuery[str | None] = None,
        tag: FromQuery[str | None] = None,
        suppressed: FromQuery[bool | None] = None,
        list_id: ListId = None,
    ) -> Stream:
        """A CSV download of the contacts the same filters list; it imports back as is."""
        account_id = contacts_account(viewer)
        where = filter_from_query(status, tag, None, suppressed, list_id, q)
        lines = await contacts.export(account_id, where)
        return Stream(
            lines,
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": 'attachment; filename="contacts.csv"',
                "Cache-Control": "no-store",
            },
        )

    @get("/{contact_id:str}", operation_id="appGetContact", summary="A contact")
    async def get_contact(
        self,
        viewer: Injected[Viewer],
        contacts: Injected[ContactService],
        contact_id: FromPath[str],
    ) -> ContactOut:
        return contact_out(await contacts.get(contacts_account(viewer), contact_id))

    @patch("/{contact_id:str}", operation_id="appUpdateContact", summary="Change a contact")
    async def update_contact(
        self,
        viewer: Injected[Viewer],
        contacts: Injected[ContactService],
        contact_id: FromPath[str],
        data: JSONBody[ContactPatch],
    ) -> ContactOut:
        """What is given changes; `fields` and `tags` replace the old ones."""
        contact = await contacts.update(
            contacts_account(viewer),
            contact_id,
            email=data.email,
            first_name=data.first_name,
            last_name=data.last_name,
            company=data.company,
            fields=data.fields,
            tags=data.tags,
            status=data.status,
        )
        return contact_out(contact)

    @delete("/{contact_id:str}", operation_id="appDeleteContact", summary="Delete a contact")
    async def delete_contact(
        self,
        viewer: Injected[Viewer],
        contacts: Injected[ContactService],
        contact_id: FromPath[str],
    ) -> None:
        await contacts.delete(contacts_account(viewer), contact_id)


class ContactListController(Controller):
    path = "/lists"
    tags = ("Contacts",)

    @get(operation_id="appListLists", summary="The account's contact lists and segments")
    async def list_lists(
        self, viewer: Injected[Viewer], contacts: Injected[ContactService]
    ) -> list[ListOut]:
        return [list_out(found) for found in await contacts.lists(contacts_account(viewer))]

    @post(operation_id="appCreateList", summary="Create a list")
    async def create_list(
        self, viewer: Injected[Viewer], contacts: Injected[ContactService], data: JSONBody[ListIn]
    ) -> ListOut:
        """409 when the account has a list of that name."""
        return list_out(
            await contacts.create_list(contacts_account(viewer), data.name, data.filter)
        )

    @patch("/{list_id:str}", operation_id="appUpdateList", summary="Rename a list")
    async def update_list(
        self,
        viewer: Injected[Viewer],
        contacts: Injected[ContactService],
        list_id: FromPath[str],
        data: JSONBody[ListPatch],
    ) -> ListOut:
        updated = await contacts.update_list(
            contacts_account(viewer), list_id, name=data.name, segment=data.filter
        )
        return list_out(updated)

    @delete("/{list_id:str}", operation_id="appDeleteList", summary="Delete a list")
    async def delete_list(
        self, viewer: Injected[Viewer], contacts: Injected[ContactService], list_id: FromPath[str]
    ) -> None:
        """The list goes; its contacts stay."""
        await contacts.delete_list(contacts_account(viewer), list_id)

    @post(
        "/{list_id:str}/members",
        operation_id="appAddListMembers",
        summary="Add contacts to a list",
        status_code=200,
    )
    async def add_members(
        self,
        viewer: Injected[Viewer],
        contacts: Injected[ContactService],
        list_id: FromPath[str],
        data: JSONBody[MembersIn],
    ) -> ListOut:
        """Contacts by id or by address (at most 1000 per call); 404 for one that is not a
        contact of the account."""
        updated = await contacts.add_members(
            contacts_account(viewer), list_id, contact_ids=data.contact_ids, emails=data.emails
        )
        return list_out(updated)

    @delete(
        "/{list_id:str}/members/{contact_id:str}",
        operation_id="appRemoveListMember",
        summary="Take a contact off a list",
    )
    async def remove_member(
        self,
        viewer: Injected[Viewer],
        contacts: Injected[ContactService],
        list_id: FromPath[str],
        contact_id: FromPath[str],
    ) -> None:
        await contacts.remove_member(contacts_account(viewer), list_id, contact_id)
