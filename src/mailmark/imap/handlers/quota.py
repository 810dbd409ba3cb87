"""QUOTA (RFC 9208): GETQUOTAROOT, GETQUOTA and SETQUOTA, over the plan's per-mailbox limits.

Every folder of a mailbox shares one quota root, "", which exists when the plan limits the
mailbox's storage or message count; it lists only the resources the plan limits. Without a limit
a folder has no quota root (the QUOTAROOT response may name none), since a QUOTA response gives
each resource a limit (RFC 9208, formal syntax). Limits come from the plan, so SETQUOTA is refused.
"""

from __future__ import annotations

from mailmark.core.plans import MailboxQuota
from mailmark.imap import encoder
from mailmark.imap.commands import Command, MailboxCommand, Quota
from mailmark.imap.session import Done, Reply, Session

ROOT = ""


def _resources(quota: MailboxQuota) -> list[str]:
    """RFC 9208's resources: STORAGE in units of 1024 octets (usage rounded up), MESSAGE in
    messages."""
    resources = []
    if quota.storage_limit is not None:
        used = -(-quota.storage_used // 1024)
        resources.append(f"STORAGE {used} {quota.storage_limit // 1024}")
    if quota.messages_limit is not None:
        resources.append(f"MESSAGE {quota.messages_used} {quota.messages_limit}")
    return resources


def _quota_line(resources: list[str]) -> bytes:
    return b"* QUOTA " + encoder.string(ROOT) + b" (" + " ".join(resources).encode() + b")\r\n"


async def do_getquotaroot(session: Session, command: Command) -> Done | None:
    assert isinstance(command, MailboxCommand)
    name = session.decode_name(command.mailbox)
    await session.store.status(session.mailbox_id, name)  # NO [NONEXISTENT] for no such folder
    resources = _resources(await session.store.quota(session.mailbox_id))
    roots = b" " + encoder.string(ROOT) if resources else b""
    session.write(b"* QUOTAROOT " + session.encode_name(name) + roots + b"\r\n")
    if resources:
        session.write(_quota_line(resources))
    return None


async def do_getquota(session: Session, command: Command) -> Done | None:
    assert isinstance(command, Quota)
    resources = (
        _resources(await session.store.quota(session.mailbox_id)) if not command.root else []
    )
    if not resources:
        raise Reply("NO", "No such quota root: your plan sets no mailbox limits", "NONEXISTENT")
    session.write(_quota_line(resources))
    return None


async def do_setquota(session: Session, command: Command) -> Done | None:
    raise Reply(
        "NO", "Mailbox limits come from your plan; change the plan to change them", "NOPERM"
    )
