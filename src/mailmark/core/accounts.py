"""Accounts (a customer, with a plan) and their users (team members who sign in)."""

from __future__ import annotations

import re

from mailmark.core.errors import Conflict, InvalidInput, NotFound
from mailmark.core.model import Account, User
from mailmark.core.plans import TRIAL_LENGTH, plan_named
from mailmark.core.ports import Clock, PasswordHasher, UnitOfWorkFactory
from mailmark.core.states import AccountStatus

_ACCOUNT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,62}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,253}\.[^@\s]{1,63}$")
MIN_PASSWORD_LENGTH = 8


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"Passwords must be at least {MIN_PASSWORD_LENGTH} characters long.")


class AccountService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, passwords: PasswordHasher) -> None:
        self._uow = uow
        self._clock = clock
        self._passwords = passwords

    async def create(
        self, name: str, *, owner_email: str, password: str, plan: str | None = None
    ) -> Account:
        """Create an account and its owner. With a plan it is active; without, a 7-day trial."""
        if not _ACCOUNT_NAME.match(name):
            raise InvalidInput(
                f"{name!r} is not a valid account name: 1-63 letters, digits, spaces, . _ or -."
            )
        if not _EMAIL.match(owner_email):
            raise InvalidInput(f"{owner_email!r} is not a valid email address.")
        check_password(password)
        now = self._clock.now()
        if plan is None:
            account = Account(
                name, "starter", AccountStatus.TRIAL, now, trial_ends_at=now + TRIAL_LENGTH
            )
        else:
            account = Account(name, plan_named(plan).name, AccountStatus.ACTIVE, now)
        password_hash = self._passwords.hash(password)
        async with self._uow() as uow:
            if await uow.accounts.get_by_name(name) is not None:
                raise Conflict(f"Account {name!r} already exists.")
            if await uow.users.get_by_email(owner_email.lower()) is not None:
                raise Conflict(f"A user with the email {owner_email} already exists.")
            account = await uow.accounts.add(account)
            assert account.id is not None
            await uow.users.add(User(account.id, owner_email.lower(), password_hash, "owner", now))
            await uow.commit()
        return account

    async def get(self, name: str) -> Account:
        async with self._uow(read_only=True) as uow:
            account = await uow.accounts.get_by_name(name)
        if account is None:
            raise NotFound(f"No account named {name!r}.")
        return account
