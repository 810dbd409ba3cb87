"""/api/mailboxes/{address}/filters: a mailbox's Sieve filters (RFC 5228), as simple rules or as
script text, and a check of a script before it is saved. Who may see the mailbox may edit them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, get, post, put
from litestar.params import FromPath, JSONBody

from mailmark.core.access import Viewer
from mailmark.core.sieve.scripts import FiltersView, SieveScripts
from mailmark.core.sieve.simple_rules import MAX_RULES, MAX_VALUE, SimpleRule
from mailmark.core.sieve.syntax import MAX_SCRIPT_BYTES
from mailmark.web.api.v1.auth import Injected

Address = Annotated[str, msgspec.Meta(max_length=320)]
ScriptText = Annotated[str, msgspec.Meta(max_length=MAX_SCRIPT_BYTES)]
Short = Annotated[str, msgspec.Meta(max_length=MAX_VALUE)]


class RuleBody(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """If `field` (`from`, `to`, `subject`, or `header` named by `header`) `operator`
    (`contains`, `is`, `matches` with * and ?) `value`, then `action`: `move` (to the folder
    `target`), `read`, `flag`, `forward` (to the address `target`, keeping a copy) or `discard`."""

    field: Annotated[str, msgspec.Meta(max_length=10)]
    operator: Annotated[str, msgspec.Meta(max_length=10)]
    value: Short
    action: Annotated[str, msgspec.Meta(max_length=10)]
    header: Annotated[str, msgspec.Meta(max_length=100)] = ""
    target: Short = ""


class FiltersIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """Either `rules` (the script is generated from them) or `script` (Sieve text)."""

    rules: Annotated[list[RuleBody], msgspec.Meta(max_length=MAX_RULES)] | None = None
    script: ScriptText | None = None


class FiltersOut(msgspec.Struct, rename="camel"):
    name: str
    script: str
    # The rules the script was made from; null when it was written or edited as text.
    rules: list[RuleBody] | None
    # The last error running the script on a message (the message was kept in the inbox).
    last_error: str | None
    last_error_at: datetime | None
    updated_at: datetime | None


class CheckIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    script: ScriptText


class CheckOut(msgspec.Struct, rename="camel"):
    valid: bool
    line: int | None = None
    message: str | None = None


def filters_out(view: FiltersView) -> FiltersOut:
    stored = view.stored
    return FiltersOut(
        name=view.name,
        script=view.script,
        rules=(
            None
            if view.rules is None
            else [
                RuleBody(r.field, r.operator, r.value, r.action, r.header, r.target)
                for r in view.rules
            ]
        ),
        last_error=stored.last_error if stored else None,
        last_error_at=stored.last_error_at if stored else None,
        updated_at=stored.updated_at if stored else None,
    )


class FiltersController(Controller):
    path = "/mailboxes/{address:str}/filters"
    tags = ("Mailboxes",)

    @get(operation_id="appGetFilters", summary="A mailbox's filters")
    async def get_filters(
        self, viewer: Injected[Viewer], sieve: Injected[SieveScripts], address: FromPath[Address]
    ) -> FiltersOut:
        """The active Sieve script, its rules when it was made from simple rules, and the last
        error it met while filtering a message."""
        return filters_out(await sieve.filters_for(viewer, address))

    @put(operation_id="appPutFilters", summary="Save a mailbox's filters")
    async def put_filters(
        self,
        viewer: Injected[Viewer],
        sieve: Injected[SieveScripts],
        address: FromPath[Address],
        data: JSONBody[FiltersIn],
    ) -> FiltersOut:
        """Replace the filters with `rules` or with a Sieve `script`. A script that cannot run
        is refused (422, `field` "script", the message naming the line)."""
        rules = (
            None
            if data.rules is None
            else [
                SimpleRule(r.field, r.operator, r.value, r.action, r.header, r.target)
                for r in data.rules
            ]
        )
        return filters_out(await sieve.save_for(viewer, address, script=data.script, rules=rules))

    @post("/check", operation_id="appCheckFilters", summary="Check a Sieve script", status_code=200)
    async def check_filters(
        self,
        viewer: Injected[Viewer],
        sieve: Injected[SieveScripts],
        address: FromPath[Address],
        data: JSONBody[CheckIn],
    ) -> CheckOut:
        """Whether the script can run, and if not, the line and the reason; nothing is saved."""
        problem = await sieve.check_for(viewer, address, data.script)
        if problem is None:
            return CheckOut(valid=True)
        return CheckOut(valid=False, line=problem.line, message=problem.message)
