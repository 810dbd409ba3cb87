"""Group commit: concurrent deliveries share one transaction, yet each succeeds or fails on its own."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
from collections.abc import Sequence

import pytest

from mailmark.core.delivery import DeliveryReceipt
from mailmark.core.errors import MailmarkError, StorageUnavailable
from mailmark.core.group_commit import GroupCommitter, StoredJob
from mailmark.core.model import Mailbox
from tests.support.world import World, stored_copies


def message(n: int, subject: str = "Order") -> bytes:
    return (
        f"From: Customer {n} <c{n}@example.org>\r\n"
        f"To: sales@acme.test\r\n"
        f"Subject: {subject} {n}\r\n"
        f"Message-ID: <order-{n}@example.org>\r\n"
        f"\r\n"
        f"Please send {n} widgets.\r\n"
    ).encode()


def blob_files(world: World) -> list[str]:
    root = world.services.settings.blob_path
    return sorted(path.name for path in root.glob("*/*") if path.is_file())


def bogus_mailbox(world: World) -> Mailbox:
    """A recipient that passed RCPT but has no folders (e.g. deleted meanwhile): recording fails."""
    return dataclasses.replace(world.sales, id=987_654, local_part="ghost")


async def test_fifty_concurrent_deliveries_get_gap_free_uids(world: World) -> None:
    raws = [message(n) for n in range(50)]
    receipts = await asyncio.gather(
        *(
            world.services.delivery.deliver(
                raw, recipients=[world.sales], mail_from=f"c{n}@example.org"
            )
            for n, raw in enumerate(raws)
        )
    )

    assert all(isinstance(r, DeliveryReceipt) for r in receipts)
    assert len({r.message_id for r in receipts}) == 50
    uids = [r.placements[0].uid for r in receipts]
    assert sorted(uids) == list(range(1, 51))

    copies = await stored_copies(world.services, world.sales)
    assert sorted(c.uid for c in copies) == list(range(1, 51))
    assert {c.folder for c in copies} == {"INBOX"}
    assert sorted(c.data for c in copies) == sorted(raws)
    assert len(blob_files(world)) == 50

    async with world.services.uow() as uow:
        inbox = await uow.folders.get_by_name(world.sales.id or 0, "INBOX")
    assert inbox is not None and inbox.uid_next == 51


async def test_one_bad_request_fails_alone_and_leaves_no_orphan_blob(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="mailmark.core.group_commit")
    good = [message(n) for n in range(9)]
    bad = message(99, subject="Lost")
    calls = [
        world.services.delivery.deliver(raw, recipients=[world.sales], mail_from="c@example.org")
        for raw in good[:4]
    ]
    calls.append(
        world.services.delivery.deliver(
            bad, recipients=[bogus_mailbox(world)], mail_from="c@example.org"
        )
    )
    calls += [
        world.services.delivery.deliver(raw, recipients=[world.sales], mail_from="c@example.org")
        for raw in good[4:]
    ]
    outcomes = await asyncio.gather(*calls, return_exceptions=True)

    failures = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(failures) == 1 and outcomes[4] is failures[0]
    assert isinstance(failures[0], LookupError)
    # The batch really was shared, and split up only because of the bad request.
    assert any("recording one by one" in r.getMessage() for r in caplog.records)

    copies = await stored_copies(world.services, world.sales)
    assert sorted(c.uid for c in copies) == list(range(1, 10))  # no UID burnt by the failure
    assert sorted(c.data for c in copies) == sorted(good)
    bad_key = hashlib.sha256(bad).hexdigest()
    assert not await world.services.blobs.exists(bad_key)
    assert blob_files(world) == sorted(hashlib.sha256(raw).hexdigest() for raw in good)


async def test_failed_request_keeps_a_blob_that_a_stored_neighbour_shares(world: World) -> None:
    shared = message(1)
    outcomes = await asyncio.gather(
        world.services.delivery.deliver(
            shared, recipients=[world.sales], mail_from="c@example.org"
        ),
        world.services.delivery.deliver(
            shared, recipients=[bogus_mailbox(world)], mail_from="c@example.org"
        ),
        world.services.delivery.deliver(
            message(2), recipients=[world.sales], mail_from="c@example.org"
        ),
        return_exceptions=True,
    )

    assert isinstance(outcomes[0], DeliveryReceipt) and isinstance(outcomes[2], DeliveryReceipt)
    assert isinstance(outcomes[1], LookupError)
    assert await world.services.blobs.get(outcomes[0].blob_key) == shared


async def test_a_caller_that_goes_away_does_not_fail_its_batch(world: World) -> None:
    """An SMTP client disconnecting mid-DATA cancels its own wait, and nobody else's."""
    raws = [message(n) for n in range(10)]
    tasks = [
        asyncio.create_task(
            world.services.delivery.deliver(
                raw, recipients=[world.sales], mail_from="c@example.org"
            )
        )
        for raw in raws
    ]
    await asyncio.sleep(0)  # every task has queued its request and waits for its answer
    tasks[3].cancel()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)

    assert isinstance(outcomes[3], asyncio.CancelledError)
    others = [o for i, o in enumerate(outcomes) if i != 3]
    assert all(isinstance(o, DeliveryReceipt) for o in others), others
    uids = sorted(c.uid for c in await stored_copies(world.services, world.sales))
    # The cancelled request was already in the committed batch: it is stored, which is safe (the
    # client never saw a 250 and will retry); what matters is that the others were answered.
    assert uids == list(range(1, 11))


# The committer itself, with a blob store in memory and a record step that keeps what it commits.


class MemoryBlobs:
    """A content-addressed BlobStore in memory; writes of contents in `unwritable` fail, and
    deletes raise `deletes_fail` while it is set."""

    def __init__(self, unwritable: frozenset[bytes] = frozenset()) -> None:
        self.stored: dict[str, bytes] = {}
        self.unwritable = unwritable
        self.deletes_fail: Exception | None = None

    async def put(self, data: bytes) -> tuple[str, bool]:
        if data in self.unwritable:
            raise OSError(28, "No space left on device")
        key = hashlib.sha256(data).hexdigest()
        created = key not in self.stored
        self.stored[key] = data
        return key, created

    async def put_many(self, items: Sequence[bytes]) -> list[tuple[str, bool] | Exception]:
        results: list[tuple[str, bool] | Exception] = []
        for data in items:
            try:
                results.append(await self.put(data))
            except OSError as error:
                results.append(error)
        return results

    async def get(self, key: str) -> bytes:
        return self.stored[key]

    async def get_many(self, keys: Sequence[str]) -> list[bytes]:
        return [self.stored[key] for key in keys]

    async def delete(self, key: str) -> None:
        if self.deletes_fail is not None:
            raise self.deletes_fail
        self.stored.pop(key, None)

    async def exists(self, key: str) -> bool:
        return key in self.stored

    async def check(self) -> None:
        pass

    async def close(self) -> None:
        pass


class Refused(MailmarkError):
    pass


@dataclasses.dataclass(frozen=True)
class Job:
    name: str
    raws: tuple[bytes, ...]
    refuse: bool = False  # refused by the record step's checks: fails alone, the batch commits
    poison: bool = False  # breaks any transaction it is part of


class Ledger:
    """The record step: remembers each committed transaction's jobs."""

    def __init__(self) -> None:
        self.transactions: list[list[str]] = []
        self.attempts = 0

    async def record(self, stored: Sequence[StoredJob[Job]]) -> list[str | Exception]:
        self.attempts += 1
        await asyncio.sleep(0)  # a transaction takes a while: others queue up meanwhile
        if any(s.job.poison for s in stored):
            raise RuntimeError("constraint violated")
        self.transactions.append([s.job.name for s in stored if not s.job.refuse])
        return [
            Refused(f"{s.job.name} refused") if s.job.refuse else ",".join(k for k, _ in s.blobs)
            for s in stored
        ]

    def committed(self) -> list[str]:
        return [name for transaction in self.transactions for name in transaction]


def committer(blobs: MemoryBlobs, ledger: Ledger, max_blobs: int = 10) -> GroupCommitter[Job, str]:
    return GroupCommitter(
        blobs,
        blobs_of=lambda job: job.raws,
        record=ledger.record,
        max_blobs=max_blobs,
        name="test job",
    )


def key(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


async def test_concurrent_jobs_share_transactions_within_the_blob_limit() -> None:
    ledger = Ledger()
    commits = committer(MemoryBlobs(), ledger, max_blobs=4)
    jobs = [Job(f"j{n}", (f"a{n}".encode(), f"b{n}".encode())) for n in range(6)]
    big = Job("big", tuple(f"c{n}".encode() for n in range(7)))

    answers = await asyncio.gather(*(commits.commit(job) for job in [*jobs, big]))

    assert answers[0] == f"{key(b'a0')},{key(b'b0')}"
    # Two jobs (four blobs) a transaction; a job above the limit goes in a batch of its own.
    assert ledger.transactions == [["j0", "j1"], ["j2", "j3"], ["j4", "j5"], ["big"]]


async def test_nobody_is_answered_before_their_transaction_commits() -> None:
    ledger = Ledger()
    commits = committer(MemoryBlobs(), ledger)

    async def commit_and_check(job: Job) -> None:
        await commits.commit(job)
        assert job.name in ledger.committed()

    await asyncio.gather(*(commit_and_check(Job(f"j{n}", (b"x%d" % n,))) for n in range(20)))
    assert len(ledger.transactions) < 20


async def test_a_refused_job_fails_alone_and_its_new_blobs_go() -> None:
    blobs, ledger = MemoryBlobs(), Ledger()
    commits = committer(blobs, ledger)
    shared = b"same content"

    answers = await asyncio.gather(
        commits.commit(Job("ok", (shared, b"mine"))),
        commits.commit(Job("no", (shared, b"refused only"), refuse=True)),
        commits.commit(Job("ok2", (b"other",))),
        return_exceptions=True,
    )

    assert isinstance(answers[1], Refused)
    assert answers[0] == f"{key(shared)},{key(b'mine')}" and answers[2] == key(b"other")
    assert ledger.transactions == [["ok", "ok2"]]
    assert sorted(blobs.stored.values()) == sorted([shared, b"mine", b"other"])


async def test_a_failing_transaction_is_retried_one_job_at_a_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    blobs, ledger = MemoryBlobs(), Ledger()
    commits = committer(blobs, ledger)
    first = asyncio.create_task(commits.commit(Job("first", (b"1",))))
    await asyncio.sleep(0)  # the writer takes `first`; the others wait for the next batch

    answers = await asyncio.gather(
        commits.commit(Job("a", (b"a",))),
        commits.commit(Job("bad", (b"bad",), poison=True)),
        commits.commit(Job("b", (b"b",))),
        return_exceptions=True,
    )

    assert await first == key(b"1")
    assert answers[0] == key(b"a") and answers[2] == key(b"b")
    assert isinstance(answers[1], RuntimeError)
    assert ledger.transactions == [["first"], ["a"], ["b"]]
    assert any("recording one by one" in r.getMessage() for r in caplog.records)
    assert key(b"bad") not in blobs.stored


async def test_a_job_whose_blob_cannot_be_written_fails_alone() -> None:
    blobs, ledger = MemoryBlobs(unwritable=frozenset({b"too big"})), Ledger()
    commits = committer(blobs, ledger)

    answers = await asyncio.gather(
        commits.commit(Job("half", (b"written", b"too big"))),
        commits.commit(Job("whole", (b"fine",))),
        return_exceptions=True,
    )

    assert isinstance(answers[0], OSError)
    assert answers[1] == key(b"fine")
    assert ledger.committed() == ["whole"]
    assert list(blobs.stored.values()) == [b"fine"]  # the half-stored job left nothing behind


@pytest.mark.parametrize(
    "delete_error",
    [
        PermissionError(13, "Permission denied"),
        # An object store that stopped answering: the committed job must still get its answer.
        StorageUnavailable("The message store (S3) cannot be reached now; try again later."),
    ],
)
async def test_a_blob_that_cannot_be_removed_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture, delete_error: Exception
) -> None:
    blobs, ledger = MemoryBlobs(), Ledger()
    blobs.deletes_fail = delete_error
    commits = committer(blobs, ledger)

    answers = await asyncio.gather(
        commits.commit(Job("no", (b"refused",), refuse=True)),
        commits.commit(Job("ok", (b"kept",))),
        return_exceptions=True,
    )

    assert isinstance(answers[0], Refused)  # its own answer, not the OSError of the clean-up
    assert answers[1] == key(b"kept")
    removal = [r for r in caplog.records if "could not remove orphan blob" in r.getMessage()]
    assert len(removal) == 1 and removal[0].exc_info is not None
    assert key(b"refused") in removal[0].getMessage()


async def test_a_caller_that_goes_away_leaves_its_job_in_the_batch() -> None:
    ledger = Ledger()
    commits = committer(MemoryBlobs(), ledger)
    tasks = [asyncio.create_task(commits.commit(Job(f"j{n}", (b"%d" % n,)))) for n in range(5)]
    await asyncio.sleep(0)
    tasks[2].cancel()

    answers = await asyncio.gather(*tasks, return_exceptions=True)
    await commits.close()

    assert isinstance(answers[2], asyncio.CancelledError)
    assert all(isinstance(a, str) for i, a in enumerate(answers) if i != 2)
    assert sorted(ledger.committed()) == [f"j{n}" for n in range(5)]


async def test_close_waits_for_accepted_jobs() -> None:
    ledger = Ledger()
    commits = committer(MemoryBlobs(), ledger)
    tasks = [asyncio.create_task(commits.commit(Job(f"j{n}", (b"%d" % n,)))) for n in range(3)]
    await asyncio.sleep(0)

    await commits.close()

    assert sorted(ledger.committed()) == ["j0", "j1", "j2"]
    assert all(task.done() for task in tasks)
