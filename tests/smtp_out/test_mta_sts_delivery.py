"""MTA-STS through the worker: enforce restricts the MX hosts and demands verified TLS; testing
mode does not block."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mailmark.bootstrap import Services, outbound_worker
from mailmark.smtp_out.worker import OutboundWorker
from tests.fakedns import FakeDns
from tests.smtp_out.conftest import publish_dkim
from tests.smtp_out.remote import PolicyServer, TestCa
from tests.support.smtp_sink import AiosmtpdSink
from tests.support.world import World

POLICY = "version: STSv1\nmode: {mode}\nmx: mx.{domain}\nmax_age: 86400\n"


@pytest.fixture
def ca(tmp_path: Path) -> TestCa:
    return TestCa(tmp_path / "ca")


@pytest.fixture
async def policy_server(ca: TestCa, fake_dns: FakeDns) -> AsyncIterator[PolicyServer]:
    """sts.test (enforce) and lax.test (testing) publish policies naming mx.<domain>; strict.test
    (enforce) too, but its MX record points elsewhere."""
    server = PolicyServer()
    names = ("sts.test", "strict.test", "lax.test")
    await server.start(ca.server_context(*(f"mta-sts.{name}" for name in names)))
    for name in names:
        mode = "testing" if name == "lax.test" else "enforce"
        server.policies[f"mta-sts.{name}"] = POLICY.format(mode=mode, domain=name)
        fake_dns.add(f"_mta-sts.{name}", "TXT", "v=STSv1; id=1")
    for name, mx in (
        ("sts.test", "mx.sts.test"),
        ("strict.test", "mx.elsewhere.test"),
        ("lax.test", "mx.elsewhere.test"),
    ):
        fake_dns.add(name, "MX", f"10 {mx}.")
        fake_dns.add(mx, "A", "127.0.0.1")
    try:
        yield server
    finally:
        await server.close()


async def start_worker(
    services: Services,
    world: World,
    fake_dns: FakeDns,
    ca: TestCa,
    server: PolicyServer,
    port: int,
) -> OutboundWorker:
    await publish_dkim(services, fake_dns, world.domain)
    worker = outbound_worker(
        services,
        port=port,
        verified_tls=ca.client_context(),
        policy_tls=ca.client_context(),
        policy_origin=server.origin,
    )
    worker.start()
    return worker


async def test_enforce_refuses_an_mx_the_policy_does_not_name(
    services: Services,
    world: World,
    fake_dns: FakeDns,
    ca: TestCa,
    policy_server: PolicyServer,
    sink: AiosmtpdSink,
) -> None:
    worker = await start_worker(services, world, fake_dns, ca, policy_server, sink.port)
    try:
        await services.sending.submit(
            mailbox=world.sales, to=["a@strict.test", "b@lax.test"], subject="STS", text="x"
        )
        await worker.wait_until_idle()
    finally:
        await worker.stop()
    entries = {entry.recipient: entry for entry in await services.queue_admin.list()}
    strict = entries["a@strict.test"]
    # RFC 8461 §5.1: not a permanent failure; the policy may be fixed before the queue gives up.
    assert (strict.status, strict.last_code, strict.last_status) == ("deferred", 451, "4.7.5")
    assert strict.last_reply is not None and "allows none of its MX hosts" in strict.last_reply
    assert entries["b@lax.test"].status == "delivered"  # testing mode never blocks
    assert [got.recipients for got in sink.received] == [["b@lax.test"]]
    assert sorted(policy_server.requests) == ["mta-sts.lax.test", "mta-sts.strict.test"]


async def test_enforce_requires_starttls(
    services: Services,
    world: World,
    fake_dns: FakeDns,
    ca: TestCa,
    policy_server: PolicyServer,
    sink: AiosmtpdSink,
) -> None:
    worker = await start_worker(services, world, fake_dns, ca, policy_server, sink.port)
    try:
        await services.sending.submit(mailbox=world.sales, to=["a@sts.test"], subject="S", text="x")
        await worker.wait_until_idle()
    finally:
        await worker.stop()
    [entry] = await services.queue_admin.list()
    assert (entry.status, entry.last_status) == ("deferred", "4.7.5")
    assert entry.last_reply is not None and "STARTTLS required by MTA-STS" in entry.last_reply
    assert sink.received == []


@pytest.mark.parametrize(
    "trusted", [True, False], ids=["valid-certificate", "untrusted-certificate"]
)
async def test_enforce_delivers_over_verified_tls_only(
    services: Services,
    world: World,
    fake_dns: FakeDns,
    ca: TestCa,
    tmp_path: Path,
    policy_server: PolicyServer,
    trusted: bool,
) -> None:
    issuer = ca if trusted else TestCa(tmp_path / "stranger")
    tls_sink = AiosmtpdSink(tls_context=issuer.server_context("mx.sts.test"))
    await tls_sink.start()
    try:
        worker = await start_worker(services, world, fake_dns, ca, policy_server, tls_sink.port)
        try:
            await services.sending.submit(
                mailbox=world.sales, to=["a@sts.test"], subject="S", text="x"
            )
            await worker.wait_until_idle()
        finally:
            await worker.stop()
    finally:
        await tls_sink.close()
    [entry] = await services.queue_admin.list()
    if trusted:
        assert entry.status == "delivered"
        assert [(got.recipients, got.tls) for got in tls_sink.received] == [(["a@sts.test"], True)]
    else:
        assert (entry.status, entry.last_status) == ("deferred", "4.7.5")
        assert entry.last_reply is not None and "TLS required by MTA-STS failed" in entry.last_reply
        assert tls_sink.received == []


async def test_opportunistic_starttls_without_a_policy(
    services: Services,
    world: World,
    fake_dns: FakeDns,
    ca: TestCa,
    tmp_path: Path,
    policy_server: PolicyServer,
    remote_dns: FakeDns,
) -> None:
    # A certificate nobody trusts, for another name: still encrypted, as no policy asks for more.
    tls_sink = AiosmtpdSink(tls_context=TestCa(tmp_path / "self").server_context("whatever.test"))
    await tls_sink.start()
    try:
        worker = await start_worker(services, world, fake_dns, ca, policy_server, tls_sink.port)
        try:
            await services.sending.submit(
                mailbox=world.sales, to=["a@remote.test"], subject="S", text="x"
            )
            await worker.wait_until_idle()
        finally:
            await worker.stop()
    finally:
        await tls_sink.close()
    assert [(got.recipients, got.tls) for got in tls_sink.received] == [(["a@remote.test"], True)]
