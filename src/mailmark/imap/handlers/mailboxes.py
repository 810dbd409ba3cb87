"""Authenticated-state commands on folders: SELECT, EXAMINE, CREATE, DELETE, RENAME, SUBSCRIBE,
UNSUBSCRIBE, LIST (RFC 5258 LIST-EXTENDED basics, RFC 6154 SPECIAL-USE, RFC 5819 LIST-STATUS),
LSUB, STATUS and APPEND (RFC 4315 APPENDUID)."""

from __future__ import annotations

import bisect
import time

from mailmark.core.errors import NotFound
from mailmark.core.mailstore import DELIMITER, INBOX, SYSTEM_FLAGS, AppendItem, FolderStatus
from mailmark.imap import encoder
from mailmark.imap.commands import (
    Append,
    Command,
    ListCommand,
    MailboxCommand,
    QresyncParameters,
    Rename,
    Select,
    Status,
)
from mailmark.imap.session import Done, Reply, SelectedFolder, Session, SessionState
from mailmark.imap.wildcards import PatternTooLong, compile_pattern


async def do_select(session: Session, command: Command) -> Done | None:
    assert isinstance(command, Select)
    if session.selected is not None:
        # RFC 9051 §6.3.2: selecting deselects the current folder, even when the new one fails.
        session.selected = None
        session.state = SessionState.AUTHENTICATED
        if session.rev2 or session.condstore:
            session.write(encoder.untagged_status("OK", "Previous mailbox closed", "CLOSED"))
    name = session.decode_name(command.mailbox)
    # Taken before the snapshot, so a change committed while selecting is looked at afterwards.
    generation = session.signals.generation(session.mailbox_id)
    # The snapshot is as good as a poll for other nodes' changes (Session.announce_changes).
    polled_at = time.monotonic()
    snapshot = await session.store.select(session.mailbox_id, name, view=True)
    if command.qresync is not None and not session.qresync:
        raise Reply("BAD", "ENABLE QRESYNC first (RFC 7162 §3.2.5)")
    if command.condstore:
        session.condstore = True  # RFC 7162 §3.1: SELECT (CONDSTORE) enables it
    flags = [*SYSTEM_FLAGS, *snapshot.keywords]
    write = session.write
    write(encoder.untagged(b"FLAGS " + encoder.flag_list(flags)))
    permanent = encoder.flag_list([*flags, "\\*"]).decode() if not command.read_only else "()"
    write(encoder.untagged_status("OK", "Flags permitted", f"PERMANENTFLAGS {permanent}"))
    write(encoder.untagged(b"%d EXISTS" % len(snapshot.uids)))
    recent: set[int] = set()
    if not session.rev2:
        # RFC 3501 §2.3.2: recent to the first session to select the folder since they came;
        # EXAMINE changes nothing, so it shows them without taking them.
        first = snapshot.first_recent_uid
        if not command.read_only and first < snapshot.uidnext:
            first = await session.store.claim_recent(snapshot.folder_id, snapshot.uidnext)
        # The UIDs are ascending: the recent ones are a tail, found without a pass over all.
        recent = set(snapshot.uids[bisect.bisect_left(snapshot.uids, first) :])
        write(encoder.untagged(b"%d RECENT" % len(recent)))
        if snapshot.first_unseen_seq is not None:
            write(
                encoder.untagged_status("OK", "First unseen", f"UNSEEN {snapshot.first_unseen_seq}")
            )
    write(encoder.untagged_status("OK", "UIDs valid", f"UIDVALIDITY {snapshot.uidvalidity}"))
    write(encoder.untagged_status("OK", "Predicted next UID", f"UIDNEXT {snapshot.uidnext}"))
    write(encoder.untagged_status("OK", "Highest", f"HIGHESTMODSEQ {snapshot.highestmodseq}"))
    if session.rev2:
        # RFC 9051 §6.3.2: the folder's LIST response, with its attributes.
        attributes = f"({snapshot.special_use})" if snapshot.special_use else "()"
        write(
            b"* LIST "
            + attributes.encode()
            + b' "/" '
            + session.encode_name(snapshot.name)
            + b"\r\n"
        )
    session.selected = SelectedFolder(
        folder_id=snapshot.folder_id,
        name=snapshot.name,
        read_only=command.read_only,
        uidvalidity=snapshot.uidvalidity,
        uidnext=snapshot.uidnext,
        highestmodseq=snapshot.highestmodseq,
        uids=list(snapshot.uids),
        keywords=set(snapshot.keywords),
        generation=generation,
        polled_at=polled_at,
        recent=recent,
    )
    session.state = SessionState.SELECTED
    if command.qresync is not None and command.qresync.uidvalidity == snapshot.uidvalidity:
        await _resynchronise(session, command.qresync)
    verb = "EXAMINE" if command.read_only else "SELECT"
    return Done(f"{verb} completed", "READ-ONLY" if command.read_only else "READ-WRITE")


async def _resynchronise(session: Session, known: QresyncParameters) -> None:
    """RFC 7162 §3.2.5.1: what was expunged (VANISHED (EARLIER)) and what changed (FETCH with
    UID, FLAGS and MODSEQ) since the MODSEQ the client remembers."""
    selected = session.selected
    assert selected is not None
    changes = await session.store.changes_since(selected.folder_id, known.modseq)
    ranges = None if known.known_uids is None else known.known_uids.resolve(selected.uidnext)
    session.write_vanished(changes.vanished(ranges, selected.uids))
    for state in changes.changed:
        seq = selected.seq_of(state.uid)
        if seq is not None:
            selected.announced[state.uid] = state.modseq
            session.write(session.flag_fetch(seq, state))


async def do_create(session: Session, command: Command) -> Done | None:
    assert isinstance(command, MailboxCommand)
    # Dovecot's practice: CREATE leaves the subscriptions to the client (RFC 9051 §6.3.7).
    await session.store.create_folder(
        session.mailbox_id, session.decode_name(command.mailbox), subscribe=False
    )
    return None


async def do_delete(session: Session, command: Command) -> Done | None:
    assert isinstance(command, MailboxCommand)
    await session.store.delete_folder(session.mailbox_id, session.decode_name(command.mailbox))
    return None


async def do_rename(session: Session, command: Command) -> Done | None:
    assert isinstance(command, Rename)
    await session.store.rename_folder(
        session.mailbox_id, session.decode_name(command.old), session.decode_name(command.new)
    )
    return None


async def do_subscribe(session: Session, command: Command) -> Done | None:
    assert isinstance(command, MailboxCommand)
    await session.store.set_subscribed(
        session.mailbox_id, session.decode_name(command.mailbox), command.name == "SUBSCRIBE"
    )
    return None


def _matches(name: str, patterns: list[str]) -> bool:
    for pattern in patterns:
        if compile_pattern(pattern, DELIMITER).match(name):
            return True
        # RFC 9051 §5.1: INBOX is case-insensitive, and so are the names under it.
        head = pattern[: len(INBOX)]
        if (
            (name == INBOX or name.startswith(INBOX + DELIMITER))
            and (head.upper() == INBOX or "*" in head or "%" in head)
            and compile_pattern(pattern, DELIMITER, True).match(name)
        ):
            return True
    return False


async def do_list(session: Session, command: Command) -> Done | None:
    assert isinstance(command, ListCommand)
    verb = "LSUB" if command.lsub else "LIST"
    if not command.lsub and command.patterns == ("",):
        # RFC 9051 §6.3.9: an empty pattern asks for the delimiter and the root.
        session.write(b'* LIST (\\Noselect) "/" ""\r\n')
        return None
    reference = session.decode_name(command.reference)
    patterns = [reference + session.decode_name(pattern) for pattern in command.patterns]
    try:
        for pattern in patterns:
            compile_pattern(pattern, DELIMITER)
    except PatternTooLong as error:
        raise Reply("BAD", str(error)) from None
    folders = await session.store.list_folders(session.mailbox_id)
    by_name = {folder.name: folder for folder in folders}
    parents = {name.rsplit(DELIMITER, 1)[0] for name in by_name if DELIMITER in name}
    # Ancestors of existing folders that do not exist themselves (RFC 9051 §6.3.9: listed
    # as \Noselect / \NonExistent when a pattern matches them).
    ancestors: set[str] = set()
    for name in by_name:
        ancestors.update(_ancestors(name))
    ancestors -= by_name.keys()
    by_subscription = command.lsub or command.select_subscribed
    subscribed: set[str] = set()
    if by_subscription or command.return_subscribed:
        subscribed = set(await session.store.subscriptions(session.mailbox_id))
    # Names the pattern reaches only through a subscribed descendant it does not match: LSUB
    # lists them as \Noselect when unsubscribed (RFC 3501 §6.3.9, the "%" case), LIST
    # (SUBSCRIBED RECURSIVEMATCH) with CHILDINFO ("SUBSCRIBED") (RFC 5258 §3.5).
    reached: set[str] = set()
    if command.lsub or (command.select_subscribed and command.recursive_match):
        for name in subscribed:
            if not _matches(name, patterns):
                reached.update(a for a in _ancestors(name) if _matches(a, patterns))
    names = (subscribed | reached) if by_subscription else (by_name.keys() | ancestors)
    for name in sorted(names, key=lambda n: (n != INBOX, n)):
        if not (_matches(name, patterns) or name in reached):
            continue
        folder = by_name.get(name)
        if command.select_special_use and (folder is None or folder.special_use is None):
            continue
        attributes: list[str] = []
        if command.lsub:
            if folder is None or name not in subscribed:
                attributes.append("\\Noselect")
        else:
            if folder is None:
                attributes.append("\\NonExistent" if command.extended else "\\Noselect")
            if name in parents or name in ancestors:
                attributes.append("\\HasChildren")
            elif folder is not None:
                attributes.append("\\HasNoChildren")
            if folder is not None and folder.special_use:
                attributes.append(folder.special_use)
            if name in subscribed and (command.return_subscribed or command.select_subscribed):
                attributes.append("\\Subscribed")
        extra = b""
        if name in reached and not command.lsub:
            extra = b' ("CHILDINFO" ("SUBSCRIBED"))'
        session.write(
            f"* {verb} (".encode()
            + " ".join(attributes).encode()
            + b') "/" '
            + session.encode_name(name)
            + extra
            + b"\r\n"
        )
        if command.return_status and folder is not None:
            status = await session.store.status(session.mailbox_id, name)
            session.write(_status_line(session, name, command.return_status, status))
    return None


def _ancestors(name: str) -> list[str]:
    """ "a" and "a/b" for "a/b/c"."""
    parts = name.split(DELIMITER)
    return [DELIMITER.join(parts[:n]) for n in range(1, len(parts))]


def _status_line(
    session: Session, name: str, items: tuple[str, ...], status: FolderStatus
) -> bytes:
    values = {
        "MESSAGES": status.messages,
        "RECENT": status.recent,
        "UIDNEXT": status.uidnext,
        "UIDVALIDITY": status.uidvalidity,
        "UNSEEN": status.unseen,
        "HIGHESTMODSEQ": status.highestmodseq,
        "SIZE": status.size,
    }
    body = " ".join(f"{item} {values[item]}" for item in items)
    return b"* STATUS " + session.encode_name(name) + f" ({body})\r\n".encode()


async def do_status(session: Session, command: Command) -> Done | None:
    assert isinstance(command, Status)
    name = session.decode_name(command.mailbox)
    if "HIGHESTMODSEQ" in command.items:
        session.enable_condstore()  # RFC 7162 §3.1: a CONDSTORE-enabling command
    status = await session.store.status(session.mailbox_id, name)
    session.write(_status_line(session, name, command.items, status))
    return None


async def do_append(session: Session, command: Command) -> Done | None:
    """APPEND, and RFC 3502 MULTIAPPEND: all the messages or none (§6.3.11), APPENDUID with the
    UIDs in the messages' order (RFC 4315 §3)."""
    assert isinstance(command, Append)
    if not session.utf8 and any(message.utf8 for message in command.messages):
        # RFC 6855 §4: the UTF8 data item only after ENABLE UTF8=ACCEPT (IMAP4rev2 includes it).
        raise Reply("BAD", "ENABLE UTF8=ACCEPT before sending a UTF8 data item")
    name = session.decode_name(command.mailbox)
    items = [
        AppendItem(
            message.message,
            tuple(flag for flag in message.flags if flag != "\\Recent"),
            message.internal_date,
        )
        for message in command.messages
    ]
    try:
        result = await session.store.append_many(session.mailbox_id, name, items)
    except NotFound:
        # RFC 9051 §6.3.12: the client may CREATE the folder and try again.
        raise Reply("NO", "No such folder", "TRYCREATE") from None
    uids = encoder.sequence_set(result.uids)
    return Done("APPEND completed", f"APPENDUID {result.uidvalidity} {uids}")
