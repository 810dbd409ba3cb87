"""Selected-state commands: CHECK, CLOSE, UNSELECT, EXPUNGE, UID EXPUNGE (RFC 4315), SEARCH
(RFC 4731 ESEARCH, RFC 5182 SEARCHRES), SORT and THREAD (RFC 5256), FETCH, STORE (RFC 7162 CONDSTORE), COPY and MOVE
(RFC 6851) with COPYUID, and their UID forms."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from mailmark.core import imap_sort, imap_structure, search
from mailmark.core.errors import NotFound
from mailmark.core.mailstore import FetchedMessage, FetchWants
from mailmark.core.states import SystemFlag
from mailmark.imap import encoder
from mailmark.imap.commands import (
    Command,
    Copy,
    Expunge,
    Fetch,
    FetchAttribute,
    Search,
    Simple,
    Sort,
    Store,
    Thread,
)
from mailmark.imap.session import Done, Reply, SelectedFolder, Session, SessionState

_CONTENT_ITEMS = frozenset({"RFC822", "RFC822.HEADER", "RFC822.TEXT"})
# RFC 9051 §6.4.5: these set \Seen (BODY.PEEK and BINARY.PEEK do not).
_SEEING_ITEMS = frozenset({"RFC822", "RFC822.TEXT"})


def _selected(session: Session) -> SelectedFolder:
    assert session.selected is not None
    return session.selected


def _writable(selected: SelectedFolder) -> None:
    if selected.read_only:
        raise Reply("NO", "The folder is open read-only (EXAMINE)", "READ-ONLY")


async def do_check(session: Session, command: Command) -> Done | None:
    _selected(session).polled_at = 0.0
    return None


async def do_close(session: Session, command: Command) -> Done | None:
    assert isinstance(command, Simple)
    selected = _selected(session)
    if command.name == "CLOSE" and not selected.read_only:
        # RFC 9051 §6.4.1: expunge silently, without EXPUNGE responses.
        await session.store.expunge(selected.folder_id, caller=selected)
    session.selected = None
    session.state = SessionState.AUTHENTICATED
    return None


async def do_expunge(session: Session, command: Command) -> Done | None:
    assert isinstance(command, Expunge)
    selected = _selected(session)
    _writable(selected)
    if command.sequence is None:
        expunged = await session.store.expunge(selected.folder_id, caller=selected)
    else:
        uids = session.resolve(command.sequence, uid=True)
        expunged = (
            await session.store.expunge(selected.folder_id, uids, caller=selected) if uids else []
        )
    session.remove_expunged(expunged)
    return None


def _check_charset(session: Session, charset: str | None, *, optional: bool) -> None:
    if session.utf8_accept and charset is not None and (optional or charset != "UTF-8"):
        # RFC 6855 §3 and its erratum 4029: once UTF8=ACCEPT is on, an optional charset label
        # conflicts with it, and a mandatory one (SORT, THREAD) may only say UTF-8.
        raise Reply("BAD", "CHARSET conflicts with UTF8=ACCEPT (RFC 6855 §3)")
    if charset not in (None, "UTF-8", "US-ASCII"):
        raise Reply("NO", "Unsupported charset", "BADCHARSET (UTF-8 US-ASCII)")


async def do_sort(session: Session, command: Command) -> Done | None:
    """RFC 5256 SORT and UID SORT."""
    assert isinstance(command, Sort)
    selected = _selected(session)
    _check_charset(session, command.charset, optional=False)
    criteria = session.resolve_criteria(command.criteria)
    ordered = await session.store.sort(selected.folder_id, criteria, command.keys, selected.uids)
    numbers = ordered if command.uid else [selected.seq_of(uid) or 0 for uid in ordered]
    session.write(encoder.untagged(b"SORT" + b"".join(b" %d" % n for n in numbers)))
    return None


async def do_thread(session: Session, command: Command) -> Done | None:
    """RFC 5256 THREAD and UID THREAD."""
    assert isinstance(command, Thread)
    selected = _selected(session)
    _check_charset(session, command.charset, optional=False)
    criteria = session.resolve_criteria(command.criteria)
    threads = await session.store.thread(
        selected.folder_id, criteria, command.algorithm, selected.uids
    )
    number = (lambda uid: uid) if command.uid else (lambda uid: selected.seq_of(uid) or 0)
    listed = imap_sort.render(threads, number)
    session.write(encoder.untagged(b"THREAD" + (b" " + listed.encode() if listed else b"")))
    return None


async def do_search(session: Session, command: Command) -> Done | None:
    assert isinstance(command, Search)
    selected = _selected(session)
    _check_charset(session, command.charset, optional=True)
    criteria = session.resolve_criteria(command.criteria)
    found = [
        uid
        for uid in await session.store.search(selected.folder_id, criteria, selected.uids)
        if selected.seq_of(uid) is not None
    ]
    modseq = None
    if search.uses_modseq(criteria):
        session.enable_condstore()
        if found:
            # RFC 7162 §3.1.5: with only MIN and/or MAX returned, the MODSEQ is that of the
            # messages returned, not the highest of every match.
            returned = found
            wanted_now = set(command.return_options or ())
            if wanted_now & {"MIN", "MAX"} and not wanted_now & {"ALL", "COUNT"}:
                ends = ((found[0], "MIN"), (found[-1], "MAX"))
                returned = sorted({uid for uid, end in ends if end in wanted_now})
            modseq = await _highest_modseq(session, selected, returned)
    numbers = found if command.uid else [selected.seq_of(uid) or 0 for uid in found]
    options = command.return_options
    if options is None:
        line = b"SEARCH" + b"".join(b" %d" % n for n in numbers)
        if modseq is not None:
            line += b" (MODSEQ %d)" % modseq
        session.write(encoder.untagged(line))
        return None
    wanted = set(options) or {"ALL"}
    if "SAVE" in wanted:
        selected.saved = _saved_result(found, wanted)
        wanted.discard("SAVE")
        if not wanted:
            return None
    parts = [f'ESEARCH (TAG "{command.tag}")']
    if command.uid:
        parts.append("UID")
    if numbers and "MIN" in wanted:
        parts.append(f"MIN {numbers[0]}")
    if numbers and "MAX" in wanted:
        parts.append(f"MAX {numbers[-1]}")
    if numbers and "ALL" in wanted:
        parts.append(f"ALL {encoder.sequence_set(numbers)}")
    if "COUNT" in wanted:
        parts.append(f"COUNT {len(numbers)}")
    if modseq is not None:
        parts.append(f"MODSEQ {modseq}")
    session.write(encoder.untagged(" ".join(parts)))
    return None


def _saved_result(found: list[int], wanted: set[str]) -> list[int]:
    """RFC 5182 §2.1: SAVE keeps every match, except that with only MIN and/or MAX (no ALL or
    COUNT) it keeps just those."""
    if wanted & {"ALL", "COUNT"} or not wanted & {"MIN", "MAX"} or not found:
        return list(found)
    picked = set()
    if "MIN" in wanted:
        picked.add(found[0])
    if "MAX" in wanted:
        picked.add(found[-1])
    return sorted(picked)


async def _highest_modseq(session: Session, selected: SelectedFolder, uids: list[int]) -> int:
    highest = 0
    async for chunk in session.store.fetch(selected.folder_id, uids, FetchWants()):
        highest = max([highest, *(message.modseq for message in chunk)])
    return highest


def _wants(attributes: tuple[FetchAttribute, ...]) -> FetchWants:
    names = {a.name for a in attributes if a.section is None}
    return FetchWants(
        envelope="ENVELOPE" in names,
        bodystructure=bool(names & {"BODYSTRUCTURE", "BODY"}),
        content=bool(names & _CONTENT_ITEMS) or any(a.section is not None for a in attributes),
        state=bool(names & {"FLAGS", "MODSEQ"}),
    )


def _sets_seen(attribute: FetchAttribute) -> bool:
    if attribute.section is not None:
        return attribute.name in ("BODY", "BINARY") and not attribute.peek
    return attribute.name in _SEEING_ITEMS


async def do_fetch(session: Session, command: Command) -> Done | None:
    assert isinstance(command, Fetch)
    selected = _selected(session)
    uids = session.resolve(command.sequence, uid=command.uid)
    attributes = command.attributes
    if command.changed_since is not None or any(a.name == "MODSEQ" for a in attributes):
        session.enable_condstore()  # RFC 7162 §3.1: CONDSTORE-enabling
    if (
        session.condstore
        and any(a.name == "FLAGS" for a in attributes)
        and not any(a.name == "MODSEQ" for a in attributes)
    ):
        attributes = (*attributes, FetchAttribute("MODSEQ"))
    if not uids:
        return None
    seen_now: set[int] = set()
    if not selected.read_only and any(_sets_seen(a) for a in attributes):
        result = await session.store.store_flags(selected.folder_id, uids, "add", [SystemFlag.SEEN])
        session.note_own_changes(result.changed)
        seen_now = {state.uid for state in result.changed}
    if command.vanished and command.changed_since is not None:
        if not session.qresync:
            raise Reply("BAD", "ENABLE QRESYNC first (RFC 7162 §3.2.6)")
        changes = await session.store.changes_since(selected.folder_id, command.changed_since)
        ranges = command.sequence.resolve(selected.uidnext)
        session.write_vanished(changes.vanished(ranges, selected.uids))
    wants_flags = any(a.name == "FLAGS" for a in attributes)
    flags_of = session.flags_of
    renderers = [
        (
            (lambda m, _: b"FLAGS " + encoder.flag_list(flags_of(m.uid, m.flags)))
            if attribute.name == "FLAGS" and attribute.section is None
            else _renderer(attribute)
        )
        for attribute in attributes
    ]
    # Sections and BINARY parse and decode message bodies: CPU work that grows with the message.
    # A chunk holding more than a little of it is computed in a worker process (core/cpu_pool.py),
    # so a client fetching large parts never holds the event loop; a small one is computed here.
    requests = _section_requests(attributes)
    changed_since = command.changed_since
    answered: set[int] = set()
    announced = selected.announced
    counters = session.config.counters
    cpu = session.config.cpu

    wants = _wants(attributes)
    if seen_now or changed_since is not None:
        wants = replace(wants, state=True)
    wants_content = wants.content
    async for chunk in session.store.fetch(
        selected.folder_id, uids, wants, uidvalidity=selected.uidvalidity
    ):
        live = [
            message
            for message in chunk
            if selected.seq_of(message.uid) is not None
            and (changed_since is None or message.modseq > changed_since)
        ]
        if requests:
            contents = [message.content or b"" for message in live]
            extracted = await cpu.run(
                sum(map(len, contents)), imap_structure.extract_many, contents, requests
            )
            sections = [
                imap_structure.MessageSections.extracted(content, found)
                for content, found in zip(contents, extracted, strict=True)
            ]
        elif wants_content:
            sections = [imap_structure.MessageSections(m.content or b"") for m in live]
        else:
            # No item reads a section: ENVELOPE, FLAGS and the like render from the row alone.
            sections = [NO_SECTIONS] * len(live)
        # One write per chunk: each write on a TLS stream is a record and a system call.
        out: list[bytes] = []
        flags_shown: set[str] = set()
        for message, message_sections in zip(live, sections, strict=True):
            seq = selected.seq_of(message.uid)
            if seq is None:
                continue  # expunged while the sections were extracted
            items = [item(message, message_sections) for item in renderers]
            counters.bytes_decoded += message_sections.bytes_decoded
            answered.add(message.uid)
            if wants_flags or message.uid in seen_now:
                flags_shown.update(message.flags)
                announced[message.uid] = message.modseq
                if not wants_flags:
                    items.append(
                        b"FLAGS " + encoder.flag_list(session.flags_of(message.uid, message.flags))
                    )
            # encoder.fetch's response, its pieces joined once for the whole chunk.
            out += (b"* %d FETCH (" % seq, b" ".join(items), b")\r\n")
        # Keywords new to the session, once per chunk, ahead of the responses that use them.
        session.announce_keywords(flags_shown)
        session.write(b"".join(out))
        await session.flush()
    if changed_since is None and any(
        uid not in answered and selected.seq_of(uid) is not None for uid in uids
    ):
        # RFC 9051 §7.1: a message this session still sees was expunged on another node and is
        # gone; the session is told of the expunge at its next chance to be.
        raise Reply("NO", "Some of the messages were expunged meanwhile", "EXPUNGEISSUED")
    return None


def _section_requests(
    attributes: tuple[FetchAttribute, ...],
) -> tuple[imap_structure.SectionRequest, ...]:
    """The sections the items need from a parse of the message body (BODY[] needs none)."""
    Request = imap_structure.SectionRequest
    requests: dict[imap_structure.SectionRequest, None] = {}
    for attribute in attributes:
        section = attribute.section
        if section is None:
            if attribute.name in ("RFC822.HEADER", "RFC822.TEXT"):
                requests[Request("BODY", (), attribute.name.removeprefix("RFC822."))] = None
        elif attribute.name == "BINARY.SIZE":
            requests[Request("BINARY.SIZE", section.part)] = None
        elif attribute.name != "BODY":
            requests[Request("BINARY", section.part, partial=attribute.partial)] = None
        elif section.part or section.kind:
            requests[Request("BODY", section.part, section.kind, section.fields)] = None
    return tuple(requests)


Renderer = Callable[[FetchedMessage, imap_structure.MessageSections], bytes]

# What a FETCH without content passes its renderers, none of which reads it.
NO_SECTIONS = imap_structure.MessageSections(b"")

_SIMPLE_RENDERERS: dict[str, Renderer] = {
    "UID": lambda m, _: b"UID %d" % m.uid,
    "FLAGS": lambda m, _: b"FLAGS (" + " ".join(m.flags).encode() + b")",
    "INTERNALDATE": lambda m, _: b"INTERNALDATE " + encoder.date_time(m.internal_date),
    "RFC822.SIZE": lambda m, _: b"RFC822.SIZE %d" % m.size,
    "MODSEQ": lambda m, _: b"MODSEQ (%d)" % m.modseq,
    "ENVELOPE": lambda m, _: b"ENVELOPE " + (m.envelope or b"NIL"),
    "BODYSTRUCTURE": lambda m, _: b"BODYSTRUCTURE " + (m.bodystructure or b"NIL"),
}


def _renderer(attribute: FetchAttribute) -> Renderer:
    """How to render one FETCH item, chosen once per command rather than once per message."""
    section = attribute.section
    if section is None and attribute.name in _SIMPLE_RENDERERS:
        return _SIMPLE_RENDERERS[attribute.name]
    if section is not None and attribute.name == "BODY":
        label = b"BODY[" + section.render().encode() + b"]"
        if not section.part and not section.kind:
            # BODY[]: the whole message as stored, no MIME parse.
            if attribute.partial is not None:
                return lambda message, _: (
                    label + _partial(attribute, message.content or b"", _octets)
                )
            # One copy of the content: the small head is joined first.
            return lambda message, _: (
                label
                + (b" ~{%d}\r\n" if b"\x00" in (message.content or b"") else b" {%d}\r\n")
                % len(message.content or b"")
                + (message.content or b"")
            )

        def body_section(
            message: FetchedMessage, sections: imap_structure.MessageSections
        ) -> bytes:
            data = sections.section(section.part, section.kind, section.fields)
            return label + _partial(attribute, data, _octets)

        return body_section
    return lambda message, sections: _item(attribute, message, sections)


def _item(
    attribute: FetchAttribute, message: FetchedMessage, sections: imap_structure.MessageSections
) -> bytes:
    name = attribute.name
    section = attribute.section
    if section is None:
        if name == "BODY":
            return b"BODY " + (message.body or b"NIL")
        if name == "RFC822":
            return b"RFC822 " + _octets(message.content or b"")
        kind = "HEADER" if name == "RFC822.HEADER" else "TEXT"
        return name.encode() + b" " + _octets(sections.section((), kind))
    label = ".".join(str(n) for n in section.part).encode()
    try:
        if name == "BINARY.SIZE":
            return b"BINARY.SIZE[" + label + b"] %d" % sections.binary_size(section.part)
        if attribute.partial is not None:
            # RFC 9051 §6.4.5: the response names only the origin octet.
            origin, length = attribute.partial
            data = sections.binary_slice(section.part, origin, length)
            return b"BINARY[" + label + b"]<%d> " % origin + _octets(data)
        return b"BINARY[" + label + b"] " + _octets(sections.binary(section.part))
    except imap_structure.UnknownTransferEncoding:
        # RFC 3516 §4.3 / RFC 9051 §7.1: the part's encoding cannot be undone.
        raise Reply("NO", "Unknown Content-Transfer-Encoding", "UNKNOWN-CTE") from None


def _octets(data: bytes) -> bytes:
    """A literal, or a literal8 when the octets hold a NUL, which no literal may carry (RFC
    9051 §4.3; RFC 3516 §4.2). BODY sections of binary parts get one too: sent as a literal,
    the NUL broke clients' parsers."""
    return encoder.literal8(data) if b"\x00" in data else encoder.literal(data)


def _partial(attribute: FetchAttribute, data: bytes, render: Callable[[bytes], bytes]) -> bytes:
    if attribute.partial is None:
        return b" " + render(data)
    origin, length = attribute.partial
    # RFC 9051 §6.4.5: the response names only the origin octet.
    return b"<%d> " % origin + render(data[origin : origin + length])


async def do_store(session: Session, command: Command) -> Done | None:
    assert isinstance(command, Store)
    selected = _selected(session)
    _writable(selected)
    uids = session.resolve(command.sequence, uid=command.uid)
    if command.unchanged_since is not None:
        session.enable_condstore()
    flags = [flag for flag in command.flags if flag != "\\Recent"]
    if not uids:
        return None
    result = await session.store.store_flags(
        selected.folder_id, uids, command.mode, flags, command.unchanged_since
    )
    session.note_own_changes(result.changed)
    if command.mode != "remove":
        # RFC 9051 §7.3.5: a FLAGS response when the set of defined flags grows.
        session.announce_keywords(flags)
    for state in result.changed:
        seq = selected.seq_of(state.uid)
        if seq is None:
            continue
        if not command.silent:
            session.write(session.flag_fetch(seq, state, with_uid=command.uid))
        elif session.condstore:
            # RFC 7162 §3.1.3: with .SILENT the new MODSEQ is still reported.
            session.write(
                encoder.fetch(seq, [b"UID %d" % state.uid, b"MODSEQ (%d)" % state.modseq])
            )
    if result.modified:
        numbers = (
            result.modified
            if command.uid
            else sorted(
                seq for seq in (selected.seq_of(uid) for uid in result.modified) if seq is not None
            )
        )
        return Done("Conditional STORE failed", f"MODIFIED {encoder.sequence_set(numbers)}")
    return None


async def do_copy(session: Session, command: Command) -> Done | None:
    assert isinstance(command, Copy)
    selected = _selected(session)
    verb = "MOVE" if command.move else "COPY"
    if command.move:
        _writable(selected)
    uids = session.resolve(command.sequence, uid=command.uid)
    if not uids:
        return Done(f"{verb} completed, no messages")
    destination = session.decode_name(command.mailbox)
    try:
        result = await session.store.copy(
            session.mailbox_id, selected.folder_id, uids, destination, command.move, selected
        )
    except NotFound:
        raise Reply("NO", "No such folder", "TRYCREATE") from None  # RFC 9051 §6.4.7
    code = (
        f"COPYUID {result.uidvalidity} {encoder.sequence_set(result.source_uids)} "
        f"{encoder.sequence_set(result.dest_uids)}"
    )
    if not command.move:
        return Done("COPY completed", code)
    # RFC 6851 §4.3: COPYUID comes in an untagged OK before the EXPUNGE responses.
    session.write(encoder.untagged_status("OK", "Moved", code))
    session.remove_expunged(result.source_uids)
    return Done("MOVE completed")
