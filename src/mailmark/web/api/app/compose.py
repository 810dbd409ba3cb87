"""/api/mail/{mailbox}: the webmail's compose side. Uploads, drafts, sending, the Outbox, delivery
status and correspondents; every rule is core's (`WebmailCompose`, `SendingService`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody
from multipart import (  # type: ignore[import-untyped]
    MultipartSegment,
    ParserError,
    PushMultipartParser,
    parse_options_header,
)

from mailmark.core.access import Viewer
from mailmark.core.errors import InvalidInput, MessageTooLarge, NotFound
from mailmark.core.webmail_compose import (
    MAX_ADDRESSES,
    MAX_HTML,
    AttachmentRef,
    Composition,
    MessageRef,
    PartRef,
    SendResult,
    UploadRef,
    WebmailCompose,
)
from mailmark.web.api.v1.auth import Injected

# What a multipart/form-data body may hold beyond the file: boundaries, part headers, a few small
# fields a browser adds.
FORM_OVERHEAD = 64 * 1024
MAX_ID = 2**62
Address = Annotated[str, msgspec.Meta(max_length=320)]
Addresses = Annotated[list[Address], msgspec.Meta(max_length=MAX_ADDRESSES)]


class RefIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    folder_id: int
    uid: int


class AttachmentIn(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    """`{uploadId}` or `{folderId, uid, partId}`."""

    upload_id: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    folder_id: int | None = None
    uid: int | None = None
    part_id: Annotated[str, msgspec.Meta(max_length=40)] | None = None


class ComposeIn(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    draft: RefIn | None = None
    to: Addresses = msgspec.field(default_factory=list)
    cc: Addresses = msgspec.field(default_factory=list)
    bcc: Addresses = msgspec.field(default_factory=list)
    subject: Annotated[str, msgspec.Meta(max_length=998)] = ""
    html: Annotated[str, msgspec.Meta(max_length=MAX_HTML)] = ""
    text: Annotated[str, msgspec.Meta(max_length=MAX_HTML)] | None = None
    attachments: Annotated[list[AttachmentIn], msgspec.Meta(max_length=100)] = msgspec.field(
        default_factory=list
    )
    reply_to: RefIn | None = None
    forward_of: RefIn | None = None


class SendIn(ComposeIn, kw_only=True, forbid_unknown_fields=True):
    scheduled_at: datetime | None = None
    undo_seconds: int = 0


class RescheduleIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    scheduled_at: datetime


class RefOut(msgspec.Struct, rename="camel"):
    folder_id: int
    uid: int


class UploadOut(msgspec.Struct, rename="camel"):
    id: str
    filename: str
    content_type: str
    size: int


class SendOut(msgspec.Struct, rename="camel"):
    id: int
    status: str
    send_at: datetime
    outbox: RefOut | None


class CancelOut(msgspec.Struct, rename="camel"):
    draft: RefOut


class RecipientOut(msgspec.Struct, rename="camel"):
    address: str
    status: str
    detail: str | None
    updated_at: datetime


class OpenOut(msgspec.Struct, rename="camel"):
    at: datetime


class DeliveryOut(msgspec.Struct, rename="camel"):
    recipients: list[RecipientOut]
    opens: list[OpenOut]


class AddressOut(msgspec.Struct, rename="camel"):
    name: str
    address: str


def _ref(ref: RefIn | None, field: str) -> MessageRef | None:
    if ref is None:
        return None
    if not (0 < ref.folder_id < MAX_ID and 0 < ref.uid < MAX_ID):
        raise InvalidInput("folderId and uid are positive integers.", field=field)
    return MessageRef(ref.folder_id, ref.uid)


def _attachment(item: AttachmentIn, index: int) -> AttachmentRef:
    field = f"attachments[{index}]"
    if item.upload_id is not None:
        if item.folder_id is not None or item.uid is not None or item.part_id is not None:
            raise InvalidInput("Give uploadId, or folderId, uid and partId.", field=field)
        return UploadRef(item.upload_id)
    if item.folder_id is None or item.uid is None or item.part_id is None:
        raise InvalidInput("Give uploadId, or folderId, uid and partId.", field=field)
    ref = _ref(RefIn(item.folder_id, item.uid), field)
    assert ref is not None
    return PartRef(ref.folder_id, ref.uid, item.part_id)


def _composition(data: ComposeIn) -> Composition:
    return Composition(
        to=tuple(data.to),
        cc=tuple(data.cc),
        bcc=tuple(data.bcc),
        subject=data.subject,
        html=data.html,
        text=data.text,
        attachments=tuple(_attachment(a, i) for i, a in enumerate(data.attachments)),
        reply_to=_ref(data.reply_to, "replyTo"),
        forward_of=_ref(data.forward_of, "forwardOf"),
        draft=_ref(data.draft, "draft"),
    )


def _mailbox_id(value: int) -> int:
    """Ids out of any table's range name nothing, like ids that do not exist."""
    if not 0 < value < MAX_ID:
        raise NotFound("No such mailbox.")
    return value


def _send_out(result: SendResult) -> SendOut:
    outbox = RefOut(result.outbox.folder_id, result.outbox.uid) if result.outbox else None
    return SendOut(result.outbound_id, result.status, result.send_at, outbox)


async def _read_file(request: Request[Any, Any, Any], limit: int) -> tuple[str, str, bytes]:
    """The one `file` field of a multipart/form-data body (RFC 7578), streamed and bounded:
    more than `limit` bytes of it is MessageTooLarge, whatever the body announced."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get("boundary")
    if content_type != "multipart/form-data" or not boundary:
        raise InvalidInput(
            "Send the file as multipart/form-data with one field named file.", field="file"
        )
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit + FORM_OVERHEAD:
        raise MessageTooLarge(
            f"The file is larger than the attachment limit of {limit} bytes.", field="file"
        )
    found: MultipartSegment | None = None
    reading = False
    content = bytearray()
    other = 0
    try:
        with PushMultipartParser(boundary, max_segment_count=20) as parser:
            async for chunk in request.stream():
                for event in parser.parse(chunk):
                    if isinstance(event, MultipartSegment):
                        if event.name == "file" and found is not None:
                            raise InvalidInput("Upload one file at a time.", field="file")
                        reading = event.name == "file"
                        if reading:
                            found = event
                    elif event is None:
                        reading = False
                    elif reading:
                        content += event
                        if len(content) > limit:
                            raise MessageTooLarge(
                                f"The file is larger than the attachment limit of {limit} bytes.",
                                field="file",
                            )
                    else:
                        other += len(event)
                        if other > FORM_OVERHEAD:
                            raise InvalidInput("The form holds too much besides the file.")
    except ParserError as error:
        raise InvalidInput(f"The upload is not valid multipart/form-data: {error}.") from None
    if found is None:
        raise InvalidInput("The form has no field named file.", field="file")
    return found.filename or "", found.content_type or "", bytes(content)


class ComposeController(Controller):
    path = "/mail"
    tags = ("Mail",)

    @post(
        "/{mailbox_id:int}/uploads",
        operation_id="appUploadAttachment",
        summary="Upload a file to attach",
        status_code=201,
        request_max_body_size=None,
    )
    async def upload(
        self,
        request: Request[Any, Any, Any],
        viewer: Injected[Viewer],
        compose: Injected[WebmailCompose],
        mailbox_id: FromPath[int],
    ) -> UploadOut:
        """multipart/form-data with one field `file`; kept a day for this user and mailbox.
        A file over the attachment limit (from the message size setting) is 413."""
        await compose.mailbox(viewer, _mailbox_id(mailbox_id))
        filename, content_type, content = await _read_file(request, compose.upload_limit)
        upload = await compose.upload(viewer, mailbox_id, filename, content_type, content)
        return UploadOut(upload.id, upload.filename, upload.content_type, upload.size)

    @put(
        "/{mailbox_id:int}/drafts",
        operation_id="appSaveDraft",
        summary="Save a draft in Drafts",
        status_code=200,
    )
    async def save_draft(
        self,
        viewer: Injected[Viewer],
        compose: Injected[WebmailCompose],
        mailbox_id: FromPath[int],
        data: JSONBody[ComposeIn],
    ) -> RefOut:
        """Files the draft in Drafts (\\Draft \\Seen), replacing `draft` in place: the new one is
        appended and the old one expunged in one step. 409 when `draft` is gone meanwhile."""
        ref = await compose.save_draft(viewer, _mailbox_id(mailbox_id), _composition(data))
        return RefOut(ref.folder_id, ref.uid)

    @post(
        "/{mailbox_id:int}/send",
        operation_id="appSendMail",
        summary="Send (now, after an undo window, or at a time)",
        status_code=202,
    )
    async def send(
        self,
        viewer: Injected[Viewer],
        compose: Injected[WebmailCompose],
        mailbox_id: FromPath[int],
        data: JSONBody[SendIn],
    ) -> SendOut:
        """Sends through the same path as /v1/send (quotas, suppressions, DKIM). With
        `scheduledAt` (ISO 8601 with a zone) or `undoSeconds` (up to 30) the message waits in
        Outbox, where it can be cancelled or rescheduled until the queue takes it. The plain-text
        part is made from `html` when `text` is null. `draft` is removed."""
        result = await compose.send(
            viewer,
            _mailbox_id(mailbox_id),
            _composition(data),
            scheduled_at=data.scheduled_at,
            undo_seconds=data.undo_seconds,
        )
        return _send_out(result)

    @post(
        "/{mailbox_id:int}/outbox/{uid:int}/cancel",
        operation_id="appCancelOutbox",
        summary="Cancel a message waiting in Outbox (undo send)",
        status_code=200,
    )
    async def cancel(
        self,
        viewer: Injected[Viewer],
        compose: Injected[WebmailCompose],
        mailbox_id: FromPath[int],
        uid: FromPath[int],
    ) -> CancelOut:
        """Back to Drafts; 409 when the queue has already taken it."""
        ref = await compose.cancel(viewer, _mailbox_id(mailbox_id), _uid(uid))
        return CancelOut(RefOut(ref.folder_id, ref.uid))

    @post(
        "/{mailbox_id:int}/outbox/{uid:int}/reschedule",
        operation_id="appRescheduleOutbox",
        summary="Move the time of a message waiting in Outbox",
        status_code=200,
    )
    async def reschedule(
        self,
        viewer: Injected[Viewer],
        compose: Injected[WebmailCompose],
        mailbox_id: FromPath[int],
        uid: FromPath[int],
        data: JSONBody[RescheduleIn],
    ) -> SendOut:
        result = await compose.reschedule(
            viewer, _mailbox_id(mailbox_id), _uid(uid), data.scheduled_at
        )
        return _send_out(result)

    @get(
        "/{mailbox_id:int}/messages/{folder_id:int}/{uid:int}/delivery",
        operation_id="appDeliveryStatus",
        summary="Delivery status of a sent message, per recipient",
    )
    async def delivery(
        self,
        viewer: Injected[Viewer],
        compose: Injected[WebmailCompose],
        mailbox_id: FromPath[int],
        folder_id: FromPath[int],
        uid: FromPath[int],
    ) -> DeliveryOut:
        """For a message in Sent or Outbox sent from here; 404 otherwise."""
        report = await compose.delivery(viewer, _mailbox_id(mailbox_id), _uid(folder_id), _uid(uid))
        return DeliveryOut(
            [RecipientOut(r.address, r.status, r.detail, r.updated_at) for r in report.recipients],
            [OpenOut(at) for at in report.opens],
        )

    @get(
        "/{mailbox_id:int}/contacts",
        operation_id="appContacts",
        summary="Correspondents matching a prefix, for address autocomplete",
    )
    async def contacts(
        self,
        viewer: Injected[Viewer],
        compose: Injected[WebmailCompose],
        mailbox_id: FromPath[int],
        q: FromQuery[str] = "",
        limit: FromQuery[int] = 10,
    ) -> list[AddressOut]:
        found = await compose.contacts(viewer, _mailbox_id(mailbox_id), q, limit)
        return [AddressOut(c.name, c.address) for c in found]


def _uid(value: int) -> int:
    if not 0 < value < MAX_ID:
        raise NotFound("No such message.")
    return value
