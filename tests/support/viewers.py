"""Viewers of the acme.test world and of a second account, as core services take them: who asks
decides what they may see and do."""

from __future__ import annotations

from mailmark.bootstrap import Services
from mailmark.core.access import Role, Viewer
from mailmark.core.model import Mailbox, User


async def viewer_of(services: Services, email: str) -> Viewer:
    async with services.uow(read_only=True) as uow:
        user = await uow.users.get_by_email(email)
        assert user is not None and user.id is not None
        account = await uow.accounts.get(user.account_id)
        assert account is not None
    return Viewer(user.id, user.account_id, account.name, user.email, user.name, Role(user.role), 0)


async def add_user(services: Services, account_name: str, email: str, role: Role) -> Viewer:
    async with services.uow() as uow:
        account = await uow.accounts.get_by_name(account_name)
        assert account is not None and account.id is not None
        await uow.users.add(User(account.id, email, "x", str(role), services.clock.now()))
        await uow.commit()
    return await viewer_of(services, email)


async def assign(services: Services, mailbox: Mailbox, viewer: Viewer) -> None:
    async with services.uow() as uow:
        mine = await uow.mailbox_assignments.mailbox_ids(viewer.user_id)
        assert mailbox.id is not None
        await uow.mailbox_assignments.replace(viewer.user_id, [*mine, mailbox.id])
        await uow.commit()
