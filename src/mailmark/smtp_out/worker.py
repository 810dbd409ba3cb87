"""The outbound worker: lease due deliveries, sign, resolve, deliver, record the replies.

Leased rows are grouped by recipient domain. Each destination gets at most a few connections at a
time, each connection carries one transaction after another (one transaction per message, with all
of its recipients at that domain), and replies are recorded in batches while delivery goes on.
Mail for domains hosted here goes through the queue's local delivery, without a network hop.
Mail whose sending domain has a relay host (its own, or the installation's) is grouped by relay
instead: every recipient of a message, whatever their domain, in one transaction to the relay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from mailmark.core.model import DkimKey, LeasedDelivery
from mailmark.core.ports import BlobStore, Clock
from mailmark.core.queue import OutboundQueue
from mailmark.core.relays import Relay, RelayService
from mailmark.core.signing_keys import SigningKeys
from mailmark.core.smtp_reply import SmtpReply
from mailmark.metrics import Metrics
from mailmark.smtp_out.client import ConnectionGone, OutgoingMessage, SmtpConnection, SmtpDialer
from mailmark.smtp_out.dkim import DkimSigner, DkimSigningError, to_crlf
from mailmark.smtp_out.mta_sts import MtaStsPolicies, MtaStsPolicy
from mailmark.smtp_out.mx import DeliveryFailure, MxHost, MxResolver

__all__ = ["OutboundWorker"]

log = logging.getLogger(__name__)

DEFAULT_LEASE = timedelta(minutes=15)
# How long after a connection's last transaction it waits for more mail to the same domain.
CONNECTION_LINGER = 1.0
MAX_TRANSACTIONS_PER_CONNECTION = 500
# Outcomes recorded in one transaction at most.
RECORD_BATCH = 500
# Messages read and signed per trip to a worker thread: the hand-offs cost more than reading a
# small message, and a chunk is ready for the first connections within a few milliseconds.
PREPARE_CHUNK = 25
RECORD_RETRY_PAUSE = 1.0


@dataclass(frozen=True)
class _Held:
    leased: LeasedDelivery
    # No transaction starts after this, so that none outlives the lease (another worker may take
    # the row once the lease ends).
    start_before: datetime


@dataclass
class _Destination:
    # The recipient domain, or the relay's route key (Relay.route_key).
    domain: str
    relay: Relay | None = None
    pending: OrderedDict[int, list[_Held]] = field(default_factory=OrderedDict)
    connections: int = 0
    more: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def label(self) -> str:
        return f"relay {self.relay.address}" if self.relay is not None else self.domain


@dataclass
class _Prepared:
    users: int
    # The message ready to send; None when it could not be read.
    message: asyncio.Future[OutgoingMessage | None] | None = None


class OutboundWorker:
    """Delivers the queue until stopped. One per process; on PostgreSQL several processes (and
    nodes) share the queue, each leasing its own rows (FOR UPDATE SKIP LOCKED)."""

    def __init__(
        self,
        queue: OutboundQueue,
        signing_keys: SigningKeys,
        blobs: BlobStore,
        clock: Clock,
        *,
        routes: MxResolver,
        policies: MtaStsPolicies,
        dialer: SmtpDialer,
        owner: str,
        signer: DkimSigner | None = None,
        relays: RelayService | None = None,
        lease_for: timedelta = DEFAULT_LEASE,
        transaction_bound: timedelta | None = None,
        connections_per_destination: int = 2,
        max_connections: int = 50,
        lease_batch: int = 100,
        max_held: int = 400,
        max_recipients_per_transaction: int = 100,
        local_concurrency: int = 16,
        idle_poll: float = 5.0,
        metrics: Metrics | None = None,
    ) -> None:
        self._queue = queue
        self._signing_keys = signing_keys
        self._blobs = blobs
        self._clock = clock
        self._routes = routes
        self._policies = policies
        self._dialer = dialer
        self._owner = owner
        self._signer = signer or DkimSigner()
        self._relays = relays
        self._lease_for = lease_for
        # A transaction may start while at least this much of the lease is left.
        if transaction_bound is None:
            transaction_bound = min(lease_for / 2, timedelta(minutes=12))
        self._transaction_bound = transaction_bound
        self._per_destination = connections_per_destination
        self._max_connections = max_connections
        self._lease_batch = lease_batch
        self._max_held = max_held
        self._max_recipients = max_recipients_per_transaction
        self._local_slots = asyncio.Semaphore(local_concurrency)
        self._idle_poll = idle_poll
        self._metrics = metrics or Metrics()

        self._destinations: dict[str, _Destination] = {}
        self._prepared: dict[int, _Prepared] = {}
        self._connections = 0
        self._held = 0
        self._outcomes: list[tuple[_Held, SmtpReply]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._outcome_ready = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self._stopping = asyncio.Event()
        # Leasing passes are numbered as they start; `_last_idle_pass` is the number of the latest
        # one that found nothing due and nothing held.
        self._passes_started = 0
        self._last_idle_pass = 0
        self._idle_changed = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._recorder: asyncio.Task[None] | None = None

    @property
    def owner(self) -> str:
        return self._owner

    @property
    def running(self) -> bool:
        """Started, and neither its leasing loop nor its recorder has ended."""
        tasks = (self._runner, self._recorder)
        return all(task is not None and not task.done() for task in tasks)

    def start(self) -> None:
        log.info("outbound worker %s started", self._owner)
        self._runner = asyncio.create_task(self._run(), name="outbound-worker")
        self._recorder = asyncio.create_task(self._record_outcomes(), name="outbound-recorder")

    async def stop(self, grace: float = 10.0) -> None:
        """Lease nothing more, finish the deliveries in hand for up to `grace` seconds and record
        their outcomes. Rows still unfinished then stay leased and are retried after the lease."""
        self._stopping.set()
        for destination in self._destinations.values():
            destination.more.set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        if self._runner is not None:
            # Not cancelled outright: a lease being taken must reach its rows' dispatch.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._runner), grace)
            await _cancel(self._runner)
        if self._tasks:
            remaining = max(0.0, deadline - loop.time())
            _, unfinished = await asyncio.wait(set(self._tasks), timeout=remaining)
            for task in unfinished:
                await _cancel(task)
        if self._recorder is not None:
            self._outcome_ready.set()
            try:
                await asyncio.wait_for(self._flushed(), max(0.5, deadline - loop.time()))
            except TimeoutError:
                log.warning("%d delivery outcomes not recorded at shutdown", len(self._outcomes))
            await _cancel(self._recorder)

    async def wait_until_idle(self, timeout: float = 30.0) -> None:
        """Return once everything due now has been attempted and recorded: an idle pass that
        started after this call (one that started before may have read the queue before a
        change the caller just made, such as a clock moved past a schedule)."""

        async def idle_pass() -> None:
            target = self._passes_started + 1
            self._queue.kick()
            while self._last_idle_pass < target:
                self._idle_changed.clear()
                await self._idle_changed.wait()

        await asyncio.wait_for(idle_pass(), timeout)

    # The leasing loop

    async def _run(self) -> None:
        while not self._stopping.is_set():
            self._passes_started += 1
            this_pass = self._passes_started
            self._queue.clear_kick()
            self._slot_freed.clear()
            room = self._max_held - self._held
            leased: list[LeasedDelivery] = []
            if room > 0:
                try:
                    leased = await self._queue.lease_due(
                        self._owner, min(room, self._lease_batch), self._lease_for
                    )
                except Exception:
                    log.exception("leasing due deliveries failed")
                    await self._wait(self._idle_poll, ())
                    continue
            if leased:
                self._dispatch(leased, await self._relays_of(leased))
                continue
            if room > 0 and self._held == 0:
                self._last_idle_pass = this_pass
                self._idle_changed.set()
            await self._wait(
                await self._until_next_due() if room > 0 else self._idle_poll,
                (self._queue.wait_for_kick(), self._slot_freed.wait()),
            )

    async def _until_next_due(self) -> float:
        try:
            due = await self._queue.next_due_at()
        except Exception:
            log.exception("reading the next due time failed")
            return self._idle_poll
        if due is None:
            return self._idle_poll
        seconds = (due - self._clock.now()).total_seconds()
        # Due now but not leasable: leased elsewhere, or by us and in flight. Check back soon.
        return min(max(seconds, 0.2), self._idle_poll)

    async def _wait(self, timeout: float, events: tuple[Awaitable[object], ...]) -> None:
        waiters = [asyncio.ensure_future(e) for e in (*events, self._stopping.wait())]
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def _relays_of(self, leased: list[LeasedDelivery]) -> dict[str, Relay | None]:
        """The relay (None: direct) of each sending domain among the leased remote rows; a
        domain whose setting cannot be read is left out, and its rows retried."""
        relays: dict[str, Relay | None] = {}
        if self._relays is None:
            return relays
        for domain in {delivery.from_domain for delivery in leased if not delivery.local}:
            try:
                relays[domain] = await self._relays.relay_for(domain)
            except Exception:
                log.exception("reading the relay host of %s failed", domain)
        return relays

    def _dispatch(self, leased: list[LeasedDelivery], relays: dict[str, Relay | None]) -> None:
        start_before = self._clock.now() + self._lease_for - self._transaction_bound
        to_prepare: list[tuple[LeasedDelivery, asyncio.Future[OutgoingMessage | None]]] = []
        for delivery in leased:
            self._held += 1
            held = _Held(delivery, start_before)
            if delivery.local:
                self._spawn(self._deliver_locally(held))
                continue
            if self._relays is not None and delivery.from_domain not in relays:
                self._finish(held, SmtpReply(451, "4.3.0", "Local error reading the relay host"))
                continue
            relay = relays.get(delivery.from_domain)
            key = relay.route_key if relay is not None else delivery.recipient_domain
            destination = self._destinations.get(key)
            if destination is None:
                destination = self._destinations[key] = _Destination(key, relay)
            destination.pending.setdefault(delivery.outbound_id, []).append(held)
            destination.more.set()
            prepared = self._prepared.get(delivery.outbound_id)
            if prepared is None:
                prepared = self._prepared[delivery.outbound_id] = _Prepared(users=1)
                prepared.message = asyncio.get_running_loop().create_future()
                to_prepare.append((delivery, prepared.message))
            else:
                prepared.users += 1
        if to_prepare:
            self._spawn(self._prepare(to_prepare))
        self._open_connections()

    def _spawn(self, work: Awaitable[None]) -> None:
        async def run() -> None:
            await work

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _open_connections(self) -> None:
        for destination in list(self._destinations.values()):
            wanted = min(self._per_destination, len(destination.pending))
            while destination.connections < wanted and self._connections < self._max_connections:
                destination.connections += 1
                self._connections += 1
                self._spawn(self._deliver_to(destination))
            if not destination.pending and not destination.connections:
                del self._destinations[destination.domain]

    # Delivery

    async def _deliver_locally(self, held: _Held) -> None:
        async with self._local_slots:
            try:
                reply = await self._queue.deliver_locally(held.leased)
            except Exception as exc:
                log.exception("local delivery of queue row %d failed", held.leased.id)
                reply = SmtpReply(451, "4.3.0", f"Local delivery failed: {exc.__class__.__name__}")
        self._finish(held, reply)

    async def _deliver_to(self, destination: _Destination) -> None:
        """One connection's life: take the destination's messages one after another."""
        domain = destination.domain
        relay = destination.relay
        connection: SmtpConnection | None = None
        group: list[_Held] = []
        try:
            hosts: list[MxHost] = []
            policy: MtaStsPolicy | None = None
            # A relay is the next hop whatever the recipient's domain: no MX, no MTA-STS
            # (SmtpDialer.open_relay says why).
            if relay is None:
                try:
                    hosts = await self._routes.hosts(domain)
                except DeliveryFailure as failure:
                    self._fail_all(destination, [], _reply_of(failure))
                    return
                policy = await self._policies.policy(domain)
            while True:
                group = self._take_group(destination)
                if not group:
                    if connection is None or self._stopping.is_set():
                        return
                    destination.more.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(destination.more.wait(), CONNECTION_LINGER)
                    if not destination.pending:
                        return
                    continue
                message = await self._message(group[0].leased)
                if message is None:
                    self._finish_group(
                        group, SmtpReply(451, "4.3.0", "Queued message could not be read or signed")
                    )
                    continue
                replies: list[SmtpReply] | None = None
                for _ in range(2):  # a reused connection found closed gets one fresh try
                    if connection is None:
                        try:
                            connection = (
                                await self._dialer.open_relay(relay)
                                if relay is not None
                                else await self._dialer.open(domain, hosts, policy)
                            )
                        except DeliveryFailure as failure:
                            if destination.connections > 1:
                                # Another connection to this domain works: leave the rest to it.
                                self._give_back(destination, group)
                            else:
                                self._fail_all(destination, group, _reply_of(failure))
                            group = []
                            return
                    try:
                        replies = await connection.send(
                            group[0].leased.envelope_from,
                            [held.leased.recipient for held in group],
                            message,
                        )
                        break
                    except ConnectionGone as gone:
                        log.info("reconnecting to %s: %s", destination.label, gone)
                        await connection.close()
                        connection = None
                if replies is None:
                    lost = SmtpReply(0, "4.4.2", f"connection to {destination.label} kept failing")
                    replies = [lost] * len(group)
                for held, reply in zip(group, replies, strict=True):
                    self._finish(held, reply)
                group = []
                if connection is not None and (
                    connection.broken or connection.transactions >= MAX_TRANSACTIONS_PER_CONNECTION
                ):
                    await connection.close()
                    connection = None
        except Exception:
            log.exception("delivery to %s failed", destination.label)
            self._fail_all(destination, group, SmtpReply(451, "4.3.0", "Local error in delivery"))
        finally:
            if connection is not None:
                await connection.close()
            destination.connections -= 1
            self._connections -= 1
            if not self._stopping.is_set():
                self._open_connections()

    def _take_group(self, destination: _Destination) -> list[_Held]:
        """The next message's recipients at this destination (up to the per-transaction limit);
        those whose lease is too close to its end are left to the next lease."""
        while destination.pending:
            outbound_id, helds = next(iter(destination.pending.items()))
            group = helds[: self._max_recipients]
            del helds[: self._max_recipients]
            if not helds:
                del destination.pending[outbound_id]
            now = self._clock.now()
            fresh = [held for held in group if held.start_before > now]
            for held in group:
                if held.start_before <= now:
                    log.info("queue row %d left for its next lease", held.leased.id)
                    self._release(held)
            if fresh:
                return fresh
        return []

    def _give_back(self, destination: _Destination, group: list[_Held]) -> None:
        if group:
            outbound_id = group[0].leased.outbound_id
            destination.pending[outbound_id] = group + destination.pending.get(outbound_id, [])
            destination.pending.move_to_end(outbound_id, last=False)
            destination.more.set()

    def _fail_all(self, destination: _Destination, group: list[_Held], reply: SmtpReply) -> None:
        """Give `reply` to `group` and everything pending for the destination."""
        self._finish_group(group, reply)
        while destination.pending:
            _, helds = destination.pending.popitem(last=False)
            self._finish_group(helds, reply)

    # Messages: read, CRLF, DKIM-sign, once per outbound message, a leased batch at a time

    async def _message(self, leased: LeasedDelivery) -> OutgoingMessage | None:
        prepared = self._prepared.setdefault(leased.outbound_id, _Prepared(users=0))
        if prepared.message is None:
            prepared.message = asyncio.get_running_loop().create_future()
            self._spawn(self._prepare([(leased, prepared.message)]))
        return await asyncio.shield(prepared.message)

    async def _prepare(
        self, wanted: list[tuple[LeasedDelivery, asyncio.Future[OutgoingMessage | None]]]
    ) -> None:
        """Read and sign the messages, PREPARE_CHUNK to a thread trip; every future gets a
        result, None for a message that could not be read or prepared."""
        try:
            for first in range(0, len(wanted), PREPARE_CHUNK):
                chunk = wanted[first : first + PREPARE_CHUNK]
                raws = await self._read([leased for leased, _ in chunk])
                work = [
                    (
                        raw,
                        leased.from_domain,
                        await self._signing_keys.signing_key(leased.from_domain),
                    )
                    for (leased, _), raw in zip(chunk, raws, strict=True)
                ]
                ready = await asyncio.to_thread(self._sign_all, work)
                for (_, future), message in zip(chunk, ready, strict=True):
                    if not future.done():
                        future.set_result(message)
        except asyncio.CancelledError:
            # Stopping: the connections waiting for these end too, their rows left leased.
            for _, future in wanted:
                future.cancel()
            raise
        except Exception:
            log.exception("preparing %d queued messages failed", len(wanted))
        finally:
            for _, future in wanted:
                if not future.done():
                    future.set_result(None)

    async def _read(self, leased: list[LeasedDelivery]) -> list[bytes | None]:
        """The stored messages in one go, or one by one when that fails, so that one unreadable
        message fails alone."""
        try:
            return list(await self._blobs.get_many([delivery.blob_key for delivery in leased]))
        except (OSError, KeyError):
            pass
        raws: list[bytes | None] = []
        for delivery in leased:
            try:
                raws.append(await self._blobs.get(delivery.blob_key))
            except (OSError, KeyError) as exc:
                log.error("queued message %s is unreadable: %s", delivery.blob_key, exc)
                raws.append(None)
        return raws

    def _sign_all(
        self, work: list[tuple[bytes | None, str, DkimKey | None]]
    ) -> list[OutgoingMessage | None]:
        return [
            None if raw is None else OutgoingMessage.from_crlf(self._sign(raw, domain, key))
            for raw, domain, key in work
        ]

    def _sign(self, raw: bytes, domain: str, key: DkimKey | None) -> bytes:
        message = to_crlf(raw)
        if key is None:
            log.warning("no active DKIM key for %s: sending unsigned", domain)
            return message
        try:
            return self._signer.sign(message, domain=domain, key=key)
        except DkimSigningError as exc:
            log.warning("sending unsigned: %s", exc)
            return message

    # Outcomes

    def _finish_group(self, group: list[_Held], reply: SmtpReply) -> None:
        for held in group:
            self._finish(held, reply)

    def _finish(self, held: _Held, reply: SmtpReply) -> None:
        self._outcomes.append((held, reply))
        self._outcome_ready.set()

    def _release(self, held: _Held) -> None:
        """Forget a row without an outcome; it stays leased until its lease ends."""
        self._held -= 1
        self._slot_freed.set()
        if not held.leased.local:
            prepared = self._prepared.get(held.leased.outbound_id)
            if prepared is not None:
                prepared.users -= 1
                if prepared.users <= 0:
                    del self._prepared[held.leased.outbound_id]

    async def _record_outcomes(self) -> None:
        while True:
            await self._outcome_ready.wait()
            self._outcome_ready.clear()
            while self._outcomes:
                batch = self._outcomes[:RECORD_BATCH]
                try:
                    recorded = await self._queue.record(
                        [(held.leased, reply) for held, reply in batch]
                    )
                except Exception:
                    log.exception("recording %d delivery outcomes failed; retrying", len(batch))
                    await asyncio.sleep(RECORD_RETRY_PAUSE)
                    continue
                del self._outcomes[: len(batch)]
                for held, _ in batch:
                    self._release(held)
                for leased, status in recorded:
                    destination = self._metrics.destination(
                        leased.recipient_domain, local=leased.local
                    )
                    self._metrics.deliveries.labels(str(status), destination).inc()
            self._idle_changed.set()

    async def _flushed(self) -> None:
        while self._outcomes:
            self._idle_changed.clear()
            await self._idle_changed.wait()


def _reply_of(failure: DeliveryFailure) -> SmtpReply:
    return SmtpReply(failure.code, failure.enhanced, failure.text)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
