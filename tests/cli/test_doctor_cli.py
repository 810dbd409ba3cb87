"""`mailmark doctor` against a real installation on loopback: DNS answers from the loopback DNS
server, a running `mailmark serve`, a receiving MTA for the outbound probe and an SNTP server.
First everything is wrong and each check says FAIL with its fix; then it is put right, and the
same checks say OK."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from mailmark.dns_tools.record_set import reverse_name
from tests.fakedns import FakeDns
from tests.support.serve import Run, Server, cli_environment, free_port, mailmark
from tests.support.smtp_sink import AiosmtpdSink
from tests.support.sntp import SntpServer
from tests.support.world import HOSTNAME

PUBLIC_IP = "192.0.2.10"


@pytest.fixture
async def sntp() -> AsyncIterator[SntpServer]:
    server = SntpServer()
    loop = asyncio.get_running_loop()
    server.attach(loop)
    try:
        yield server
    finally:
        server.close(loop)


def by_check(run: Run) -> dict[str, dict[str, Any]]:
    findings = run.json
    assert isinstance(findings, list), run.out
    return {finding["check"]: finding for finding in findings}


async def test_doctor_says_what_to_fix_then_ok(
    tmp_path: Path,
    database_url: str,
    fake_dns: FakeDns,
    sink: AiosmtpdSink,
    sntp: SntpServer,
    servers: list[Server],
) -> None:
    # The listeners doctor checks, by the name it reports, with the setting that moves each.
    listeners = {
        "MX": "MX",
        "submission": "SUBMISSION",
        "submissions": "SUBMISSIONS",
        "IMAP": "IMAP",
        "IMAPS": "IMAPS",
        "ManageSieve": "MANAGESIEVE",
        "HTTP": "HTTP",
        "HTTPS": "HTTPS",
        "HTTP redirect": "HTTP_REDIRECT",
    }
    ports = {name: free_port() for name in listeners}
    closed_port = free_port()
    env = cli_environment(
        tmp_path / "data",
        database_url,
        MAILMARK_DNS_NAMESERVERS=fake_dns.address,
        MAILMARK_PUBLIC_IPS=PUBLIC_IP,
        MAILMARK_REMOTE_SMTP_PORT=str(closed_port),
        **{f"MAILMARK_{listeners[name]}_PORT": str(port) for name, port in ports.items()},
    )
    doctor = ("doctor", "--json", "--probe-domain", "probe.test", "--ntp-server", sntp.address)

    async def run(*args: str, environment: dict[str, str] = env) -> Run:
        return await mailmark(environment, *args, cwd=tmp_path)

    made = await run(
        "account", "create", "acme", "--owner", "o@acme.test", "--password", "pass-word-1"
    )
    assert made.code == 0, made.err
    assert (await run("domain", "add", "acme.test", "--account", "acme")).code == 0

    # Wrong: the host name resolves, but its PTR names another host; no domain record is
    # published; nothing listens; the probe MX refuses; the clock is 2 minutes behind; the disk
    # is smaller than asked for.
    fake_dns.add(HOSTNAME, "A", PUBLIC_IP)
    fake_dns.add(reverse_name(PUBLIC_IP), "PTR", "static-10.provider.test.")
    fake_dns.add("probe.test", "MX", "10 mx.probe.test.")
    fake_dns.add("mx.probe.test", "A", "127.0.0.1")
    sntp.offset = 120.0
    failing = await run(*doctor, "--min-free", "100000G")
    assert failing.code == 1, failing.err
    found = by_check(failing)
    assert found["hostname"]["status"] == "ok"
    reverse = found[f"reverse DNS {PUBLIC_IP}"]
    assert reverse["status"] == "fail"
    assert "points to static-10.provider.test" in reverse["detail"]
    assert f"(PTR) of {PUBLIC_IP} to {HOSTNAME}" in reverse["fix"]
    domain = found["domain acme.test"]
    assert domain["status"] == "fail"
    assert (
        "Add a MX record at the domain itself (@) with the value 10 mx.mailmark.test"
        in (domain["fix"])
    )
    for name, port in ports.items():
        assert found[f"port {port} ({name})"]["status"] == "fail"
        assert "nothing answers on 127.0.0.1" in found[f"port {port} ({name})"]["detail"]
    assert found["TLS certificate"]["status"] == "fail"
    assert found["HTTPS certificate"]["status"] == "fail"
    outbound = found["outbound port " + str(closed_port)]
    assert outbound["status"] == "fail"
    assert outbound["detail"] == (
        f"cannot connect to mx.probe.test (127.0.0.1):{closed_port}: Connection refused"
    )
    assert "relay_host" in outbound["fix"]
    assert found["clock"]["status"] == "fail"
    assert found["clock"]["detail"].startswith("+12")  # 120 s, give or take the round trip
    assert found["disk space"]["status"] == "fail"
    text = await run(*(arg for arg in doctor if arg != "--json"), "--min-free", "100000G")
    assert text.code == 1
    assert f"FAIL  reverse DNS {PUBLIC_IP}" in text.out
    assert f"fix: ask your hosting provider to set the reverse DNS (PTR) of {PUBLIC_IP}" in text.out

    # Put right: the PTR names the host, the records are published, the server runs, the probe
    # MX answers, the clock agrees.
    fake_dns.remove(reverse_name(PUBLIC_IP), "PTR")
    fake_dns.add(reverse_name(PUBLIC_IP), "PTR", f"{HOSTNAME}.")
    records = await run("domain", "records", "acme.test", "--json")
    assert isinstance(records.json, list)
    for record in records.json:
        if record["type"] == "MX":
            fake_dns.add(record["name"], "MX", f"{record['priority']} {record['value']}.")
        elif record["type"] in ("TXT", "CNAME"):
            fake_dns.add(record["name"], record["type"], record["value"])
        elif record["type"] == "SRV":
            fake_dns.add(record["name"], "SRV", record["value"] + ".")
    sntp.offset = 0.0
    fixed_env = {**env, "MAILMARK_REMOTE_SMTP_PORT": str(sink.port)}
    server = await Server.start(env, tmp_path)
    servers.append(server)
    await server.wait_for(r"HTTP listening on")
    passing = await run(*doctor, "--min-free", "1k", environment=fixed_env)
    found = by_check(passing)
    assert passing.code == 0, passing.out
    assert found[f"reverse DNS {PUBLIC_IP}"]["status"] == "ok"
    assert found[f"reverse DNS {PUBLIC_IP}"]["detail"] == (
        f"{PUBLIC_IP} → {HOSTNAME} → {PUBLIC_IP} (forward-confirmed)"
    )
    assert found["domain acme.test"]["status"] == "ok", found["domain acme.test"]
    port_checks = [f for name, f in found.items() if name.startswith("port ")]
    assert {f["status"] for f in port_checks} == {"ok"}, port_checks
    assert len(port_checks) == len(ports)
    # serve's own self-signed certificate: fine for STARTTLS between servers, not for clients.
    certificate = found["TLS certificate"]
    assert (certificate["status"], certificate["detail"][:11]) == ("warn", "self-signed")
    web_certificate = found["HTTPS certificate"]
    assert web_certificate["status"] == "warn"
    assert web_certificate["detail"].endswith("browsers refuse it"), web_certificate
    assert found[f"outbound port {sink.port}"]["status"] == "ok"
    assert found["clock"]["status"] == "ok"
    assert found["disk space"]["status"] == "ok"

    # With a relay host, the probe is the relay's port instead of anyone's MX: the same receiving
    # MTA answers 220 as a relay would; a relay port nothing listens on fails with its fix.
    relayed = {**fixed_env, "MAILMARK_RELAY_HOST": "127.0.0.1"}
    working = await run(
        *doctor,
        "--min-free",
        "1k",
        environment={**relayed, "MAILMARK_RELAY_PORT": str(sink.port)},
    )
    assert by_check(working)[f"relay 127.0.0.1:{sink.port}"]["status"] == "ok"
    assert not any(name.startswith("outbound") for name in by_check(working))
    broken = await run(
        *doctor,
        "--min-free",
        "1k",
        environment={**relayed, "MAILMARK_RELAY_PORT": str(closed_port)},
    )
    assert broken.code == 1
    relay = by_check(broken)[f"relay 127.0.0.1:{closed_port}"]
    assert (relay["status"], relay["fix"]) == (
        "fail",
        "check relay_host and relay_port, and that this network reaches them",
    )
