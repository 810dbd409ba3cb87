"""Who may do what in an account: roles, the signed-in viewer, and the permission rules.

Every `/api` route asks these rules, never its own: an owner or an admin manages the account
(domains, mailboxes, API keys, the team); a member sees and uses only the mailboxes assigned to
them. Anything of another account, and a mailbox a member was not given, is `NotFound` rather
than `Forbidden`: whether it exists is none of the viewer's business.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum

from mailmark.core.errors import Forbidden, NotFound
from mailmark.core.model import Mailbox


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"


@dataclass(frozen=True)
class Viewer:
    """The person behind a request, as their session and the database say at this request."""

    user_id: int
    account_id: int
    account_name: str
    email: str
    name: str
    role: Role
    session_id: int
    totp_enabled: bool = False

    @property
    def can_manage(self) -> bool:
        """Owners and admins manage the account; members use their mailboxes."""
        return self.role in (Role.OWNER, Role.ADMIN)

    @property
    def is_owner(self) -> bool:
        return self.role is Role.OWNER


def require_manager(viewer: Viewer, action: str) -> None:
    """Raise Forbidden unless the viewer is an owner or an admin; `action` completes the sentence
    "Only an owner or an admin can …" (e.g. "add domains")."""
    if not viewer.can_manage:
        raise Forbidden(f"Only an owner or an admin can {action}.")


def require_owner(viewer: Viewer, action: str) -> None:
    if not viewer.is_owner:
        raise Forbidden(f"Only the account's owner can {action}.")


def require_same_account(viewer: Viewer, account_id: int, what: str) -> None:
    """Another account's object is NotFound (never Forbidden): `what` names it, e.g.
    "domain example.com"."""
    if account_id != viewer.account_id:
        raise NotFound(f"No {what} here.")


def can_see_mailbox(viewer: Viewer, mailbox: Mailbox, assigned_ids: Collection[int]) -> bool:
    """Owners and admins see every mailbox of their account; a member only those assigned to
    them (`assigned_ids`: the ids of the mailboxes assigned to the viewer)."""
    if mailbox.account_id != viewer.account_id:
        return False
    return viewer.can_manage or mailbox.id in assigned_ids


def require_mailbox_visible(
    viewer: Viewer, mailbox: Mailbox | None, assigned_ids: Collection[int]
) -> Mailbox:
    """The mailbox when the viewer may see it; NotFound otherwise (absent, another account's, or
    not assigned to a member), with the same sentence in every case."""
    if mailbox is None or not can_see_mailbox(viewer, mailbox, assigned_ids):
        raise NotFound("No such mailbox here.")
    return mailbox


def assignable_roles(viewer: Viewer) -> tuple[Role, ...]:
    """The roles this viewer may give: an owner any but owner (there is one owner), an admin
    admin or member; a member none."""
    if viewer.is_owner or viewer.role is Role.ADMIN:
        return (Role.ADMIN, Role.MEMBER)
    return ()
