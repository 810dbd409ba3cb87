"""How long `mailmark doctor` takes with every check answered on loopback.

    cd /work/main && .venv/bin/python bench/doctor.py [--rounds N]

Starts every listener of a real installation (SQLite in a temp dir) on free loopback ports, a
loopback DNS server publishing the host's A and PTR records and one domain's whole record set, a
receiving MTA answering `220` for the outbound probe and an SNTP server; then times the whole
`Doctor.run()` beside each check alone, in the same run. The DNS answers come from loopback, so
this is the tool's own cost (TLS handshakes, a DKIM/SPF record set, connects), not the internet's
latency, which each check bounds with its timeouts.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # for `tests.fakedns` when run as `python bench/doctor.py`

from mailmark.bootstrap import build_services, start_listeners
from mailmark.config import Settings
from mailmark.doctor import Doctor, DoctorOptions, Finding, Status
from tests.fakedns import FakeDns
from tests.support.sntp import SntpServer

HOSTNAME = "mx.bench.test"
PUBLIC_IP = "192.0.2.10"
DOMAIN = "bench.test"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def probe_mx() -> asyncio.Server:
    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 probe.bench.test ESMTP\r\n")
        await reader.readline()
        writer.close()

    return await asyncio.start_server(greet, "127.0.0.1", 0)


async def timed(rounds: int, run: Callable[[], Awaitable[list[Finding]]]) -> tuple[float, str]:
    times = []
    findings: list[Finding] = []
    for _ in range(rounds):
        start = time.perf_counter()
        findings = await run()
        times.append(time.perf_counter() - start)
    statuses = ",".join(sorted({f.status.value for f in findings}))
    return statistics.median(times), statuses


async def main(rounds: int) -> None:
    fake_dns = FakeDns()
    fake_dns.start()
    sntp = SntpServer()
    sntp.attach(asyncio.get_running_loop())
    mx = await probe_mx()
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(
            data_dir=Path(data_dir),
            hostname=HOSTNAME,
            public_ips=[PUBLIC_IP],
            dns_nameservers=[fake_dns.address],
            password_hash_cost="test",
            remote_smtp_port=mx.sockets[0].getsockname()[1],
            **{
                f"{name}_port": free_port()
                for name in (
                    "mx",
                    "submission",
                    "submissions",
                    "imap",
                    "imaps",
                    "managesieve",
                    "http",
                )
            },
        )
        services = await build_services(settings)
        listeners = await start_listeners(services)
        try:
            await services.accounts.create(
                "bench", owner_email="o@bench.test", password="pass-word-1"
            )
            await services.domains.add(DOMAIN, account_name="bench")
            _, records = await services.domains.records(DOMAIN)
            for record in records:
                if record.type == "MX":
                    fake_dns.add(record.name, "MX", f"{record.priority} {record.value}.")
                elif record.type == "TXT":
                    fake_dns.add(record.name, "TXT", record.value)
                else:
                    fake_dns.add(record.name, record.type, f"{record.value}.")
            fake_dns.add(HOSTNAME, "A", PUBLIC_IP)
            fake_dns.add("probe.bench.test", "MX", "10 mx.probe.bench.test.")
            fake_dns.add("mx.probe.bench.test", "A", "127.0.0.1")
            options = DoctorOptions(
                probe_domain="probe.bench.test", ntp_server=sntp.address, disk_fail_bytes=1024
            )
            doctor = Doctor(settings, services.resolver, services.domains, options)
            findings = await doctor.run()
            failed = [f for f in findings if f.status is Status.FAIL]
            if failed:
                raise SystemExit(f"a check failed on loopback: {failed}")
            print(
                f"mailmark doctor on loopback, {len(findings)} findings, median of {rounds} rounds"
            )
            total, statuses = await timed(rounds, doctor.run)
            print(f"  {'all checks (one after another)':34} {total * 1000:8.1f} ms  [{statuses}]")
            for name, check in (
                ("hostname + FCrDNS", doctor.hostname),
                (f"domain {DOMAIN} (its record set)", doctor.domains),
                ("7 listeners' greetings", doctor.ports),
                ("TLS certificate (a handshake)", doctor.certificate),
                ("outbound port 25 probe", doctor.outbound),
                ("clock (one SNTP query)", doctor.clock),
                ("disk space", doctor.disk),
            ):
                took, statuses = await timed(rounds, check)
                print(f"  {name:34} {took * 1000:8.1f} ms  [{statuses}]")
        finally:
            await listeners.close()
            await services.close()
            mx.close()
            sntp.close(asyncio.get_running_loop())
            fake_dns.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    asyncio.run(main(parser.parse_args().rounds))
