"""Contacts, lists and segments of an account (the audiences of campaigns), and CSV import and
export.

A contact whose address is on the suppression list of any of the account's domains is shown as
`suppressed`, whatever its status; `mailable` audiences leave it out, so it is never mailed
silently. Segments filter by status, tag, custom field and suppression; engagement filters
(opened, clicked, replied) come with campaign tracking.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import tempfile
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import IO, Any, Protocol

from mailmark.core.access import Viewer, require_manager
from mailmark.core.addresses import check_header_value, normalize_address
from mailmark.core.contact_csv import (
    COMPANY,
    EMAIL,
    FIELD_PREFIX,
    FIRST_NAME,
    LAST_NAME,
    STATUS,
    TAGS,
    CsvReader,
    CsvRow,
    csv_line,
    guess_target,
    resolve_mapping,
)
from mailmark.core.emails import Page, cursor_id, page_size
from mailmark.core.errors import Conflict, InvalidInput, MailmarkError, NotFound, naming
from mailmark.core.ports import Clock, UnitOfWorkFactory

MAX_NAME = 200
MAX_FIELDS = 50
MAX_FIELD_VALUE = 1000  # characters of one custom field's text
MAX_FIELDS_JSON = 16 * 1024  # bytes of all custom fields together, as JSON
MAX_TAGS = 50
MAX_TAG = 64
MAX_SEARCH = 200  # characters of a contact search
MAX_LISTS = 1000
MAX_MEMBERS_PER_CALL = 1000
MAX_UPLOAD = 200 * 1024 * 1024
MAX_IMPORT_ROWS = 1_000_000
MAX_ROW_ERRORS = 1000  # kept per import; `failed` counts them all
IMPORT_BATCH = 1000
PREVIEW_ROWS = 10
MAX_PREVIEW_ROWS = 50
EXPORT_PAGE = 1000
SPOOL_IN_MEMORY = 1024 * 1024  # an upload larger than this goes to a temporary file
_FIELD_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
_TAG = re.compile(r"[a-z0-9][a-z0-9 _\-.:/]{0,63}")
FieldValue = str | int | float | bool | None


class ContactStatus(StrEnum):
    SUBSCRIBED = "subscribed"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


class OnDuplicate(StrEnum):
    UPDATE = "update"  # a row for a known address updates the contact
    SKIP = "skip"  # it is skipped (and counted)


class ImportStatus(StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class Contact:
    account_id: int
    email: str
    first_name: str
    last_name: str
    company: str
    fields: dict[str, FieldValue]
    tags: tuple[str, ...]
    status: ContactStatus
    created_at: datetime
    updated_at: datetime
    id: int | None = None
    suppressed: bool = False  # read, never written: the suppression list decides
    list_ids: tuple[int, ...] = ()  # read, never written: the static lists it is on

    @property
    def email_key(self) -> str:
        return self.email.lower()


@dataclass(frozen=True)
class FieldMatch:
    name: str
    value: str


@dataclass(frozen=True)
class ContactFilter:
    """Which contacts: every criterion given must hold."""

    status: ContactStatus | None = None
    tag: str | None = None
    field: FieldMatch | None = None
    suppressed: bool | None = None
    list_id: int | None = None  # members of a (static) list
    # A case-insensitive substring of the address, first name, last name or company (a search
    # box, never part of a segment's saved filter).
    search: str | None = None

    def as_json(self) -> dict[str, Any]:
        saved: dict[str, Any] = {}
        if self.status is not None:
            saved["status"] = self.status.value
        if self.tag is not None:
            saved["tag"] = self.tag
        if self.field is not None:
            saved["field"] = {"name": self.field.name, "value": self.field.value}
        if self.suppressed is not None:
            saved["suppressed"] = self.suppressed
        return saved


@dataclass(frozen=True)
class ContactList:
    account_id: int
    name: str
    created_at: datetime
    updated_at: datetime
    segment: ContactFilter | None = None  # a saved filter: members are whoever matches it
    id: int | None = None
    size: int = 0  # read only


@dataclass(frozen=True)
class RowError:
    row: int
    reason: str


@dataclass(frozen=True)
class ContactImport:
    account_id: int
    on_duplicate: OnDuplicate
    mapping: dict[str, str]  # column header → target
    total_bytes: int
    created_at: datetime
    updated_at: datetime
    list_id: int | None = None
    status: ImportStatus = ImportStatus.RUNNING
    bytes_read: int = 0
    rows_done: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0
    failed: int = 0
    peak_rows_held: int = 0  # the most rows held in memory at once (one batch)
    errors: tuple[RowError, ...] = ()
    failure: str = ""  # why the file as a whole could not be read
    id: int | None = None


@dataclass(frozen=True)
class PreviewRow:
    row: int
    contact: Contact | None
    error: str | None


@dataclass(frozen=True)
class ImportPreview:
    columns: list[str]
    mapping: dict[str, str]  # header → target, as the import would apply it
    rows: list[PreviewRow]


@dataclass(frozen=True)
class CsvSample:
    """A file's columns before any mapping is chosen: what a mapping step shows."""

    columns: list[str]
    guessed: dict[str, str]  # header → the target it takes when unmapped ("": left out)
    rows: list[list[str]]  # the first data rows' cells as written, one per column


@dataclass
class _Batch:
    rows: dict[str, tuple[int, Contact]] = field(default_factory=dict)  # email_key → (row, new)
    errors: list[RowError] = field(default_factory=list)
    count: int = 0  # rows read into this batch
    repeats: int = 0  # rows whose address came earlier in the batch


@dataclass
class _Progress:
    job: ContactImport  # as last written


class ContactRepository(Protocol):
    async def add(self, contact: Contact) -> Contact: ...
    async def get(self, account_id: int, contact_id: int) -> Contact | None: ...
    async def find_by_keys(self, account_id: int, keys: Sequence[str]) -> dict[str, Contact]: ...
    async def insert_many(self, contacts: Sequence[Contact]) -> None: ...
    async def update(self, contact: Contact) -> None: ...
    async def update_many(self, contacts: Sequence[Contact]) -> None: ...
    async def delete(self, account_id: int, contact_id: int) -> bool: ...
    async def page(
        self, account_id: int, where: ContactFilter, after_id: int | None, limit: int
    ) -> list[Contact]: ...
    async def field_names(self, account_id: int, where: ContactFilter, limit: int) -> list[str]: ...
    async def ids_for_keys(self, account_id: int, keys: Sequence[str]) -> list[int]: ...
    async def add_lists(self, account_id: int, contact_list: ContactList) -> ContactList: ...
    async def get_list(self, account_id: int, list_id: int) -> ContactList | None: ...
    async def list_exists(self, account_id: int, list_id: int) -> bool: ...
    async def find_list(self, account_id: int, name: str) -> ContactList | None: ...
    async def all_lists(self, account_id: int) -> list[ContactList]: ...
    async def update_list(self, contact_list: ContactList) -> None: ...
    async def delete_list(self, account_id: int, list_id: int) -> bool: ...
    async def add_members(self, list_id: int, contact_ids: Sequence[int]) -> int: ...
    async def remove_member(self, list_id: int, contact_id: int) -> bool: ...
    async def add_import(self, job: ContactImport) -> ContactImport: ...
    async def get_import(self, account_id: int, import_id: int) -> ContactImport | None: ...
    async def update_import(self, job: ContactImport) -> None: ...


def parse_id(text: str, what: str) -> int:
    """An id from a path; anything that is not one names something that does not exist."""
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise NotFound(f"No {what} {text} here.")
    return int(text)


def clean_text(value: str | None, label: str, field_name: str) -> str:
    if not value:
        return ""
    try:
        check_header_value(label, value, MAX_NAME)
    except InvalidInput as error:
        error.field = field_name
        raise
    return value.strip()


def clean_email(value: str) -> str:
    with naming("email"):
        return normalize_address(value, "The email address")


def clean_status(value: str) -> ContactStatus:
    try:
        return ContactStatus(value.strip().lower())
    except ValueError:
        raise InvalidInput(
            f"status is one of {', '.join(s.value for s in ContactStatus)}.", field="status"
        ) from None


def clean_fields(fields: Mapping[str, Any] | None) -> dict[str, FieldValue]:
    """Custom fields: at most MAX_FIELDS keys of letters, digits and underscores (a letter
    first), each a string, number, boolean or null, at most MAX_FIELDS_JSON bytes in all."""
    if fields is None:
        return {}
    if not isinstance(fields, Mapping):
        raise InvalidInput("fields is an object of names to values.", field="fields")
    if len(fields) > MAX_FIELDS:
        raise InvalidInput(f"A contact has at most {MAX_FIELDS} custom fields.", field="fields")
    cleaned: dict[str, FieldValue] = {}
    for key, value in fields.items():
        if not isinstance(key, str) or not _FIELD_KEY.fullmatch(key):
            raise InvalidInput(
                f"The custom field name {str(key)[:70]!r} is not allowed: letters, digits and "
                "underscores, a letter first, at most 64 characters.",
                field="fields",
            )
        if isinstance(value, str):
            if len(value) > MAX_FIELD_VALUE:
                raise InvalidInput(
                    f"The custom field {key} is longer than {MAX_FIELD_VALUE} characters.",
                    field="fields",
                )
            if "\0" in value:
                raise InvalidInput(f"The custom field {key} holds a NUL.", field="fields")
        elif value is not None and not isinstance(value, (int, float, bool)):
            raise InvalidInput(
                f"The custom field {key} is a string, a number, true, false or null.",
                field="fields",
            )
        cleaned[key] = value
    # The JSON is only measured when it could be too big: a character takes at most 6 bytes
    # (a control character escaped as \u00XX), plus quotes, colon and comma.
    rough = sum(len(key) + len(str(value)) + 6 for key, value in cleaned.items())
    if rough * 6 > MAX_FIELDS_JSON and (
        len(json.dumps(cleaned, ensure_ascii=False).encode()) > MAX_FIELDS_JSON
    ):
        raise InvalidInput(
            f"The custom fields take more than {MAX_FIELDS_JSON} bytes together.", field="fields"
        )
    return cleaned


def clean_tag(tag: str) -> str:
    cleaned = tag.strip().lower()
    if not _TAG.fullmatch(cleaned):
        raise InvalidInput(
            f"The tag {tag[:70]!r} is not allowed: letters, digits, spaces and - _ . : /, "
            f"at most {MAX_TAG} characters.",
            field="tags",
        )
    return cleaned


def clean_tags(tags: Iterable[str] | None) -> tuple[str, ...]:
    if tags is None:
        return ()
    if isinstance(tags, str):
        raise InvalidInput("tags is a list of strings.", field="tags")
    unique = dict.fromkeys(clean_tag(str(tag)) for tag in tags)
    if len(unique) > MAX_TAGS:
        raise InvalidInput(f"A contact has at most {MAX_TAGS} tags.", field="tags")
    return tuple(unique)


def split_tags(cell: str) -> tuple[str, ...]:
    """Tags from one CSV cell: separated by commas or semicolons."""
    return clean_tags(part for part in re.split(r"[,;]", cell) if part.strip())


def segment_filter(saved: Mapping[str, Any] | None) -> ContactFilter | None:
    """A segment's filter from what the API (or the database) holds."""
    if saved is None:
        return None
    if not isinstance(saved, Mapping):
        raise InvalidInput("filter is an object.", field="filter")
    unknown = set(saved) - {"status", "tag", "field", "suppressed"}
    if unknown:
        raise InvalidInput(
            f"A segment filters by status, tag, field and suppressed, not {min(unknown)}.",
            field="filter",
        )
    with naming("filter"):
        status = saved.get("status")
        tag = saved.get("tag")
        match = saved.get("field")
        suppressed = saved.get("suppressed")
        if match is not None and (
            not isinstance(match, Mapping)
            or not isinstance(match.get("name"), str)
            or not isinstance(match.get("value"), str)
        ):
            raise InvalidInput('filter.field is {"name": …, "value": …}.')
        if suppressed is not None and not isinstance(suppressed, bool):
            raise InvalidInput("filter.suppressed is true or false.")
        return contact_filter(
            status=status if isinstance(status, str) else None,
            tag=tag if isinstance(tag, str) else None,
            field_name=match["name"] if match else None,
            field_value=match["value"] if match else None,
            suppressed=suppressed,
        )


def contact_filter(
    *,
    status: str | None = None,
    tag: str | None = None,
    field_name: str | None = None,
    field_value: str | None = None,
    suppressed: bool | None = None,
    list_id: int | None = None,
    search: str | None = None,
) -> ContactFilter:
    match = None
    if field_name is not None:
        if not _FIELD_KEY.fullmatch(field_name):
            raise InvalidInput(f"No custom field can be named {field_name[:70]!r}.", field="field")
        if field_value is None or len(field_value) > MAX_FIELD_VALUE:
            raise InvalidInput("A field filter is name=value.", field="field")
        match = FieldMatch(field_name, field_value)
    return ContactFilter(
        status=clean_status(status) if status is not None else None,
        tag=clean_tag(tag) if tag is not None else None,
        field=match,
        suppressed=suppressed,
        list_id=list_id,
        search=clean_search(search),
    )


def clean_search(text: str | None) -> str | None:
    """A search box's text, trimmed and lower-cased; empty is no search."""
    if text is None or not text.strip():
        return None
    if len(text) > MAX_SEARCH:
        raise InvalidInput(f"Search for at most {MAX_SEARCH} characters.", field="q")
    if "\0" in text:
        raise InvalidInput("The search holds a NUL character.", field="q")
    return text.strip().lower()


def contacts_account(viewer: Viewer) -> int:
    """The account whose contacts and lists the viewer may see and change: the contacts are a
    whole account's campaign audience, so owners and admins only (members use their mailboxes)."""
    require_manager(viewer, "manage contacts")
    return viewer.account_id


class ContactService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock
        self._imports: set[asyncio.Task[None]] = set()

    # Contacts

    async def create(
        self,
        account_id: int,
        *,
        email: str,
        first_name: str | None = None,
        last_name: str | None = None,
        company: str | None = None,
        fields: Mapping[str, Any] | None = None,
        tags: Iterable[str] | None = None,
        status: str | None = None,
    ) -> Contact:
        now = self._clock.now()
        contact = Contact(
            account_id,
            clean_email(email),
            clean_text(first_name, "The first name", "firstName"),
            clean_text(last_name, "The last name", "lastName"),
            clean_text(company, "The company", "company"),
            clean_fields(fields),
            clean_tags(tags),
            clean_status(status) if status is not None else ContactStatus.SUBSCRIBED,
            now,
            now,
        )
        async with self._uow() as uow:
            if await uow.contacts.find_by_keys(account_id, [contact.email_key]):
                raise Conflict(f"{contact.email} is already a contact.", field="email")
            added = await uow.contacts.add(contact)
            await uow.commit()
        return await self.get(account_id, str(added.id))

    async def get(self, account_id: int, contact_id: str) -> Contact:
        async with self._uow(read_only=True) as uow:
            found = await uow.contacts.get(account_id, parse_id(contact_id, "contact"))
        if found is None:
            raise NotFound(f"No contact {contact_id} here.")
        return found

    async def update(
        self,
        account_id: int,
        contact_id: str,
        *,
        email: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        company: str | None = None,
        fields: Mapping[str, Any] | None = None,
        tags: Iterable[str] | None = None,
        status: str | None = None,
    ) -> Contact:
        """Change what is given; `fields` and `tags` replace the old ones."""
        async with self._uow() as uow:
            found = await uow.contacts.get(account_id, parse_id(contact_id, "contact"))
            if found is None:
                raise NotFound(f"No contact {contact_id} here.")
            changed = found
            if email is not None:
                changed = replace(changed, email=clean_email(email))
                if changed.email_key != found.email_key and await uow.contacts.find_by_keys(
                    account_id, [changed.email_key]
                ):
                    raise Conflict(f"{changed.email} is already a contact.", field="email")
            if first_name is not None:
                changed = replace(
                    changed, first_name=clean_text(first_name, "The first name", "firstName")
                )
            if last_name is not None:
                changed = replace(
                    changed, last_name=clean_text(last_name, "The last name", "lastName")
                )
            if company is not None:
                changed = replace(changed, company=clean_text(company, "The company", "company"))
            if fields is not None:
                changed = replace(changed, fields=clean_fields(fields))
            if tags is not None:
                changed = replace(changed, tags=clean_tags(tags))
            if status is not None:
                changed = replace(changed, status=clean_status(status))
            changed = replace(changed, updated_at=self._clock.now())
            await uow.contacts.update(changed)
            await uow.commit()
        return await self.get(account_id, contact_id)

    async def delete(self, account_id: int, contact_id: str) -> None:
        async with self._uow() as uow:
            if not await uow.contacts.delete(account_id, parse_id(contact_id, "contact")):
                raise NotFound(f"No contact {contact_id} here.")
            await uow.commit()

    async def page(
        self,
        account_id: int,
        where: ContactFilter,
        *,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> Page[Contact]:
        size = page_size(limit)
        after = cursor_id(cursor)
        async with self._uow(read_only=True) as uow:
            where = await self._resolved(uow.contacts, account_id, where)
            found = await uow.contacts.page(account_id, where, after, size + 1)
        more = len(found) > size
        found = found[:size]
        return Page(found, str(found[-1].id) if more and found[-1].id else None)

    async def _resolved(
        self, contacts: ContactRepository, account_id: int, where: ContactFilter
    ) -> ContactFilter:
        """A filter on a list: a static list's membership, or the segment's saved filter."""
        if where.list_id is None:
            return where
        found = await contacts.get_list(account_id, where.list_id)
        if found is None:
            raise NotFound(f"No list {where.list_id} here.", field="listId")
        if found.segment is None:
            return where
        saved = found.segment
        return ContactFilter(
            status=where.status or saved.status,
            tag=where.tag or saved.tag,
            field=where.field or saved.field,
            suppressed=where.suppressed if where.suppressed is not None else saved.suppressed,
            search=where.search,
        )

    # Lists and segments

    async def lists(self, account_id: int) -> list[ContactList]:
        async with self._uow(read_only=True) as uow:
            return await uow.contacts.all_lists(account_id)

    async def get_list(self, account_id: int, list_id: str) -> ContactList:
        async with self._uow(read_only=True) as uow:
            found = await uow.contacts.get_list(account_id, parse_id(list_id, "list"))
        if found is None:
            raise NotFound(f"No list {list_id} here.")
        return found

    async def create_list(
        self, account_id: int, name: str, segment: Mapping[str, Any] | None = None
    ) -> ContactList:
        clean_name = self._list_name(name)
        saved = segment_filter(segment)
        now = self._clock.now()
        async with self._uow() as uow:
            if await uow.contacts.find_list(account_id, clean_name):
                raise Conflict(f"There is already a list named {clean_name}.", field="name")
            if len(await uow.contacts.all_lists(account_id)) >= MAX_LISTS:
                raise InvalidInput(f"An account has at most {MAX_LISTS} lists.", field="name")
            added = await uow.contacts.add_lists(
                account_id, ContactList(account_id, clean_name, now, now, saved)
            )
            await uow.commit()
        return added

    async def update_list(
        self,
        account_id: int,
        list_id: str,
        *,
        name: str | None = None,
        segment: Mapping[str, Any] | None = None,
    ) -> ContactList:
        async with self._uow() as uow:
            found = await uow.contacts.get_list(account_id, parse_id(list_id, "list"))
            if found is None:
                raise NotFound(f"No list {list_id} here.")
            changed = found
            if name is not None:
                clean_name = self._list_name(name)
                other = await uow.contacts.find_list(account_id, clean_name)
                if other is not None and other.id != found.id:
                    raise Conflict(f"There is already a list named {clean_name}.", field="name")
                changed = replace(changed, name=clean_name)
            if segment is not None:
                if found.segment is None:
                    raise Conflict(
                        "This list has members of its own; a filter belongs to a segment.",
                        field="filter",
                    )
                changed = replace(changed, segment=segment_filter(segment))
            await uow.contacts.update_list(replace(changed, updated_at=self._clock.now()))
            await uow.commit()
        return await self.get_list(account_id, list_id)

    async def delete_list(self, account_id: int, list_id: str) -> None:
        """Delete the list; its contacts stay."""
        async with self._uow() as uow:
            if not await uow.contacts.delete_list(account_id, parse_id(list_id, "list")):
                raise NotFound(f"No list {list_id} here.")
            await uow.commit()

    async def add_members(
        self,
        account_id: int,
        list_id: str,
        *,
        contact_ids: Sequence[str] = (),
        emails: Sequence[str] = (),
    ) -> ContactList:
        """Put contacts (by id or by address) on a static list; unknown ones are a 404."""
        if len(contact_ids) + len(emails) > MAX_MEMBERS_PER_CALL:
            raise InvalidInput(
                f"Add at most {MAX_MEMBERS_PER_CALL} contacts per call.", field="contactIds"
            )
        ids = [parse_id(text, "contact") for text in contact_ids]
        keys = [clean_email(address).lower() for address in emails]
        async with self._uow() as uow:
            found = await self._static_list(uow.contacts, account_id, list_id)
            assert found.id is not None
            for contact_id in ids:
                if await uow.contacts.get(account_id, contact_id) is None:
                    raise NotFound(f"No contact {contact_id} here.", field="contactIds")
            by_key = await uow.contacts.ids_for_keys(account_id, keys)
            if len(by_key) != len(set(keys)):
                raise NotFound("Some of these addresses are not contacts.", field="emails")
            await uow.contacts.add_members(found.id, sorted(set(ids + by_key)))
            await uow.commit()
        return await self.get_list(account_id, list_id)

    async def remove_member(self, account_id: int, list_id: str, contact_id: str) -> None:
        async with self._uow() as uow:
            found = await self._static_list(uow.contacts, account_id, list_id)
            assert found.id is not None
            if not await uow.contacts.remove_member(found.id, parse_id(contact_id, "contact")):
                raise NotFound(f"Contact {contact_id} is not on list {list_id}.")
            await uow.commit()

    @staticmethod
    async def _static_list(
        contacts: ContactRepository, account_id: int, list_id: str
    ) -> ContactList:
        found = await contacts.get_list(account_id, parse_id(list_id, "list"))
        if found is None:
            raise NotFound(f"No list {list_id} here.")
        if found.segment is not None:
            raise Conflict("A segment's members are whoever matches its filter.")
        return found

    @staticmethod
    def _list_name(name: str) -> str:
        cleaned = clean_text(name, "The name", "name")
        if not cleaned:
            raise InvalidInput("Give the list a name.", field="name")
        return cleaned

    # CSV import

    async def preview(
        self,
        account_id: int,
        upload: AsyncIterator[bytes],
        mapping: Mapping[str, str] | None,
        rows: int = PREVIEW_ROWS,
    ) -> ImportPreview:
        """The header, the mapping the import would apply, and the first rows as contacts (or
        their errors). Reads no more of the upload than those rows need."""
        if not 1 <= rows <= MAX_PREVIEW_ROWS:
            raise InvalidInput(f"rows is between 1 and {MAX_PREVIEW_ROWS}.", field="rows")
        with tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY) as spool:
            await _spool(upload, spool, limit=(rows + 1) * 64 * 1024 + 1)
            spool.seek(0)
            reader = CsvReader(spool)  # type: ignore[arg-type]
            headers = reader.header()
            targets = resolve_mapping(headers, mapping)
            now = self._clock.now()
            shown: list[PreviewRow] = []
            # Each item is a row shown: the file is read no further than the last of them (a
            # sample's end may cut a record short).
            for item in itertools.islice(reader.rows(targets, len(headers)), rows):
                if isinstance(item, tuple):
                    shown.append(PreviewRow(item[0], None, item[1]))
                    continue
                try:
                    shown.append(PreviewRow(item.number, _row_contact(account_id, item, now), None))
                except MailmarkError as error:
                    shown.append(PreviewRow(item.number, None, error.message))
        applied = {headers[index]: target for index, target in targets.items()}
        return ImportPreview(headers, applied, shown)

    async def sample(self, upload: AsyncIterator[bytes], rows: int = PREVIEW_ROWS) -> CsvSample:
        """The header, what each column becomes unless mapped, and the first rows' cells. Unlike
        `preview` it needs no valid mapping: it is how one is chosen. Nothing is read or saved."""
        if not 1 <= rows <= MAX_PREVIEW_ROWS:
            raise InvalidInput(f"rows is between 1 and {MAX_PREVIEW_ROWS}.", field="rows")
        with tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY) as spool:
            await _spool(upload, spool, limit=(rows + 1) * 64 * 1024 + 1)
            spool.seek(0)
            reader = CsvReader(spool)  # type: ignore[arg-type]
            headers = reader.header()
            every = {index: str(index) for index in range(len(headers))}
            cells: list[list[str]] = []
            for item in reader.rows(every, len(headers)):
                if isinstance(item, CsvRow):
                    cells.append([item.values.get(str(i), "") for i in range(len(headers))])
                    if len(cells) == rows:
                        break  # before reading on: the sample's end may cut a record short
        guessed = {header: guess_target(header) or "" for header in headers}
        return CsvSample(headers, guessed, cells)

    async def start_import(
        self,
        account_id: int,
        upload: AsyncIterator[bytes],
        *,
        mapping: Mapping[str, str] | None = None,
        on_duplicate: str = OnDuplicate.UPDATE,
        list_id: str | None = None,
    ) -> ContactImport:
        """Spool the upload (in memory up to a megabyte, then on disk), check its header and
        mapping, and import it in the background; the returned import's status shows progress."""
        try:
            mode = OnDuplicate(on_duplicate)
        except ValueError:
            raise InvalidInput("onDuplicate is update or skip.", field="onDuplicate") from None
        target_list = await self._static_list_id(account_id, list_id)
        spool = tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY)  # noqa: SIM115 - closed by the import task
        try:
            total = await _spool(upload, spool, limit=MAX_UPLOAD)
            spool.seek(0)
            reader = CsvReader(spool)  # type: ignore[arg-type]
            headers = reader.header()
            targets = resolve_mapping(headers, mapping)
            now = self._clock.now()
            applied = {headers[index]: target for index, target in targets.items()}
            async with self._uow() as uow:
                job = await uow.contacts.add_import(
                    ContactImport(account_id, mode, applied, total, now, now, list_id=target_list)
                )
                await uow.commit()
        except BaseException:
            spool.close()
            raise
        task = asyncio.create_task(self._run_import(job, reader, targets, len(headers), spool))
        self._imports.add(task)
        task.add_done_callback(self._imports.discard)
        return job

    async def import_status(self, account_id: int, import_id: str) -> ContactImport:
        async with self._uow(read_only=True) as uow:
            found = await uow.contacts.get_import(account_id, parse_id(import_id, "import"))
        if found is None:
            raise NotFound(f"No import {import_id} here.")
        return found

    async def stop_imports(self) -> None:
        """Stop the imports running now (a shutdown); each is marked failed, to be run again."""
        for task in list(self._imports):
            task.cancel()
        if self._imports:
            await asyncio.gather(*self._imports, return_exceptions=True)

    async def _static_list_id(self, account_id: int, list_id: str | None) -> int | None:
        if list_id is None or list_id == "":
            return None
        async with self._uow(read_only=True) as uow:
            found = await self._static_list(uow.contacts, account_id, list_id)
        return found.id

    async def _run_import(
        self,
        job: ContactImport,
        reader: CsvReader,
        targets: Mapping[int, str],
        width: int,
        spool: IO[bytes],
    ) -> None:
        progress = _Progress(job)
        try:
            with spool:
                await self._import_rows(progress, reader, targets, width)
            await self._save_job(replace(progress.job, status=ImportStatus.DONE))
        except MailmarkError as error:
            await self._fail(progress.job, error.message)
        except asyncio.CancelledError:
            await self._fail(
                progress.job,
                "The server stopped during the import: import the file again "
                "(rows already imported are found as duplicates).",
            )
            raise
        except Exception:
            await self._fail(progress.job, "The import stopped on a server error.")
            raise

    async def _fail(self, job: ContactImport, reason: str) -> None:
        await self._save_job(replace(job, status=ImportStatus.FAILED, failure=reason))

    async def _save_job(self, job: ContactImport) -> None:
        async with self._uow() as uow:
            await uow.contacts.update_import(replace(job, updated_at=self._clock.now()))
            await uow.commit()

    async def _import_rows(
        self, progress: _Progress, reader: CsvReader, targets: Mapping[int, str], width: int
    ) -> None:
        batch = _Batch()
        for item in reader.rows(targets, width):
            if progress.job.rows_done + batch.count >= MAX_IMPORT_ROWS:
                raise InvalidInput(f"An import holds at most {MAX_IMPORT_ROWS} rows.")
            batch.count += 1
            if isinstance(item, tuple):
                batch.errors.append(RowError(*item))
            else:
                self._take(progress.job, batch, item)
            if batch.count >= IMPORT_BATCH:
                progress.job = await self._write(progress.job, batch, reader.bytes_read)
                batch = _Batch()
                await asyncio.sleep(0)  # let requests in between batches
        progress.job = await self._write(progress.job, batch, reader.bytes_read)

    def _take(self, job: ContactImport, batch: _Batch, row: CsvRow) -> None:
        try:
            contact = _row_contact(job.account_id, row, self._clock.now())
        except MailmarkError as error:
            batch.errors.append(RowError(row.number, error.message))
            return
        earlier = batch.rows.get(contact.email_key)
        if earlier is not None:
            # The same address again in the file: the first row is kept (skip) or the later
            # one updates it (update), as with an address already among the contacts.
            batch.repeats += 1
            if job.on_duplicate is OnDuplicate.SKIP:
                return
            contact = _merged(earlier[1], contact)
        batch.rows[contact.email_key] = (row.number, contact)

    async def _write(self, job: ContactImport, batch: _Batch, bytes_read: int) -> ContactImport:
        """One batch, its progress and its errors, in one transaction."""
        skipped = batch.repeats if job.on_duplicate is OnDuplicate.SKIP else 0
        repeats_updated = batch.repeats - skipped
        async with self._uow() as uow:
            existing = await uow.contacts.find_by_keys(job.account_id, list(batch.rows))
            fresh: list[Contact] = []
            changed: list[Contact] = []
            for key, (_, contact) in batch.rows.items():
                known = existing.get(key)
                if known is None:
                    fresh.append(contact)
                elif job.on_duplicate is OnDuplicate.SKIP:
                    skipped += 1
                else:
                    changed.append(_merged(known, contact))
            await uow.contacts.insert_many(fresh)
            await uow.contacts.update_many(changed)
            target = job.list_id
            if target is not None and batch.rows:
                if not await uow.contacts.list_exists(job.account_id, target):
                    job = replace(job, list_id=None)  # deleted during the import
                else:
                    ids = await uow.contacts.ids_for_keys(job.account_id, list(batch.rows))
                    await uow.contacts.add_members(target, ids)
            room = MAX_ROW_ERRORS - len(job.errors)
            job = replace(
                job,
                bytes_read=bytes_read,
                rows_done=job.rows_done + batch.count,
                created=job.created + len(fresh),
                updated=job.updated + len(changed) + repeats_updated,
                skipped=job.skipped + skipped,
                failed=job.failed + len(batch.errors),
                peak_rows_held=max(job.peak_rows_held, batch.count),
                errors=job.errors + tuple(batch.errors[: max(room, 0)]),
                updated_at=self._clock.now(),
            )
            await uow.contacts.update_import(job)
            await uow.commit()
        return job

    # CSV export

    async def export(self, account_id: int, where: ContactFilter) -> AsyncIterator[bytes]:
        """The contacts as CSV, a page at a time: the standard columns, then one per custom
        field any of them has. Suitable as an import file."""
        async with self._uow(read_only=True) as uow:
            where = await self._resolved(uow.contacts, account_id, where)
            names = await uow.contacts.field_names(account_id, where, MAX_FIELDS * 4)

        async def lines() -> AsyncIterator[bytes]:
            header = [EMAIL, FIRST_NAME, LAST_NAME, COMPANY, TAGS, STATUS, "suppressed", *names]
            yield csv_line(header).encode()
            after: int | None = None
            while True:
                async with self._uow(read_only=True) as uow:
                    found = await uow.contacts.page(account_id, where, after, EXPORT_PAGE)
                if not found:
                    return
                yield "".join(csv_line(_export_cells(c, names)) for c in found).encode()
                after = found[-1].id

        return lines()


def _export_cells(contact: Contact, names: list[str]) -> list[str]:
    def cell(value: FieldValue) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    return [
        contact.email,
        contact.first_name,
        contact.last_name,
        contact.company,
        ",".join(contact.tags),
        contact.status.value,
        "true" if contact.suppressed else "false",
        *(cell(contact.fields.get(name)) for name in names),
    ]


def _row_contact(account_id: int, row: CsvRow, now: datetime) -> Contact:
    values = row.values
    email = values.get(EMAIL, "").strip()
    if not email:
        raise InvalidInput("The email address is empty.")
    custom = {
        target[len(FIELD_PREFIX) :]: value
        for target, value in values.items()
        if target.startswith(FIELD_PREFIX) and value != ""
    }
    status = values.get(STATUS, "").strip()
    return Contact(
        account_id,
        clean_email(email),
        clean_text(values.get(FIRST_NAME), "The first name", "firstName"),
        clean_text(values.get(LAST_NAME), "The last name", "lastName"),
        clean_text(values.get(COMPANY), "The company", "company"),
        clean_fields(custom),
        split_tags(values.get(TAGS, "")),
        clean_status(status) if status else ContactStatus.SUBSCRIBED,
        now,
        now,
    )


def _merged(known: Contact, row: Contact) -> Contact:
    """An existing contact updated from an import row: what the row has replaces the old value,
    custom fields and tags are added to, and an import never subscribes again someone who
    unsubscribed, bounced or complained."""
    status = known.status if known.status is not ContactStatus.SUBSCRIBED else row.status
    return replace(
        known,
        email=row.email,
        first_name=row.first_name or known.first_name,
        last_name=row.last_name or known.last_name,
        company=row.company or known.company,
        fields={**known.fields, **row.fields},
        tags=tuple(dict.fromkeys(known.tags + row.tags))[:MAX_TAGS],
        status=status,
        updated_at=row.updated_at,
    )


async def _spool(upload: AsyncIterator[bytes], spool: IO[bytes], *, limit: int) -> int:
    """Copy an upload into a spool file, up to `limit` bytes (more is refused, or for a preview,
    left unread). Returns the bytes written."""
    total = 0
    async for chunk in upload:
        total += len(chunk)
        if total > limit:
            if limit == MAX_UPLOAD:
                raise InvalidInput(
                    f"The file is larger than {MAX_UPLOAD // (1024 * 1024)} MB: split it."
                )
            spool.write(chunk[: len(chunk) - (total - limit)])
            return limit
        spool.write(chunk)
    if total == 0:
        raise InvalidInput("The upload is empty: send the CSV file as the request body.")
    return total
