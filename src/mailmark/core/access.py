"""Who is asking, and what their role lets them do in their account."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum

from mailmark.core.errors import Forbidden


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"


@dataclass(frozen=True)
class Viewer:
    """A signed-in user of one account, as every request of the web app acts for."""

    user_id: int
    account_id: int
    account_name: str
    email: str
    name: str
    role: Role
    session_id: int | None = None

    @property
    def can_manage(self) -> bool:
        return self.role in (Role.OWNER, Role.ADMIN)


def require_manager(viewer: Viewer, action: str) -> None:
    """Forbidden, in a person's words, unless the viewer is an owner or an admin."""
    if not viewer.can_manage:
        raise Forbidden(f"Only an owner or an admin can {action}.")


def can_see_mailbox(viewer: Viewer, account_id: int, assigned_user_ids: Collection[int]) -> bool:
    """Owners and admins see every mailbox of their account; a member only those assigned to
    them. Whatever is not visible is answered as not existing."""
    if account_id != viewer.account_id:
        return False
    return viewer.can_manage or viewer.user_id in assigned_user_ids
