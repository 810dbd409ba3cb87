"""`Mailmark` (sync) and `AsyncMailmark` (async): the same methods over one request description.

Each API call is described once, as a `_Call` (method, path, body, how to read the answer); the
two clients only differ in how they run it on httpx.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Generic, Self, TypeVar
from urllib.parse import quote

import httpx

from mailmark_sdk.errors import APIConnectionError, MailmarkError, error_from_response
from mailmark_sdk.types import (
    Alias,
    Attachment,
    Campaign,
    CampaignPage,
    CampaignRecipientPage,
    CampaignSendResult,
    CancelResult,
    Contact,
    ContactImport,
    ContactList,
    ContactPage,
    Email,
    EmailDetail,
    EmailPage,
    Mailbox,
    SenderGroup,
    SendResult,
    SendType,
    SuppressionPage,
    Webhook,
    send_result_from_json,
)

DEFAULT_BASE_URL = "https://api.mailmark.dev"
DEFAULT_TIMEOUT = 30.0
VERSION = "0.1.0"

T = TypeVar("T")

#: Sender mailboxes of a group: addresses (a list or a comma-separated string) or ``"all"``.
SenderMailboxes = Sequence[str] | str


@dataclass(frozen=True)
class _Call(Generic[T]):
    method: str
    path: str
    read: Callable[[Any], T]
    body: dict[str, Any] | None = None
    params: dict[str, str | int] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    #: A raw request body (a CSV upload) instead of a JSON `body`.
    content: bytes | None = None
    #: The answer is text (a CSV download), not JSON.
    text: bool = False


def _segment(value: str) -> str:
    """A path segment; `@` stays as is (RFC 3986 §3.3 allows it in a segment)."""
    if not value:
        raise ValueError("an empty id or address")
    return quote(value, safe="@")


def _dict(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise MailmarkError("unexpected response body", status=200, code="bad_response", body=data)
    return data


def _list(data: Any) -> list[dict[str, Any]]:
    if not isinstance(data, list):
        raise MailmarkError("unexpected response body", status=200, code="bad_response", body=data)
    return [_dict(item) for item in data]


def _deleted(data: Any) -> bool:
    return _dict(data).get("deleted") is True


def _without_none(**fields: Any) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}


def _addresses(value: str | Sequence[str] | None) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def _unix_ms(when: datetime | int) -> int:
    """A time as the API takes it: unix milliseconds, from an aware datetime or as given."""
    if isinstance(when, int):
        return when
    if when.tzinfo is None:
        raise ValueError("scheduled_at must be timezone-aware")
    return int(when.timestamp() * 1000)


def _mailboxes_json(mailboxes: SenderMailboxes | None) -> list[str] | str | None:
    if mailboxes is None or isinstance(mailboxes, str):
        return mailboxes
    return list(mailboxes)


def _contact_params(
    *,
    status: str | None = None,
    tag: str | None = None,
    field: tuple[str, str] | None = None,
    suppressed: bool | None = None,
    list_id: str | None = None,
    cursor: str | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    return _without_none(
        status=status,
        tag=tag,
        field=f"{field[0]}={field[1]}" if field is not None else None,
        suppressed=("true" if suppressed else "false") if suppressed is not None else None,
        listId=list_id,
        cursor=cursor,
        limit=limit,
    )


def _contact_body(**fields: Any) -> dict[str, Any]:
    names = {"first_name": "firstName", "last_name": "lastName"}
    return {
        names.get(name, name): list(value) if name == "tags" else value
        for name, value in fields.items()
        if value is not None
    }


class _Calls:
    """The /v1 API, call by call."""

    @staticmethod
    def send(
        *,
        from_: str,
        to: str | Sequence[str],
        subject: str,
        html: str | None,
        text: str | None,
        type: SendType | None,
        scheduled_at: datetime | int | None,
        variables: Mapping[str, Mapping[str, str]] | None,
        cc: str | Sequence[str] | None,
        bcc: str | Sequence[str] | None,
        reply_to: str | None,
        headers: Mapping[str, str] | None,
        sender_group_id: str | None,
        attachments: Sequence[Attachment] | None,
        tags: Sequence[str] | None,
        idempotency_key: str | None,
        track_opens: bool | None = None,
        track_clicks: bool | None = None,
    ) -> _Call[SendResult | CampaignSendResult]:
        if scheduled_at is not None:
            scheduled_at = _unix_ms(scheduled_at)
        body = _without_none(
            html=html,
            text=text,
            type=type,
            scheduledAt=scheduled_at,
            variables={address: dict(values) for address, values in variables.items()}
            if variables is not None
            else None,
            cc=_addresses(cc),
            bcc=_addresses(bcc),
            replyTo=reply_to,
            headers=dict(headers) if headers is not None else None,
            senderGroupId=sender_group_id,
            attachments=[a.to_json() for a in attachments] if attachments is not None else None,
            tags=list(tags) if tags is not None else None,
            trackOpens=track_opens,
            trackClicks=track_clicks,
        )
        body = {
            "from": from_,
            "to": [to] if isinstance(to, str) else list(to),
            "subject": subject,
        } | body
        headers = {} if idempotency_key is None else {"Idempotency-Key": idempotency_key}
        return _Call(
            "POST",
            "/v1/send",
            lambda data: send_result_from_json(_dict(data)),
            body,
            headers=headers,
        )

    @staticmethod
    def list_mailboxes() -> _Call[list[Mailbox]]:
        return _Call(
            "GET", "/v1/mailboxes", lambda data: [Mailbox.from_json(m) for m in _list(data)]
        )

    @staticmethod
    def create_mailbox(address: str, display_name: str | None) -> _Call[Mailbox]:
        body = _without_none(address=address, displayName=display_name)
        return _Call("POST", "/v1/mailboxes", lambda data: Mailbox.from_json(_dict(data)), body)

    @staticmethod
    def update_mailbox(
        address: str,
        display_name: str | None,
        signature: str | None,
        signature_format: str | None,
        password: str | None,
    ) -> _Call[Mailbox]:
        body = _without_none(
            displayName=display_name,
            signature=signature,
            signatureFormat=signature_format,
            password=password,
        )
        return _Call(
            "PATCH",
            f"/v1/mailboxes/{_segment(address)}",
            lambda data: Mailbox.from_json(_dict(data)),
            body,
        )

    @staticmethod
    def delete_mailbox(address: str) -> _Call[bool]:
        return _Call("DELETE", f"/v1/mailboxes/{_segment(address)}", _deleted)

    @staticmethod
    def list_aliases() -> _Call[list[Alias]]:
        return _Call("GET", "/v1/aliases", lambda data: [Alias.from_json(a) for a in _list(data)])

    @staticmethod
    def create_alias(address: str, targets: Sequence[str]) -> _Call[Alias]:
        body = {"address": address, "targets": list(targets)}
        return _Call("POST", "/v1/aliases", lambda data: Alias.from_json(_dict(data)), body)

    @staticmethod
    def delete_alias(address: str) -> _Call[bool]:
        return _Call("DELETE", f"/v1/aliases/{_segment(address)}", _deleted)

    @staticmethod
    def list_sender_groups() -> _Call[list[SenderGroup]]:
        return _Call(
            "GET", "/v1/sender-groups", lambda data: [SenderGroup.from_json(g) for g in _list(data)]
        )

    @staticmethod
    def create_sender_group(
        name: str, mailboxes: SenderMailboxes | None, emails: Sequence[str] | None
    ) -> _Call[SenderGroup]:
        body = _without_none(
            name=name,
            mailboxes=_mailboxes_json(mailboxes),
            emails=list(emails) if emails is not None else None,
        )
        return _Call(
            "POST", "/v1/sender-groups", lambda data: SenderGroup.from_json(_dict(data)), body
        )

    @staticmethod
    def update_sender_group(
        group_id: str,
        *,
        name: str | None,
        add_emails: Sequence[str] | None,
        remove_emails: Sequence[str] | None,
        emails: Sequence[str] | None,
        mailboxes: SenderMailboxes | None,
    ) -> _Call[SenderGroup]:
        body = _without_none(
            name=name,
            addEmails=list(add_emails) if add_emails is not None else None,
            removeEmails=list(remove_emails) if remove_emails is not None else None,
            emails=list(emails) if emails is not None else None,
            mailboxes=_mailboxes_json(mailboxes),
        )
        return _Call(
            "PATCH",
            f"/v1/sender-groups/{_segment(group_id)}",
            lambda data: SenderGroup.from_json(_dict(data)),
            body,
        )

    @staticmethod
    def delete_sender_group(group_id: str) -> _Call[bool]:
        return _Call("DELETE", f"/v1/sender-groups/{_segment(group_id)}", _deleted)

    @staticmethod
    def list_emails(
        *,
        status: str | None,
        from_: str | None,
        batch_id: str | None,
        tag: str | None,
        cursor: str | None,
        limit: int | None,
    ) -> _Call[EmailPage]:
        params = _without_none(status=status, batchId=batch_id, tag=tag, cursor=cursor, limit=limit)
        if from_ is not None:
            params["from"] = from_
        return _Call(
            "GET", "/v1/emails", lambda data: EmailPage.from_json(_dict(data)), params=params
        )

    @staticmethod
    def get_email(email_id: str) -> _Call[EmailDetail]:
        return _Call(
            "GET",
            f"/v1/emails/{_segment(email_id)}",
            lambda data: EmailDetail.from_json(_dict(data)),
        )

    @staticmethod
    def list_suppressions(cursor: str | None, limit: int | None) -> _Call[SuppressionPage]:
        params = _without_none(cursor=cursor, limit=limit)
        return _Call(
            "GET",
            "/v1/suppressions",
            lambda data: SuppressionPage.from_json(_dict(data)),
            params=params,
        )

    @staticmethod
    def delete_suppression(address: str) -> _Call[bool]:
        return _Call("DELETE", f"/v1/suppressions/{_segment(address)}", _deleted)

    @staticmethod
    def list_contacts(filters: dict[str, Any]) -> _Call[ContactPage]:
        return _Call(
            "GET",
            "/v1/contacts",
            lambda data: ContactPage.from_json(_dict(data)),
            params=_contact_params(**filters),
        )

    @staticmethod
    def create_contact(body: dict[str, Any]) -> _Call[Contact]:
        return _Call("POST", "/v1/contacts", lambda d: Contact.from_json(_dict(d)), body=body)

    @staticmethod
    def get_contact(contact_id: str) -> _Call[Contact]:
        path = f"/v1/contacts/{_segment(contact_id)}"
        return _Call("GET", path, lambda d: Contact.from_json(_dict(d)))

    @staticmethod
    def update_contact(contact_id: str, body: dict[str, Any]) -> _Call[Contact]:
        path = f"/v1/contacts/{_segment(contact_id)}"
        return _Call("PATCH", path, lambda d: Contact.from_json(_dict(d)), body=body)

    @staticmethod
    def delete_contact(contact_id: str) -> _Call[bool]:
        return _Call("DELETE", f"/v1/contacts/{_segment(contact_id)}", _deleted)

    @staticmethod
    def import_contacts(
        csv: bytes | str,
        mapping: Mapping[str, str] | None,
        on_duplicate: str | None,
        list_id: str | None,
    ) -> _Call[ContactImport]:
        params = _without_none(
            mapping=json.dumps(dict(mapping)) if mapping is not None else None,
            onDuplicate=on_duplicate,
            listId=list_id,
        )
        return _Call(
            "POST",
            "/v1/contacts/import",
            lambda d: ContactImport.from_json(_dict(d)),
            params=params,
            headers={"Content-Type": "text/csv"},
            content=csv.encode() if isinstance(csv, str) else csv,
        )

    @staticmethod
    def get_contact_import(import_id: str) -> _Call[ContactImport]:
        path = f"/v1/contacts/import/{_segment(import_id)}"
        return _Call("GET", path, lambda d: ContactImport.from_json(_dict(d)))

    @staticmethod
    def export_contacts(filters: dict[str, Any]) -> _Call[str]:
        params = _contact_params(**filters)
        return _Call("GET", "/v1/contacts/export", str, params=params, text=True)

    @staticmethod
    def list_lists() -> _Call[list[ContactList]]:
        return _Call("GET", "/v1/lists", lambda d: [ContactList.from_json(x) for x in _list(d)])

    @staticmethod
    def create_list(name: str, filter: Mapping[str, Any] | None) -> _Call[ContactList]:
        body = _without_none(name=name, filter=dict(filter) if filter is not None else None)
        return _Call("POST", "/v1/lists", lambda d: ContactList.from_json(_dict(d)), body=body)

    @staticmethod
    def get_list(list_id: str) -> _Call[ContactList]:
        path = f"/v1/lists/{_segment(list_id)}"
        return _Call("GET", path, lambda d: ContactList.from_json(_dict(d)))

    @staticmethod
    def update_list(
        list_id: str, name: str | None, filter: Mapping[str, Any] | None
    ) -> _Call[ContactList]:
        body = _without_none(name=name, filter=dict(filter) if filter is not None else None)
        path = f"/v1/lists/{_segment(list_id)}"
        return _Call("PATCH", path, lambda d: ContactList.from_json(_dict(d)), body=body)

    @staticmethod
    def delete_list(list_id: str) -> _Call[bool]:
        return _Call("DELETE", f"/v1/lists/{_segment(list_id)}", _deleted)

    @staticmethod
    def add_list_members(
        list_id: str, contact_ids: Sequence[str] | None, emails: Sequence[str] | None
    ) -> _Call[ContactList]:
        body = _without_none(
            contactIds=list(contact_ids) if contact_ids is not None else None,
            emails=list(emails) if emails is not None else None,
        )
        path = f"/v1/lists/{_segment(list_id)}/members"
        return _Call("POST", path, lambda d: ContactList.from_json(_dict(d)), body=body)

    @staticmethod
    def remove_list_member(list_id: str, contact_id: str) -> _Call[bool]:
        path = f"/v1/lists/{_segment(list_id)}/members/{_segment(contact_id)}"
        return _Call("DELETE", path, _deleted)

    @staticmethod
    def list_campaigns(cursor: str | None, limit: int | None) -> _Call[CampaignPage]:
        params = _without_none(cursor=cursor, limit=limit)
        return _Call(
            "GET", "/v1/campaigns", lambda d: CampaignPage.from_json(_dict(d)), params=params
        )

    @staticmethod
    def create_campaign(body: dict[str, Any]) -> _Call[Campaign]:
        return _Call("POST", "/v1/campaigns", lambda d: Campaign.from_json(_dict(d)), body=body)

    @staticmethod
    def get_campaign(campaign_id: str) -> _Call[Campaign]:
        path = f"/v1/campaigns/{_segment(campaign_id)}"
        return _Call("GET", path, lambda d: Campaign.from_json(_dict(d)))

    @staticmethod
    def update_campaign(campaign_id: str, body: dict[str, Any]) -> _Call[Campaign]:
        path = f"/v1/campaigns/{_segment(campaign_id)}"
        return _Call("PATCH", path, lambda d: Campaign.from_json(_dict(d)), body=body)

    @staticmethod
    def campaign_action(campaign_id: str, action: str) -> _Call[Campaign]:
        path = f"/v1/campaigns/{_segment(campaign_id)}/{action}"
        return _Call("POST", path, lambda d: Campaign.from_json(_dict(d)))

    @staticmethod
    def get_campaign_stats(campaign_id: str) -> _Call[dict[str, Any]]:
        return _Call("GET", f"/v1/campaigns/{_segment(campaign_id)}/stats", _dict)

    @staticmethod
    def list_campaign_recipients(
        campaign_id: str, state: str | None, cursor: str | None, limit: int | None
    ) -> _Call[CampaignRecipientPage]:
        params = _without_none(state=state, cursor=cursor, limit=limit)
        path = f"/v1/campaigns/{_segment(campaign_id)}/recipients"
        return _Call(
            "GET", path, lambda d: CampaignRecipientPage.from_json(_dict(d)), params=params
        )

    @staticmethod
    def preview_campaign(
        campaign_id: str, stage: int, contact_id: str | None
    ) -> _Call[dict[str, Any]]:
        body = _without_none(stage=stage, contactId=contact_id)
        return _Call("POST", f"/v1/campaigns/{_segment(campaign_id)}/preview", _dict, body=body)

    @staticmethod
    def test_send_campaign(
        campaign_id: str, to: str, stage: int, contact_id: str | None
    ) -> _Call[dict[str, Any]]:
        body = _without_none(to=to, stage=stage, contactId=contact_id)
        return _Call("POST", f"/v1/campaigns/{_segment(campaign_id)}/test-send", _dict, body=body)

    @staticmethod
    def list_webhooks() -> _Call[list[Webhook]]:
        return _Call(
            "GET", "/v1/webhooks", lambda data: [Webhook.from_json(w) for w in _list(data)]
        )

    @staticmethod
    def create_webhook(url: str, events: Sequence[str] | None) -> _Call[Webhook]:
        body = _without_none(url=url, events=list(events) if events is not None else None)
        return _Call("POST", "/v1/webhooks", lambda data: Webhook.from_json(_dict(data)), body)

    @staticmethod
    def delete_webhook(webhook_id: str) -> _Call[bool]:
        return _Call("DELETE", f"/v1/webhooks/{_segment(webhook_id)}", _deleted)

    @staticmethod
    def cancel_email(email_id: str) -> _Call[CancelResult]:
        return _Call(
            "POST",
            f"/v1/emails/{_segment(email_id)}/cancel",
            lambda data: CancelResult.from_json(_dict(data)),
        )

    @staticmethod
    def reschedule_email(email_id: str, scheduled_at: datetime | int) -> _Call[Email]:
        return _Call(
            "PATCH",
            f"/v1/emails/{_segment(email_id)}",
            lambda data: Email.from_json(_dict(data)),
            {"scheduledAt": _unix_ms(scheduled_at)},
        )


def _headers(api_key: str) -> dict[str, str]:
    if not api_key or not api_key.strip():
        raise ValueError("an API key (dm_live_...) is required")
    return {
        "Authorization": f"Bearer {api_key.strip()}",
        "Accept": "application/json",
        "User-Agent": f"mailmark-sdk-python/{VERSION}",
    }


def _request(client: httpx.Client | httpx.AsyncClient, call: _Call[Any]) -> httpx.Request:
    return client.build_request(
        call.method,
        call.path,
        json=call.body,
        content=call.content,
        params=call.params or None,
        headers=call.headers,
    )


def _answer(call: _Call[T], response: httpx.Response) -> T:
    if call.text and response.is_success:
        return call.read(response.text)
    try:
        data: Any = response.json() if response.content else None
    except json.JSONDecodeError:
        data = response.text
    if not response.is_success:
        raise error_from_response(response.status_code, data, response.headers)
    return call.read(data)


def _connection_error(call: _Call[Any], exc: httpx.HTTPError) -> APIConnectionError:
    timed_out = isinstance(exc, httpx.TimeoutException)
    return APIConnectionError(
        f"{call.method} {call.path}: {'no response in time' if timed_out else exc}",
        status=0,
        code="timeout" if timed_out else "connection_failed",
    )


class Mailmark:
    """A synchronous client for one API key (one domain).

    ``Mailmark(api_key, base_url="http://127.0.0.1:8025")`` for a self-hosted server. Use it as a
    context manager, or call `close()`, to release its connections."""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = DEFAULT_TIMEOUT,
        http_client: httpx.Client | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = http_client or httpx.Client(timeout=timeout)
        self._http.base_url = httpx.URL(self.base_url)
        self._http.headers.update(_headers(api_key))

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _run(self, call: _Call[T]) -> T:
        try:
            response = self._http.send(_request(self._http, call))
        except httpx.HTTPError as exc:
            raise _connection_error(call, exc) from exc
        return _answer(call, response)

    def send(
        self,
        *,
        from_: str,
        to: str | Sequence[str],
        subject: str,
        html: str | None = None,
        text: str | None = None,
        type: SendType | None = None,
        scheduled_at: datetime | int | None = None,
        variables: Mapping[str, Mapping[str, str]] | None = None,
        cc: str | Sequence[str] | None = None,
        bcc: str | Sequence[str] | None = None,
        reply_to: str | None = None,
        headers: Mapping[str, str] | None = None,
        sender_group_id: str | None = None,
        attachments: Sequence[Attachment] | None = None,
        tags: Sequence[str] | None = None,
        idempotency_key: str | None = None,
        track_opens: bool | None = None,
        track_clicks: bool | None = None,
    ) -> SendResult | CampaignSendResult:
        """Send (or schedule, with `scheduled_at` as an aware datetime or unix ms) an email.

        ``type="campaign"`` sends one individually addressed message per recipient and returns a
        `CampaignSendResult`; otherwise one message goes to every recipient (`SendResult`).
        `attachments` are `Attachment`s (bytes or a path); `tags` label the email for
        ``list_emails(tag=...)``. A campaign's suppressed or unsubscribed recipients are left
        out and listed in its result's `skipped`; `track_opens`/`track_clicks` (campaigns only)
        turn its tracking off with False."""
        return self._run(
            _Calls.send(
                from_=from_,
                to=to,
                subject=subject,
                html=html,
                text=text,
                type=type,
                scheduled_at=scheduled_at,
                variables=variables,
                cc=cc,
                bcc=bcc,
                reply_to=reply_to,
                headers=headers,
                sender_group_id=sender_group_id,
                attachments=attachments,
                tags=tags,
                idempotency_key=idempotency_key,
                track_opens=track_opens,
                track_clicks=track_clicks,
            )
        )

    def list_mailboxes(self) -> list[Mailbox]:
        return self._run(_Calls.list_mailboxes())

    def create_mailbox(self, address: str, display_name: str | None = None) -> Mailbox:
        """Create a mailbox; `address` is the local part. ConflictError if it exists."""
        return self._run(_Calls.create_mailbox(address, display_name))

    def update_mailbox(
        self,
        address: str,
        *,
        display_name: str | None = None,
        signature: str | None = None,
        signature_format: str | None = None,
        password: str | None = None,
    ) -> Mailbox:
        """Change a mailbox's display name, signature or IMAP/SMTP password (only those given),
        by local part or full address."""
        return self._run(
            _Calls.update_mailbox(address, display_name, signature, signature_format, password)
        )

    def delete_mailbox(self, address: str) -> bool:
        """Delete a mailbox and all its emails, by local part or full address. Irreversible."""
        return self._run(_Calls.delete_mailbox(address))

    def list_aliases(self) -> list[Alias]:
        return self._run(_Calls.list_aliases())

    def create_alias(self, address: str, targets: Sequence[str]) -> Alias:
        """Create an alias (`address` is the local part) delivering to these mailboxes (local
        parts or full addresses). ConflictError if a mailbox or alias has that address."""
        return self._run(_Calls.create_alias(address, targets))

    def delete_alias(self, address: str) -> bool:
        """Delete an alias, by local part or full address; its mailboxes keep their mail."""
        return self._run(_Calls.delete_alias(address))

    def list_sender_groups(self) -> list[SenderGroup]:
        return self._run(_Calls.list_sender_groups())

    def create_sender_group(
        self,
        name: str,
        *,
        mailboxes: SenderMailboxes | None = None,
        emails: Sequence[str] | None = None,
    ) -> SenderGroup:
        return self._run(_Calls.create_sender_group(name, mailboxes, emails))

    def update_sender_group(
        self,
        group_id: str,
        *,
        name: str | None = None,
        add_emails: Sequence[str] | None = None,
        remove_emails: Sequence[str] | None = None,
        emails: Sequence[str] | None = None,
        mailboxes: SenderMailboxes | None = None,
    ) -> SenderGroup:
        return self._run(
            _Calls.update_sender_group(
                group_id,
                name=name,
                add_emails=add_emails,
                remove_emails=remove_emails,
                emails=emails,
                mailboxes=mailboxes,
            )
        )

    def delete_sender_group(self, group_id: str) -> bool:
        """Delete a sender group; its mailboxes are not affected."""
        return self._run(_Calls.delete_sender_group(group_id))

    def list_emails(
        self,
        *,
        status: str | None = None,
        from_: str | None = None,
        batch_id: str | None = None,
        tag: str | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> EmailPage:
        """One page of sent emails, newest first; pass `next_cursor` back for the next."""
        return self._run(
            _Calls.list_emails(
                status=status,
                from_=from_,
                batch_id=batch_id,
                tag=tag,
                cursor=cursor,
                limit=limit,
            )
        )

    def iter_emails(
        self,
        *,
        status: str | None = None,
        from_: str | None = None,
        batch_id: str | None = None,
        tag: str | None = None,
        limit: int | None = None,
    ) -> Iterator[Email]:
        """Every sent email matching the filters, newest first, fetching page after page."""
        cursor: str | None = None
        while True:
            page = self.list_emails(
                status=status,
                from_=from_,
                batch_id=batch_id,
                tag=tag,
                cursor=cursor,
                limit=limit,
            )
            yield from page.data
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def get_email(self, email_id: str) -> EmailDetail:
        """One sent email (by `id` or `message_id`) with its recipients and event timeline."""
        return self._run(_Calls.get_email(email_id))

    def list_suppressions(
        self, *, cursor: str | None = None, limit: int | None = None
    ) -> SuppressionPage:
        """Addresses mail is no longer sent to (hard bounces, complaints), oldest first."""
        return self._run(_Calls.list_suppressions(cursor, limit))

    def delete_suppression(self, address: str) -> bool:
        """Mail a suppressed address again; NotFoundError when it is not on the list."""
        return self._run(_Calls.delete_suppression(address))

    def list_contacts(
        self,
        *,
        status: str | None = None,
        tag: str | None = None,
        field: tuple[str, str] | None = None,
        suppressed: bool | None = None,
        list_id: str | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> ContactPage:
        """Contacts oldest first; `field` is (name, value); `list_id` a list or segment."""
        filters = {
            "status": status,
            "tag": tag,
            "field": field,
            "suppressed": suppressed,
            "list_id": list_id,
            "cursor": cursor,
            "limit": limit,
        }
        return self._run(_Calls.list_contacts(filters))

    def create_contact(
        self,
        email: str,
        *,
        first_name: str | None = None,
        last_name: str | None = None,
        company: str | None = None,
        fields: Mapping[str, Any] | None = None,
        tags: Sequence[str] | None = None,
        status: str | None = None,
    ) -> Contact:
        body = _contact_body(
            email=email,
            first_name=first_name,
            last_name=last_name,
            company=company,
            fields=dict(fields) if fields is not None else None,
            tags=tags,
            status=status,
        )
        return self._run(_Calls.create_contact(body))

    def get_contact(self, contact_id: str) -> Contact:
        return self._run(_Calls.get_contact(contact_id))

    def update_contact(
        self,
        contact_id: str,
        *,
        email: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        company: str | None = None,
        fields: Mapping[str, Any] | None = None,
        tags: Sequence[str] | None = None,
        status: str | None = None,
    ) -> Contact:
        """Change what is given; `fields` and `tags` replace the old ones."""
        body = _contact_body(
            email=email,
            first_name=first_name,
            last_name=last_name,
            company=company,
            fields=dict(fields) if fields is not None else None,
            tags=tags,
            status=status,
        )
        return self._run(_Calls.update_contact(contact_id, body))

    def delete_contact(self, contact_id: str) -> bool:
        return self._run(_Calls.delete_contact(contact_id))

    def import_contacts(
        self,
        csv: bytes | str,
        *,
        mapping: Mapping[str, str] | None = None,
        on_duplicate: str | None = None,
        list_id: str | None = None,
    ) -> ContactImport:
        """Start a CSV import (header row first); poll `get_contact_import` for progress.
        `mapping`: column header → "email", "first_name", "last_name", "company", "tags",
        "status", "field:<name>" or "" to leave the column out."""
        call = _Calls.import_contacts(csv, mapping, on_duplicate, list_id)
        return self._run(call)

    def get_contact_import(self, import_id: str) -> ContactImport:
        return self._run(_Calls.get_contact_import(import_id))

    def export_contacts(
        self,
        *,
        status: str | None = None,
        tag: str | None = None,
        field: tuple[str, str] | None = None,
        suppressed: bool | None = None,
        list_id: str | None = None,
    ) -> str:
        """The matching contacts as CSV text (an import file as is)."""
        filters = {
            "status": status,
            "tag": tag,
            "field": field,
            "suppressed": suppressed,
            "list_id": list_id,
        }
        return self._run(_Calls.export_contacts(filters))

    def list_lists(self) -> list[ContactList]:
        return self._run(_Calls.list_lists())

    def create_list(self, name: str, *, filter: Mapping[str, Any] | None = None) -> ContactList:
        """A list; with a `filter` a segment (status, tag, field {name, value}, suppressed)."""
        return self._run(_Calls.create_list(name, filter))

    def get_list(self, list_id: str) -> ContactList:
        return self._run(_Calls.get_list(list_id))

    def update_list(
        self, list_id: str, *, name: str | None = None, filter: Mapping[str, Any] | None = None
    ) -> ContactList:
        return self._run(_Calls.update_list(list_id, name, filter))

    def delete_list(self, list_id: str) -> bool:
        return self._run(_Calls.delete_list(list_id))

    def add_list_members(
        self,
        list_id: str,
        *,
        contact_ids: Sequence[str] | None = None,
        emails: Sequence[str] | None = None,
    ) -> ContactList:
        return self._run(_Calls.add_list_members(list_id, contact_ids, emails))

    def remove_list_member(self, list_id: str, contact_id: str) -> bool:
        return self._run(_Calls.remove_list_member(list_id, contact_id))

    def list_campaigns(
        self, *, cursor: str | None = None, limit: int | None = None
    ) -> CampaignPage:
        """The domain's campaigns, newest first."""
        return self._run(_Calls.list_campaigns(cursor, limit))

    def create_campaign(
        self,
        *,
        name: str,
        stages: Sequence[Mapping[str, Any]],
        from_address: str | None = None,
        sender_group_id: str | None = None,
        audience: Mapping[str, Any] | None = None,
        schedule: Mapping[str, Any] | None = None,
    ) -> Campaign:
        """A draft campaign from one mailbox (`from_address`) or a sender group."""
        body = _without_none(
            name=name,
            stages=[dict(stage) for stage in stages],
            senderGroupId=sender_group_id,
            audience=dict(audience) if audience is not None else None,
            schedule=dict(schedule) if schedule is not None else None,
        )
        if from_address is not None:
            body["from"] = from_address
        return self._run(_Calls.create_campaign(body))

    def get_campaign(self, campaign_id: str) -> Campaign:
        return self._run(_Calls.get_campaign(campaign_id))

    def update_campaign(
        self,
        campaign_id: str,
        *,
        name: str | None = None,
        stages: Sequence[Mapping[str, Any]] | None = None,
        from_address: str | None = None,
        sender_group_id: str | None = None,
        audience: Mapping[str, Any] | None = None,
        schedule: Mapping[str, Any] | None = None,
    ) -> Campaign:
        """While a draft or paused; fields left out stay."""
        body = _without_none(
            name=name,
            stages=[dict(stage) for stage in stages] if stages is not None else None,
            senderGroupId=sender_group_id,
            audience=dict(audience) if audience is not None else None,
            schedule=dict(schedule) if schedule is not None else None,
        )
        if from_address is not None:
            body["from"] = from_address
        return self._run(_Calls.update_campaign(campaign_id, body))

    def launch_campaign(self, campaign_id: str) -> Campaign:
        return self._run(_Calls.campaign_action(campaign_id, "launch"))

    def pause_campaign(self, campaign_id: str) -> Campaign:
        return self._run(_Calls.campaign_action(campaign_id, "pause"))

    def resume_campaign(self, campaign_id: str) -> Campaign:
        return self._run(_Calls.campaign_action(campaign_id, "resume"))

    def cancel_campaign(self, campaign_id: str) -> Campaign:
        return self._run(_Calls.campaign_action(campaign_id, "cancel"))

    def get_campaign_stats(self, campaign_id: str) -> dict[str, Any]:
        """Counts per campaign, stage and subject variant, as the API answers them."""
        return self._run(_Calls.get_campaign_stats(campaign_id))

    def list_campaign_recipients(
        self,
        campaign_id: str,
        *,
        state: str | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> CampaignRecipientPage:
        return self._run(_Calls.list_campaign_recipients(campaign_id, state, cursor, limit))

    def preview_campaign(
        self, campaign_id: str, *, stage: int = 1, contact_id: str | None = None
    ) -> dict[str, Any]:
        """The stage's subject, HTML and text as the contact would get them."""
        return self._run(_Calls.preview_campaign(campaign_id, stage, contact_id))

    def test_send_campaign(
        self, campaign_id: str, *, to: str, stage: int = 1, contact_id: str | None = None
    ) -> dict[str, Any]:
        """Send one stage to `to`, its subject starting "[Test] "."""
        return self._run(_Calls.test_send_campaign(campaign_id, to, stage, contact_id))

    def list_webhooks(self) -> list[Webhook]:
        return self._run(_Calls.list_webhooks())

    def create_webhook(self, url: str, *, events: Sequence[str] | None = None) -> Webhook:
        """Subscribe `url` to `events` (default: all); the answer's `secret` is shown only once."""
        return self._run(_Calls.create_webhook(url, events))

    def delete_webhook(self, webhook_id: str) -> bool:
        return self._run(_Calls.delete_webhook(webhook_id))

    def cancel_email(self, email_id: str) -> CancelResult:
        """Withdraw the recipients of a sent email (by `id` or `message_id`) still waiting for
        their first attempt; ConflictError when none is waiting any more."""
        return self._run(_Calls.cancel_email(email_id))

    def reschedule_email(self, email_id: str, scheduled_at: datetime | int) -> Email:
        """Move the first attempt of the recipients still waiting for it to `scheduled_at` (an
        aware datetime or unix ms); ConflictError when none is waiting any more."""
        return self._run(_Calls.reschedule_email(email_id, scheduled_at))


class AsyncMailmark:
    """The asynchronous client: the methods of `Mailmark`, awaited.

    ``async with AsyncMailmark(api_key, base_url=...) as client: await client.send(...)``"""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = DEFAULT_TIMEOUT,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = http_client or httpx.AsyncClient(timeout=timeout)
        self._http.base_url = httpx.URL(self.base_url)
        self._http.headers.update(_headers(api_key))

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _run(self, call: _Call[T]) -> T:
        try:
            response = await self._http.send(_request(self._http, call))
        except httpx.HTTPError as exc:
            raise _connection_error(call, exc) from exc
        return _answer(call, response)

    async def send(
        self,
        *,
        from_: str,
        to: str | Sequence[str],
        subject: str,
        html: str | None = None,
        text: str | None = None,
        type: SendType | None = None,
        scheduled_at: datetime | int | None = None,
        variables: Mapping[str, Mapping[str, str]] | None = None,
        cc: str | Sequence[str] | None = None,
        bcc: str | Sequence[str] | None = None,
        reply_to: str | None = None,
        headers: Mapping[str, str] | None = None,
        sender_group_id: str | None = None,
        attachments: Sequence[Attachment] | None = None,
        tags: Sequence[str] | None = None,
        idempotency_key: str | None = None,
        track_opens: bool | None = None,
        track_clicks: bool | None = None,
    ) -> SendResult | CampaignSendResult:
        """See `Mailmark.send`."""
        return await self._run(
            _Calls.send(
                from_=from_,
                to=to,
                subject=subject,
                html=html,
                text=text,
                type=type,
                scheduled_at=scheduled_at,
                variables=variables,
                cc=cc,
                bcc=bcc,
                reply_to=reply_to,
                headers=headers,
                sender_group_id=sender_group_id,
                attachments=attachments,
                tags=tags,
                idempotency_key=idempotency_key,
                track_opens=track_opens,
                track_clicks=track_clicks,
            )
        )

    async def list_mailboxes(self) -> list[Mailbox]:
        return await self._run(_Calls.list_mailboxes())

    async def create_mailbox(self, address: str, display_name: str | None = None) -> Mailbox:
        return await self._run(_Calls.create_mailbox(address, display_name))

    async def update_mailbox(
        self,
        address: str,
        *,
        display_name: str | None = None,
        signature: str | None = None,
        signature_format: str | None = None,
        password: str | None = None,
    ) -> Mailbox:
        return await self._run(
            _Calls.update_mailbox(address, display_name, signature, signature_format, password)
        )

    async def delete_mailbox(self, address: str) -> bool:
        return await self._run(_Calls.delete_mailbox(address))

    async def list_aliases(self) -> list[Alias]:
        return await self._run(_Calls.list_aliases())

    async def create_alias(self, address: str, targets: Sequence[str]) -> Alias:
        return await self._run(_Calls.create_alias(address, targets))

    async def delete_alias(self, address: str) -> bool:
        return await self._run(_Calls.delete_alias(address))

    async def list_sender_groups(self) -> list[SenderGroup]:
        return await self._run(_Calls.list_sender_groups())

    async def create_sender_group(
        self,
        name: str,
        *,
        mailboxes: SenderMailboxes | None = None,
        emails: Sequence[str] | None = None,
    ) -> SenderGroup:
        return await self._run(_Calls.create_sender_group(name, mailboxes, emails))

    async def update_sender_group(
        self,
        group_id: str,
        *,
        name: str | None = None,
        add_emails: Sequence[str] | None = None,
        remove_emails: Sequence[str] | None = None,
        emails: Sequence[str] | None = None,
        mailboxes: SenderMailboxes | None = None,
    ) -> SenderGroup:
        return await self._run(
            _Calls.update_sender_group(
                group_id,
                name=name,
                add_emails=add_emails,
                remove_emails=remove_emails,
                emails=emails,
                mailboxes=mailboxes,
            )
        )

    async def delete_sender_group(self, group_id: str) -> bool:
        return await self._run(_Calls.delete_sender_group(group_id))

    async def list_emails(
        self,
        *,
        status: str | None = None,
        from_: str | None = None,
        batch_id: str | None = None,
        tag: str | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> EmailPage:
        return await self._run(
            _Calls.list_emails(
                status=status,
                from_=from_,
                batch_id=batch_id,
                tag=tag,
                cursor=cursor,
                limit=limit,
            )
        )

    async def iter_emails(
        self,
        *,
        status: str | None = None,
        from_: str | None = None,
        batch_id: str | None = None,
        tag: str | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[Email]:
        """See `Mailmark.iter_emails`: ``async for email in client.iter_emails(...)``."""
        cursor: str | None = None
        while True:
            page = await self.list_emails(
                status=status,
                from_=from_,
                batch_id=batch_id,
                tag=tag,
                cursor=cursor,
                limit=limit,
            )
            for email in page.data:
                yield email
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def get_email(self, email_id: str) -> EmailDetail:
        return await self._run(_Calls.get_email(email_id))

    async def list_suppressions(
        self, *, cursor: str | None = None, limit: int | None = None
    ) -> SuppressionPage:
        return await self._run(_Calls.list_suppressions(cursor, limit))

    async def delete_suppression(self, address: str) -> bool:
        return await self._run(_Calls.delete_suppression(address))

    async def list_contacts(
        self,
        *,
        status: str | None = None,
        tag: str | None = None,
        field: tuple[str, str] | None = None,
        suppressed: bool | None = None,
        list_id: str | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> ContactPage:
        """Contacts oldest first; `field` is (name, value); `list_id` a list or segment."""
        filters = {
            "status": status,
            "tag": tag,
            "field": field,
            "suppressed": suppressed,
            "list_id": list_id,
            "cursor": cursor,
            "limit": limit,
        }
        return await self._run(_Calls.list_contacts(filters))

    async def create_contact(
        self,
        email: str,
        *,
        first_name: str | None = None,
        last_name: str | None = None,
        company: str | None = None,
        fields: Mapping[str, Any] | None = None,
        tags: Sequence[str] | None = None,
        status: str | None = None,
    ) -> Contact:
        body = _contact_body(
            email=email,
            first_name=first_name,
            last_name=last_name,
            company=company,
            fields=dict(fields) if fields is not None else None,
            tags=tags,
            status=status,
        )
        return await self._run(_Calls.create_contact(body))

    async def get_contact(self, contact_id: str) -> Contact:
        return await self._run(_Calls.get_contact(contact_id))

    async def update_contact(
        self,
        contact_id: str,
        *,
        email: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        company: str | None = None,
        fields: Mapping[str, Any] | None = None,
        tags: Sequence[str] | None = None,
        status: str | None = None,
    ) -> Contact:
        """Change what is given; `fields` and `tags` replace the old ones."""
        body = _contact_body(
            email=email,
            first_name=first_name,
            last_name=last_name,
            company=company,
            fields=dict(fields) if fields is not None else None,
            tags=tags,
            status=status,
        )
        return await self._run(_Calls.update_contact(contact_id, body))

    async def delete_contact(self, contact_id: str) -> bool:
        return await self._run(_Calls.delete_contact(contact_id))

    async def import_contacts(
        self,
        csv: bytes | str,
        *,
        mapping: Mapping[str, str] | None = None,
        on_duplicate: str | None = None,
        list_id: str | None = None,
    ) -> ContactImport:
        """Start a CSV import (header row first); poll `get_contact_import` for progress.
        `mapping`: column header → "email", "first_name", "last_name", "company", "tags",
        "status", "field:<name>" or "" to leave the column out."""
        call = _Calls.import_contacts(csv, mapping, on_duplicate, list_id)
        return await self._run(call)

    async def get_contact_import(self, import_id: str) -> ContactImport:
        return await self._run(_Calls.get_contact_import(import_id))

    async def export_contacts(
        self,
        *,
        status: str | None = None,
        tag: str | None = None,
        field: tuple[str, str] | None = None,
        suppressed: bool | None = None,
        list_id: str | None = None,
    ) -> str:
        """The matching contacts as CSV text (an import file as is)."""
        filters = {
            "status": status,
            "tag": tag,
            "field": field,
            "suppressed": suppressed,
            "list_id": list_id,
        }
        return await self._run(_Calls.export_contacts(filters))

    async def list_lists(self) -> list[ContactList]:
        return await self._run(_Calls.list_lists())

    async def create_list(
        self, name: str, *, filter: Mapping[str, Any] | None = None
    ) -> ContactList:
        """A list; with a `filter` a segment (status, tag, field {name, value}, suppressed)."""
        return await self._run(_Calls.create_list(name, filter))

    async def get_list(self, list_id: str) -> ContactList:
        return await self._run(_Calls.get_list(list_id))

    async def update_list(
        self, list_id: str, *, name: str | None = None, filter: Mapping[str, Any] | None = None
    ) -> ContactList:
        return await self._run(_Calls.update_list(list_id, name, filter))

    async def delete_list(self, list_id: str) -> bool:
        return await self._run(_Calls.delete_list(list_id))

    async def add_list_members(
        self,
        list_id: str,
        *,
        contact_ids: Sequence[str] | None = None,
        emails: Sequence[str] | None = None,
    ) -> ContactList:
        return await self._run(_Calls.add_list_members(list_id, contact_ids, emails))

    async def remove_list_member(self, list_id: str, contact_id: str) -> bool:
        return await self._run(_Calls.remove_list_member(list_id, contact_id))

    async def list_campaigns(
        self, *, cursor: str | None = None, limit: int | None = None
    ) -> CampaignPage:
        """The domain's campaigns, newest first."""
        return await self._run(_Calls.list_campaigns(cursor, limit))

    async def create_campaign(
        self,
        *,
        name: str,
        stages: Sequence[Mapping[str, Any]],
        from_address: str | None = None,
        sender_group_id: str | None = None,
        audience: Mapping[str, Any] | None = None,
        schedule: Mapping[str, Any] | None = None,
    ) -> Campaign:
        """A draft campaign from one mailbox (`from_address`) or a sender group."""
        body = _without_none(
            name=name,
            stages=[dict(stage) for stage in stages],
            senderGroupId=sender_group_id,
            audience=dict(audience) if audience is not None else None,
            schedule=dict(schedule) if schedule is not None else None,
        )
        if from_address is not None:
            body["from"] = from_address
        return await self._run(_Calls.create_campaign(body))

    async def get_campaign(self, campaign_id: str) -> Campaign:
        return await self._run(_Calls.get_campaign(campaign_id))

    async def update_campaign(
        self,
        campaign_id: str,
        *,
        name: str | None = None,
        stages: Sequence[Mapping[str, Any]] | None = None,
        from_address: str | None = None,
        sender_group_id: str | None = None,
        audience: Mapping[str, Any] | None = None,
        schedule: Mapping[str, Any] | None = None,
    ) -> Campaign:
        """While a draft or paused; fields left out stay."""
        body = _without_none(
            name=name,
            stages=[dict(stage) for stage in stages] if stages is not None else None,
            senderGroupId=sender_group_id,
            audience=dict(audience) if audience is not None else None,
            schedule=dict(schedule) if schedule is not None else None,
        )
        if from_address is not None:
            body["from"] = from_address
        return await self._run(_Calls.update_campaign(campaign_id, body))

    async def launch_campaign(self, campaign_id: str) -> Campaign:
        return await self._run(_Calls.campaign_action(campaign_id, "launch"))

    async def pause_campaign(self, campaign_id: str) -> Campaign:
        return await self._run(_Calls.campaign_action(campaign_id, "pause"))

    async def resume_campaign(self, campaign_id: str) -> Campaign:
        return await self._run(_Calls.campaign_action(campaign_id, "resume"))

    async def cancel_campaign(self, campaign_id: str) -> Campaign:
        return await self._run(_Calls.campaign_action(campaign_id, "cancel"))

    async def get_campaign_stats(self, campaign_id: str) -> dict[str, Any]:
        """Counts per campaign, stage and subject variant, as the API answers them."""
        return await self._run(_Calls.get_campaign_stats(campaign_id))

    async def list_campaign_recipients(
        self,
        campaign_id: str,
        *,
        state: str | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> CampaignRecipientPage:
        return await self._run(_Calls.list_campaign_recipients(campaign_id, state, cursor, limit))

    async def preview_campaign(
        self, campaign_id: str, *, stage: int = 1, contact_id: str | None = None
    ) -> dict[str, Any]:
        """The stage's subject, HTML and text as the contact would get them."""
        return await self._run(_Calls.preview_campaign(campaign_id, stage, contact_id))

    async def test_send_campaign(
        self, campaign_id: str, *, to: str, stage: int = 1, contact_id: str | None = None
    ) -> dict[str, Any]:
        """Send one stage to `to`, its subject starting "[Test] "."""
        return await self._run(_Calls.test_send_campaign(campaign_id, to, stage, contact_id))

    async def list_webhooks(self) -> list[Webhook]:
        return await self._run(_Calls.list_webhooks())

    async def create_webhook(self, url: str, *, events: Sequence[str] | None = None) -> Webhook:
        return await self._run(_Calls.create_webhook(url, events))

    async def delete_webhook(self, webhook_id: str) -> bool:
        return await self._run(_Calls.delete_webhook(webhook_id))

    async def cancel_email(self, email_id: str) -> CancelResult:
        """See `Mailmark.cancel_email`."""
        return await self._run(_Calls.cancel_email(email_id))

    async def reschedule_email(self, email_id: str, scheduled_at: datetime | int) -> Email:
        """See `Mailmark.reschedule_email`."""
        return await self._run(_Calls.reschedule_email(email_id, scheduled_at))
