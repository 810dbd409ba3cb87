"""The full-text index of message bodies, filled after delivery instead of before the 250.

Tokenising a body into trigrams (SQLite FTS5, PostgreSQL pg_trgm) costs about 2 ms of processor
time for 10 KiB of text: more than accepting, authenticating and storing the whole message. So
mail the MX accepts is stored with its header text indexed and its body text waiting
(`pending_body_texts`); `TextIndexer` adds the body text later, in batches outside the
delivery's transaction, and a text search first indexes whatever still waits in the folders it
looks in, so it never misses a message. Dovecot's full-text search works the same way: its
indexer process catches up after delivery, and a SEARCH catches up first.

The indexer waits for a lull: until no delivery has been committed for `QUIET_SECONDS`, or until
`BACKLOG_LIMIT` messages wait. A burst of mail is accepted at the pace of storing it, and
indexed once it is over; mail that never stops coming is indexed anyway, at the burst's cost.

The body text computed at delivery is kept in memory until it is indexed (up to `TEXTS_KEPT`
characters); a message whose text is not at hand (another process delivered it, the server
restarted, or too much was waiting) is read from its blob and parsed again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping

from mailmark.core.background import BackgroundLoop
from mailmark.core.cpu_pool import CpuPool
from mailmark.core.message_meta import read_body_text
from mailmark.core.ports import BlobStore, UnitOfWorkFactory, blob_batches, read_blobs

log = logging.getLogger(__name__)

# Messages indexed per transaction: on SQLite the index's writes hold the one write lock, which
# deliveries wait for meanwhile; 32 bodies of 10 KiB take about 60 ms.
TEXT_BATCH = 32
# Characters of body text kept in memory for messages waiting to be indexed, in all.
TEXTS_KEPT = 32 * 1024 * 1024
# Message bytes read from the blob store at once to parse bodies whose text is not at hand.
PARSE_BATCH_BYTES = 16 * 1024 * 1024
# How often the indexer looks for waiting messages it was not told about (other processes',
# or left by a restart).
POLL_SECONDS = 30.0
# No delivery for this long is a lull, in which the indexer works.
QUIET_SECONDS = 1.0
# With this many messages waiting, the indexer works whether deliveries go on or not.
BACKLOG_LIMIT = 20_000


class TextIndexer(BackgroundLoop):
    name = "full-text indexer"

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        blobs: BlobStore,
        cpu: CpuPool,
        *,
        batch: int = TEXT_BATCH,
        kept: int = TEXTS_KEPT,
        poll: float = POLL_SECONDS,
        quiet: float = QUIET_SECONDS,
        backlog_limit: int = BACKLOG_LIMIT,
    ) -> None:
        super().__init__()
        self._uow = uow
        self._blobs = blobs
        self._cpu = cpu
        self._batch = batch
        self._kept = kept
        self._poll = poll
        self._quiet = quiet
        self._backlog_limit = backlog_limit
        # Messages this process was told of since the indexer last found nothing waiting, and
        # when the last of them was committed.
        self._told = 0
        self._last_told = 0.0
        self._texts: dict[int, str] = {}
        self._kept_chars = 0
        self._wake = asyncio.Event()
        # One batch at a time in this process: a search catching up and the background pass
        # would otherwise index the same messages twice.
        self._indexing = asyncio.Lock()

    def remember(self, texts: Mapping[int, str]) -> None:
        """Body texts of messages just committed with theirs waiting: the next pass indexes
        them without parsing again. Beyond `kept` characters, texts are left to be re-read."""
        for message_id, text in texts.items():
            if self._kept_chars + len(text) <= self._kept:
                self._texts[message_id] = text
                self._kept_chars += len(text)
        self._told += len(texts)
        self._last_told = time.monotonic()
        self._wake.set()

    async def catch_up(self, folder_id: int | None = None) -> int:
        """Index every message still waiting (in `folder_id` when given); how many there were."""
        done = 0
        while True:
            indexed = await self._index_batch(folder_id)
            if not indexed:
                return done
            done += indexed

    async def _index_batch(self, folder_id: int | None) -> int:
        async with self._indexing:
            async with self._uow(read_only=True) as uow:
                waiting = await uow.mailstore.body_texts_pending(self._batch, folder_id)
            if not waiting:
                return 0
            texts = {i: self._texts[i] for i, _, _ in waiting if i in self._texts}
            unknown = [item for item in waiting if item[0] not in texts]
            for group in blob_batches(unknown, lambda item: item[2], PARSE_BATCH_BYTES):
                parsed = await self._unless_stopping(self._parse_again(group))
                if parsed is None:
                    # Stopped: parsing holds no database connection, so it is given up at once
                    # (after a restart it may wait for the CPU pool's workers to start); the
                    # bodies stay waiting, for the next start.
                    return 0
                texts.update(parsed)
            async with self._uow() as uow:
                await uow.mailstore.add_body_texts([(i, texts.get(i, "")) for i, _, _ in waiting])
                await uow.commit()
            for message_id, _, _ in waiting:
                dropped = self._texts.pop(message_id, None)
                if dropped is not None:
                    self._kept_chars -= len(dropped)
            return len(waiting)

    async def _parse_again(self, waiting: list[tuple[int, str, int]]) -> dict[int, str]:
        """Body texts from the blobs, read in one batch; a blob that is gone indexes as no
        text."""
        raws = await read_blobs(self._blobs, [key for _, key, _ in waiting])
        found = [(item[0], raw) for item, raw in zip(waiting, raws, strict=True) if raw is not None]
        texts = await self._cpu.run_each(read_body_text, [raw for _, raw in found])
        return {message_id: text for (message_id, _), text in zip(found, texts, strict=True)}

    async def _run(self) -> None:
        while not self.stopping:
            self._wake.clear()
            quiet_for = time.monotonic() - self._last_told
            if quiet_for < self._quiet and self._told < self._backlog_limit:
                await self._pause(self._quiet - quiet_for)
                continue
            try:
                indexed = await self._index_batch(None)
            except Exception:
                log.exception("could not add waiting message bodies to the full-text index")
                indexed = 0
            if not indexed:
                # Texts still kept belong to messages deleted before they were indexed.
                self._texts.clear()
                self._kept_chars = 0
                self._told = 0
                await self._wait_for_work()

    async def _wait_for_work(self) -> None:
        """Until told of new texts, `poll` seconds pass, or the loop is stopped."""
        woken = asyncio.ensure_future(self._wake.wait())
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait([woken, stopping], timeout=self._poll, return_when="FIRST_COMPLETED")
        finally:
            woken.cancel()
            stopping.cancel()
