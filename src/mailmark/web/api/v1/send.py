"""POST /v1/send: transactional (one email to every recipient) or campaign (one per recipient).

The route reads the body and handles the Idempotency-Key; every rule of the send is core's
(`CampaignExpansion`), whose one call queues the messages in one transaction together with the
key's record when one is given.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import msgspec
from litestar import Request, Response, post
from litestar.params import JSONBody

from mailmark.core.apikeys import ApiPrincipal
from mailmark.core.campaigns import (
    AttachmentRequest,
    CampaignExpansion,
    SendingDomain,
    SendRequest,
    SendType,
    Sent,
)
from mailmark.core.errors import Conflict
from mailmark.core.idempotency import FIELD, IdempotencyService, check_key, fingerprint
from mailmark.web.api.v1.auth import Injected
from mailmark.web.api.v1.docs import samples

STATUS = 200

EXAMPLE_BODY = {
    "from": "hello@yourdomain.com",
    "to": ["recipient@example.com"],
    "subject": "Hello!",
    "html": "<p>Hello!</p><p>Sent via Mailmark API.</p>",
    "type": "transactional",
    "replyTo": "support@yourdomain.com",
    "tags": ["welcome"],
    "attachments": [
        {"filename": "invoice.pdf", "content": "JVBERi0xLjQK…", "contentType": "application/pdf"},
        {
            "filename": "logo.png",
            "content": "iVBORw0KGgo…",
            "contentType": "image/png",
            "contentId": "logo",
        },
    ],
}


class AttachmentIn(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    filename: str
    content: str  # base64
    content_type: str | None = None
    content_id: str | None = None


class SendIn(msgspec.Struct, rename="camel", kw_only=True, forbid_unknown_fields=True):
    subject: str
    to: str | list[str] | None = None
    from_: str | None = msgspec.field(default=None, name="from")
    html: str | None = None
    text: str | None = None
    cc: str | list[str] | None = None
    bcc: str | list[str] | None = None
    reply_to: str | None = None
    headers: dict[str, str] | None = None
    type: Literal["transactional", "campaign"] = "transactional"
    scheduled_at: int | None = None
    variables: dict[str, dict[str, str]] | None = None
    sender_group_id: str | None = None
    attachments: list[AttachmentIn] | None = None
    tags: list[str] | None = None
    track_opens: bool | None = None
    track_clicks: bool | None = None


def _as_list(value: str | list[str] | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    return (value,) if isinstance(value, str) else tuple(value)


def _request(data: SendIn) -> SendRequest:
    return SendRequest(
        subject=data.subject,
        from_address=data.from_,
        to=_as_list(data.to) or (),
        cc=_as_list(data.cc),
        bcc=_as_list(data.bcc),
        text=data.text,
        html=data.html,
        reply_to=data.reply_to,
        headers=data.headers or {},
        type=SendType(data.type),
        variables=data.variables,
        sender_group_id=data.sender_group_id,
        scheduled_at_ms=data.scheduled_at,
        attachments=tuple(
            AttachmentRequest(a.filename, a.content, a.content_type, a.content_id)
            for a in data.attachments or ()
        ),
        tags=tuple(data.tags or ()),
        track_opens=data.track_opens,
        track_clicks=data.track_clicks,
    )


@post(
    "/send",
    operation_id="send",
    summary="Send an email or a campaign",
    tags=["Send"],
    status_code=STATUS,
    operation_class=samples(
        "POST",
        "/v1/send",
        body=EXAMPLE_BODY,
        response={"messageId": "5f1c…@yourdomain.com", "status": "queued"},
        sdk=(
            "await client.send({\n  from: 'hello@yourdomain.com',\n  to: 'recipient@example.com',"
            "\n  subject: 'Hello!',\n  html: '<p>Hello!</p><img src=\"cid:logo\">',"
            "\n  tags: ['welcome'],\n  attachments: [\n    { filename: 'invoice.pdf', path: './invoice.pdf' },"
            "\n    { filename: 'logo.png', content: logoBytes, contentId: 'logo' },\n  ],\n});"
        ),
    ),
)
async def send(
    request: Request[Any, Any, Any],
    principal: Injected[ApiPrincipal],
    campaigns: Injected[CampaignExpansion],
    idempotency: Injected[IdempotencyService],
    data: JSONBody[SendIn],
) -> Response[Any]:
    """Send now, or at `scheduledAt` (unix ms, in the future). `type: "transactional"` (default)
    sends one email to every recipient; `type: "campaign"` one individually addressed and tracked
    email per recipient under a shared `batchId`, merge tags such as `{{firstName}}` filled from
    `variables[recipient]`, taking turns among the mailboxes of `senderGroupId` when given (then
    `to` may be left out to send to the whole group, up to 10,000 addresses, queued 1,000 at a
    time). A campaign recipient who is suppressed or unsubscribed is left out and listed in
    `skipped` (`{email, reason}`). Campaign emails carry a one-click unsubscribe link (RFC 8058)
    and are tracked: `trackOpens` and `trackClicks` (both default true) turn off the pixel and
    the rewriting of links to signed redirects.

    `attachments` are `{filename, content (base64), contentType?, contentId?}`: one with a
    `contentId` is an inline image the HTML shows as `cid:<contentId>`. `tags` (up to 10, each
    1-64 of `A-Za-z0-9_.:-`) are kept with the email and filter `GET /v1/emails?tag=`. A field
    this API does not know is refused (422, `unknown_field`), never ignored.

    With an `Idempotency-Key` header, a retry with the same key and body gets the first answer
    and sends nothing; the same key with another body is refused (422)."""
    key = request.headers.get("idempotency-key")
    request_hash = ""
    if key is not None:
        check_key(key)
        request_hash = fingerprint(await request.body())
        stored = await idempotency.replay(principal.domain_id, key, request_hash)
        if stored is not None:
            return _replayed(stored.body, stored.status_code)
    recorder = None
    if key is not None:
        recorder = idempotency.recorder(principal.domain_id, key, request_hash, STATUS, _answer)
    domain = SendingDomain(principal.domain_id, principal.domain_name)
    try:
        sent = await campaigns.send(_request(data), domain, before_commit=recorder)
    except Conflict as error:
        if key is None or error.field != FIELD:
            raise
        # A concurrent request with the same key committed first: answer as it did.
        stored = await idempotency.replay(principal.domain_id, key, request_hash)
        if stored is None:
            raise
        return _replayed(stored.body, stored.status_code)
    return Response(_answer(sent), status_code=STATUS)


def _answer(sent: Sent) -> dict[str, object]:
    if sent.batch_id is None:
        return {"messageId": sent.submissions[0].message_id, "status": "queued"}
    return {
        "messageIds": [s.message_id for s in sent.submissions],
        "batchId": sent.batch_id,
        "status": "queued",
        "skipped": [{"email": s.email, "reason": s.reason} for s in sent.skipped],
    }


def _replayed(body: Mapping[str, object], status: int) -> Response[Any]:
    return Response(dict(body), status_code=status, headers={"Idempotent-Replayed": "true"})
