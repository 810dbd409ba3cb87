"""Saving, reading and checking a mailbox's Sieve scripts, with the dashboard's permission rules.

A script is checked when it is saved: one that cannot run is refused with its line and the
reason, so delivery only ever meets scripts that parse. The dashboard edits the active script
(as simple rules or as text); the command line and other clients may keep several by name.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from mailmark.core.access import Viewer, require_mailbox_visible
from mailmark.core.errors import Conflict, InvalidInput, NotFound
from mailmark.core.mailboxes import split_address
from mailmark.core.model import Mailbox
from mailmark.core.ports import Clock, UnitOfWork, UnitOfWorkFactory
from mailmark.core.sieve.compiler import compile_script
from mailmark.core.sieve.model import SieveScript
from mailmark.core.sieve.simple_rules import SimpleRule, rules_to_sieve, sieve_to_rules
from mailmark.core.sieve.syntax import SieveSyntaxError

DEFAULT_SCRIPT = "filters"
MAX_SCRIPTS = 20
MAX_NAME = 128
_BAD_NAME = re.compile(r"[\x00-\x1f\x7f/]")


@dataclass(frozen=True)
class ScriptProblem:
    line: int
    message: str


@dataclass(frozen=True)
class FiltersView:
    """A mailbox's active script as the dashboard shows it."""

    name: str
    script: str
    rules: list[SimpleRule] | None  # None: the script is not (or no longer) made of simple rules
    stored: SieveScript | None


def check_script(text: str) -> ScriptProblem | None:
    """None when the script can run; else the first problem, with its line."""
    try:
        compile_script(text)
    except SieveSyntaxError as error:
        return ScriptProblem(error.line, error.reason)
    return None


def _require_valid(text: str) -> None:
    problem = check_script(text)
    if problem is not None:
        raise InvalidInput(f"Line {problem.line}: {problem.message}.", field="script")


def check_name(name: str) -> str:
    if not name or len(name) > MAX_NAME or _BAD_NAME.search(name):
        raise InvalidInput(
            f"A script name has 1 to {MAX_NAME} characters, without control characters or /.",
            field="name",
        )
    return name


class SieveScripts:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        on_change: Callable[[int], None] = lambda mailbox_id: None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        # Told the mailbox id after each committed change (delivery's cache of compiled scripts).
        self._on_change = on_change

    # The dashboard: the viewer must see the mailbox, as for its other settings.

    async def filters_for(self, viewer: Viewer, address: str) -> FiltersView:
        async with self._uow(read_only=True) as uow:
            mailbox = await _visible(uow, viewer, address)
            assert mailbox.id is not None
            active = await uow.sieve_scripts.active(mailbox.id)
        return _view(active)

    async def save_for(
        self,
        viewer: Viewer,
        address: str,
        *,
        script: str | None = None,
        rules: list[SimpleRule] | None = None,
    ) -> FiltersView:
        """Replace the active script (created as "filters" when there is none) with `script`,
        or with the Sieve that `rules` generate. A script that cannot run is refused."""
        if (script is None) == (rules is None):
            raise InvalidInput("Give either the rules or the script.", field="script")
        text = rules_to_sieve(rules) if rules is not None else script
        assert text is not None
        _require_valid(text)
        async with self._uow() as uow:
            mailbox = await _visible(uow, viewer, address)
            assert mailbox.id is not None
            active = await uow.sieve_scripts.active(mailbox.id)
            name = active.name if active is not None else DEFAULT_SCRIPT
            stored = await self._put(uow, mailbox.id, name, text, activate=True)
            await uow.commit()
        self._on_change(mailbox.id)
        return _view(stored)

    async def check_for(self, viewer: Viewer, address: str, text: str) -> ScriptProblem | None:
        """`check_script`, for someone who may edit the mailbox's filters."""
        async with self._uow(read_only=True) as uow:
            await _visible(uow, viewer, address)
        return check_script(text)

    # The command line (an administrator of the installation).

    async def get(self, address: str, name: str | None = None) -> SieveScript | None:
        """The script `name`, or the active one; None when there is none."""
        async with self._uow(read_only=True) as uow:
            mailbox = await _mailbox(uow, address)
            assert mailbox.id is not None
            if name is None:
                return await uow.sieve_scripts.active(mailbox.id)
            return await uow.sieve_scripts.get(mailbox.id, check_name(name))

    async def put(
        self, address: str, text: str, *, name: str = DEFAULT_SCRIPT, activate: bool = True
    ) -> SieveScript:
        _require_valid(text)
        name = check_name(name)
        async with self._uow() as uow:
            mailbox = await _mailbox(uow, address)
            assert mailbox.id is not None
            stored = await self._put(uow, mailbox.id, name, text, activate=activate)
            await uow.commit()
        self._on_change(mailbox.id)
        return stored

    # A mailbox's own client (ManageSieve, RFC 5804), signed in as the mailbox.

    async def list_scripts(self, mailbox_id: int) -> list[SieveScript]:
        async with self._uow(read_only=True) as uow:
            return await uow.sieve_scripts.list(mailbox_id)

    async def script(self, mailbox_id: int, name: str) -> SieveScript:
        async with self._uow(read_only=True) as uow:
            found = await uow.sieve_scripts.get(mailbox_id, check_name(name))
        if found is None:
            raise NotFound(f"There is no script named {name}.")
        return found

    async def put_script(self, mailbox_id: int, name: str, text: str) -> SieveScript:
        """Save `name` (active or not, as it was); a script that cannot run is refused."""
        _require_valid(text)
        name = check_name(name)
        async with self._uow() as uow:
            stored = await self._put(uow, mailbox_id, name, text, activate=False)
            await uow.commit()
        self._on_change(mailbox_id)
        return stored

    async def set_active(self, mailbox_id: int, name: str | None) -> None:
        """Make `name` the active script; None: no script runs."""
        async with self._uow() as uow:
            if name is not None and await uow.sieve_scripts.get(mailbox_id, name) is None:
                raise NotFound(f"There is no script named {name}.")
            await uow.sieve_scripts.activate(mailbox_id, name, self._clock.now())
            await uow.commit()
        self._on_change(mailbox_id)

    async def delete_script(self, mailbox_id: int, name: str) -> None:
        """RFC 5804 §2.10: the active script cannot be deleted."""
        async with self._uow() as uow:
            found = await uow.sieve_scripts.get(mailbox_id, name)
            if found is None:
                raise NotFound(f"There is no script named {name}.")
            if found.active:
                raise Conflict("The active script cannot be deleted; deactivate it first.")
            await uow.sieve_scripts.delete(mailbox_id, name)
            await uow.commit()

    async def rename_script(self, mailbox_id: int, old: str, new: str) -> None:
        new = check_name(new)
        async with self._uow() as uow:
            if await uow.sieve_scripts.get(mailbox_id, old) is None:
                raise NotFound(f"There is no script named {old}.")
            if await uow.sieve_scripts.get(mailbox_id, new) is not None:
                raise Conflict(f"A script named {new} already exists.")
            await uow.sieve_scripts.rename(mailbox_id, old, new, self._clock.now())
            await uow.commit()

    async def _put(
        self, uow: UnitOfWork, mailbox_id: int, name: str, text: str, *, activate: bool
    ) -> SieveScript:
        now = self._clock.now()
        existing = await uow.sieve_scripts.list(mailbox_id)
        if name not in {s.name for s in existing} and len(existing) >= MAX_SCRIPTS:
            raise InvalidInput(f"A mailbox keeps at most {MAX_SCRIPTS} scripts.", field="name")
        stored = await uow.sieve_scripts.put(mailbox_id, name, text, now)
        if activate and not stored.active:
            await uow.sieve_scripts.activate(mailbox_id, name, now)
            stored = await uow.sieve_scripts.get(mailbox_id, name) or stored
        return stored


def _view(active: SieveScript | None) -> FiltersView:
    if active is None:
        return FiltersView(DEFAULT_SCRIPT, "", [], None)
    return FiltersView(active.name, active.content, sieve_to_rules(active.content), active)


async def _mailbox(uow: UnitOfWork, address: str) -> Mailbox:
    local_part, domain_name = split_address(address)
    mailbox = await uow.mailboxes.find(domain_name, local_part)
    if mailbox is None:
        raise NotFound(f"No mailbox {address} here.")
    return mailbox


async def _visible(uow: UnitOfWork, viewer: Viewer, address: str) -> Mailbox:
    local_part, domain_name = split_address(address)
    found = await uow.mailboxes.find(domain_name, local_part)
    mine = [] if viewer.can_manage else await uow.mailbox_assignments.mailbox_ids(viewer.user_id)
    return require_mailbox_visible(viewer, found, mine)
