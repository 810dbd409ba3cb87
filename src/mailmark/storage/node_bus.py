"""Signals between `serve` nodes sharing one PostgreSQL database, over LISTEN/NOTIFY.

Each process keeps one dedicated asyncpg connection that LISTENs on one channel and also sends
this process's notifications (`pg_notify`), after the change they announce has committed. A
notification carries ids only, grouped by topic ("folder": mailbox ids, "queue", "apikey":
prefixes, "login": throttle entries); items published close together go out in one NOTIFY,
split so that none exceeds PostgreSQL's 8000-byte payload limit. A node ignores its own
notifications (it woke its own waiters in process already).

When the connection drops, notifications sent meanwhile are lost: the bus reconnects with
backoff and then calls every `on_resync` callback, which treat everything as changed (wake every
IDLE session, SSE stream and worker once; forget cached API keys).

The same connection holds a session-level advisory lock (`pg_try_advisory_lock`) that makes one
node the leader for jobs that must not run twice at once; it is released by PostgreSQL when the
connection ends, so a dead node's leadership passes to another within a retry interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import URL

log = logging.getLogger(__name__)

CHANNEL = "mailmark_nodes"
# PostgreSQL refuses payloads of 8000 bytes or more; leave room for the envelope.
MAX_PAYLOAD_BYTES = 7000
# One key for the leader lock, the same on every node ("mmleader" as a 64-bit integer; the
# migration lock in storage/migrate.py uses another).
LEADER_LOCK_KEY = 0x6D6D6C6561646572
RECONNECT_BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
# A node that is not the leader tries to become it this often (and at once after a reconnect).
LEADER_RETRY_SECONDS = 10.0
# At most this many items wait to be sent; past it, new ones are dropped (waiters still poll).
MAX_PENDING_ITEMS = 50_000

# What a lost or refused connection raises (the listener then reconnects).
CONNECTION_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)

Item = int | str | list[Any]
Handler = Callable[[list[Any]], None]


def asyncpg_dsn(url: URL) -> str:
    """The plain `postgresql://` DSN asyncpg takes for a SQLAlchemy `postgresql+asyncpg` URL."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def payloads(node: str, pending: dict[str, list[Item]]) -> list[str]:
    """`pending` as JSON payloads, each under MAX_PAYLOAD_BYTES (a single oversized item is
    dropped: ids never come near the limit)."""
    out: list[str] = []
    batch: dict[str, list[Item]] = {}
    size = len(json.dumps({"n": node, "t": {}}))
    for topic, items in pending.items():
        for item in items:
            cost = len(json.dumps(item)) + len(json.dumps(topic)) + 4
            if cost + size > MAX_PAYLOAD_BYTES and batch:
                out.append(json.dumps({"n": node, "t": batch}, separators=(",", ":")))
                batch, size = {}, len(json.dumps({"n": node, "t": {}}))
            if cost + size > MAX_PAYLOAD_BYTES:
                log.warning("node bus: an item of topic %s is too large to send; dropped", topic)
                continue
            batch.setdefault(topic, []).append(item)
            size += cost
    if batch:
        out.append(json.dumps({"n": node, "t": batch}, separators=(",", ":")))
    return out


class NodeBus:
    """Publish small change notices to every node; call handlers for other nodes' notices."""

    def __init__(
        self, dsn: str, *, node: str | None = None, leader_retry: float = LEADER_RETRY_SECONDS
    ) -> None:
        self._dsn = dsn
        self._leader_retry = leader_retry
        self.node = node or secrets.token_hex(8)
        self._handlers: dict[str, Handler] = {}
        self._resync: list[Callable[[], None]] = []
        self._pending: dict[str, dict[str, None]] = {}
        self._pending_count = 0
        self._has_pending = asyncio.Event()
        self._connection: asyncpg.Connection | None = None
        self._connection_lock = asyncio.Lock()
        self._lost = asyncio.Event()
        self._connected = asyncio.Event()
        self._leader = False
        # Set by `stand_for_leader`: only a process that runs the singleton jobs takes the lock.
        self._candidate = asyncio.Event()
        # Wakes `_hold` early: the connection was lost, or this process became a candidate.
        self._poke = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._sent: list[asyncio.Future[None]] = []
        self.reconnects = 0

    # -- wiring ---------------------------------------------------------------------------------

    def subscribe(self, topic: str, handler: Handler) -> None:
        """Call `handler(items)` for each notice of `topic` another node sends."""
        self._handlers[topic] = handler

    def on_resync(self, callback: Callable[[], None]) -> None:
        """Call `callback()` after a reconnection (notices may have been missed meanwhile)."""
        self._resync.append(callback)

    # -- publishing -----------------------------------------------------------------------------

    def publish(self, topic: str, item: Item) -> None:
        """Send `item` under `topic` to the other nodes soon (coalesced with others)."""
        if self._pending_count >= MAX_PENDING_ITEMS:
            return
        key = json.dumps(item, separators=(",", ":"))
        items = self._pending.setdefault(topic, {})
        if key not in items:
            items[key] = None
            self._pending_count += 1
        self._has_pending.set()

    async def published(self) -> None:
        """Wait until what was published so far has been sent (or could not be: connection down)."""
        if not self._pending_count or not self._tasks:
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sent.append(done)
        await done

    # -- leadership -----------------------------------------------------------------------------

    @property
    def backend_pid(self) -> int | None:
        """The PostgreSQL backend of the listening connection (None while disconnected)."""
        connection = self._connection
        return None if connection is None else int(connection.get_server_pid())

    def stand_for_leader(self) -> None:
        """Take the leader lock whenever it is free (a `serve` process with its timers; HTTP
        worker processes and admin commands never lead)."""
        self._candidate.set()
        self._poke.set()

    def is_leader(self) -> bool:
        """True while this node holds the leader lock (on a live connection)."""
        return self._leader and self._connected.is_set()

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect (waiting for the first connection only briefly) and run in the background."""
        self._tasks = [
            asyncio.create_task(self._keep_connected(), name="node-bus-listen"),
            asyncio.create_task(self._send_pending(), name="node-bus-send"),
        ]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._connected.wait(), 10)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self._settle_sent()
        await self._disconnect()

    async def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        self._connected.clear()
        self._leader = False
        if connection is not None and not connection.is_closed():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), 5)

    async def _keep_connected(self) -> None:
        attempt = 0
        first = True
        while True:
            try:
                connection = await self._listen()
            except CONNECTION_ERRORS as error:
                delay = RECONNECT_BACKOFF[min(attempt, len(RECONNECT_BACKOFF) - 1)]
                attempt += 1
                log.warning("node bus: cannot listen (%s); retrying in %.1fs", error, delay)
                await asyncio.sleep(delay)
                continue
            if first and not attempt:
                log.info("node bus: listening for other nodes (this node is %s)", self.node)
            else:
                self.reconnects += 1
                log.info("node bus: listening again; treating everything as changed")
                self._resync_all()
            first, attempt = False, 0
            try:
                await self._hold(connection)
            except CONNECTION_ERRORS as error:
                log.warning("node bus: connection lost (%s)", error)
            await self._disconnect()

    async def _listen(self) -> asyncpg.Connection:
        connection = await asyncpg.connect(self._dsn, timeout=10)
        try:
            self._lost.clear()
            connection.add_termination_listener(lambda _: self._connection_lost())
            await connection.add_listener(CHANNEL, self._received)
        except BaseException:
            connection.terminate()
            raise
        self._connection = connection
        self._connected.set()
        return connection

    def _connection_lost(self) -> None:
        self._lost.set()
        self._poke.set()

    async def _hold(self, connection: asyncpg.Connection) -> None:
        """Until the connection is lost: when a candidate, try for the leader lock now and then."""
        while not self._lost.is_set() and not connection.is_closed():
            if self._candidate.is_set() and not self._leader:
                async with self._connection_lock:
                    self._leader = bool(
                        await connection.fetchval(
                            "SELECT pg_try_advisory_lock($1)", LEADER_LOCK_KEY
                        )
                    )
                if self._leader:
                    log.info("node bus: this node is the leader for singleton jobs")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poke.wait(), self._leader_retry)
            self._poke.clear()

    def _resync_all(self) -> None:
        for callback in self._resync:
            try:
                callback()
            except Exception:
                log.exception("node bus: resync callback failed")

    def _received(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            notice = json.loads(payload)
            if notice.get("n") == self.node:
                return
            topics: dict[str, list[Any]] = notice["t"]
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("node bus: ignored a malformed notice")
            return
        for topic, items in topics.items():
            handler = self._handlers.get(topic)
            if handler is None or not isinstance(items, list):
                continue
            try:
                handler(items)
            except Exception:
                log.exception("node bus: handler for %s failed", topic)

    async def _send_pending(self) -> None:
        while True:
            await self._has_pending.wait()
            self._has_pending.clear()
            pending = {
                topic: [json.loads(key) for key in keys] for topic, keys in self._pending.items()
            }
            self._pending, self._pending_count = {}, 0
            waiting, self._sent = self._sent, []
            try:
                await self._notify(payloads(self.node, pending))
            except Exception:
                log.exception("node bus: could not send notices")
            finally:
                for done in waiting:
                    if not done.done():
                        done.set_result(None)

    async def caught_up(self) -> None:
        """Return once the notices other nodes sent before this call have been handled here.
        PostgreSQL hands a listening session the notices committed meanwhile before it answers
        the session's next query (at the latest ahead of ReadyForQuery), and asyncpg passes
        them to `_received` before the query's answer wakes its caller: one round trip on the
        listening connection is the barrier. Without a connection there is nothing to wait for
        (the notices are lost either way, and a reconnection resyncs)."""
        connection = self._connection
        if connection is None:
            return
        try:
            async with self._connection_lock:
                await connection.fetchval("SELECT 1")
        except CONNECTION_ERRORS as error:
            log.warning("node bus: could not catch up: %s", error)
        await asyncio.sleep(0)  # the listener callbacks asyncpg scheduled run first

    async def _notify(self, messages: Sequence[str]) -> None:
        connection = self._connection
        if connection is None or not messages:
            return
        try:
            async with self._connection_lock:
                for message in messages:
                    await connection.execute("SELECT pg_notify($1, $2)", CHANNEL, message)
        except CONNECTION_ERRORS as error:
            # Lost: the other nodes' pollers catch up, and this node resyncs on reconnect.
            log.warning("node bus: could not send %d notice(s): %s", len(messages), error)

    def _settle_sent(self) -> None:
        for done in self._sent:
            if not done.done():
                done.set_result(None)
        self._sent = []
