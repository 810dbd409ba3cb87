"""What a LOGIN costs (issue 16, "Login cost"): argon2id runs on a bounded pool of its own, so a
slow hash holds neither other sessions nor the threads blob reads use; a client that reconnects
is answered from the verified-credential cache until the password changes (here or in another
process); a hash made with older parameters still logs in and is replaced."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from mailmark.bootstrap import Listeners, Services, build_services, password_hasher
from mailmark.config import Settings
from mailmark.core.mailboxes import MailboxService
from mailmark.core.passwords import Passwords
from mailmark.core.ports import Clock, PasswordHasher
from mailmark.sanitize import Nh3Sanitizer
from mailmark.security import Argon2PasswordHasher
from mailmark.storage.tables import mailboxes, users
from tests.imap.raw import Raw
from tests.support.viewers import viewer_of
from tests.support.world import World

SLOW_PASSWORD = "slow-pass-1"


class GatedHasher:
    """The suite's argon2id hasher, counting verifications; a verification of SLOW_PASSWORD
    blocks its thread until the test opens the gate, as a hash on a loaded machine would."""

    def __init__(self, inner: PasswordHasher) -> None:
        self.inner = inner
        self.verifications = 0
        self.running = 0
        self.peak = 0
        self.entered = threading.Semaphore(0)
        self.gate = threading.Event()
        self._lock = threading.Lock()

    def hash(self, password: str) -> str:
        return self.inner.hash(password)

    def needs_rehash(self, password_hash: str) -> bool:
        return self.inner.needs_rehash(password_hash)

    def verify(self, password_hash: str, password: str) -> bool:
        with self._lock:
            self.verifications += 1
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            if password == SLOW_PASSWORD:
                self.entered.release()
                assert self.gate.wait(30), "the test never opened the gate"
            return self.inner.verify(password_hash, password)
        finally:
            with self._lock:
                self.running -= 1


@pytest.fixture
def hasher(settings: Settings) -> GatedHasher:
    return GatedHasher(password_hasher(settings))


@pytest.fixture
async def services(
    settings: Settings, clock: Clock, hasher: GatedHasher
) -> AsyncIterator[Services]:
    built = await build_services(settings, clock=clock, passwords=hasher)
    try:
        yield built
    finally:
        hasher.gate.set()
        await built.close()


async def _login(port: int, user: str, password: str) -> bytes:
    client = await Raw.connect(port)
    try:
        lines = await client.run(b"L1", f'LOGIN "{user}" "{password}"'.encode())
        return lines[-1]
    finally:
        await client.close()


async def test_a_reconnecting_client_pays_the_hash_once_until_the_password_changes(
    world: World, listeners: Listeners, hasher: GatedHasher
) -> None:
    port = listeners.imaps_port
    for _ in range(3):
        assert (await _login(port, "sales@acme.test", "sales-pass-1")).startswith(b"L1 OK ")
    assert hasher.verifications == 1
    # A wrong password is never answered from the cache, and a failure is not remembered.
    for _ in range(2):
        refused = await _login(port, "sales@acme.test", "sales-pass-2")
        assert refused == (
            b"L1 NO [AUTHENTICATIONFAILED] Invalid credentials: wrong address or password.\r\n"
        )
    assert hasher.verifications == 3

    owner = await viewer_of(world.services, "owner@acme.test")
    await world.services.mailboxes.set_password(owner, "sales@acme.test", "sales-pass-2")
    assert (await _login(port, "sales@acme.test", "sales-pass-1")).startswith(
        b"L1 NO [AUTHENTICATIONFAILED]"
    )
    assert (await _login(port, "sales@acme.test", "sales-pass-2")).startswith(b"L1 OK ")


async def test_a_password_changed_by_another_process_is_not_taken_from_this_ones_cache(
    world: World, listeners: Listeners, hasher: GatedHasher
) -> None:
    port = listeners.imaps_port
    assert (await _login(port, "sales@acme.test", "sales-pass-1")).startswith(b"L1 OK ")
    services = world.services
    # Another node (or the CLI): its own services, its own cache, the same database.
    other_passwords = Passwords(password_hasher(services.settings), services.clock)
    other_node = MailboxService(
        services.uow, services.clock, other_passwords, services.blobs, Nh3Sanitizer()
    )
    owner = await viewer_of(services, "owner@acme.test")
    try:
        await other_node.set_password(owner, "sales@acme.test", "changed-elsewhere-1")
    finally:
        other_passwords.close()
    assert (await _login(port, "sales@acme.test", "sales-pass-1")).startswith(
        b"L1 NO [AUTHENTICATIONFAILED]"
    )
    assert (await _login(port, "sales@acme.test", "changed-elsewhere-1")).startswith(b"L1 OK ")


async def test_hashes_made_with_older_parameters_log_in_and_are_replaced(
    world: World, listeners: Listeners
) -> None:
    services = world.services
    older = Argon2PasswordHasher(time_cost=2, memory_cost_kib=2048)
    assert world.sales.id is not None
    async with services.engine.begin() as conn:
        await conn.execute(
            mailboxes.update()
            .where(mailboxes.c.id == world.sales.id)
            .values(password_hash=older.hash("sales-pass-1"))
        )
        await conn.execute(
            users.update()
            .where(users.c.email == "owner@acme.test")
            .values(password_hash=older.hash("owner-pass-1"))
        )

    assert (await _login(listeners.imaps_port, "sales@acme.test", "sales-pass-1")).startswith(
        b"L1 OK "
    )
    await services.identity.sign_in(
        "owner@acme.test", "owner-pass-1", ip="192.0.2.1", user_agent=""
    )
    async with services.engine.connect() as conn:
        mailbox_hash = (
            await conn.execute(
                sa.select(mailboxes.c.password_hash).where(mailboxes.c.id == world.sales.id)
            )
        ).scalar_one()
        user_hash = (
            await conn.execute(
                sa.select(users.c.password_hash).where(users.c.email == "owner@acme.test")
            )
        ).scalar_one()
    current = password_hasher(services.settings)
    for stored, password in ((mailbox_hash, "sales-pass-1"), (user_hash, "owner-pass-1")):
        assert stored.startswith("$argon2id$v=19$m=1024,t=1,p=1$"), stored
        assert current.verify(stored, password) and not current.needs_rehash(stored)


async def test_slow_hashes_hold_neither_other_sessions_nor_the_shared_threads(
    world: World, listeners: Listeners, hasher: GatedHasher
) -> None:
    services = world.services
    owner = await viewer_of(services, "owner@acme.test")
    await services.mailboxes.set_password(owner, "support@acme.test", SLOW_PASSWORD)
    multipart = (
        b"From: a@example.org\r\nSubject: parts\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nfirst part\r\n--b--\r\n"
    )
    await services.mailstore.append(world.sales.id or 0, "INBOX", multipart)
    reader = await Raw.connect(listeners.imaps_port)
    await reader.login()
    await reader.ok(b"S1", b"SELECT INBOX")
    logins = [
        asyncio.create_task(_login(listeners.imaps_port, "support@acme.test", SLOW_PASSWORD))
        for _ in range(6)
    ]
    try:
        # Every thread of the password pool is now held by a hash that does not end.
        for _ in range(services.passwords.workers):
            assert await asyncio.to_thread(hasher.entered.acquire, True, 10)
        # This session's commands, and a FETCH that parses the message on the default threads,
        # are answered meanwhile.
        assert (await reader.ok(b"N1", b"NOOP"))[-1] == b"N1 OK NOOP completed\r\n"
        fetched = await reader.ok(b"F1", b"FETCH 1 (BODY.PEEK[1])")
        assert fetched[0] == b"* 1 FETCH (BODY[1] {10}\r\nfirst part)\r\n"
        assert not any(login.done() for login in logins)
        # The pool is bounded: the logins beyond it wait their turn instead of adding threads.
        assert hasher.peak == services.passwords.workers
        hasher.gate.set()
        answers = await asyncio.gather(*logins)
    finally:
        hasher.gate.set()
        await reader.close()
    assert all(answer.startswith(b"L1 OK ") for answer in answers)
    assert hasher.peak == services.passwords.workers
