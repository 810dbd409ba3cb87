"""Plain records the core works with; storage maps them to rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from mailmark.core.states import (
    STATUS_PRECEDENCE,
    AccountStatus,
    DeliveryStatus,
    DkimKeyState,
    SuppressionReason,
    WebhookDeliveryStatus,
)


@dataclass(frozen=True)
class Account:
    name: str
    plan: str
    status: AccountStatus
    created_at: datetime
    trial_ends_at: datetime | None = None
    id: int | None = None
    current_period_end: datetime | None = None
    cancel_at_period_end: bool = False
    scheduled_plan: str | None = None  # a downgrade waiting for current_period_end
    billing_customer_id: str | None = None
    subscription_id: str | None = None
    subscription_modified_at: datetime | None = None


@dataclass(frozen=True)
class User:
    account_id: int
    email: str
    password_hash: str
    role: str  # "owner" | "admin" | "member" (core.access.Role)
    created_at: datetime
    name: str = ""
    # Base32 TOTP secret (RFC 6238); enabled once a code made with it was entered.
    totp_secret: str | None = None
    totp_enabled_at: datetime | None = None
    totp_last_step: int | None = None
    password_changed_at: datetime | None = None
    id: int | None = None


@dataclass(frozen=True)
class UserSession:
    """A signed-in browser. Only the SHA-256 of its cookie's token is kept.

    `pending_totp`: the password was right but the second factor is still due; such a session
    grants nothing but the TOTP step, and lives minutes, not days."""

    user_id: int
    token_hash: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    ip: str
    user_agent: str
    pending_totp: bool = False
    id: int | None = None


@dataclass(frozen=True)
class OneTimeToken:
    """A single-use link's secret (setup, password reset, invitation), kept as its SHA-256."""

    purpose: str  # "setup" | "password_reset" | "invitation"
    token_hash: str
    created_at: datetime
    expires_at: datetime
    user_id: int | None = None
    invitation_id: int | None = None
    used_at: datetime | None = None
    id: int | None = None


@dataclass(frozen=True)
class Invitation:
    account_id: int
    email: str
    role: str
    mailbox_ids: tuple[int, ...]
    created_at: datetime
    expires_at: datetime
    invited_by: int | None = None
    accepted_at: datetime | None = None
    id: int | None = None


@dataclass(frozen=True)
class Domain:
    account_id: int
    name: str
    created_at: datetime
    verified_at: datetime | None = None
    trusted: bool = False
    id: int | None = None
    # The last verification that could tell found mail.<domain>'s MX and SPF records: its mail
    # then uses that custom MAIL FROM domain, else the server's own name (core/addresses.py).
    return_path_published: bool = False
    # The last DNS check of its records; the next background one (None: none planned, as once
    # verified); checks in a row that left it unverified, which spaces the next ones out.
    last_checked_at: datetime | None = None
    next_check_at: datetime | None = None
    failed_checks: int = 0
    # The domain's host for tracking and unsubscribe links (a CNAME to the public URL's host).
    tracking_host: str | None = None

    @property
    def status(self) -> str:
        return "verified" if self.verified_at is not None else "pending"


@dataclass(frozen=True)
class DkimKey:
    domain_id: int
    selector: str
    algorithm: str  # "rsa-sha256" | "ed25519-sha256"
    private_key_pem: str  # PEM for RSA; base64 of the 32-byte seed for Ed25519
    public_key: str  # base64, the p= of the DNS record
    state: DkimKeyState
    created_at: datetime
    id: int | None = None

    @property
    def active(self) -> bool:
        return self.state == DkimKeyState.ACTIVE


@dataclass(frozen=True)
class Mailbox:
    domain_id: int
    domain_name: str
    account_id: int
    local_part: str
    created_at: datetime
    display_name: str = ""
    signature: str = ""
    password_hash: str | None = None
    user_id: int | None = None
    id: int | None = None
    # Read with the mailbox, as its domain's name is: the sending path needs no extra query.
    return_path_published: bool = False
    signature_format: str = "text"  # "text" | "html" (sanitised when saved)
    # Open tracking (PRODUCT.md "Email Tracking"): a pixel in the HTML of the mail it sends.
    track_opens: bool = False
    # SMTP submission files a copy in Sent; a client that saves its own can turn this off.
    save_sent_copy: bool = True

    @property
    def address(self) -> str:
        return f"{self.local_part}@{self.domain_name}"


@dataclass(frozen=True)
class Alias:
    """An address that delivers to mailboxes of its domain's account (core/aliases.py)."""

    domain_id: int
    domain_name: str
    local_part: str
    created_at: datetime
    targets: tuple[Mailbox, ...]
    id: int | None = None

    @property
    def address(self) -> str:
        return f"{self.local_part}@{self.domain_name}"


@dataclass(frozen=True)
class VacationSettings:
    """A mailbox's vacation responder: the answer it sends while it is on and within its dates."""

    mailbox_id: int
    enabled: bool
    subject: str  # "" answers "Auto: <the original subject>" (RFC 3834 §3.1.5)
    body: str
    body_format: str  # "text" | "html" (sanitised when saved)
    days: int  # answer each sender at most once in this many days (RFC 5230 §4.1)
    time_zone: str  # the IANA zone the owner gave the dates in
    starts_at: datetime | None  # inclusive; None: from when it is turned on
    ends_at: datetime | None  # exclusive; None: until it is turned off
    updated_at: datetime


@dataclass(frozen=True)
class Folder:
    mailbox_id: int
    name: str
    special_use: str | None
    uid_validity: int
    uid_next: int = 1
    highest_modseq: int = 1
    subscribed: bool = True
    id: int | None = None
    # RFC 3501 §2.3.2: messages from this UID on are \Recent to the next session to see them.
    first_recent_uid: int = 1
    # Expunge tombstones up to this MODSEQ were pruned.
    expunged_floor: int = 0


@dataclass(frozen=True)
class Attachment:
    filename: str | None
    content_type: str
    size: int


@dataclass(frozen=True)
class MessageMetadata:
    """What could be read from a message's headers and MIME structure; every field may be empty."""

    message_id: str | None = None
    subject: str | None = None
    subject_key: str = ""
    is_reply: bool = False
    from_addr: str | None = None
    to_addrs: tuple[str, ...] = ()
    cc_addrs: tuple[str, ...] = ()
    date: datetime | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    snippet: str = ""
    attachments: tuple[Attachment, ...] = ()
    defects: tuple[str, ...] = ()


@dataclass(frozen=True)
class MessageIndex:
    """What IMAP reads without opening the blob, computed once when the message is stored:
    ENVELOPE, BODYSTRUCTURE and BODY in IMAP syntax, and the decoded text the full-text index
    holds (header fields and text parts, bounded)."""

    envelope: bytes
    bodystructure: bytes
    body: bytes
    header_text: str
    body_text: str
    # The day of the Date header in its own zone: SEARCH SENT* compare it (RFC 3501 §6.4.4).
    sent_day: date | None = None


@dataclass(frozen=True)
class NewMessage:
    """A stored message: one blob, shared by every placement (one per mailbox and folder)."""

    blob_key: str
    size: int
    trace_prefix: bytes
    received_at: datetime
    mail_from: str
    meta: MessageMetadata = field(default_factory=MessageMetadata)
    index: MessageIndex | None = None
    # Index only the header text now; the body text waits in `pending_body_texts` for the
    # full-text indexer (core/text_index.py).
    body_text_later: bool = False


@dataclass(frozen=True)
class NewPlacement:
    message_id: int
    mailbox_id: int
    folder_id: int
    uid: int
    modseq: int
    thread_id: str
    internal_date: datetime
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class DnsRecord:
    """One DNS record a hosted domain should publish. `name` is a FQDN without the final dot."""

    type: str  # "MX" | "TXT" | "CNAME" | "SRV" | "PTR"
    name: str
    value: str
    purpose: str
    required: bool = True
    priority: int | None = None  # MX only


@dataclass(frozen=True)
class RecordCheck:
    """What the DNS says about one expected record.

    status: "ok", "missing", "mismatch", or "error" (timeout/SERVFAIL: unknown, not missing)."""

    record: DnsRecord
    status: str
    found: tuple[str, ...] = ()
    detail: str = ""
    checked_at: datetime | None = None  # set once the check is stored


@dataclass(frozen=True)
class OutboundMessage:
    """One email sent from a hosted mailbox; its recipients are rows of the delivery queue."""

    account_id: int
    domain_id: int
    mailbox_id: int | None
    blob_key: str
    size: int
    envelope_from: str  # the VERP return path, bounce+<token>@mail.<domain> or @<hostname>
    token: str
    from_addr: str
    subject: str | None
    message_id_header: str | None  # without <>
    source: str  # "submission" | "api" | "dashboard" | "campaign"
    created_at: datetime
    batch_id: str | None = None
    sent_message_id: int | None = None
    id: int | None = None
    # The links of a click-tracked message, in the order of their redirects' indexes.
    tracked_links: list[str] | None = None


@dataclass(frozen=True)
class NewDelivery:
    outbound_id: int
    recipient: str
    recipient_domain: str
    next_attempt_at: datetime
    expires_at: datetime
    created_at: datetime


@dataclass(frozen=True)
class LeasedDelivery:
    """A queue row a worker holds until `lease_until`; `attempts` counts this attempt (1 = first):
    it is saved when leased, so a worker that crashes mid-delivery still used up an attempt."""

    id: int
    outbound_id: int
    recipient: str
    recipient_domain: str
    attempts: int
    envelope_from: str
    blob_key: str
    from_domain: str
    created_at: datetime
    expires_at: datetime
    local: bool  # recipient_domain is hosted on this server
    account_id: int = 0
    domain_id: int = 0
    mailbox_id: int | None = None
    message_id_header: str | None = None
    lease_owner: str = ""
    # The message row of the sender's copy (in Outbox until the first lease, then in Sent).
    sent_message_id: int | None = None


@dataclass(frozen=True)
class DeliveryOutcome:
    """The new state of one leased queue row after an attempt."""

    delivery_id: int
    lease_owner: str
    status: DeliveryStatus  # delivered, deferred or bounced
    next_attempt_at: datetime
    last_code: int
    last_status: str | None
    last_reply: str
    mx_host: str | None
    updated_at: datetime


@dataclass(frozen=True)
class QueueEntry:
    """A queue row as people see it (`mailmark queue list`, the Outbox)."""

    id: int
    outbound_id: int
    recipient: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    expires_at: datetime
    created_at: datetime
    updated_at: datetime
    from_addr: str
    subject: str | None
    message_id_header: str | None
    last_code: int | None = None
    last_status: str | None = None
    last_reply: str | None = None
    mx_host: str | None = None
    lease_owner: str | None = None
    lease_until: datetime | None = None


@dataclass(frozen=True)
class Suppression:
    """An address a sending domain no longer mails (hard bounce, complaint, or by hand)."""

    domain_id: int
    address: str  # lower-case
    reason: SuppressionReason
    detail: str
    created_at: datetime
    id: int | None = None


@dataclass(frozen=True)
class PlacementState:
    """One message in a folder as the IMAP store changes it."""

    uid: int
    message_id: int
    flags: tuple[str, ...]
    modseq: int
    thread_id: str
    internal_date: datetime


@dataclass(slots=True)
class FetchRow:
    """One message in a folder as FETCH reads it; the IMAP syntax columns are None when not
    asked for or not computed yet, `trace_prefix` is empty unless the content was asked for.
    Not frozen, like `FetchedMessage`: one is built per message fetched."""

    uid: int
    message_id: int
    flags: tuple[str, ...]
    modseq: int
    internal_date: datetime
    size: int
    blob_key: str
    trace_prefix: bytes = b""
    envelope: bytes | None = None
    bodystructure: bytes | None = None
    body: bytes | None = None


@dataclass(frozen=True)
class FolderCounts:
    messages: int
    unseen: int
    size: int
    recent: int = 0


@dataclass(frozen=True)
class FolderUids:
    """A folder's UIDs ascending, where the first message without \\Seen is (an index into
    `uids`), how many lack \\Seen, and the keywords in use."""

    uids: list[int]
    first_unseen: int | None
    unseen: int
    keywords: tuple[str, ...]


@dataclass(frozen=True)
class ApiKey:
    """A REST API key, scoped to one domain. Only the SHA-256 of the whole key is stored; `prefix`
    is its public part, shown in listings and used to find the row."""

    domain_id: int
    domain_name: str
    account_id: int
    name: str
    prefix: str
    key_hash: str  # hex SHA-256 of the whole key
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    id: int | None = None


@dataclass(frozen=True)
class SenderGroup:
    """Mailboxes that take turns sending a campaign, and the recipients assigned to the group.

    `all_mailboxes`: every mailbox of the domain, now and later; else `mailbox_ids`."""

    domain_id: int
    name: str
    all_mailboxes: bool
    emails: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    mailbox_ids: tuple[int, ...] = ()
    id: int | None = None


@dataclass(frozen=True)
class StoredResponse:
    """The answer given to a request carrying an Idempotency-Key, replayed for its retries."""

    domain_id: int
    key: str
    request_hash: str
    status_code: int
    body: dict[str, object]
    created_at: datetime


@dataclass(frozen=True)
class EmailRecipient:
    """One recipient of a sent email and where its delivery stands."""

    address: str
    status: DeliveryStatus
    attempts: int
    updated_at: datetime
    last_code: int | None = None
    last_status: str | None = None
    last_reply: str | None = None


@dataclass(frozen=True)
class SentEmail:
    """An outbound message as the API lists it, with its recipients."""

    id: int
    message_id: str | None
    from_addr: str
    subject: str | None
    source: str
    batch_id: str | None
    created_at: datetime
    recipients: tuple[EmailRecipient, ...]
    scheduled_at: datetime | None = None
    tags: tuple[str, ...] = ()

    @property
    def status(self) -> DeliveryStatus:
        """As far along as its least advanced recipient: the first of STATUS_PRECEDENCE that any
        recipient is in."""
        held = {recipient.status for recipient in self.recipients}
        return next(
            (status for status in STATUS_PRECEDENCE if status in held), DeliveryStatus.QUEUED
        )


@dataclass(frozen=True)
class EmailEvent:
    type: str
    created_at: datetime
    payload: dict[str, object]


@dataclass(frozen=True)
class Webhook:
    """An HTTPS endpoint of a domain that is sent the domain's events, signed with `secret`."""

    account_id: int
    domain_id: int
    url: str
    events: tuple[str, ...]
    secret: str
    created_at: datetime
    id: int | None = None


@dataclass(frozen=True)
class WebhookDeliveryState:
    """One event's delivery to one webhook, as its last attempt left it."""

    id: int
    webhook_id: int
    event_id: int
    event_type: str
    status: WebhookDeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_code: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class LeasedWebhookDelivery:
    """A pending delivery a worker holds, with what it needs to build and send the request."""

    id: int
    webhook_id: int
    url: str
    secret: str
    domain_name: str
    event_id: int
    event_type: str
    event_payload: dict[str, object]
    event_created_at: datetime
    outbound_id: int | None  # the sent email the event is about (its /v1/emails id), if any
    attempts: int  # including the one this lease is for
    created_at: datetime
    lease_owner: str


@dataclass(frozen=True)
class WebhookOutcome:
    delivery_id: int
    lease_owner: str
    status: str  # "pending" (retry at next_attempt_at) | "delivered" | "failed"
    next_attempt_at: datetime | None
    last_code: int | None
    last_error: str | None
    updated_at: datetime


@dataclass(frozen=True)
class OidcLogin:
    """A sign-in sent to an OpenID Connect provider, waiting for the browser to come back."""

    state_hash: str
    browser_hash: str
    provider: str
    nonce: str
    code_verifier: str
    created_at: datetime
    expires_at: datetime
    id: int | None = None


@dataclass(frozen=True)
class FolderTotals:
    """A folder with how many messages it holds and how many lack \\Seen."""

    folder: Folder
    total: int
    unseen: int


@dataclass(frozen=True)
class ConversationHead:
    """A thread as a folder's conversation list orders it: by its latest message there."""

    thread_id: str
    latest: datetime
    count: int


@dataclass(frozen=True)
class MailRow:
    """One placement with the message metadata kept at delivery: what lists and the thread view
    show without opening the blob. `from_header` is the decoded From field as written."""

    folder_id: int
    uid: int
    message_id: int
    thread_id: str
    flags: tuple[str, ...]
    internal_date: datetime
    size: int
    subject: str | None
    from_addr: str | None
    from_header: str
    date: datetime | None
    snippet: str
    has_attachments: bool


@dataclass(frozen=True)
class Upload:
    """A file uploaded from the webmail's compose form; its bytes are the blob `blob_key`."""

    id: str
    user_id: int
    mailbox_id: int
    filename: str
    content_type: str
    size: int
    blob_key: str
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class FolderCopy:
    """Where one message row is placed: a (mailbox, folder, uid)."""

    mailbox_id: int
    folder_id: int
    uid: int
    message_id: int


@dataclass(frozen=True)
class Correspondence:
    """The addresses of one message, for the compose form's autocomplete."""

    from_addr: str | None
    to_addrs: tuple[str, ...]
    cc_addrs: tuple[str, ...]


@dataclass(frozen=True)
class MailboxForwarding:
    """Where a mailbox's mail is sent on to, and whether a copy stays here too."""

    mailbox_id: int
    addresses: tuple[str, ...]
    keep_copy: bool = True
