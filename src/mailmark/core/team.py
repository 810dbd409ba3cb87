"""An account's team: invitations, roles and which mailboxes each member may use.

An owner or an admin invites by email with a role and mailboxes; the invitee's link (single
use, 7 days) creates their user in the inviting account and signs them in. There is one owner:
nobody becomes owner through the team, and the owner can be neither demoted nor removed. A
removed member's sessions go with their user row, so their very next request is refused.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from mailmark.core.access import Role, Viewer, assignable_roles, require_manager
from mailmark.core.accounts import check_email, check_password
from mailmark.core.errors import Conflict, Forbidden, InvalidInput, NotFound, naming
from mailmark.core.identity import (
    MAX_TOKEN_LENGTH,
    SignedIn,
    add_session,
    check_name,
    new_token,
    token_hash,
)
from mailmark.core.mailboxes import split_address
from mailmark.core.model import Invitation, Mailbox, OneTimeToken, User
from mailmark.core.passwords import Passwords, user_principal
from mailmark.core.ports import Clock, UnitOfWork, UnitOfWorkFactory
from mailmark.core.system_mail import SystemMail

log = logging.getLogger(__name__)

INVITATION_LIFETIME = timedelta(days=7)
MAX_ASSIGNED_MAILBOXES = 1000
INVITATION_PATH = "/invite/"


@dataclass(frozen=True)
class Member:
    user: User
    mailboxes: tuple[str, ...]  # addresses assigned to them


@dataclass(frozen=True)
class PendingInvitation:
    invitation: Invitation
    mailboxes: tuple[str, ...]
    invited_by: str | None  # the inviter's email, while they are on the team


@dataclass(frozen=True)
class CreatedInvitation(PendingInvitation):
    """A new invitation, with the link to accept it (shown to the inviter this once)."""

    token: str
    accept_url: str


@dataclass(frozen=True)
class Team:
    members: list[Member]
    invitations: list[PendingInvitation]


@dataclass(frozen=True)
class InvitationPreview:
    """What the invitee sees before accepting."""

    email: str
    account_name: str
    role: Role
    invited_by: str | None
    expires_at: datetime


def accept_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}{INVITATION_PATH}{token}"


class TeamService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        passwords: Passwords,
        *,
        mail: SystemMail,
        public_url: str,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._passwords = passwords
        self._mail = mail
        self._public_url = public_url

    async def team(self, viewer: Viewer) -> Team:
        require_manager(viewer, "see the team")
        now = self._clock.now()
        async with self._uow(read_only=True) as uow:
            users = await uow.users.list_for_account(viewer.account_id)
            assigned = await uow.mailbox_assignments.for_users([u.id for u in users if u.id])
            pending = await uow.invitations.list_pending(viewer.account_id, now)
            emails = {u.id: u.email for u in users}
            members = [
                Member(user, await _addresses(uow, assigned.get(user.id or 0, [])))
                for user in users
            ]
            invitations = [
                PendingInvitation(
                    invitation,
                    await _addresses(uow, invitation.mailbox_ids),
                    emails.get(invitation.invited_by),
                )
                for invitation in pending
            ]
        return Team(members, invitations)

    async def assigned_mailbox_ids(self, viewer: Viewer) -> list[int]:
        """The ids of the mailboxes assigned to the viewer (what a member may see and use)."""
        async with self._uow(read_only=True) as uow:
            return await uow.mailbox_assignments.mailbox_ids(viewer.user_id)

    async def invite(
        self, viewer: Viewer, email: str, role: str, mailboxes: Sequence[str]
    ) -> CreatedInvitation:
        """Invite `email` to the viewer's account as `role` with these mailboxes (addresses of
        the account). A pending invitation to the same email is replaced."""
        require_manager(viewer, "invite people")
        email = check_email(email)
        wanted = _role(role)
        if wanted not in assignable_roles(viewer):
            raise Forbidden(f"You cannot invite someone as {wanted}.")
        now = self._clock.now()
        token = new_token()
        async with self._uow() as uow:
            mailbox_ids = await _mailbox_ids(uow, viewer, mailboxes)
            if await uow.users.get_by_email(email) is not None:
                raise Conflict(f"{email} already has a Mailmark user.", field="email")
            for earlier in await uow.invitations.list_pending(viewer.account_id, now):
                if earlier.email == email and earlier.id is not None:
                    await uow.invitations.delete(earlier.id)
            invitation = await uow.invitations.add(
                Invitation(
                    viewer.account_id,
                    email,
                    wanted,
                    tuple(mailbox_ids),
                    now,
                    now + INVITATION_LIFETIME,
                    invited_by=viewer.user_id,
                )
            )
            await uow.one_time_tokens.add(
                OneTimeToken(
                    "invitation",
                    token_hash(token),
                    now,
                    invitation.expires_at,
                    invitation_id=invitation.id,
                )
            )
            addresses = await _addresses(uow, mailbox_ids)
            await uow.commit()
        link = accept_url(self._public_url, token)
        inviter = f"{viewer.name} ({viewer.email})" if viewer.name else viewer.email
        try:
            await self._mail.send(
                email,
                f"You are invited to {viewer.account_name} on Mailmark",
                f"{inviter} invites you to join {viewer.account_name} on Mailmark as "
                f"{wanted}.\n\nTo accept, open this link within 7 days:\n\n{link}\n\n"
                "If you do not know the sender, ignore this email.\n",
            )
        except Exception:
            # The invitation stands: the inviter is shown the link to pass on another way.
            log.exception("could not queue the invitation email to %s", email)
        return CreatedInvitation(invitation, addresses, viewer.email, token, link)

    async def revoke_invitation(self, viewer: Viewer, invitation_id: int) -> None:
        require_manager(viewer, "withdraw invitations")
        async with self._uow() as uow:
            invitation = await uow.invitations.get(invitation_id)
            if invitation is None or invitation.account_id != viewer.account_id:
                raise NotFound("No such invitation.")
            await uow.invitations.delete(invitation_id)
            await uow.commit()

    async def preview(self, token: str) -> InvitationPreview:
        now = self._clock.now()
        async with self._uow(read_only=True) as uow:
            invitation = await _live_invitation(uow, token, now)
            account = await uow.accounts.get(invitation.account_id)
            inviter = await uow.users.get(invitation.invited_by) if invitation.invited_by else None
        assert account is not None
        return InvitationPreview(
            invitation.email,
            account.name,
            Role(invitation.role),
            inviter.email if inviter is not None else None,
            invitation.expires_at,
        )

    async def accept(
        self, token: str, *, name: str, password: str, ip: str, user_agent: str
    ) -> SignedIn:
        """Create the invitee's user in the inviting account, with the invitation's role and
        the mailboxes of it that still exist, spend the link and sign them in."""
        name = check_name(name)
        check_password(password)
        password_hash = await self._passwords.hash(password)
        now = self._clock.now()
        async with self._uow() as uow:
            invitation = await _live_invitation(uow, token, now)
            assert invitation.id is not None
            if await uow.users.get_by_email(invitation.email) is not None:
                raise Conflict(f"{invitation.email} already has a Mailmark user; sign in.")
            found = await uow.one_time_tokens.find("invitation", token_hash(token))
            assert found is not None and found.id is not None
            if not await uow.one_time_tokens.use(found.id, now) or not (
                await uow.invitations.accept(invitation.id, now)
            ):
                raise NotFound("This invitation was accepted already.")
            account = await uow.accounts.get(invitation.account_id)
            assert account is not None
            user = await uow.users.add(
                User(
                    invitation.account_id,
                    invitation.email,
                    password_hash,
                    invitation.role,
                    now,
                    name=name,
                    password_changed_at=now,
                )
            )
            assert user.id is not None
            still_there = [
                m.id
                for m in [await uow.mailboxes.get(i) for i in invitation.mailbox_ids]
                if m is not None and m.account_id == invitation.account_id and m.id is not None
            ]
            await uow.mailbox_assignments.replace(user.id, still_there)
            signed_in = await add_session(uow, user, account.name, ip, user_agent, now)
            await uow.commit()
        return signed_in

    async def update_member(
        self,
        viewer: Viewer,
        user_id: int,
        *,
        role: str | None = None,
        mailboxes: Sequence[str] | None = None,
    ) -> Member:
        """Change a member's role and/or assigned mailboxes (the list replaces theirs)."""
        require_manager(viewer, "change the team")
        async with self._uow() as uow:
            user = await _teammate(uow, viewer, user_id)
            assert user.id is not None
            if role is not None:
                wanted = _role(role)
                if wanted != user.role:
                    if user.role == Role.OWNER:
                        raise Forbidden("The owner's role cannot be changed.", field="role")
                    if wanted not in assignable_roles(viewer):
                        raise Forbidden(f"You cannot make someone {wanted}.", field="role")
                    await uow.users.set_role(user.id, wanted)
            if mailboxes is not None:
                await uow.mailbox_assignments.replace(
                    user.id, await _mailbox_ids(uow, viewer, mailboxes)
                )
            updated = await uow.users.get(user.id)
            assert updated is not None
            member = Member(
                updated,
                await _addresses(uow, await uow.mailbox_assignments.mailbox_ids(user.id)),
            )
            await uow.commit()
        return member

    async def remove_member(self, viewer: Viewer, user_id: int) -> None:
        """Remove someone from the team: their user, sessions and assignments go at once."""
        require_manager(viewer, "remove people from the team")
        async with self._uow() as uow:
            user = await _teammate(uow, viewer, user_id)
            if user.role == Role.OWNER:
                raise Forbidden("The owner cannot be removed.")
            if user.id == viewer.user_id:
                raise Forbidden("You cannot remove yourself; ask the owner or another admin.")
            assert user.id is not None
            await uow.sessions.delete_for_user(user.id)
            await uow.users.delete(user.id)
            await uow.commit()
        self._passwords.forget(user_principal(user.id))


def _role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise InvalidInput(
            f"{role[:20]!r} is not a role; choose admin or member.", field="role"
        ) from None


async def _teammate(uow: UnitOfWork, viewer: Viewer, user_id: int) -> User:
    user = await uow.users.get(user_id)
    if user is None or user.account_id != viewer.account_id:
        raise NotFound("No such member on your team.")
    return user


async def _mailbox_ids(uow: UnitOfWork, viewer: Viewer, addresses: Sequence[str]) -> list[int]:
    """The ids of these addresses, each a mailbox of the viewer's account (else NotFound)."""
    if len(addresses) > MAX_ASSIGNED_MAILBOXES:
        raise InvalidInput(
            f"At most {MAX_ASSIGNED_MAILBOXES} mailboxes at once.", field="mailboxes"
        )
    ids: list[int] = []
    for address in addresses:
        with naming("mailboxes"):
            local, domain = split_address(address)
        mailbox: Mailbox | None = await uow.mailboxes.find(domain, local)
        if mailbox is None or mailbox.account_id != viewer.account_id or mailbox.id is None:
            raise NotFound(f"No mailbox {address[:320]} here.", field="mailboxes")
        ids.append(mailbox.id)
    return sorted(set(ids))


async def _addresses(uow: UnitOfWork, mailbox_ids: Sequence[int]) -> tuple[str, ...]:
    found = [await uow.mailboxes.get(i) for i in mailbox_ids]
    return tuple(sorted(m.address for m in found if m is not None))


async def _live_invitation(uow: UnitOfWork, token: str, now: datetime) -> Invitation:
    gone = NotFound("This invitation link is invalid, expired or used already.")
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise gone
    found = await uow.one_time_tokens.find("invitation", token_hash(token))
    if (
        found is None
        or found.used_at is not None
        or found.expires_at <= now
        or found.invitation_id is None
    ):
        raise gone
    invitation = await uow.invitations.get(found.invitation_id)
    if invitation is None or invitation.accepted_at is not None:
        raise gone
    return invitation
