"""/api/team and /api/invitations: the account's people, their roles and mailboxes, and joining
by invitation."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.params import FromPath, JSONBody

from mailmark.core.access import Viewer
from mailmark.core.team import Member, PendingInvitation, TeamService
from mailmark.web.api.app.auth import MeOut, Name, Password, Short, Token, signed_in_response
from mailmark.web.api.app.session import PUBLIC, client_ip, user_agent
from mailmark.web.api.v1.auth import Injected

Addresses = Annotated[list[Short], msgspec.Meta(max_length=1000)]


class MemberOut(msgspec.Struct, rename="camel"):
    id: int
    email: str
    name: str
    role: str
    mailboxes: list[str]
    created_at: datetime


class InvitationOut(msgspec.Struct, rename="camel"):
    id: int
    email: str
    role: str
    mailboxes: list[str]
    expires_at: datetime
    invited_by: str | None
    # Only in the answer that creates the invitation: the link is kept as a hash, so it cannot
    # be shown again (invite anew to get a fresh one).
    accept_url: str | None


class TeamOut(msgspec.Struct, rename="camel"):
    members: list[MemberOut]
    invitations: list[InvitationOut]


class InvitationIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    email: Short
    role: Annotated[str, msgspec.Meta(max_length=20)]
    mailboxes: Addresses = msgspec.field(default_factory=list)


class MemberPatchIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    role: Annotated[str, msgspec.Meta(max_length=20)] | None = None
    mailboxes: Addresses | None = None


class InvitationPreviewOut(msgspec.Struct, rename="camel"):
    email: str
    account_name: str
    role: str
    invited_by: str | None
    expires_at: datetime


class AcceptIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    name: Name
    password: Password


def member_out(member: Member) -> MemberOut:
    user = member.user
    assert user.id is not None
    return MemberOut(
        user.id, user.email, user.name, user.role, list(member.mailboxes), user.created_at
    )


def invitation_out(pending: PendingInvitation, accept_url: str | None = None) -> InvitationOut:
    invitation = pending.invitation
    assert invitation.id is not None
    return InvitationOut(
        invitation.id,
        invitation.email,
        invitation.role,
        list(pending.mailboxes),
        invitation.expires_at,
        pending.invited_by,
        accept_url,
    )


class TeamController(Controller):
    path = "/team"
    tags = ("Team",)

    @get(operation_id="getTeam", summary="The account's people and pending invitations")
    async def team(self, viewer: Injected[Viewer], team: Injected[TeamService]) -> TeamOut:
        found = await team.team(viewer)
        return TeamOut(
            [member_out(m) for m in found.members],
            [invitation_out(i) for i in found.invitations],
        )

    @post("/invitations", operation_id="invite", summary="Invite someone by email")
    async def invite(
        self, viewer: Injected[Viewer], team: Injected[TeamService], data: JSONBody[InvitationIn]
    ) -> InvitationOut:
        """The invitee is emailed the link (through the outbound queue); `acceptUrl` is the same
        link, for passing it on another way."""
        created = await team.invite(viewer, data.email, data.role, data.mailboxes)
        return invitation_out(created, created.accept_url)

    @delete(
        "/invitations/{invitation_id:int}",
        operation_id="revokeInvitation",
        summary="Withdraw an invitation",
    )
    async def revoke(
        self,
        viewer: Injected[Viewer],
        team: Injected[TeamService],
        invitation_id: FromPath[int],
    ) -> None:
        await team.revoke_invitation(viewer, invitation_id)

    @patch(
        "/members/{user_id:int}",
        operation_id="updateMember",
        summary="Change a member's role or mailboxes",
    )
    async def update_member(
        self,
        viewer: Injected[Viewer],
        team: Injected[TeamService],
        user_id: FromPath[int],
        data: JSONBody[MemberPatchIn],
    ) -> MemberOut:
        member = await team.update_member(viewer, user_id, role=data.role, mailboxes=data.mailboxes)
        return member_out(member)

    @delete("/members/{user_id:int}", operation_id="removeMember", summary="Remove a member")
    async def remove_member(
        self, viewer: Injected[Viewer], team: Injected[TeamService], user_id: FromPath[int]
    ) -> None:
        """Their sessions end at once."""
        await team.remove_member(viewer, user_id)


class InvitationController(Controller):
    path = "/invitations"
    tags = ("Team",)

    @get("/{token:str}", operation_id="getInvitation", summary="An invitation", opt=PUBLIC)
    async def preview(
        self, team: Injected[TeamService], token: FromPath[Token]
    ) -> InvitationPreviewOut:
        found = await team.preview(token)
        return InvitationPreviewOut(
            found.email, found.account_name, str(found.role), found.invited_by, found.expires_at
        )

    @post(
        "/{token:str}/accept",
        operation_id="acceptInvitation",
        summary="Join the team",
        opt=PUBLIC,
    )
    async def accept(
        self,
        request: Request[Any, Any, Any],
        team: Injected[TeamService],
        token: FromPath[Token],
        data: JSONBody[AcceptIn],
    ) -> Response[MeOut]:
        """Creates your user with the invitation's role and mailboxes, and signs you in."""
        signed_in = await team.accept(
            token,
            name=data.name,
            password=data.password,
            ip=client_ip(request),
            user_agent=user_agent(request),
        )
        return signed_in_response(request, signed_in, 201)
