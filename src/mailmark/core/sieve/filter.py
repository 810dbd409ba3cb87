"""The Sieve delivery rule: a mailbox's active script decides where its copy goes.

Scripts are compiled once per revision and cached per mailbox; delivery asks the database for
the active script's revision at most every few seconds per mailbox. A script that fails for a message (a bound exceeded, a
folder that cannot be used) leaves that copy where delivery was putting it, and the error is
stored with the script for its owner to see: a broken script never loses mail.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from mailmark.core.dispositions import AutoReply, Disposition, InboundMessage
from mailmark.core.errors import Conflict, InvalidInput
from mailmark.core.mailstore import MailStore, canonical_flags, folder_name
from mailmark.core.ports import Clock, UnitOfWorkFactory
from mailmark.core.sieve.compiler import Script, Vacation, compile_script
from mailmark.core.sieve.interpreter import Copy, Outcome, SieveMessage, SieveRuntimeError, run
from mailmark.core.sieve.model import ActiveScriptVersion
from mailmark.core.sieve.syntax import SieveSyntaxError

log = logging.getLogger(__name__)

MAX_CACHED_SCRIPTS = 4096
MAX_ERROR = 1000
RECHECK_AFTER = timedelta(seconds=5)


@dataclass(frozen=True)
class _Cached:
    loaded: tuple[ActiveScriptVersion, Script | None] | None  # None: no active script
    checked_at: datetime


class SieveFilter:
    """`DeliveryRule` running the mailbox's active Sieve script (RFC 5228)."""

    def __init__(self, uow: UnitOfWorkFactory, store: MailStore, clock: Clock) -> None:
        self._uow = uow
        self._store = store
        self._clock = clock
        self._compiled: OrderedDict[int, _Cached] = OrderedDict()

    def forget(self, mailbox_id: int) -> None:
        """Drop the mailbox's compiled script (it changed on this node)."""
        self._compiled.pop(mailbox_id, None)

    async def apply(self, message: InboundMessage, disposition: Disposition) -> Disposition:
        mailbox_id = disposition.mailbox.id
        assert mailbox_id is not None
        loaded = await self._script(mailbox_id)
        if loaded is None:
            return disposition
        version, script = loaded
        if script is None:
            return disposition
        sieve_message = SieveMessage(
            message=message.message,
            size=len(message.trace_prefix) + len(message.raw),
            envelope_from=message.mail_from,
            envelope_to=_envelope_to(message, disposition),
        )
        try:
            outcome = run(script, sieve_message)
        except SieveRuntimeError as error:
            await self._record(version, str(error))
            return replace(disposition, problems=(*disposition.problems, f"Sieve: {error}"))
        return await self._carry(outcome, disposition, version)

    async def _script(self, mailbox_id: int) -> tuple[ActiveScriptVersion, Script | None] | None:
        """The mailbox's compiled active script. The database is asked for its revision at
        most every RECHECK_AFTER (a change made on this node is seen at once, through
        `forget`; one made on another node within that time)."""
        now = self._clock.now()
        cached = self._compiled.get(mailbox_id)
        if cached is not None and now - cached.checked_at < RECHECK_AFTER:
            self._compiled.move_to_end(mailbox_id)
            return cached.loaded
        async with self._uow(read_only=True) as uow:
            version = await uow.sieve_scripts.active_version(mailbox_id)
            if version is None:
                return self._remember(mailbox_id, None, now)
            if cached is not None and cached.loaded is not None and cached.loaded[0] == version:
                return self._remember(mailbox_id, cached.loaded, now)
            stored = await uow.sieve_scripts.active(mailbox_id)
        if stored is None:
            return self._remember(mailbox_id, None, now)
        try:
            script: Script | None = compile_script(stored.content)
        except SieveSyntaxError as error:
            # Scripts are checked when saved; one stored before a check changed is kept aside.
            log.warning("sieve script %s of mailbox %s: %s", stored.name, mailbox_id, error)
            script = None
        return self._remember(
            mailbox_id, (ActiveScriptVersion(stored.id, stored.revision), script), now
        )

    def _remember(
        self,
        mailbox_id: int,
        loaded: tuple[ActiveScriptVersion, Script | None] | None,
        now: datetime,
    ) -> tuple[ActiveScriptVersion, Script | None] | None:
        self._compiled[mailbox_id] = _Cached(loaded, now)
        self._compiled.move_to_end(mailbox_id)
        while len(self._compiled) > MAX_CACHED_SCRIPTS:
            self._compiled.popitem(last=False)
        return loaded

    async def _carry(
        self, outcome: Outcome, disposition: Disposition, version: ActiveScriptVersion
    ) -> Disposition:
        mailbox_id = disposition.mailbox.id
        assert mailbox_id is not None
        problems: list[str] = []
        folders: list[str] = []
        flag_sets: list[tuple[str, ...]] = []
        existing: set[str] | None = None
        for copy in outcome.copies:
            if copy.folder is None:
                folders.extend(disposition.folders)
            else:
                if existing is None:
                    existing = {f.name for f in await self._store.list_folders(mailbox_id)}
                folder, problem = await self._folder(mailbox_id, copy, existing)
                if problem is not None:
                    problems.append(problem)
                folders.extend((folder,) if folder is not None else disposition.folders)
            try:
                flag_sets.append(canonical_flags(copy.flags))
            except InvalidInput as error:
                problems.append(f"the flags {' '.join(copy.flags)} cannot be set: {error}")
                flag_sets.append(())
        if problems:
            await self._record(version, "; ".join(problems))
        return replace(
            disposition,
            folders=tuple(dict.fromkeys(folders)),
            flags=tuple(dict.fromkeys((*disposition.flags, *_shared(flag_sets)))),
            redirects=(*disposition.redirects, *outcome.redirects),
            replies=(*disposition.replies, *(_auto_reply(v) for v in outcome.replies)),
            problems=(*disposition.problems, *(f"Sieve: {p}" for p in problems)),
        )

    async def _folder(
        self, mailbox_id: int, copy: Copy, existing: set[str]
    ) -> tuple[str | None, str | None]:
        """The folder a fileinto names, created with :create; (None, why) when it cannot be
        used. RFC 5228 §4.1: a fileinto that fails is an error, and the message is kept."""
        assert copy.folder is not None
        try:
            name = folder_name(copy.folder)
        except InvalidInput as error:
            return None, f'fileinto "{copy.folder}": {error.message}'
        if name in existing:
            return name, None
        if not copy.create:
            return None, (
                f'fileinto "{name}": there is no such folder, so the message was kept in '
                f"the inbox (add :create to make the folder)"
            )
        try:
            await self._store.create_folder(mailbox_id, name)
        except Conflict:
            pass
        except InvalidInput as error:
            return None, f'fileinto :create "{name}": {error.message}'
        existing.add(name)
        return name, None

    async def _record(self, version: ActiveScriptVersion, error: str) -> None:
        async with self._uow() as uow:
            await uow.sieve_scripts.record_error(
                version.id, version.revision, error[:MAX_ERROR], self._clock.now()
            )
            await uow.commit()


def _shared(flag_sets: list[tuple[str, ...]]) -> tuple[str, ...]:
    """The flags every copy asked for. All of a mailbox's copies start with the same flags
    (`Disposition.flags`), so a flag wanted on one copy only is left off the others."""
    if not flag_sets:
        return ()
    common = {flag.lower() for flag in flag_sets[0]}
    for flags in flag_sets[1:]:
        common &= {flag.lower() for flag in flags}
    return tuple(flag for flag in flag_sets[0] if flag.lower() in common)


def _envelope_to(message: InboundMessage, disposition: Disposition) -> str:
    """The envelope recipient that reached this mailbox (RFC 5228 §5.4), else its address."""
    address = disposition.mailbox.address
    for recipient in message.rcpt_tos:
        if recipient.lower() == address.lower():
            return recipient
    return address


def _auto_reply(vacation: Vacation) -> AutoReply:
    handle = vacation.handle
    if handle is None:
        # RFC 5230 §4.2: without :handle, replies with the same reason, subject and :from
        # share the once-per-sender memory.
        seed = "\0".join((vacation.reason, vacation.subject or "", vacation.from_address or ""))
        handle = "sieve:" + hashlib.sha256(seed.encode()).hexdigest()[:32]
    return AutoReply(
        body=vacation.reason,
        subject=vacation.subject,
        days=vacation.days,
        handle=handle,
        from_address=vacation.from_address,
        addresses=vacation.addresses,
    )
