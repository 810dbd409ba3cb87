"""Accounts (a customer, with a plan) and their users (team members who sign in)."""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from datetime import datetime

from mailmark.core.errors import Conflict, InvalidInput, NotFound
from mailmark.core.model import Account, User
from mailmark.core.plans import TRIAL_LENGTH, plan_named
from mailmark.core.ports import Clock, PasswordHasher, UnitOfWork, UnitOfWorkFactory
from mailmark.core.states import AccountStatus

_ACCOUNT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,62}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,253}\.[^@\s]{1,63}$")
MIN_PASSWORD_LENGTH = 8


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
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, passwords: PasswordHasher) -> None:
        self._uow = uow
        self._clock = clock
        self._passwords = passwords

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
        # argon2 takes tens of milliseconds of CPU: keep the event loop free meanwhile.
        password_hash = await asyncio.to_thread(self._passwords.hash, password)
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
