"""Three real `mailmark serve` processes on one PostgreSQL database and one blob directory behave
as one system: IDLE on one node hears of mail another node's MX accepted (through LISTEN/NOTIFY:
the sessions' own poll is set to an hour), an API key revoked on one node is refused on the others
at once, failed logins on one node count on the others, an API key's rate limit holds across
nodes (two of them), and a node killed mid-delivery loses nothing while the surviving nodes
duplicate nothing of their own."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from mailmark.bootstrap import build_services, certificate_holder
from tests.e2e.test_imap_idle import idling, message, next_exists, send_through_mx
from tests.fakedns import FakeDns
from tests.imap.raw import Raw
from tests.support.database import TEST_DATABASE_URL
from tests.support.serve import Server, cli_environment, free_port, settings_for
from tests.support.smtp_sink import AiosmtpdSink
from tests.support.web import ApiClient

pytestmark = pytest.mark.skipif(
    not TEST_DATABASE_URL,
    reason="several nodes share one PostgreSQL database: set MAILMARK_TEST_DATABASE_URL",
)

NODES = 3
# Generous: the notice takes milliseconds; this only bounds a failure.
NOTICE_TIMEOUT = 10.0
SALES, SALES_PASSWORD = "sales@acme.test", "sales-pass-1"
OWNER, OWNER_PASSWORD = "owner@acme.test", "owner-pass-1"


@dataclass
class Node:
    server: Server
    mx_port: int
    imaps_port: int
    http_port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"


@dataclass
class Cluster:
    nodes: list[Node]
    data_dir: Path
    database_url: str
    api_key: str
    api_key_id: int


async def prepare(data_dir: Path, database_url: str, queued_to: list[str]) -> tuple[str, int]:
    """The acme.test world, an API key, `queued_to` messages queued and the TLS pair the nodes
    share, before any node runs."""
    settings = settings_for(data_dir, database_url)
    services = await build_services(settings)
    await asyncio.to_thread(certificate_holder, settings)
    try:
        await services.accounts.create(
            "acme", owner_email=OWNER, password=OWNER_PASSWORD, plan="unlimited"
        )
        await services.domains.add("acme.test", account_name="acme", trust=True)
        sales = await services.mailboxes.create(SALES, password=SALES_PASSWORD)
        created = await services.api_keys.create("acme.test", "nodes")
        for recipient in queued_to:
            await services.sending.submit(
                mailbox=sales, to=[recipient], subject=f"For {recipient}", text="Nodes\n"
            )
    finally:
        await services.close()
    assert created.key.id is not None
    return created.secret, created.key.id


async def start_nodes(
    tmp_path: Path,
    database_url: str,
    fake_dns: FakeDns,
    sink: AiosmtpdSink,
    count: int = NODES,
    **extra: str,
) -> list[Node]:
    """`count` nodes on one data dir (blobs, secret key, TLS pair) and one database."""
    nodes: list[Node] = []

    async def start() -> Node:
        ports = {name: free_port() for name in ("mx", "imaps", "http")}
        env = cli_environment(
            tmp_path / "data",
            database_url,
            MAILMARK_MX_PORT=str(ports["mx"]),
            MAILMARK_IMAPS_PORT=str(ports["imaps"]),
            MAILMARK_HTTP_PORT=str(ports["http"]),
            MAILMARK_SUBMISSION_PORT="0",
            MAILMARK_SUBMISSIONS_PORT="0",
            MAILMARK_IMAP_PORT="0",
            MAILMARK_MANAGESIEVE_PORT="0",
            MAILMARK_DNS_NAMESERVERS=fake_dns.address,
            MAILMARK_REMOTE_SMTP_PORT=str(sink.port),
            # Only a NOTIFY can tell an IDLE session of another node's change within the test.
            MAILMARK_IMAP_POLL_INTERVAL="1h",
            **extra,
        )
        server = await Server.start(env, tmp_path)
        node = Node(server, ports["mx"], ports["imaps"], ports["http"])
        nodes.append(node)
        await server.wait_for(r"node bus: listening for other nodes")
        await server.wait_for(r"outbound worker \S+ started")
        return node

    try:
        await asyncio.gather(*(start() for _ in range(count)))
    except BaseException:
        for node in nodes:
            await node.server.stop()
        raise
    return nodes


@pytest.fixture
async def cluster(
    tmp_path: Path, database_url: str, fake_dns: FakeDns, sink: AiosmtpdSink
) -> AsyncIterator[Cluster]:
    data_dir = tmp_path / "data"
    secret, key_id = await prepare(data_dir, database_url, [])
    nodes = await start_nodes(tmp_path, database_url, fake_dns, sink)
    try:
        yield Cluster(nodes, data_dir, database_url, secret, key_id)
    finally:
        for node in nodes:
            await node.server.stop()


async def test_three_nodes_behave_as_one(cluster: Cluster) -> None:
    """One cluster for the three checks (starting three processes is the slow part); the login
    check comes last, since it leaves this client's address throttled."""
    await mail_accepted_on_a_is_announced_to_idle_on_b(cluster)
    await key_revoked_on_b_is_refused_on_c_at_once(cluster)
    await failed_logins_on_a_count_on_b(cluster)


async def mail_accepted_on_a_is_announced_to_idle_on_b(cluster: Cluster) -> None:
    a, b, _ = cluster.nodes
    idler = await idling(b.imaps_port, SALES, SALES_PASSWORD)
    try:
        await asyncio.to_thread(send_through_mx, a.mx_port, message(1))
        assert await next_exists(idler, timeout=NOTICE_TIMEOUT) == 1
        await idler.send(b"DONE\r\n")
        done = await idler.until(b"I1")
        assert done[-1].startswith(b"I1 OK"), done
        fetched = await idler.run(b"F1", b"FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert b"Subject: Idle 1" in fetched[0], fetched
    finally:
        await idler.close()


async def key_revoked_on_b_is_refused_on_c_at_once(cluster: Cluster) -> None:
    a, b, c = cluster.nodes
    bearer = {"Authorization": f"Bearer {cluster.api_key}"}
    async with httpx.AsyncClient(trust_env=False, timeout=20) as http:
        # Used on A and C first, so both hold the key in their cache of verified keys.
        for node in (a, c):
            response = await http.get(f"{node.url}/v1/mailboxes", headers=bearer)
            assert response.status_code == 200, response.text
        async with ApiClient(b.url) as owner:
            await owner.signed_in(OWNER, OWNER_PASSWORD)
            revoked = await owner.delete(f"/api/domains/acme.test/api-keys/{cluster.api_key_id}")
            assert revoked.status_code in (200, 204), revoked.text
        for node in (c, a):
            response = await http.get(f"{node.url}/v1/mailboxes", headers=bearer)
            assert response.status_code == 401, (node.url, response.text)


async def failed_logins_on_a_count_on_b(cluster: Cluster) -> None:
    """The per-IP limit is 10 failures: ten wrong passwords on A, then the right one on B is
    refused without being checked."""
    a, b, _ = cluster.nodes
    for attempt in range(10):
        client = await Raw.connect(a.imaps_port, tls=True)
        try:
            done = await client.run(b"L1", f'LOGIN "{SALES}" "wrong-{attempt}"'.encode())
            assert done[-1].startswith(b"L1 NO"), done
        finally:
            await client.close()
    client = await Raw.connect(b.imaps_port, tls=True)
    try:
        done = await client.run(b"L1", f'LOGIN "{SALES}" "{SALES_PASSWORD}"'.encode())
        assert done[-1].startswith(b"L1 NO"), done
        assert b"Too many failed logins" in done[-1], done
    finally:
        await client.close()


# A token every 5 s: the twelve quick requests below take far less, the wait after them 5 s.
RATE, BURST = 0.2, 5


async def test_a_key_gets_its_burst_across_nodes_in_total_then_refills(
    tmp_path: Path, database_url: str, fake_dns: FakeDns, sink: AiosmtpdSink
) -> None:
    """Both nodes take from the key's one bucket in the database: requests alternated between
    them are admitted up to the burst in all, not the burst on each; a token that has come
    back since is admitted on either node, once."""
    secret, _ = await prepare(tmp_path / "data", database_url, [])
    nodes = await start_nodes(
        tmp_path,
        database_url,
        fake_dns,
        sink,
        count=2,
        MAILMARK_API_RATE_LIMIT=str(RATE),
        MAILMARK_API_RATE_BURST=str(BURST),
    )
    bearer = {"Authorization": f"Bearer {secret}"}
    try:
        async with httpx.AsyncClient(trust_env=False, timeout=20) as http:
            answers = [
                await http.get(f"{nodes[n % 2].url}/v1/mailboxes", headers=bearer)
                for n in range(12)
            ]
            retry_after = int(answers[-1].headers["Retry-After"])
            await asyncio.sleep(retry_after)
            after_wait = [
                await http.get(f"{node.url}/v1/mailboxes", headers=bearer) for node in nodes
            ]
    finally:
        for node in nodes:
            await node.server.stop()

    assert [a.status_code for a in answers] == [200] * BURST + [429] * (12 - BURST)
    refused = answers[-1].json()["error"]
    assert refused["code"] == "rate_limited"
    assert "Too many requests for this API key" in refused["message"]
    assert 1 <= retry_after <= 1 / RATE
    assert [a.status_code for a in after_wait] == [200, 429]


MESSAGES = 200
DOMAINS = 5
# The node is killed once this many messages have arrived: early, while every node is busy.
KILL_AFTER = 20
RCPT_DELAY = 0.05


class UnhurriedSink(AiosmtpdSink):
    """A remote MTA that takes a moment over each recipient, so the run outlasts the kill."""

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        await asyncio.sleep(RCPT_DELAY)
        return await super().handle_RCPT(server, session, envelope, address, options)


@pytest.fixture
async def unhurried_sink() -> AsyncIterator[UnhurriedSink]:
    server = UnhurriedSink()
    await server.start()
    try:
        yield server
    finally:
        await server.close()


@pytest.mark.slow
async def test_kill_9_of_a_node_mid_delivery_loses_and_duplicates_nothing(
    tmp_path: Path, database_url: str, fake_dns: FakeDns, unhurried_sink: UnhurriedSink
) -> None:
    """Every message reaches the remote MTA. RFC 5321 §6.1 prefers a duplicate to a loss: a
    message whose remote 250 reached the killed node but whose outcome it had not yet committed
    is sent again once its lease runs out. So a second copy may exist only of a message first
    received while the killed node lived; the surviving nodes never send a message twice."""
    sink = unhurried_sink
    for n in range(DOMAINS):
        fake_dns.add(f"d{n}.remote.test", "MX", f"10 mx.d{n}.remote.test.")
        fake_dns.add(f"mx.d{n}.remote.test", "A", "127.0.0.1")
    recipients = [f"user{i}@d{i % DOMAINS}.remote.test" for i in range(MESSAGES)]
    await prepare(tmp_path / "data", database_url, recipients)
    nodes = await start_nodes(tmp_path, database_url, fake_dns, sink, MAILMARK_DELIVERY_LEASE="6s")
    victim = nodes[0]
    try:
        deadline = time.monotonic() + 60
        while sum(len(got.recipients) for got in sink.received) < KILL_AFTER:
            assert time.monotonic() < deadline, f"slow delivery:\n{victim.server.log}"
            await asyncio.sleep(0.005)
        os.kill(victim.server.process.pid, signal.SIGKILL)
        assert await victim.server.exit_status(timeout=10) == -signal.SIGKILL
        # Whatever the killed node had fully sent lands as the sink reads its closed sockets.
        await asyncio.sleep(0.2)
        before_kill = {r for got in sink.received for r in got.recipients}
        assert len(before_kill) < MESSAGES, "the run finished before the kill; nothing was tested"

        deadline = time.monotonic() + 90
        while {r for got in sink.received for r in got.recipients} != set(recipients):
            assert time.monotonic() < deadline, "\n".join(n.server.log for n in nodes[1:])
            await asyncio.sleep(0.05)
        # The survivors stop as a service manager stops them: recorded outcomes are flushed.
        for node in nodes[1:]:
            node.server.process.send_signal(signal.SIGTERM)
        for node in nodes[1:]:
            assert await node.server.exit_status(timeout=20) == 0, node.server.log
    finally:
        for node in nodes:
            await node.server.stop()

    copies = Counter(r for got in sink.received for r in got.recipients)
    assert set(copies) == set(recipients)
    duplicated = {recipient for recipient, count in copies.items() if count > 1}
    assert duplicated <= before_kill, sorted(duplicated - before_kill)
    services = await build_services(settings_for(tmp_path / "data", database_url))
    try:
        entries = await services.queue_admin.list(limit=MESSAGES + 10)
    finally:
        await services.close()
    assert len(entries) == MESSAGES
    assert {entry.status for entry in entries} == {"delivered"}
