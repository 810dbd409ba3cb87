"""Accounts (a customer, with a plan) and their users (team members who sign in)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from mailmark.core.access import Viewer, require_manager
from mailmark.core.errors import (
    AccountPaused,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    QuotaExceeded,
)
from mailmark.core.model import Account, User
from mailmark.core.passwords import Passwords
from mailmark.core.plans import (
    PLANS,
    TRIAL_LENGTH,
    Plan,
    effective_plan,
    ensure_domain_quota,
    ensure_email_quota,
    ensure_mailbox_quota,
    plan_named,
    settled,
    usage_month,
)
from mailmark.core.ports import Clock, UnitOfWork, UnitOfWorkFactory
from mailmark.core.states import AccountStatus

_ACCOUNT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,62}$")
# No control characters either (NUL cannot even be compared by PostgreSQL).
_EMAIL = re.compile(
    r"^[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f]{1,253}\.[^@\s\x00-\x1f\x7f]{1,63}$"
)
MIN_PASSWORD_LENGTH = 8


PLAN_LABELS = {"starter": "Starter", "pro": "Pro", "business": "Business", "unlimited": "Unlimited"}


@dataclass(frozen=True)
class Usage:
    domains: int
    mailboxes: int
    emails_this_month: int


@dataclass(frozen=True)
class AccountOverview:
    """The account as its settings page shows it: plan, limits, usage and what needs action."""

    account: Account
    status: str  # "trial" | "active" | "paused" (a trial that has ended is paused)
    plan: Plan
    plan_label: str
    usage: Usage
    trial_days_left: int | None
    notices: tuple[str, ...]  # the product's exact texts for each limit reached, or the pause


def overview_of(account: Account, usage: Usage, now: datetime) -> AccountOverview:
    """Status, limits and notices from the plan rules themselves (core/plans.py), so the texts
    shown are the very ones a refused action answers with."""
    notices: list[str] = []
    try:
        plan = effective_plan(account, now)
        status = str(account.status)
    except AccountPaused as paused:
        plan, status = PLANS["starter"], "paused"
        notices.append(paused.message)
    for check, used in (
        (ensure_domain_quota, usage.domains),
        (ensure_mailbox_quota, usage.mailboxes),
    ):
        try:
            check(plan, used)
        except QuotaExceeded as reached:
            notices.append(reached.message)
    try:
        ensure_email_quota(plan, usage.emails_this_month)
    except QuotaExceeded as reached:
        notices.append(reached.message)
    days_left = None
    if account.trial_ends_at is not None and status == "trial":
        days_left = max(0, math.ceil((account.trial_ends_at - now).total_seconds() / 86400))
    shown = plan
    return AccountOverview(
        account,
        status,
        shown,
        PLAN_LABELS.get(shown.name, shown.name.title()),
        usage,
        days_left,
        tuple(notices),
    )


# argon2 hashes whatever it is given: a megabyte-long "password" would cost CPU for nothing.
MAX_PASSWORD_LENGTH = 1024


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            f"Passwords must be at least {MIN_PASSWORD_LENGTH} characters long.", field="password"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(
            f"Passwords must be at most {MAX_PASSWORD_LENGTH} characters long.", field="password"
        )


def check_account_name(name: str) -> None:
    if not _ACCOUNT_NAME.match(name):
        raise InvalidInput(
            f"{name!r} is not a valid account name: 1-63 letters, digits, spaces, . _ or -.",
            field="accountName",
        )


def check_email(email: str) -> str:
    """The email, trimmed and lower-cased (as users are stored), or InvalidInput."""
    email = email.strip()
    if len(email) > 320 or not _EMAIL.match(email):
        raise InvalidInput(f"{email[:320]!r} is not a valid email address.", field="email")
    return email.lower()


def lookup_email(email: str) -> str | None:
    """An email as users are stored, to look one up; None when no user can have it (too long,
    control characters)."""
    email = email.strip().lower()
    if not email or len(email) > 320 or any(ord(c) < 32 or ord(c) == 127 for c in email):
        return None
    return email


def new_account(name: str, plan: str | None, now: datetime) -> Account:
    """An account record: active on `plan`, or on the 7-day trial without one."""
    check_account_name(name)
    if plan is None:
        return Account(name, "starter", AccountStatus.TRIAL, now, trial_ends_at=now + TRIAL_LENGTH)
    return Account(name, plan_named(plan).name, AccountStatus.ACTIVE, now)


async def add_account_with_owner(
    uow: UnitOfWork, account: Account, owner: User
) -> tuple[Account, User]:
    """Add the account and its owner in the caller's transaction (`owner.account_id` is
    replaced); Conflict when the name or the email is taken."""
    if await uow.accounts.get_by_name(account.name) is not None:
        raise Conflict(f"Account {account.name!r} already exists.", field="accountName")
    if await uow.users.get_by_email(owner.email) is not None:
        raise Conflict(f"A user with the email {owner.email} already exists.", field="email")
    account = await uow.accounts.add(account)
    assert account.id is not None
    user = await uow.users.add(replace(owner, account_id=account.id))
    return account, user


class AccountService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        passwords: Passwords,
        *,
        wake_queue: Callable[[], None] = lambda: None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._passwords = passwords
        # Held mail an account change releases is due at once: wake this process's workers
        # (another process's find it at their next look at the queue).
        self._wake_queue = wake_queue

    async def create(
        self,
        name: str,
        *,
        owner_email: str,
        password: str,
        plan: str | None = None,
        owner_name: str = "",
    ) -> Account:
        """Create an account and its owner. With a plan it is active; without, a 7-day trial."""
        account, _ = await self.create_with_owner(
            name, owner_email=owner_email, password=password, plan=plan, owner_name=owner_name
        )
        return account

    async def create_with_owner(
        self,
        name: str,
        *,
        owner_email: str,
        password: str,
        plan: str | None = None,
        owner_name: str = "",
    ) -> tuple[Account, User]:
        now = self._clock.now()
        account = new_account(name, plan, now)
        email = check_email(owner_email)
        check_password(password)
        password_hash = await self._passwords.hash(password)
        owner = User(0, email, password_hash, "owner", now, name=owner_name)
        async with self._uow() as uow:
            created = await add_account_with_owner(uow, account, owner)
            await uow.commit()
        return created

    async def get(self, name: str) -> Account:
        async with self._uow(read_only=True) as uow:
            account = await uow.accounts.get_by_name(name)
        if account is None:
            raise NotFound(f"No account named {name!r}.")
        return account

    async def overview(self, viewer: Viewer) -> AccountOverview:
        """Any member of the account may see its plan and usage."""
        return await self._overview(viewer.account_id)

    async def _overview(self, account_id: int) -> AccountOverview:
        now = self._clock.now()
        async with self._uow(read_only=True) as uow:
            account = await uow.accounts.get(account_id)
            if account is None or account.id is None:
                raise NotFound("No such account.")
            usage = Usage(
                domains=await uow.domains.count_for_account(account.id),
                mailboxes=await uow.mailboxes.count_for_account(account.id),
                emails_this_month=await uow.usage.sent_in(account.id, usage_month(now)),
            )
        return overview_of(account, usage, now)

    async def rename(self, viewer: Viewer, name: str) -> AccountOverview:
        require_manager(viewer, "rename the account")
        name = name.strip()
        try:
            check_account_name(name)
        except InvalidInput as error:
            raise InvalidInput(error.message, field="name") from None
        async with self._uow() as uow:
            other = await uow.accounts.get_by_name(name)
            if other is not None and other.id != viewer.account_id:
                raise Conflict(f"Another account is already named {name!r}.", field="name")
            await uow.accounts.set_name(viewer.account_id, name)
            await uow.commit()
        return await self.overview(viewer)

    # --- the operator (CLI, and the owner of the first account): every account ----------------

    async def is_operator(self, viewer: Viewer) -> bool:
        """Whether the viewer runs this server: the owner of its first account (the one first-run
        setup, or the first `mailmark account create`, made)."""
        if not viewer.is_owner:
            return False
        async with self._uow(read_only=True) as uow:
            return await uow.accounts.first_id() == viewer.account_id

    async def require_operator(self, viewer: Viewer) -> None:
        if not await self.is_operator(viewer):
            raise Forbidden("Only the operator of this server can do this.")

    async def list_for_operator(self, viewer: Viewer) -> list[AccountOverview]:
        await self.require_operator(viewer)
        return await self.list_all()

    async def list_all(self) -> list[AccountOverview]:
        """Every account by name with its status, plan, usage and notices."""
        now = self._clock.now()
        async with self._uow(read_only=True) as uow:
            found = await uow.accounts.list_with_usage(usage_month(now))
        return [
            overview_of(account, Usage(domains, mailboxes, emails), now)
            for account, domains, mailboxes, emails in found
        ]

    async def change_plan(self, name: str, plan: str) -> tuple[AccountOverview, int]:
        """Put the account on `plan`, active (PRODUCT.md: choosing a plan ends a trial or a
        pause); its held mail is looked at again at once. The overview and how many held
        deliveries were released. A lower plan than the account uses is allowed: its notices say
        which limits are passed, and new domains, mailboxes or mail are refused until it fits."""
        chosen = plan_named(plan)
        return await self._set(name, chosen.name, AccountStatus.ACTIVE)

    async def pause(self, name: str) -> AccountOverview:
        """Pause the account: nothing is sent or accepted for sending, and its due mail is held
        until it is resumed or a plan is chosen."""
        overview, _ = await self._set(name, None, AccountStatus.PAUSED)
        return overview

    async def resume(self, name: str) -> tuple[AccountOverview, int]:
        """Undo a pause (or a plan cancelled and past its period end): back on its trial while
        that still runs, else active on its plan."""
        now = self._clock.now()
        account = settled(await self.get(name), now)
        on_trial = account.trial_ends_at is not None and now < account.trial_ends_at
        status = AccountStatus.TRIAL if on_trial else AccountStatus.ACTIVE
        if account.status == AccountStatus.PAUSED:
            return await self._set(name, None, status)
        raise Conflict(f"Account {account.name!r} is not paused.")

    async def _set(
        self, name: str, plan: str | None, status: AccountStatus
    ) -> tuple[AccountOverview, int]:
        now = self._clock.now()
        async with self._uow() as uow:
            account = await uow.accounts.get_by_name(name)
            if account is None or account.id is None:
                raise NotFound(f"No account named {name!r}.")
            await uow.accounts.lock(account.id)
            # The operator's word is final: a cancel or a downgrade waiting for the period end
            # no longer applies.
            await uow.accounts.save_lifecycle(
                replace(
                    settled(account, now),
                    plan=plan or account.plan,
                    status=status,
                    cancel_at_period_end=False,
                    scheduled_plan=None,
                )
            )
            released = 0
            if status != AccountStatus.PAUSED:
                released = await uow.deliveries.release_held(account.id, now)
            await uow.commit()
        if released:
            self._wake_queue()
        return await self._overview(account.id), released
