"""/v1/contacts: the account's contacts, their CSV import (with a preview) and export."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.response import Stream

from mailmark.core.apikeys import ApiPrincipal
from mailmark.core.contacts import (
    MAX_UPLOAD,
    PREVIEW_ROWS,
    Contact,
    ContactFilter,
    ContactImport,
    ContactService,
    FieldValue,
    ImportPreview,
    contact_filter,
    parse_id,
)
from mailmark.core.errors import InvalidInput
from mailmark.web.api.v1.auth import Injected
from mailmark.web.api.v1.docs import samples
from mailmark.web.api.v1.mailboxes import Deleted

CONTACT_EXAMPLE = {
    "_id": "42",
    "email": "ann@example.com",
    "firstName": "Ann",
    "lastName": "Lee",
    "company": "Acme",
    "fields": {"plan": "pro"},
    "tags": ["customer"],
    "status": "subscribed",
    "suppressed": False,
    "createdAt": "2026-12-06T08:00:00+00:00",
    "updatedAt": "2026-12-06T08:00:00+00:00",
    "listIds": ["5"],
}
IMPORT_EXAMPLE = {
    "_id": "3",
    "status": "done",
    "onDuplicate": "update",
    "mapping": {"Email": "email", "First name": "first_name", "Plan": "field:plan"},
    "listId": None,
    "totalBytes": 5230,
    "bytesRead": 5230,
    "rowsDone": 100,
    "created": 97,
    "updated": 1,
    "skipped": 0,
    "failed": 2,
    "peakRowsHeld": 100,
    "errors": [{"row": 7, "reason": "The email address has no @domain part."}],
    "failure": "",
    "createdAt": "2026-12-06T08:00:00+00:00",
    "updatedAt": "2026-12-06T08:00:01+00:00",
}


class ContactOut(msgspec.Struct, rename="camel"):
    id: str = msgspec.field(name="_id")
    email: str = ""
    first_name: str = ""
    last_name: str = ""
    company: str = ""
    fields: dict[str, FieldValue] = msgspec.field(default_factory=dict)
    tags: list[str] = msgspec.field(default_factory=list)
    status: str = "subscribed"  # "subscribed" | "unsubscribed" | "bounced" | "complained"
    suppressed: bool = False  # on the suppression list: never mailed, whatever the status
    created_at: datetime | None = None
    updated_at: datetime | None = None
    list_ids: list[str] = msgspec.field(default_factory=list)  # the lists it is on


class ContactPage(msgspec.Struct, rename="camel"):
    data: list[ContactOut]
    next_cursor: str | None


class ContactIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    email: str
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    fields: dict[str, Any] | None = None
    tags: list[str] | None = None
    status: str | None = None


class ContactPatch(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    fields: dict[str, Any] | None = None
    tags: list[str] | None = None
    status: str | None = None


class RowErrorOut(msgspec.Struct):
    row: int
    reason: str


class ImportOut(msgspec.Struct, rename="camel"):
    id: str = msgspec.field(name="_id")
    status: str = "running"  # "running" | "done" | "failed"
    on_duplicate: str = "update"
    mapping: dict[str, str] = msgspec.field(default_factory=dict)
    list_id: str | None = None
    total_bytes: int = 0
    bytes_read: int = 0
    rows_done: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0
    failed: int = 0
    peak_rows_held: int = 0
    errors: list[RowErrorOut] = msgspec.field(default_factory=list)
    failure: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None


class PreviewRowOut(msgspec.Struct):
    row: int
    contact: ContactOut | None
    error: str | None


class PreviewOut(msgspec.Struct):
    columns: list[str]
    mapping: dict[str, str]
    rows: list[PreviewRowOut]


def contact_out(contact: Contact) -> ContactOut:
    return ContactOut(
        str(contact.id) if contact.id is not None else "",
        contact.email,
        contact.first_name,
        contact.last_name,
        contact.company,
        contact.fields,
        list(contact.tags),
        contact.status.value,
        contact.suppressed,
        contact.created_at,
        contact.updated_at,
        [str(list_id) for list_id in contact.list_ids],
    )


def preview_out(preview: ImportPreview) -> PreviewOut:
    return PreviewOut(
        preview.columns,
        preview.mapping,
        [
            PreviewRowOut(r.row, contact_out(r.contact) if r.contact is not None else None, r.error)
            for r in preview.rows
        ],
    )


def import_out(job: ContactImport) -> ImportOut:
    return ImportOut(
        str(job.id),
        job.status.value,
        job.on_duplicate.value,
        job.mapping,
        str(job.list_id) if job.list_id is not None else None,
        job.total_bytes,
        job.bytes_read,
        job.rows_done,
        job.created,
        job.updated,
        job.skipped,
        job.failed,
        job.peak_rows_held,
        [RowErrorOut(e.row, e.reason) for e in job.errors],
        job.failure,
        job.created_at,
        job.updated_at,
    )


def filter_from_query(
    status: str | None,
    tag: str | None,
    field: str | None,
    suppressed: bool | None,
    list_id: str | None,
    search: str | None = None,
) -> ContactFilter:
    """`field` is `name=value`; `listId` a list or segment of the account; `search` a substring
    of the address, name or company."""
    name = value = None
    if field is not None:
        name, equals, value = field.partition("=")
        if not equals:
            raise InvalidInput("field is name=value, e.g. plan=pro.", field="field")
    return contact_filter(
        status=status,
        tag=tag,
        field_name=name,
        field_value=value,
        suppressed=suppressed,
        list_id=parse_id(list_id, "list") if list_id else None,
        search=search,
    )


def mapping_from_query(mapping: str | None) -> dict[str, str] | None:
    if mapping is None or mapping == "":
        return None
    try:
        parsed = json.loads(mapping)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in parsed.items()
    ):
        raise InvalidInput(
            'mapping is a JSON object of column header to field, e.g. {"E-mail": "email"}.',
            field="mapping",
        )
    return parsed


def upload_of(request: Request[Any, Any, Any]) -> AsyncIterator[bytes]:
    return request.stream()


class ContactController(Controller):
    path = "/contacts"
    tags = ("Contacts",)

    @get(
        operation_id="listContacts",
        summary="List contacts",
        operation_class=samples(
            "GET",
            "/v1/contacts?tag=customer",
            response={"data": [CONTACT_EXAMPLE], "nextCursor": None},
            sdk="const page = await client.listContacts({ tag: 'customer' });",
        ),
    )
    async def list_contacts(
        self,
        principal: Injected[ApiPrincipal],
        contacts: Injected[ContactService],
        status: FromQuery[str | None] = None,
        tag: FromQuery[str | None] = None,
        field: FromQuery[str | None] = None,
        suppressed: FromQuery[bool | None] = None,
        list_id: Annotated[str | None, QueryParameter(name="listId")] = None,
        cursor: FromQuery[str | None] = None,
        limit: FromQuery[int | None] = None,
    ) -> ContactPage:
        """Contacts oldest first, filtered by `status`, `tag`, `field` (name=value),
        `suppressed` and `listId` (a list's members, or whoever a segment matches)."""
        where = filter_from_query(status, tag, field, suppressed, list_id)
        page = await contacts.page(principal.account_id, where, cursor=cursor, limit=limit)
        return ContactPage([contact_out(c) for c in page.items], page.next_cursor)

    @post(
        operation_id="createContact",
        summary="Create a contact",
        operation_class=samples(
            "POST",
            "/v1/contacts",
            body={"email": "ann@example.com", "firstName": "Ann", "fields": {"plan": "pro"}},
            response=CONTACT_EXAMPLE,
            status=201,
            sdk="await client.createContact({ email: 'ann@example.com', firstName: 'Ann' });",
        ),
    )
    async def create_contact(
        self,
        principal: Injected[ApiPrincipal],
        contacts: Injected[ContactService],
        data: JSONBody[ContactIn],
    ) -> ContactOut:
        """409 when the address is already a contact of the account."""
        contact = await contacts.create(
            principal.account_id,
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
        "/import",
        operation_id="importContacts",
        summary="Import contacts from a CSV file",
        status_code=202,
        request_max_body_size=MAX_UPLOAD,
        operation_class=samples(
            "POST",
            "/v1/contacts/import?onDuplicate=update",
            response=IMPORT_EXAMPLE,
            status=202,
            sdk="const job = await client.importContacts(csvText, { onDuplicate: 'skip' });",
        ),
    )
    async def import_contacts(
        self,
        request: Request[Any, Any, Any],
        principal: Injected[ApiPrincipal],
        contacts: Injected[ContactService],
        mapping: FromQuery[str | None] = None,
        on_duplicate: Annotated[str, QueryParameter(name="onDuplicate")] = "update",
        list_id: Annotated[str | None, QueryParameter(name="listId")] = None,
    ) -> ImportOut:
        """The request body is the CSV file (UTF-8, a header row). `mapping` is a JSON object of
        header → `email`, `first_name`, `last_name`, `company`, `tags`, `status`,
        `field:<name>` or `""` (left out); unmapped headers are guessed, others become custom
        fields. `onDuplicate`: `update` or `skip` an address already imported. Runs in the
        background: poll `GET /v1/contacts/import/{id}` for progress and row errors."""
        job = await contacts.start_import(
            principal.account_id,
            upload_of(request),
            mapping=mapping_from_query(mapping),
            on_duplicate=on_duplicate,
            list_id=list_id,
        )
        return import_out(job)

    @post(
        "/import/preview",
        operation_id="previewContactImport",
        summary="Preview a CSV import",
        status_code=200,
        operation_class=samples(
            "POST",
            "/v1/contacts/import/preview?rows=5",
            response={
                "columns": ["Email", "First name"],
                "mapping": {"Email": "email", "First name": "first_name"},
                "rows": [{"row": 2, "contact": CONTACT_EXAMPLE, "error": None}],
            },
            sdk="const preview = await client.previewContactImport(csvText);",
        ),
    )
    async def preview_import(
        self,
        request: Request[Any, Any, Any],
        principal: Injected[ApiPrincipal],
        contacts: Injected[ContactService],
        mapping: FromQuery[str | None] = None,
        rows: FromQuery[int] = PREVIEW_ROWS,
    ) -> PreviewOut:
        """The header, the mapping as the import would apply it, and the first `rows` rows as
        contacts or errors. Nothing is saved."""
        preview = await contacts.preview(
            principal.account_id, upload_of(request), mapping_from_query(mapping), rows
        )
        return preview_out(preview)

    @get(
        "/import/{import_id:str}",
        operation_id="getContactImport",
        summary="Get an import's progress",
        operation_class=samples(
            "GET",
            "/v1/contacts/import/3",
            response=IMPORT_EXAMPLE,
            sdk="const job = await client.getContactImport('3');",
        ),
    )
    async def get_import(
        self,
        principal: Injected[ApiPrincipal],
        contacts: Injected[ContactService],
        import_id: FromPath[str],
    ) -> ImportOut:
        """Progress (`rowsDone`, `bytesRead` of `totalBytes`), counts, and the first 1000 row
        errors with their row numbers (the header is row 1)."""
        return import_out(await contacts.import_status(principal.account_id, import_id))

    @get(
        "/export",
        operation_id="exportContacts",
        summary="Export contacts as CSV",
        media_type="text/csv",
        operation_class=samples(
            "GET",
            "/v1/contacts/export?status=subscribed",
            sdk="const csv = await client.exportContacts({ status: 'subscribed' });",
        ),
    )
    async def export_contacts(
        self,
        principal: Injected[ApiPrincipal],
        contacts: Injected[ContactService],
        status: FromQuery[str | None] = None,
        tag: FromQuery[str | None] = None,
        field: FromQuery[str | None] = None,
        suppressed: FromQuery[bool | None] = None,
        list_id: Annotated[str | None, QueryParameter(name="listId")] = None,
    ) -> Stream:
        """A CSV file (streamed) with the same filters as the listing; it imports back as is."""
        where = filter_from_query(status, tag, field, suppressed, list_id)
        lines = await contacts.export(principal.account_id, where)
        return Stream(
            lines,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="contacts.csv"'},
        )

    @get(
        "/{contact_id:str}",
        operation_id="getContact",
        summary="Get a contact",
        operation_class=samples(
            "GET",
            "/v1/contacts/42",
            response=CONTACT_EXAMPLE,
            sdk="const contact = await client.getContact('42');",
        ),
    )
    async def get_contact(
        self,
        principal: Injected[ApiPrincipal],
        contacts: Injected[ContactService],
        contact_id: FromPath[str],
    ) -> ContactOut:
        return contact_out(await contacts.get(principal.account_id, contact_id))

    @patch(
        "/{contact_id:str}",
        operation_id="updateContact",
        summary="Update a contact",
        operation_class=samples(
            "PATCH",
            "/v1/contacts/42",
            body={"tags": ["customer", "vip"]},
            response=CONTACT_EXAMPLE,
            sdk="await client.updateContact('42', { tags: ['customer', 'vip'] });",
        ),
    )
    async def update_contact(
        self,
        principal: Injected[ApiPrincipal],
        contacts: Injected[ContactService],
        contact_id: FromPath[str],
        data: JSONBody[ContactPatch],
    ) -> ContactOut:
        """All fields optional; `fields` and `tags` replace the old ones."""
        contact = await contacts.update(
            principal.account_id,
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

    @delete(
        "/{contact_id:str}",
        operation_id="deleteContact",
        summary="Delete a contact",
        status_code=200,
        operation_class=samples(
            "DELETE",
            "/v1/contacts/42",
            response={"deleted": True},
            sdk="await client.deleteContact('42');",
        ),
    )
    async def delete_contact(
        self,
        principal: Injected[ApiPrincipal],
        contacts: Injected[ContactService],
        contact_id: FromPath[str],
    ) -> Deleted:
        """Delete the contact and its list memberships."""
        await contacts.delete(principal.account_id, contact_id)
        return Deleted()
