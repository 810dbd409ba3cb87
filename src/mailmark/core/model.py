"""Plain records the core works with; storage maps them to rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Account:
    name: str
    plan: str
    status: str  # "trial" | "active" | "paused"
    created_at: datetime
    trial_ends_at: datetime | None = None
    id: int | None = None


@dataclass(frozen=True)
class User:
    account_id: int
    email: str
    password_hash: str
    role: str  # "owner" | "admin" | "member"
    created_at: datetime
    id: int | None = None


@dataclass(frozen=True)
class Domain:
    account_id: int
    name: str
    created_at: datetime
    verified_at: datetime | None = None
    trusted: bool = False
    id: int | None = None

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
    state: str  # "active" (signing), "pending" (published, awaiting DNS), "retired"
    created_at: datetime
    id: int | None = None

    @property
    def active(self) -> bool:
        return self.state == "active"


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

    @property
    def address(self) -> str:
        return f"{self.local_part}@{self.domain_name}"


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
class NewMessage:
    """A stored message: one blob, shared by every placement (one per mailbox and folder)."""

    blob_key: str
    size: int
    trace_prefix: bytes
    received_at: datetime
    mail_from: str
    meta: MessageMetadata = field(default_factory=MessageMetadata)


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
