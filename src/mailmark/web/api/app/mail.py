"""/api/mail: the webmail's read side. Thin handlers over `WebmailService`; every route of a
mailbox answers 404 for a mailbox the viewer may not use, exactly as for one that does not exist.

The message body and part routes answer with their own Content-Security-Policy (a sandbox with
no script, framable by our own pages only) and `X-Frame-Options: SAMEORIGIN`; the app-wide
security headers add theirs only where a response has none, so these win for these routes alone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Response, delete, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody, Parameter
from litestar.response import Stream

from mailmark.core.access import Viewer
from mailmark.core.errors import InvalidInput, NotFound
from mailmark.core.webmail import (
    DEFAULT_PAGE,
    MAX_ACTION_MESSAGES,
    MAX_QUERY,
    Action,
    ConversationPage,
    FolderCount,
    MessageRef,
    WebmailService,
)
from mailmark.web.api.v1.auth import Injected
from mailmark.web.image_proxy import ImageProxy

# The body's sandbox keeps its origin so the page can measure it and size the frame to it: no
# script can use that, as the sandbox leaves scripts off and no script source is allowed. Links
# (target=_blank after sanitising) open as popups outside the sandbox.
BODY_POLICY = (
    "sandbox allow-same-origin allow-popups allow-popups-to-escape-sandbox; default-src 'none'; "
    "img-src 'self' data:; style-src 'unsafe-inline'; frame-ancestors 'self'"
)
PART_POLICY = "sandbox; default-src 'none'; img-src 'self' data:; frame-ancestors 'self'"
# Raw messages and proxied images: nothing in them may run or load anything.
CLOSED_POLICY = "sandbox; default-src 'none'"


def sandboxed(policy: str, cache: str = "no-store") -> dict[str, str]:
    """The headers of a response holding mail content: its own policy, never sniffed."""
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": cache,
    }


# The body and parts are shown in frames of our own pages.
FRAMED_HEADERS = {
    **sandboxed(BODY_POLICY),
    "X-Frame-Options": "SAMEORIGIN",
    "Referrer-Policy": "no-referrer",
}
# Shown in the browser when asked inline; anything else is always a download.
INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"})
MAX_URL = 4096

MailboxId = Annotated[int, msgspec.Meta(ge=1)]


class AddressOut(msgspec.Struct, rename="camel"):
    name: str
    address: str


class RefOut(msgspec.Struct, rename="camel"):
    folder_id: int
    uid: int


class MailboxSummaryOut(msgspec.Struct, rename="camel"):
    id: int
    address: str
    display_name: str
    unread: int


class FolderOut(msgspec.Struct, rename="camel"):
    id: int
    name: str
    role: str | None
    total: int
    unread: int
    subscribed: bool


class ConversationOut(msgspec.Struct, rename="camel"):
    thread_id: str
    subject: str
    snippet: str
    participants: list[AddressOut]
    count: int
    unread: bool
    starred: bool
    has_attachments: bool
    date: datetime
    latest: RefOut
    messages: list[RefOut]


class ConversationPageOut(msgspec.Struct, rename="camel"):
    items: list[ConversationOut]
    next_cursor: str | None
    total: int


class AttachmentOut(msgspec.Struct, rename="camel"):
    part_id: str
    filename: str
    content_type: str
    size: int
    inline: bool
    url: str


class AuthOut(msgspec.Struct, rename="camel"):
    spf: str
    dkim: str
    dmarc: str
    warning: str | None


class MessageOut(msgspec.Struct, rename="camel"):
    folder_id: int
    folder: str
    role: str | None
    uid: int
    message_id: str | None
    in_reply_to: str | None
    references: list[str]
    from_: AddressOut | None = msgspec.field(name="from")
    sender: AddressOut | None = None
    reply_to: list[AddressOut] = []
    to: list[AddressOut] = []
    cc: list[AddressOut] = []
    bcc: list[AddressOut] = []
    subject: str = ""
    date: datetime | None = None
    received_at: datetime | None = None
    flags: list[str] = []
    seen: bool = False
    starred: bool = False
    snippet: str = ""
    size: int = 0
    text: str | None = None
    has_html: bool = False
    html_url: str | None = None
    raw_url: str = ""
    attachments: list[AttachmentOut] = []
    remote_images: bool = False
    images_allowed: bool = False
    auth: AuthOut | None = None


class ThreadOut(msgspec.Struct, rename="camel"):
    thread_id: str
    subject: str
    messages: list[MessageOut]


class MovedOut(msgspec.Struct, rename="camel"):
    from_: RefOut = msgspec.field(name="from")
    to: RefOut = msgspec.field(name="to")


class ActionOut(msgspec.Struct, rename="camel"):
    moved: list[MovedOut]
    updated: int


class FolderNameIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=255)]


class RefIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    folder_id: Annotated[int, msgspec.Meta(ge=1)]
    uid: Annotated[int, msgspec.Meta(ge=1, le=2**32 - 1)]


class ActionIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    messages: Annotated[list[RefIn], msgspec.Meta(min_length=1, max_length=MAX_ACTION_MESSAGES)]
    action: Action
    folder_id: Annotated[int, msgspec.Meta(ge=1)] | None = None


class TrustIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    address: Annotated[str, msgspec.Meta(min_length=3, max_length=320)]


def _out(value: Any, kind: type[Any]) -> Any:
    return msgspec.convert(value, kind, from_attributes=True)


def page_out(page: ConversationPage) -> ConversationPageOut:
    out: ConversationPageOut = _out(page, ConversationPageOut)
    return out


def _folders_event(counts: list[FolderCount]) -> bytes:
    data = msgspec.json.encode(
        {"folders": [{"id": c.id, "total": c.total, "unread": c.unread} for c in counts]}
    )
    return b"event: folders\ndata: " + data + b"\n\n"


def _check_cursor(cursor: str | None) -> None:
    if cursor is not None and len(cursor) > 200:
        raise InvalidInput("The cursor is not one this list gave.", field="cursor")


class MailController(Controller):
    path = "/mail"
    tags = ("Mail",)

    @get("/mailboxes", operation_id="appMailMailboxes", summary="Mailboxes to read")
    async def list_mailboxes(
        self, viewer: Injected[Viewer], webmail: Injected[WebmailService]
    ) -> list[MailboxSummaryOut]:
        """The mailboxes the viewer may use, with their Inbox's unread count."""
        return [_out(m, MailboxSummaryOut) for m in await webmail.mailboxes(viewer)]

    @get("/{mb:int}/folders", operation_id="appMailFolders", summary="Folders of a mailbox")
    async def list_folders(
        self, viewer: Injected[Viewer], webmail: Injected[WebmailService], mb: FromPath[int]
    ) -> list[FolderOut]:
        """Special folders first (Inbox, Drafts, Sent, Outbox, Archive, Junk, Trash), then the
        user's by name; "/" separates levels."""
        return [_out(f, FolderOut) for f in await webmail.folders(viewer, mb)]

    @post("/{mb:int}/folders", operation_id="appMailCreateFolder", summary="Create a folder")
    async def create_folder(
        self,
        viewer: Injected[Viewer],
        webmail: Injected[WebmailService],
        mb: FromPath[int],
        data: JSONBody[FolderNameIn],
    ) -> FolderOut:
        result: FolderOut = _out(await webmail.create_folder(viewer, mb, data.name), FolderOut)
        return result

    @patch(
        "/{mb:int}/folders/{folder_id:int}",
        operation_id="appMailRenameFolder",
        summary="Rename a folder",
    )
    async def rename_folder(
        self,
        viewer: Injected[Viewer],
        webmail: Injected[WebmailService],
        mb: FromPath[int],
        folder_id: FromPath[int],
        data: JSONBody[FolderNameIn],
    ) -> FolderOut:
        """Special folders cannot be renamed (400)."""
        renamed = await webmail.rename_folder(viewer, mb, folder_id, data.name)
        result: FolderOut = _out(renamed, FolderOut)
        return result

    @delete(
        "/{mb:int}/folders/{folder_id:int}",
        operation_id="appMailDeleteFolder",
        summary="Delete a folder",
    )
    async def delete_folder(
        self,
        viewer: Injected[Viewer],
        webmail: Injected[WebmailService],
        mb: FromPath[int],
        folder_id: FromPath[int],
    ) -> None:
        await webmail.delete_folder(viewer, mb, folder_id)

    @post(
        "/{mb:int}/folders/{folder_id:int}/empty",
        operation_id="appMailEmptyFolder",
        summary="Empty Trash or Junk",
        status_code=204,
    )
    async def empty_folder(
        self,
        viewer: Injected[Viewer],
        webmail: Injected[WebmailService],
        mb: FromPath[int],
        folder_id: FromPath[int],
    ) -> None:
        """Deletes every message of Trash or Junk for good."""
        await webmail.empty(viewer, mb, folder_id)

    @get(
        "/{mb:int}/folders/{folder_id:int}/conversations",
        operation_id="appMailConversations",
        summary="Conversations of a folder",
    )
    async def conversations(
        self,
        viewer: Injected[Viewer],
        webmail: Injected[WebmailService],
        mb: FromPath[int],
        folder_id: FromPath[int],
        limit: FromQuery[int] = DEFAULT_PAGE,
        cursor: FromQuery[str | None] = None,
    ) -> ConversationPageOut:
        """Newest first, grouped by thread among the folder's messages; `nextCursor` pages on."""
        _check_cursor(cursor)
        return page_out(await webmail.conversations(viewer, mb, folder_id, limit, cursor))

    @get("/{mb:int}/search", operation_id="appMailSearch", summary="Search a mailbox")
    async def search(
        self,
        viewer: Injected[Viewer],
        webmail: Injected[WebmailService],
        mb: FromPath[int],
        q: FromQuery[str],
        limit: FromQuery[int] = DEFAULT_PAGE,
        cursor: FromQuery[str | None] = None,
    ) -> ConversationPageOut:
        """Operators from: to: subject: has:attachment is:unread|read|starred in:<folder>
        before:/after:YYYY-MM-DD, "phrases" and words; every folder but Trash and Junk unless
        in: names them."""
        _check_cursor(cursor)
        if len(q) > MAX_QUERY:
            raise InvalidInput(f"A search has at most {MAX_QUERY} characters.", field="q")
        return page_out(await webmail.search(viewer, mb, q, limit, cursor))

    @get("/{mb:int}/threads/{thread_id:str}", operation_id="appMailThread", summary="A thread")
    async def thread(
        self,
        viewer: Injected[Viewer],
        webmail: Injected[WebmailService],
        mb: FromPath[int],
        thread_id: FromPath[str],
        folder_id: Annotated[int | None, Parameter(query="folderId")] = None,
    ) -> ThreadOut:
        """The thread's messages oldest first, in every folder (Trash and Junk only when asked
        from there with `folderId`, or when the whole thread is there)."""
        result: ThreadOut = _out(await webmail.thread(viewer, mb, thread_id, folder_id), ThreadOut)
        return result

    @get(
        "/{mb:int}/messages/{folder_id:int}/{uid:int}",
        operation_id="appMailMessage",
        summary="A message",
    )
    async def message(
        self,
        viewer: Injected[Viewer],
        webmail: Injected[WebmailService],
        mb: FromPath[int],
        folder_id: FromPath[int],
        uid: FromPath[int],
    ) -> MessageOut:
        result: MessageOut = _out(await webmail.message(viewer, mb, folder_id, uid), MessageOut)
        return result

    @get(
        "/{mb:int}/messages/{folder_id:int}/{uid:int}/body",
        operation_id="appMailMessageBody",
        summary="A message's sanitised HTML",
    )
    async def body(
        self,
        viewer: Injected[Viewer],
        webmail: Injected[WebmailService],
        mb: FromPath[int],
        folder_id: FromPath[int],
        uid: FromPath[int],
        images: FromQuery[Literal[0, 1]] = 0,
    ) -> Response[str]:
        """For `<iframe sandbox>`: no script runs (CSP sandbox, no script source); remote
        images only with images=1, through the signed image proxy."""
        html = await webmail.body(viewer, mb, folder_id, uid, bool(images))
        return Response(html, media_type="text/html", headers=FRAMED_HEADERS)

    @get(
        "/{mb:int}/messages/{folder_id:int}/{uid:int}/raw",
        operation_id="appMailMessageRaw",
        summary="A message's original bytes",
    )
    async def raw(
        self,
        viewer: Injected[Viewer],
        webmail: Injected[WebmailService],
        mb: FromPath[int],
        folder_id: FromPath[int],
        uid: FromPath[int],
        download: FromQuery[Literal[0, 1]] = 0,
    ) -> Response[bytes]:
        """Exactly what IMAP's BODY[] gives: as text, or with download=1 as an .eml file."""
        data = await webmail.raw(viewer, mb, folder_id, uid)
        headers = sandboxed(CLOSED_POLICY)
        if download:
            headers["Content-Disposition"] = f'attachment; filename="message-{uid}.eml"'
            return Response(data, media_type="message/rfc822", headers=headers)
        return Response(data, media_type="text/plain", headers=headers)

    @get(
        "/{mb:int}/messages/{folder_id:int}/{uid:int}/parts/{part_id:str}",
        operation_id="appMailMessagePart",
        summary="An attachment or inline part",
    )
    async def part(
        self,
        viewer: Injected[Viewer],
        webmail: Injected[WebmailService],
        mb: FromPath[int],
        folder_id: FromPath[int],
        uid: FromPath[int],
        part_id: FromPath[str],
        inline: FromQuery[Literal[0, 1]] = 0,
    ) -> Response[bytes]:
        """The decoded part (`partId` is the IMAP part number, e.g. "2" or "1.2"). Shown inline
        only for PNG/JPEG/GIF/WebP images and PDF with inline=1; a download otherwise."""
        found = await webmail.part(viewer, mb, folder_id, uid, part_id[:40])
        shown = bool(inline) and found.content_type in INLINE_TYPES
        disposition = "inline" if shown else "attachment"
        filename = found.filename.replace('"', "_")
        headers = {
            **FRAMED_HEADERS,
            "Content-Security-Policy": PART_POLICY,
            "Content-Disposition": f'{disposition}; filename="{filename}"',
        }
        media_type = found.content_type if shown else "application/octet-stream"
        return Response(found.content, media_type=media_type, headers=headers)

    @post(
        "/{mb:int}/trusted-senders",
        operation_id="appMailTrustSender",
        summary="Always show images from a sender",
        status_code=204,
    )
    async def trust_sender(
        self,
        viewer: Injected[Viewer],
        webmail: Injected[WebmailService],
        mb: FromPath[int],
        data: JSONBody[TrustIn],
    ) -> None:
        await webmail.trust_sender(viewer, mb, data.address)

    @post(
        "/{mb:int}/actions",
        operation_id="appMailActions",
        summary="Mark, star, move or delete messages",
        status_code=200,
    )
    async def actions(
        self,
        viewer: Injected[Viewer],
        webmail: Injected[WebmailService],
        mb: FromPath[int],
        data: JSONBody[ActionIn],
    ) -> ActionOut:
        """Flags (\\Seen, \\Flagged; $Junk/$NotJunk) and IMAP MOVE semantics: IMAP clients see
        the change at once. `delete` is for good, from Trash or Junk only."""
        refs = [MessageRef(m.folder_id, m.uid) for m in data.messages]
        result = await webmail.act(viewer, mb, refs, data.action, data.folder_id)
        return ActionOut(
            [
                MovedOut(
                    RefOut(m.source.folder_id, m.source.uid), RefOut(m.dest.folder_id, m.dest.uid)
                )
                for m in result.moved
            ],
            result.updated,
        )

    @get("/{mb:int}/events", operation_id="appMailEvents", summary="Live folder counts (SSE)")
    async def events(
        self,
        viewer: Injected[Viewer],
        webmail: Injected[WebmailService],
        mb: FromPath[int],
    ) -> Stream:
        """`text/event-stream`: `event: folders` whenever the mailbox changes (the signals that
        wake IMAP IDLE), a ping comment every 15 s. At most 5 streams per user."""
        slot = webmail.stream_slot(viewer, mb)
        await slot.__aenter__()

        async def events() -> AsyncIterator[bytes]:
            try:
                yield b"retry: 3000\n\n"
                async for counts in webmail.watch(mb):
                    yield b": ping\n\n" if counts is None else _folders_event(counts)
            finally:
                await slot.__aexit__(None, None, None)

        return Stream(
            events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @get("/image", operation_id="appMailImage", summary="A remote image, through our proxy")
    async def image(
        self,
        webmail: Injected[WebmailService],
        image_proxy: Injected[ImageProxy],
        url: FromQuery[str],
        sig: FromQuery[str],
    ) -> Response[bytes]:
        """Only URLs the sanitiser rewrote (signed); never internal addresses; bounded size and
        time; raster images only; nothing of the reader's is forwarded."""
        if len(url) > MAX_URL or len(sig) > 100:
            raise NotFound("No such image.")
        webmail.images.verify(url, sig)
        found = await image_proxy.fetch(url)
        return Response(
            found.content,
            media_type=found.content_type,
            headers=sandboxed(CLOSED_POLICY, cache="private, max-age=600"),
        )
