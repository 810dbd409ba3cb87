"""The interfaces `core` needs from the outside world; storage/, dns_tools/ and security implement them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol, Self, TypeVar

from mailmark.core.aggregate_reports import AggregateReport, ReportKind, ReportOverview
from mailmark.core.imap_sort import SortRow
from mailmark.core.model import (
    Account,
    Alias,
    ApiKey,
    ConversationHead,
    Correspondence,
    DeliveryOutcome,
    DkimKey,
    DnsRecord,
    Domain,
    EmailEvent,
    FetchRow,
    Folder,
    FolderCopy,
    FolderCounts,
    FolderTotals,
    FolderUids,
    Invitation,
    LeasedDelivery,
    LeasedWebhookDelivery,
    Mailbox,
    MailboxForwarding,
    MailRow,
    MessageIndex,
    NewDelivery,
    NewMessage,
    NewPlacement,
    OidcLogin,
    OneTimeToken,
    OutboundMessage,
    PlacementState,
    QueueEntry,
    RecordCheck,
    SenderGroup,
    SentEmail,
    StoredResponse,
    Suppression,
    Upload,
    User,
    UserSession,
    VacationSettings,
    Webhook,
    WebhookDeliveryState,
    WebhookOutcome,
)
from mailmark.core.search import Criteria
from mailmark.core.sieve.model import ActiveScriptVersion, SieveScript
from mailmark.core.states import DeliveryStatus, DkimKeyState

if TYPE_CHECKING:
    # core.relays, core.contacts, core.affiliates and the campaign engine use these ports at run
    # time.
    from mailmark.core.affiliates import AffiliateRepository
    from mailmark.core.campaign_records import CampaignRepository
    from mailmark.core.contacts import ContactRepository
    from mailmark.core.relays import DomainRelay

T = TypeVar("T")


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class PaymentProvider(Protocol):
    """Where plans are paid for (billing/polar.py). Accounts are known to it by `account_ref`
    (the account id as text), so its events find their account again."""

    async def checkout_url(
        self, plan: str, *, account_ref: str, email: str, success_url: str, return_url: str
    ) -> str:
        """Where the customer pays for `plan`."""
        ...

    async def portal_url(self, *, account_ref: str, return_url: str) -> str:
        """The customer's own page for card and invoices."""
        ...

    async def change_plan(self, subscription_id: str, plan: str, *, at_once: bool) -> None:
        """Move the subscription to `plan`: at once (prorated by the provider) or from the next
        period."""
        ...

    async def set_cancel_at_period_end(self, subscription_id: str, cancel: bool) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class BlobStore(Protocol):
    """Immutable, content-addressed message storage. Keys are always server-generated.

    A missing blob is FileNotFoundError for `get`/`get_many`; storage that cannot be reached or
    written is StorageUnavailable (StorageFull when it has no room), never a partial write."""

    async def put(self, data: bytes) -> tuple[str, bool]:
        """Store durably (on stable storage when this returns); return (key, newly_created)."""
        ...

    async def put_many(self, items: Sequence[bytes]) -> list[tuple[str, bool] | Exception]:
        """`put` for a batch, in one go; each item's (key, newly_created) or its error."""
        ...

    async def get(self, key: str) -> bytes: ...

    async def get_many(self, keys: Sequence[str]) -> list[bytes]:
        """`get` for a batch, in one go, in the same order (IMAP FETCH of many bodies)."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the blob; a blob already gone is no error."""
        ...

    async def exists(self, key: str) -> bool: ...

    def keys_written_before(self, moment: datetime) -> AsyncIterator[list[str]]:
        """The keys of the blobs written before `moment`, a page at a time (for the removal of
        blobs nothing references: a blob written since may belong to a transaction not yet
        committed)."""
        ...

    async def check(self) -> None:
        """A cheap round trip to the storage (readiness checks); StorageUnavailable when it
        cannot be used now."""
        ...

    async def close(self) -> None: ...


def blob_batches(items: Sequence[T], size: Callable[[T], int], limit: int) -> list[list[T]]:
    """Consecutive groups of items whose blobs together stay under `limit` bytes (one item
    larger than that is a group alone), so that each `read_blobs` holds a bounded amount."""
    groups: list[list[T]] = []
    total = 0
    for item in items:
        if not groups or total + size(item) > limit:
            groups.append([])
            total = 0
        groups[-1].append(item)
        total += size(item)
    return groups


async def read_blobs(blobs: BlobStore, keys: Sequence[str]) -> list[bytes | None]:
    """Each key's bytes, read in one batch; None for a blob gone meanwhile (its message was
    deleted since its key was read), found by reading the batch again one by one."""
    try:
        return list(await blobs.get_many(keys))
    except FileNotFoundError:
        found: list[bytes | None] = []
        for key in keys:
            try:
                found.append(await blobs.get(key))
            except FileNotFoundError:
                found.append(None)
        return found


class PasswordHasher(Protocol):
    def hash(self, password: str) -> str: ...

    def verify(self, password_hash: str, password: str) -> bool: ...

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether a hash that verified was made with other parameters than today's."""
        ...


class HtmlSanitizer(Protocol):
    def clean(self, html: str) -> str:
        """The HTML with only harmless markup left: no script, no event handlers, no
        javascript: links."""
        ...


class Totp(Protocol):
    """Time-based one-time passwords (RFC 6238) for two-factor sign-in."""

    def new_secret(self) -> str:
        """A fresh random base32 secret."""
        ...

    def provisioning_uri(self, secret: str, account: str, issuer: str) -> str:
        """The otpauth:// URI authenticator apps scan."""
        ...

    def matching_step(self, secret: str, code: str, at: datetime) -> int | None:
        """The time step (RFC 6238 §4.2 T) whose code `code` is, near `at`; None when none."""
        ...


class DkimKeyGenerator(Protocol):
    def generate_rsa(self, bits: int = 2048) -> tuple[str, str]:
        """Return (private key PEM, public key as base64 DER SubjectPublicKeyInfo)."""
        ...

    def generate_ed25519(self) -> tuple[str, str]:
        """Return (private seed as base64, public key as base64), per RFC 8463."""
        ...


class DomainDnsChecker(Protocol):
    """Which records a domain needs on this server, and what the DNS says about them."""

    @property
    def hostname(self) -> str:
        """This server's own name: the MX host the records point to, and the fallback return
        path's domain."""
        ...

    def record_set(self, domain: str, dkim_keys: Sequence[DkimKey]) -> list[DnsRecord]: ...

    async def verify(self, records: Sequence[DnsRecord]) -> list[RecordCheck]: ...


class AccountRepository(Protocol):
    async def add(self, account: Account) -> Account: ...
    async def get(self, account_id: int) -> Account | None: ...
    async def get_by_name(self, name: str) -> Account | None: ...
    async def set_name(self, account_id: int, name: str) -> None: ...
    async def list_with_usage(self, month: str) -> list[tuple[Account, int, int, int]]:
        """Every account by name with its domains, mailboxes and emails sent in `month`."""
        ...

    async def sending_states(
        self,
        account_ids: Sequence[int],
        month: str,
        count_ids: Collection[int],
        uncounted_plans: Sequence[str],
    ) -> list[tuple[Account, int | None]]:
        """The accounts, each with the emails it sent in `month` when it is in `count_ids`
        and not an active account on one of `uncounted_plans` (else None), in one statement."""
        ...

    async def lock(self, account_id: int) -> None:
        """Serialise, until commit, transactions that count and then add to this account (quotas
        across several nodes)."""
        ...

    async def get_by_subscription(self, subscription_id: str) -> Account | None: ...
    async def first_id(self) -> int | None:
        """The installation's first account (its operator's); None before setup."""
        ...

    async def save_lifecycle(self, account: Account) -> None:
        """Write the account's plan, status, period and billing ids as given."""
        ...


class UsageRepository(Protocol):
    """Emails sent per account and calendar month ("YYYY-MM"), one row each."""

    async def add(self, account_id: int, month: str, emails: int) -> None:
        """Add to the month's row (created at the first send), in the caller's transaction."""
        ...

    async def sent_in(self, account_id: int, month: str) -> int: ...


class BillingEventRepository(Protocol):
    """The payment provider's webhook events as received, each once by its id."""

    async def add(
        self, event_id: str, event_type: str, occurred_at: datetime, now: datetime, payload: str
    ) -> bool:
        """Keep the event; False when one with this id was kept already (a replay)."""
        ...

    async def set_outcome(self, event_id: str, outcome: str) -> None: ...
    async def outcomes(self) -> list[tuple[str, str, str]]:
        """(event id, type, outcome) of every event, in the order received."""
        ...


class UserRepository(Protocol):
    async def add(self, user: User) -> User: ...
    async def get(self, user_id: int) -> User | None: ...
    async def get_by_email(self, email: str) -> User | None:
        """`email` lower-case, as users are stored."""
        ...

    async def list_for_account(self, account_id: int) -> list[User]: ...
    async def any_owner(self) -> bool:
        """Whether any account on the installation has an owner (else first-run setup is due)."""
        ...

    async def set_password(self, user_id: int, password_hash: str, at: datetime) -> None: ...

    async def replace_password_hash(self, user_id: int, old: str, new: str) -> bool:
        """Store `new` (the same password, hashed again) if the hash is still `old`."""
        ...

    async def set_name(self, user_id: int, name: str) -> None: ...
    async def set_role(self, user_id: int, role: str) -> None: ...
    async def set_totp(
        self, user_id: int, secret: str | None, enabled_at: datetime | None
    ) -> None: ...
    async def use_totp_step(self, user_id: int, step: int) -> bool:
        """Record a used TOTP time step; False when that step or a later one was used before."""
        ...

    async def delete(self, user_id: int) -> None: ...


class SessionRepository(Protocol):
    async def add(self, session: UserSession) -> UserSession: ...
    async def get(self, session_id: int) -> UserSession | None: ...
    async def find(self, token_hash: str) -> tuple[UserSession, User, str] | None:
        """The session, its user and the user's account name."""
        ...

    async def list_for_user(self, user_id: int) -> list[UserSession]:
        """Most recently used first."""
        ...

    async def touch(self, session_id: int, at: datetime) -> None: ...
    async def delete(self, session_id: int) -> None: ...
    async def delete_for_user(self, user_id: int, *, keep: int | None = None) -> int:
        """End every session of the user but `keep`; how many ended."""
        ...

    async def delete_expired(self, now: datetime, idle_since: datetime) -> None: ...


class OneTimeTokenRepository(Protocol):
    async def add(self, token: OneTimeToken) -> OneTimeToken: ...
    async def find(self, purpose: str, token_hash: str) -> OneTimeToken | None: ...
    async def use(self, token_id: int, at: datetime) -> bool:
        """Spend the token; False when it was spent already."""
        ...

    async def spend_unused(self, purpose: str, at: datetime, user_id: int | None = None) -> None:
        """Make the unused tokens of this purpose (and user, when given) unusable."""
        ...


class InvitationRepository(Protocol):
    async def add(self, invitation: Invitation) -> Invitation: ...
    async def get(self, invitation_id: int) -> Invitation | None: ...
    async def list_pending(self, account_id: int, now: datetime) -> list[Invitation]: ...
    async def accept(self, invitation_id: int, at: datetime) -> bool:
        """Mark accepted; False when it was accepted already."""
        ...

    async def delete(self, invitation_id: int) -> None: ...


class MailboxAssignmentRepository(Protocol):
    async def mailbox_ids(self, user_id: int) -> list[int]: ...
    async def for_users(self, user_ids: Sequence[int]) -> dict[int, list[int]]: ...
    async def for_mailboxes(self, mailbox_ids: Sequence[int]) -> dict[int, list[int]]:
        """The ids of the users assigned each of these mailboxes."""
        ...

    async def replace(self, user_id: int, mailbox_ids: Sequence[int]) -> None: ...


class ForwardingRepository(Protocol):
    async def get(self, mailbox_id: int) -> MailboxForwarding | None: ...
    async def put(self, forwarding: MailboxForwarding, at: datetime) -> None:
        """Replace the mailbox's forwarding settings."""
        ...

    async def remove(self, mailbox_id: int) -> None: ...


class SieveScriptRepository(Protocol):
    async def list(self, mailbox_id: int) -> list[SieveScript]: ...
    async def get(self, mailbox_id: int, name: str) -> SieveScript | None: ...
    async def active(self, mailbox_id: int) -> SieveScript | None: ...
    async def active_version(self, mailbox_id: int) -> ActiveScriptVersion | None: ...
    async def put(self, mailbox_id: int, name: str, content: str, at: datetime) -> SieveScript:
        """Create or replace the script `name`; its run-time error is cleared."""
        ...

    async def activate(self, mailbox_id: int, name: str | None, at: datetime) -> None:
        """Make `name` the one active script (None: none is)."""
        ...

    async def rename(self, mailbox_id: int, old: str, new: str, at: datetime) -> None: ...
    async def delete(self, mailbox_id: int, name: str) -> None: ...
    async def record_error(self, script_id: int, revision: int, error: str, at: datetime) -> None:
        """Remember a run-time error, unless the script changed since that revision."""
        ...


class RecoveryCodeRepository(Protocol):
    async def replace(self, user_id: int, code_hashes: Sequence[str]) -> None: ...
    async def use(self, user_id: int, code_hash: str, at: datetime) -> bool:
        """Spend the code; False when the user has no such unused code."""
        ...

    async def count_unused(self, user_id: int) -> int: ...


@dataclass(frozen=True)
class DomainContents:
    """What removing a domain deletes with it."""

    mailboxes: int
    messages: int
    api_keys: int  # not revoked
    webhooks: int
    queued: int = 0  # outbound deliveries not yet delivered or given up


class DomainRepository(Protocol):
    async def add(self, domain: Domain) -> Domain: ...
    async def get(self, domain_id: int) -> Domain | None: ...
    async def get_by_name(self, name: str) -> Domain | None: ...
    async def list_all(self, account_id: int | None) -> list[tuple[Domain, str, int]]:
        """Every domain (of one account when given) by name, with its account's name and its
        mailbox count."""
        ...

    async def list_for_account(self, account_id: int) -> list[tuple[Domain, int]]:
        """The account's domains by name, each with its number of mailboxes."""
        ...

    async def contents(self, domain_id: int) -> DomainContents: ...
    async def mailbox_ids(self, domain_id: int) -> list[int]: ...
    async def outbound_blob_keys(self, domain_id: int) -> set[str]: ...
    async def delete(self, domain_id: int) -> None: ...
    async def save_checks(
        self,
        domain_id: int,
        checks: Sequence[RecordCheck],
        *,
        checked_at: datetime,
        next_check_at: datetime | None,
        failed_checks: int,
    ) -> None:
        """Replace the stored checks with these and plan the next background check."""
        ...

    async def checks(self, domain_id: int) -> dict[tuple[str, str, str], RecordCheck]: ...
    async def due_for_check(self, now: datetime, limit: int) -> list[str]: ...
    async def count_for_account(self, account_id: int) -> int: ...
    async def set_verified(self, domain_id: int, verified_at: datetime | None) -> None: ...
    async def set_return_path_published(self, domain_id: int, published: bool) -> None: ...
    async def set_tracking_host(self, domain_id: int, host: str | None) -> None: ...
    async def tracking_hosts(self, domain_ids: Sequence[int]) -> dict[int, str]:
        """The tracking host of each of these domains that has one."""
        ...

    async def add_dkim_key(self, key: DkimKey) -> DkimKey: ...
    async def dkim_keys(self, domain_id: int, states: Sequence[str]) -> list[DkimKey]:
        """The domain's keys in these states, oldest first."""
        ...

    async def set_dkim_state(self, key_id: int, state: DkimKeyState) -> None: ...


class MailboxRepository(Protocol):
    async def add(self, mailbox: Mailbox) -> Mailbox: ...
    async def get(self, mailbox_id: int) -> Mailbox | None: ...
    async def find(self, domain_name: str, local_part: str) -> Mailbox | None: ...
    async def list_for_domain(self, domain_id: int) -> list[Mailbox]: ...
    async def first(self) -> Mailbox | None:
        """The oldest mailbox on the server."""
        ...

    async def count_for_account(self, account_id: int) -> int: ...
    async def delete(self, mailbox_id: int) -> None: ...
    async def list_for_account(
        self, account_id: int, *, domain_id: int | None = None, user_id: int | None = None
    ) -> list[Mailbox]:
        """The account's mailboxes by address; of one domain, or assigned to one user."""
        ...

    async def assignments_for_account(
        self, account_id: int, *, domain_id: int | None = None
    ) -> dict[int, list[int]]:
        """The users each of the account's mailboxes (of one domain) is assigned to."""
        ...

    async def update(self, mailbox_id: int, **values: str | bool | None) -> None:
        """Set some of display_name, signature, signature_format, password_hash,
        track_opens, save_sent_copy."""
        ...

    async def allocate_uid_validity(self, mailbox_id: int, floor: int) -> int:
        """A UIDVALIDITY for new folders of the mailbox: at least `floor`, and greater than any
        it gave before (RFC 9051 §2.3.1.1); locks the mailbox row until commit."""
        ...

    async def replace_password_hash(self, mailbox_id: int, old: str, new: str) -> bool:
        """Store `new` (the same password, hashed again) if the hash is still `old`."""
        ...

    async def trusted_senders(self, mailbox_id: int, addresses: Sequence[str]) -> set[str]:
        """Those of `addresses` (lower case) the mailbox trusts to show remote images."""
        ...

    async def trust_sender(self, mailbox_id: int, address: str, at: datetime) -> None: ...


class FolderRepository(Protocol):
    async def add_many(self, folders: Sequence[Folder]) -> None: ...
    async def list_for_mailbox(self, mailbox_id: int) -> list[Folder]: ...
    async def get_by_name(self, mailbox_id: int, name: str) -> Folder | None: ...
    async def find_many(self, wanted: Sequence[tuple[int, str]]) -> dict[tuple[int, str], Folder]:
        """The folders named by (mailbox id, folder name); absent ones are left out."""
        ...

    async def allocate_uids(self, folder_id: int, count: int) -> tuple[int, int]:
        """Atomically take `count` consecutive UIDs and MODSEQs; return (first uid, first modseq).

        Runs in the caller's transaction, so UIDNEXT is persisted with the placements (RFC 3501
        §2.3.1.1: UIDs strictly ascend and are never reused)."""
        ...


class MessageRepository(Protocol):
    async def add_many(self, new_messages: Sequence[NewMessage]) -> list[int]:
        """Insert the messages; their ids, in the same order."""
        ...

    async def add_placements(self, new_placements: Sequence[NewPlacement]) -> None: ...
    async def thread_of_references(self, mailbox_id: int, message_ids: Sequence[str]) -> str | None:
        """The thread of the newest placement in the mailbox whose Message-ID is one of these."""
        ...

    async def thread_of_subject(
        self, mailbox_id: int, subject_key: str, since: datetime
    ) -> str | None: ...
    async def delete_mailbox_contents(self, mailbox_id: int) -> list[str]:
        """Remove every placement of the mailbox and the messages left without one.

        Returns the blob keys that no remaining message references."""
        ...

    async def lock_blob(self, blob_key: str) -> None:
        """Serialise, until commit, the transactions that reuse or remove this blob."""
        ...

    async def blob_referenced(self, blob_key: str) -> bool: ...

    async def unreferenced_blobs(self, blob_keys: Sequence[str]) -> list[str]:
        """Those of the keys no message, outbound message or webmail upload references."""
        ...


class MailStoreRepository(Protocol):
    """The IMAP view of folders: placements by (folder, uid), flags, MODSEQs, tombstones, search."""

    async def folder(self, folder_id: int) -> Folder | None: ...
    async def lock_folder(self, folder_id: int) -> Folder | None:
        """The folder, locked until commit against concurrent MODSEQ/UID allocation."""
        ...

    async def rename_folders(self, mailbox_id: int, renames: Sequence[tuple[int, str]]) -> None: ...
    async def subscriptions(self, mailbox_id: int, names: Sequence[str] | None = None) -> list[str]:
        """The mailbox's subscribed names (of `names` only, when given), sorted."""
        ...

    async def set_subscribed(
        self, mailbox_id: int, names: Sequence[str], subscribed: bool
    ) -> None: ...
    async def delete_folder(self, folder_id: int) -> list[str]:
        """Remove the folder, its placements and tombstones, and the messages left without a
        placement; the blob keys nothing references any more."""
        ...

    async def counts(self, folder_id: int, first_recent_uid: int | None = None) -> FolderCounts:
        """Messages, unseen, size; and with `first_recent_uid`, how many have a UID from it on."""
        ...

    async def mailbox_usage(self, mailbox_id: int) -> tuple[int, int]:
        """The messages a mailbox holds in all its folders, and their total size in bytes (a
        copy in two folders counts twice, as each is a message the client sees)."""
        ...

    async def claim_recent(self, folder_id: int, uid_next: int) -> int:
        """The folder's first recent UID, then moved up to `uid_next`: the messages between
        are \\Recent to the caller only (RFC 3501 §2.3.2)."""
        ...

    async def filed_on_submission(
        self, folder_id: int, message_id_header: str, since: datetime
    ) -> int | None:
        """The UID in the folder of the copy filed there when the message with this Message-ID
        (without angle brackets) was submitted at or after `since`, if it is still there."""
        ...

    async def folder_uids(self, folder_id: int) -> FolderUids: ...
    async def changed_since(self, folder_id: int, modseq: int) -> list[PlacementState]: ...
    async def expunged_since(self, folder_id: int, modseq: int) -> list[int]: ...

    async def present_uids(self, folder_id: int) -> list[int]: ...
    async def tombstone_heavy_folders(self, kept: int) -> list[int]:
        """Folders with more than `kept` expunge tombstones."""
        ...

    async def tombstone_cutoff(self, folder_id: int, kept: int) -> int | None:
        """The highest MODSEQ among the folder's tombstones beyond its `kept` newest."""
        ...

    async def prune_tombstones(self, folder_id: int, up_to_modseq: int) -> int:
        """Delete tombstones up to this MODSEQ and raise the folder's floor; how many went."""
        ...

    async def fetch_rows(
        self, folder_id: int, uids: Sequence[int], structure: bool, content: bool
    ) -> list[FetchRow]:
        """Rows for these uids (at most a few hundred), by uid ascending."""
        ...

    async def unindexed(self, folder_id: int, limit: int) -> list[int]:
        """UIDs of up to `limit` messages in the folder stored before ENVELOPE and the full-text
        index were kept."""
        ...

    async def set_index(self, message_id: int, index: MessageIndex) -> None:
        """Fill the IMAP syntax columns of a message stored before they existed."""
        ...

    async def body_texts_pending(
        self, limit: int, folder_id: int | None = None
    ) -> list[tuple[int, str, int]]:
        """(message id, blob key, size) of up to `limit` messages whose body text is not yet in
        the full-text index, oldest first; only those placed in `folder_id` when given."""
        ...

    async def add_body_texts(self, rows: Sequence[tuple[int, str]]) -> None:
        """Put these (message id, body text) into the full-text index; they wait no longer."""
        ...

    async def placements(self, folder_id: int, uids: Sequence[int] | None) -> list[PlacementState]:
        """The folder's placements among `uids` (all when None), by uid ascending."""
        ...

    async def allocate_modseqs(self, folder_id: int, count: int) -> int:
        """Take `count` consecutive MODSEQs of the folder; the first."""
        ...

    async def set_thread(self, folder_id: int, uid: int, thread_id: str) -> None:
        """File one placement in the conversation `thread_id` (a replaced draft keeps its own)."""
        ...

    async def set_flags(
        self, folder_id: int, changes: Sequence[tuple[int, tuple[str, ...], int]]
    ) -> None:
        """(uid, flags, modseq) for each changed placement."""
        ...

    async def remove_placements(
        self,
        folder_id: int,
        uids: Sequence[int],
        modseq: int,
    ) -> list[str]:
        """Delete the placements, tombstone their uids at `modseq`, remove messages left without
        a placement (or a retained one); the blob keys nothing references any more."""
        ...

    async def remove_unplaced(self, message_ids: Sequence[int] | None) -> list[str]:
        """Remove these messages (all, when None) if no placement, retained or not, holds them;
        the blob keys nothing references any more."""
        ...

    # IMAP nodes and what their sessions may still see: an expunged placement is retained, and
    # with it its message and blob, while a live node's sessions may still see it (RFC 9051
    # §7.5.1 lets a session FETCH a message until it is told of the expunge).

    async def renew_node(self, node_id: str, now: datetime) -> None:
        """Record that the node is alive at `now`."""
        ...

    async def hold_folder(self, node_id: str, folder_id: int, now: datetime) -> int | None:
        """Say that the node's sessions may see the folder's messages expunged above its current
        HIGHESTMODSEQ (kept lower if the node said so already); that MODSEQ, or None when the
        folder is gone. Waits for an expunge of the folder in progress to commit."""
        ...

    async def set_view_floors(self, node_id: str, floors: dict[int, int]) -> None:
        """The node's sessions now see no expunge of these folders up to these MODSEQs."""
        ...

    async def drop_views(self, node_id: str, folder_ids: Sequence[int]) -> None:
        """The node's sessions no longer have these folders open."""
        ...

    async def forget_node(self, node_id: str) -> None:
        """Remove the node and its views: it serves no session any more."""
        ...

    async def forget_nodes(self, seen_before: datetime) -> int:
        """Remove nodes not renewed since then, with their views; how many."""
        ...

    async def other_views_floor(
        self, folder_id: int, node_id: str, seen_since: datetime
    ) -> int | None:
        """The lowest floor of the folder's views on other nodes alive since then; None if
        none has it open."""
        ...

    async def retain(self, folder_id: int, states: Sequence[PlacementState], modseq: int) -> None:
        """Keep these placements, expunged at `modseq`, for the sessions that may still see
        them."""
        ...

    async def retained(
        self, folder_id: int, uids: Sequence[int] | None
    ) -> list[tuple[PlacementState, int]]:
        """The folder's retained placements among `uids` (all when None), each with the MODSEQ
        it was expunged at, by uid."""
        ...

    async def release(self, folder_id: int, uids: Sequence[int]) -> list[str]:
        """Stop retaining these placements, removing messages nothing holds any more; the blob
        keys nothing references any more."""
        ...

    async def retaining_folders(self) -> list[int]:
        """Folders with retained placements."""
        ...

    async def message_rows(
        self, message_ids: Sequence[int], structure: bool, content: bool
    ) -> dict[int, FetchRow]:
        """Messages by id as `fetch_rows` reads them, whether placed or not; uid, flags, modseq
        and internal date are left for the caller to fill in."""
        ...

    async def move_placements(self, source_id: int, dest_id: int, modseq: int) -> None:
        """Move every placement, uid kept, into another (new, empty) folder, tombstoning them in
        the source at `modseq` (renaming INBOX, RFC 3501 §6.3.5)."""
        ...

    async def folder_totals(self, mailbox_id: int) -> list[FolderTotals]:
        """Every folder of the mailbox with its message and unseen counts (one query)."""
        ...

    async def conversations(
        self,
        folder_ids: Sequence[int],
        criteria: Criteria | None,
        before: tuple[datetime, str] | None,
        limit: int,
    ) -> list[ConversationHead]:
        """Threads with placements in the folders (matching `criteria`), latest first, after
        the keyset (latest, thread id) `before`."""
        ...

    async def conversation_count(
        self, folder_ids: Sequence[int], criteria: Criteria | None
    ) -> int: ...
    async def mail_rows(
        self,
        mailbox_id: int,
        *,
        folder_ids: Sequence[int] | None = None,
        thread_ids: Sequence[str] | None = None,
        folder_id: int | None = None,
        uids: Sequence[int] | None = None,
    ) -> list[MailRow]:
        """Placements with their message metadata: of threads, or of uids in one folder."""
        ...

    async def search(
        self, folder_id: int, criteria: Criteria, uids: Sequence[int] | None
    ) -> list[int]: ...

    async def sort_rows(self, folder_id: int, uids: Collection[int]) -> list[SortRow]:
        """What SORT and THREAD need of these messages of the folder."""
        ...


@dataclass(frozen=True)
class NewEvent:
    """An event to record; written with `core.events.record_events`, never on its own."""

    account_id: int
    type: str
    payload: dict[str, object]
    created_at: datetime
    outbound_id: int | None = None
    # The domain the event is about, when it is not the outbound message's (inbound mail): the
    # domain's webhooks are sent it.
    domain_id: int | None = None


class EventRepository(Protocol):
    async def add_many(self, new_events: Sequence[NewEvent]) -> list[int]:
        """Insert the events; their ids, in the same order."""
        ...

    async def delete_created_before(self, before: datetime, limit: int) -> int:
        """Delete up to `limit` of the oldest events created before `before`, but none a webhook
        delivery still pends on; how many."""
        ...

    async def first_and_last(
        self, outbound_ids: Sequence[int], types: Sequence[str]
    ) -> dict[tuple[int, str], tuple[datetime, datetime]]:
        """(outbound id, type) -> the first and last time an event of that type was recorded for
        the message, for those of these messages and types that have any."""
        ...


class OutboundRepository(Protocol):
    async def add(self, message: OutboundMessage) -> OutboundMessage: ...
    async def add_many(self, new_messages: Sequence[OutboundMessage]) -> list[int]:
        """Insert the messages; their ids, in the same order."""
        ...

    async def add_tags(self, tags: Sequence[tuple[int, int, str]]) -> None:
        """Tag outbound messages: (outbound id, its domain id, tag) each."""
        ...

    async def get(self, outbound_id: int) -> OutboundMessage | None: ...
    async def get_many(self, outbound_ids: Sequence[int]) -> dict[int, OutboundMessage]:
        """Those of these messages that exist, by id."""
        ...

    async def get_by_token(self, token: str) -> OutboundMessage | None:
        """Tokens are lower-case; the lookup is case-insensitive (mail systems change case)."""
        ...

    async def domains_of(self, outbound_ids: Sequence[int]) -> dict[int, int]:
        """The sending domain's id of each of these outbound messages that exists."""
        ...


class DeliveryRepository(Protocol):
    """The outbound queue: one row per recipient of an outbound message."""

    async def add_many(self, new_deliveries: Sequence[NewDelivery]) -> None: ...
    async def lease_due(
        self, owner: str, now: datetime, limit: int, lease_until: datetime
    ) -> list[LeasedDelivery]:
        """Take up to `limit` due rows (queued or deferred, next attempt reached, no live lease):
        fresh rows before retries, then oldest first. Each gets the lease and one more attempt."""
        ...

    async def hold(self, holds: Sequence[tuple[int, datetime, str]], now: datetime) -> None:
        """Put leased rows (id, next look, reason) back as held, giving back the attempt their
        lease counted."""
        ...

    async def release_held(self, account_id: int, now: datetime) -> int:
        """Make the account's held rows due now (their lease re-checks the account); how many."""
        ...

    async def next_due_at(self) -> datetime | None:
        """When the earliest queued, deferred or held row can next be leased."""
        ...

    async def record_outcomes(self, outcomes: Sequence[DeliveryOutcome]) -> list[int]:
        """Apply outcomes to rows still leased by their owner, clearing the lease; the ids applied."""
        ...

    async def waiting_counts(self) -> list[tuple[DeliveryStatus, int, datetime]]:
        """Per waiting status (queued, deferred, held) with rows: how many, and the oldest's
        creation time."""
        ...

    async def get(self, delivery_id: int) -> QueueEntry | None: ...
    async def entries(self, status: str | None, limit: int) -> list[QueueEntry]: ...
    async def for_outbound(self, outbound_id: int, *, lock: bool = False) -> list[QueueEntry]:
        """The rows of one outbound message; with `lock`, no worker leases them before commit."""
        ...

    async def cancel(self, delivery_ids: Sequence[int], now: datetime) -> None: ...
    async def reschedule(
        self,
        delivery_ids: Sequence[int],
        first_attempt: datetime,
        expires_at: datetime,
        now: datetime,
    ) -> None: ...
    async def set_status(
        self, delivery_id: int, status: str, last_status: str | None, last_reply: str, now: datetime
    ) -> None:
        """Record a final status learnt later (an asynchronous bounce or a complaint)."""
        ...

    async def retry(self, delivery_id: int | None, now: datetime) -> int:
        """Make deferred or held rows (one, or all when None) due now; how many."""
        ...

    async def delete(self, delivery_id: int) -> bool: ...


class SuppressionRepository(Protocol):
    async def add(self, suppression: Suppression) -> None:
        """Suppress the address for the domain; already suppressed is not an error."""
        ...

    async def find(self, domain_id: int, addresses: Sequence[str]) -> list[Suppression]:
        """The suppressions among these lower-case addresses."""
        ...

    async def list_for_domain(
        self, domain_id: int, after_id: int | None, limit: int
    ) -> list[Suppression]:
        """The domain's suppressions in id order, after `after_id` (a cursor)."""
        ...

    async def delete(self, domain_id: int, address: str) -> bool:
        """Lift the suppression of a lower-case address; whether there was one."""
        ...

    async def add_for_account(
        self, account_id: int, address: str, reason: str, created_at: datetime
    ) -> None:
        """Stop the account's campaign mail to a lower-case address; already is not an error."""
        ...

    async def find_for_account(self, account_id: int, addresses: Sequence[str]) -> set[str]:
        """The lower-case addresses among these the account sends no campaign mail to."""
        ...


class ReportRepository(Protocol):
    """DMARC aggregate and TLS reports received for a domain (core/reports.py)."""

    async def add(
        self, domain_id: int, report: AggregateReport, *, received_at: datetime, sender: str
    ) -> bool:
        """Store the report with its records; False when the same reporter's report of that
        id is already stored (nothing is written then)."""
        ...

    async def add_failed(
        self, domain_id: int, kind: ReportKind, reason: str, *, received_at: datetime, sender: str
    ) -> None: ...

    async def overview(
        self, domain_id: int, domain: str, *, sources: int, reports: int, tls_failures: int
    ) -> ReportOverview:
        """Totals, the `sources` biggest source IPs, TLS failures by type and MX, and the
        `reports` most recently received reports."""
        ...


class RelayRepository(Protocol):
    """Each domain's own outbound route (core/relays.py); the password is stored sealed."""

    async def get(self, domain_id: int) -> DomainRelay | None: ...
    async def get_by_domain_name(self, name: str) -> DomainRelay | None: ...
    async def put(self, relay: DomainRelay) -> None:
        """Replace the domain's choice."""
        ...

    async def remove(self, domain_id: int) -> None: ...


class AliasRepository(Protocol):
    """Aliases, catch-all mailboxes and alias domains (core/aliases.py)."""

    async def add(
        self, domain_id: int, local_part: str, created_at: datetime, mailbox_ids: Sequence[int]
    ) -> int: ...
    async def set_targets(self, alias_id: int, mailbox_ids: Sequence[int]) -> None: ...
    async def find(self, domain_id: int, local_part: str) -> Alias | None: ...
    async def list_for_domain(self, domain_id: int) -> list[Alias]: ...
    async def delete(self, alias_id: int) -> None: ...
    async def delete_empty_for_account(self, account_id: int) -> None:
        """Remove the account's aliases left without a mailbox to deliver to."""
        ...

    async def catch_all(self, domain_id: int) -> Mailbox | None: ...
    async def set_catch_all(self, domain_id: int, mailbox_id: int | None) -> None: ...
    async def add_alias_domain(self, domain_id: int, target_domain_id: int) -> None: ...
    async def alias_domain_target(self, domain_id: int) -> Domain | None:
        """The domain this one is an alias of; None for a domain of its own."""
        ...

    async def alias_domain_names(self, target_domain_id: int) -> list[str]: ...
    async def alias_domain_targets(self, account_id: int) -> dict[int, str]:
        """The account's alias domains by id, each with the name of the domain it aliases."""
        ...


class ApiKeyRepository(Protocol):
    async def add(self, key: ApiKey) -> ApiKey: ...
    async def get(self, key_id: int) -> ApiKey | None: ...
    async def get_by_prefix(self, prefix: str) -> ApiKey | None: ...
    async def list_for_domain(self, domain_id: int) -> list[ApiKey]: ...
    async def revoke(self, key_id: int, at: datetime) -> None: ...
    async def touch(self, key_id: int, at: datetime) -> None:
        """Record that the key was used at `at`."""
        ...


class SenderGroupRepository(Protocol):
    async def add(self, group: SenderGroup) -> SenderGroup: ...
    async def get(self, domain_id: int, group_id: int) -> SenderGroup | None: ...
    async def list_for_domain(self, domain_id: int) -> list[SenderGroup]: ...
    async def update(self, group: SenderGroup) -> None:
        """Replace the stored group (same id and domain) with this one."""
        ...

    async def delete(self, domain_id: int, group_id: int) -> bool: ...


class IdempotencyRepository(Protocol):
    async def get(self, domain_id: int, key: str) -> StoredResponse | None: ...
    async def add(self, response: StoredResponse) -> bool:
        """Store the response unless one is stored under its key already; whether it was stored."""
        ...

    async def delete_expired(self, domain_id: int, key: str, before: datetime) -> None:
        """Remove the key's record if it was stored before `before`."""
        ...

    async def delete_created_before(self, before: datetime, limit: int) -> int:
        """Delete up to `limit` of the oldest keys stored before `before`; how many."""
        ...


class SentEmailRepository(Protocol):
    """Read side of the outbound messages: what the API lists as a domain's sent emails."""

    async def list_for_domain(
        self,
        domain_id: int,
        *,
        before_id: int | None,
        limit: int,
        status: str | None = None,
        from_addr: str | None = None,
        batch_id: str | None = None,
        tag: str | None = None,
    ) -> list[SentEmail]:
        """Newest first; `status` keeps emails with at least one recipient in that state, `tag`
        those tagged so."""
        ...

    async def get(self, domain_id: int, email_id: int) -> SentEmail | None: ...
    async def get_by_message_id(self, domain_id: int, message_id: str) -> SentEmail | None: ...
    async def events(self, outbound_id: int, limit: int) -> list[EmailEvent]:
        """The email's events, oldest first."""
        ...


class HostResolver(Protocol):
    def addresses(self, name: str) -> list[str]:
        """IPv4 then IPv6 addresses of `name` (blocking; async callers run it in a thread).

        Raises LookupError when no answer can be had now (timeout, no nameserver answering)."""
        ...


@dataclass(frozen=True)
class WebhookSubscription:
    """Which events a webhook is sent, and for which domain."""

    webhook_id: int
    domain_id: int
    events: tuple[str, ...]


@dataclass(frozen=True)
class NewWebhookDelivery:
    """One recorded event to post to one webhook, first at `created_at` (the event's time)."""

    webhook_id: int
    event_id: int
    created_at: datetime


class WebhookRepository(Protocol):
    async def add(self, webhook: Webhook) -> Webhook: ...
    async def get(self, webhook_id: int) -> Webhook | None: ...
    async def list_for_domain(self, domain_id: int) -> list[Webhook]: ...
    async def delete(self, webhook_id: int) -> None: ...
    async def set_secret(self, webhook_id: int, secret: str) -> None: ...
    async def subscriptions(self, account_ids: Sequence[int]) -> list[WebhookSubscription]:
        """The webhooks of these accounts' domains, with the events each is sent."""
        ...


class WebhookDeliveryRepository(Protocol):
    """The webhook outbox: one row per (webhook, event), pending until delivered or given up."""

    async def add_many(self, new_deliveries: Sequence[NewWebhookDelivery]) -> None:
        """Add them pending, with no attempt made yet."""
        ...

    async def recent(
        self, webhook_ids: Sequence[int], per_webhook: int
    ) -> dict[int, list[WebhookDeliveryState]]:
        """Each webhook's newest deliveries, newest first."""
        ...

    async def lease_due(
        self, owner: str, now: datetime, limit: int, lease_until: datetime
    ) -> list[LeasedWebhookDelivery]:
        """Take up to `limit` pending deliveries whose attempt is due and that no live lease holds,
        oldest first; each gets the lease and one more attempt."""
        ...

    async def any_due(self, now: datetime) -> bool:
        """Whether `lease_due` would find something now."""
        ...

    async def record_outcomes(self, outcomes: Sequence[WebhookOutcome]) -> list[int]:
        """Apply outcomes to rows still leased by their owner, clearing the lease; the ids applied."""
        ...

    async def delete_finished_before(self, before: datetime, limit: int) -> int:
        """Delete up to `limit` of the oldest delivered or given-up deliveries last changed
        before `before`; how many."""
        ...


class OidcIdentityRepository(Protocol):
    async def user_id_for(self, provider: str, subject: str) -> int | None: ...
    async def subject_of(self, provider: str, user_id: int) -> str | None:
        """The user's subject at this provider, when linked to it."""
        ...

    async def link(self, provider: str, subject: str, user_id: int, now: datetime) -> None: ...
    async def touch(self, provider: str, subject: str, now: datetime) -> None: ...


class OidcLoginRepository(Protocol):
    async def add(self, login: OidcLogin) -> None: ...
    async def take(self, state_hash: str, browser_hash: str) -> OidcLogin | None:
        """The sign-in with this state started by this browser, removed: a state is good for
        one answer only."""
        ...

    async def delete_expired(self, now: datetime) -> None: ...


class ComposeRepository(Protocol):
    """The webmail compose side's own rows and lookups (uploads, copies of sent messages)."""

    async def add_upload(self, upload: Upload) -> None: ...
    async def upload(self, upload_id: str, user_id: int, mailbox_id: int) -> Upload | None:
        """The upload when it belongs to this user and mailbox (expired or not)."""
        ...

    async def take_expired_uploads(self, now: datetime, limit: int) -> list[str]:
        """Delete up to `limit` expired uploads; their blob keys."""
        ...

    async def copies_in(self, message_ids: Sequence[int], folder_name: str) -> list[FolderCopy]:
        """The placements of these message rows in folders named `folder_name`."""
        ...

    async def outbound_of_copy(
        self, mailbox_id: int, message_id: int, message_id_header: str | None
    ) -> OutboundMessage | None:
        """The mailbox's latest outbound message whose copy is this message row, or (for a copy
        a client filed itself) whose Message-ID is `message_id_header`."""
        ...

    async def message_id_header(self, message_id: int) -> str | None: ...
    async def correspondence(self, mailbox_id: int, limit: int) -> list[Correspondence]:
        """The addresses of the mailbox's `limit` most recently placed messages."""
        ...


class VacationRepository(Protocol):
    async def get(self, mailbox_id: int) -> VacationSettings | None: ...

    async def put(self, settings: VacationSettings) -> None:
        """Store the mailbox's settings, replacing what it had."""
        ...

    async def silent_until(self, mailbox_id: int, key: str) -> datetime | None:
        """Until when the mailbox stays silent to `key`; None if it never answered it."""
        ...

    async def claim_reply(self, mailbox_id: int, key: str, now: datetime, until: datetime) -> bool:
        """True, and silent to `key` until `until`, unless the mailbox already is at `now`."""
        ...

    async def prune_replies(self, now: datetime) -> int:
        """Forget every silence that has ended; the number forgotten."""
        ...

    async def count_replies(self, mailbox_id: int) -> int:
        """How many senders the mailbox remembers answering."""
        ...


class UnitOfWork(Protocol):
    """One transaction over every repository. `async with uow:` then `await uow.commit()` once."""

    @property
    def accounts(self) -> AccountRepository: ...
    @property
    def usage(self) -> UsageRepository: ...
    @property
    def billing_events(self) -> BillingEventRepository: ...
    @property
    def users(self) -> UserRepository: ...
    @property
    def domains(self) -> DomainRepository: ...
    @property
    def mailboxes(self) -> MailboxRepository: ...
    @property
    def folders(self) -> FolderRepository: ...
    @property
    def messages(self) -> MessageRepository: ...
    @property
    def events(self) -> EventRepository: ...
    @property
    def outbound(self) -> OutboundRepository: ...
    @property
    def deliveries(self) -> DeliveryRepository: ...
    @property
    def suppressions(self) -> SuppressionRepository: ...
    @property
    def mailstore(self) -> MailStoreRepository: ...
    @property
    def webhooks(self) -> WebhookRepository: ...
    @property
    def webhook_deliveries(self) -> WebhookDeliveryRepository: ...
    @property
    def api_keys(self) -> ApiKeyRepository: ...
    @property
    def sender_groups(self) -> SenderGroupRepository: ...
    @property
    def idempotency(self) -> IdempotencyRepository: ...
    @property
    def sent_emails(self) -> SentEmailRepository: ...
    @property
    def oidc_identities(self) -> OidcIdentityRepository: ...
    @property
    def oidc_logins(self) -> OidcLoginRepository: ...
    @property
    def sessions(self) -> SessionRepository: ...
    @property
    def one_time_tokens(self) -> OneTimeTokenRepository: ...
    @property
    def invitations(self) -> InvitationRepository: ...
    @property
    def mailbox_assignments(self) -> MailboxAssignmentRepository: ...
    @property
    def recovery_codes(self) -> RecoveryCodeRepository: ...
    @property
    def compose(self) -> ComposeRepository: ...
    @property
    def reports(self) -> ReportRepository: ...
    @property
    def relays(self) -> RelayRepository: ...
    @property
    def forwarding(self) -> ForwardingRepository: ...
    @property
    def aliases(self) -> AliasRepository: ...
    @property
    def vacations(self) -> VacationRepository: ...
    @property
    def sieve_scripts(self) -> SieveScriptRepository: ...
    @property
    def contacts(self) -> ContactRepository: ...
    @property
    def affiliates(self) -> AffiliateRepository: ...
    @property
    def campaigns(self) -> CampaignRepository: ...

    async def __aenter__(self) -> Self: ...
    async def __aexit__(self, *exc: object) -> None: ...
    async def commit(self) -> None: ...
    async def rollback(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self, *, read_only: bool = False) -> UnitOfWork:
        """`read_only` promises no writes, so the transaction need not wait for writers."""
        ...
