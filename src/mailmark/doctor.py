"""`mailmark doctor`: what a mail server on the internet needs, checked from the machine it runs
on, each answer OK, WARN or FAIL with what to change. Every network step is bounded by a timeout,
so a firewall that drops packets makes a check fail rather than the command hang."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import shutil
import socket
import ssl
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from enum import StrEnum

from cryptography import x509

from mailmark.certificates.names import certificate_covers, public_host
from mailmark.config import Settings
from mailmark.core.domains import DomainService, fix_for
from mailmark.dns_tools.record_set import reverse_name
from mailmark.dns_tools.resolver import DnsResolver, DnsTemporaryError
from mailmark.startup import hostname_problem

CONNECT_TIMEOUT = 5.0
# A check that takes longer than this (several lookups each bounded by the resolver) is cut off.
CHECK_TIMEOUT = 30.0
COMMAND_TIMEOUT = 5.0
# Beyond this many domains, `mailmark domain verify DOMAIN` checks the rest one by one.
MAX_DOMAINS = 50
CERTIFICATE_WARN_DAYS = 14
# TOTP codes (30 s steps), DKIM signature times and certificate validity go wrong past this.
CLOCK_WARN_SECONDS = 1.0
CLOCK_FAIL_SECONDS = 30.0
DISK_FAIL_BYTES = 1 << 30
DISK_WARN_BYTES = 5 << 30
DEFAULT_PROBE_DOMAIN = "gmail.com"
DEFAULT_NTP_SERVER = "pool.ntp.org"
# RFC 5905 §6: NTP timestamps count seconds from 1900-01-01.
NTP_EPOCH_OFFSET = 2_208_988_800


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class Finding:
    check: str
    status: Status
    detail: str
    fix: str = ""

    def json(self) -> dict[str, str]:
        return {key: str(value) for key, value in asdict(self).items()}


@dataclass(frozen=True)
class DoctorOptions:
    probe_domain: str = DEFAULT_PROBE_DOMAIN
    ntp_server: str = ""  # empty: timedatectl, else chronyc, else DEFAULT_NTP_SERVER
    disk_fail_bytes: int = DISK_FAIL_BYTES
    disk_warn_bytes: int = DISK_WARN_BYTES


class Doctor:
    """Runs every check against one installation's settings, resolver and domains."""

    def __init__(
        self,
        settings: Settings,
        resolver: DnsResolver,
        domains: DomainService,
        options: DoctorOptions | None = None,
    ) -> None:
        self._settings = settings
        self._resolver = resolver
        self._domains = domains
        self._options = options or DoctorOptions()

    async def run(self) -> list[Finding]:
        findings: list[Finding] = []
        checks: list[tuple[str, Callable[[], Awaitable[list[Finding]]]]] = [
            ("hostname", self.hostname),
            ("domains", self.domains),
            ("ports", self.ports),
            ("TLS certificate", self.certificate),
            ("outbound port 25", self.outbound),
            ("clock", self.clock),
            ("disk space", self.disk),
        ]
        for name, check in checks:
            try:
                findings += await asyncio.wait_for(check(), CHECK_TIMEOUT)
            except TimeoutError:
                findings.append(
                    Finding(name, Status.FAIL, f"no answer within {CHECK_TIMEOUT:g}s", "")
                )
        return findings

    # --- DNS ------------------------------------------------------------------------------------

    async def hostname(self) -> list[Finding]:
        """The HELO name resolves, and each of its addresses (or MAILMARK_PUBLIC_IPS) has a PTR
        record naming it back: forward-confirmed reverse DNS, which receivers such as Gmail
        require of a sending server (RFC 8601 §2.7.3's iprev)."""
        name = self._settings.hostname
        if problem := hostname_problem(name):
            return [
                Finding(
                    "hostname",
                    Status.FAIL,
                    f"MAILMARK_HOSTNAME {name} {problem}",
                    "set MAILMARK_HOSTNAME to the server's public name (e.g. mx.example.com)",
                )
            ]
        try:
            addresses = await asyncio.to_thread(self._resolver.addresses, name)
        except DnsTemporaryError as error:
            return [Finding("hostname", Status.FAIL, f"{name}: {error}", _DNS_FIX)]
        if not addresses:
            return [
                Finding(
                    "hostname",
                    Status.FAIL,
                    f"{name} has no A or AAAA record",
                    f"add an A record for {name} with the server's public IPv4 address",
                )
            ]
        findings = []
        public = list(self._settings.public_ips)
        local = [ip for ip in addresses if not ipaddress.ip_address(ip).is_global]
        if public and not set(public) & set(addresses):
            findings.append(
                Finding(
                    "hostname",
                    Status.FAIL,
                    f"{name} resolves to {', '.join(addresses)}, not to MAILMARK_PUBLIC_IPS "
                    f"{', '.join(public)}",
                    f"point the A/AAAA records of {name} at {', '.join(public)}",
                )
            )
        elif local and not public:
            findings.append(
                Finding(
                    "hostname",
                    Status.WARN,
                    f"{name} resolves to {', '.join(local)}, not a public address",
                    f"publish the server's public address for {name} and set MAILMARK_PUBLIC_IPS",
                )
            )
        else:
            findings.append(
                Finding("hostname", Status.OK, f"{name} resolves to {', '.join(addresses)}")
            )
        for ip in public or addresses:
            findings.append(await self._reverse(name, ip))
        return findings

    async def _reverse(self, name: str, ip: str) -> Finding:
        check = f"reverse DNS {ip}"
        fix = f"ask your hosting provider to set the reverse DNS (PTR) of {ip} to {name}"
        try:
            pointers = await asyncio.to_thread(self._resolver.records, reverse_name(ip), "PTR")
        except DnsTemporaryError as error:
            return Finding(check, Status.FAIL, str(error), fix)
        targets = [pointer.rstrip(".").lower() for pointer in pointers]
        if not targets:
            return Finding(check, Status.FAIL, f"{ip} has no PTR record", fix)
        if name.lower() not in targets:
            return Finding(check, Status.FAIL, f"{ip} points to {', '.join(targets)}", fix)
        try:
            forward = await asyncio.to_thread(self._resolver.addresses, name)
        except DnsTemporaryError as error:
            return Finding(check, Status.FAIL, str(error), _DNS_FIX)
        if ip not in forward:
            return Finding(
                check,
                Status.FAIL,
                f"{ip} points to {name}, but {name} does not resolve to {ip}",
                f"add {ip} to the A/AAAA records of {name}",
            )
        return Finding(check, Status.OK, f"{ip} → {name} → {ip} (forward-confirmed)")

    async def domains(self) -> list[Finding]:
        """Each domain's records, checked (and stored) as `mailmark domain verify` does."""
        summaries = await self._domains.list_all()
        if not summaries:
            return [
                Finding(
                    "domains",
                    Status.WARN,
                    "no domain yet",
                    "add one: mailmark domain add DOMAIN --account NAME",
                )
            ]
        findings = []
        for summary in summaries[:MAX_DOMAINS]:
            name = summary.domain.name
            verification = await self._domains.verify(name)
            required = [c for c in verification.checks if c.record.required and c.status != "ok"]
            advised = [c for c in verification.checks if not c.record.required and c.status != "ok"]
            fixes = [fix for c in required + advised if (fix := fix_for(c, name))]
            if required:
                status, detail = Status.FAIL, f"{len(required)} required record(s) not right"
            elif advised:
                status, detail = Status.WARN, f"{len(advised)} recommended record(s) not right"
            else:
                status, detail = Status.OK, f"all {len(verification.checks)} records published"
            findings.append(Finding(f"domain {name}", status, detail, "\n".join(fixes)))
        if len(summaries) > MAX_DOMAINS:
            findings.append(
                Finding(
                    "domains",
                    Status.WARN,
                    f"{len(summaries) - MAX_DOMAINS} more domains not checked here",
                    "check them with: mailmark domain verify DOMAIN",
                )
            )
        return findings

    # --- listeners ------------------------------------------------------------------------------

    async def ports(self) -> list[Finding]:
        """Each listener answers on this host with its protocol's greeting. From here, not from
        the internet: a firewall in front of the machine can still block them."""
        s = self._settings
        listeners = [
            ("MX", s.mx_port, "MAILMARK_MX_PORT", b"220", False),
            ("submission", s.submission_port, "MAILMARK_SUBMISSION_PORT", b"220", False),
            ("submissions", s.submissions_port, "MAILMARK_SUBMISSIONS_PORT", b"220", True),
            ("IMAP", s.imap_port, "MAILMARK_IMAP_PORT", b"* OK", False),
            ("IMAPS", s.imaps_port, "MAILMARK_IMAPS_PORT", b"* OK", True),
            # RFC 5804 §1.7: the greeting is the capability list.
            (
                "ManageSieve",
                s.managesieve_port,
                "MAILMARK_MANAGESIEVE_PORT",
                b'"IMPLEMENTATION"',
                False,
            ),
            ("HTTP", s.http_port, "MAILMARK_HTTP_PORT", b"", False),
        ]
        if s.https_port is not None:
            listeners.append(("HTTPS", s.https_port, "MAILMARK_HTTPS_PORT", b"", True))
        if s.http_redirect_port is not None:
            redirect = ("HTTP redirect", s.http_redirect_port, "MAILMARK_HTTP_REDIRECT_PORT")
            listeners.append((*redirect, b"", False))
        return list(
            await asyncio.gather(
                *(
                    self._port(name, port, setting, greeting, tls)
                    for name, port, setting, greeting, tls in listeners
                )
            )
        )

    async def _port(
        self, name: str, port: int, setting: str, greeting: bytes, implicit_tls: bool
    ) -> Finding:
        # With HTTPS on, the plain HTTP port serves this machine only (Settings.http_bind).
        host = self._local_address(self._settings.http_bind if name == "HTTP" else None)
        check = f"port {port} ({name})"
        context = _unverified_tls() if implicit_tls else None
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    host,
                    port,
                    ssl=context,
                    server_hostname=self._settings.hostname if context else None,
                ),
                CONNECT_TIMEOUT,
            )
        except (OSError, TimeoutError, ssl.SSLError) as error:
            return Finding(
                check,
                Status.FAIL,
                f"nothing answers on {host}:{port}: {_reason(error)}",
                f"start the server (systemctl start mailmark), or check {setting} and "
                "MAILMARK_BIND",
            )
        try:
            if not greeting:  # HTTP speaks second
                writer.write(
                    b"HEAD /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                )
                greeting = b"HTTP/1."
            line = await asyncio.wait_for(reader.readline(), CONNECT_TIMEOUT)
        except (OSError, TimeoutError, ssl.SSLError) as error:
            line = f"({_reason(error)})".encode()
        finally:
            writer.close()
        if not line.startswith(greeting):
            return Finding(
                check,
                Status.FAIL,
                f"{host}:{port} answers {line[:80]!r}, not a {name} greeting",
                f"another program holds port {port}: stop it, or move Mailmark with {setting}",
            )
        where = "on this host; from outside, make sure the firewall lets it through"
        return Finding(check, Status.OK, f"{name} answers {where}")

    def _local_address(self, bind: str | None = None) -> str:
        bind = self._settings.bind if bind is None else bind
        if bind in ("", "0.0.0.0"):
            return "127.0.0.1"
        return "::1" if bind == "::" else bind

    async def certificate(self) -> list[Finding]:
        """The certificate the submissions listener (465) presents: valid for the host name,
        not expired or about to, and whether a client trusting the system's CAs accepts it;
        with the HTTPS listener on, the same of the one it presents for the web app's host."""
        s = self._settings
        findings = [
            await self._certificate(
                "TLS certificate",
                s.submissions_port,
                s.hostname,
                "other servers accept it for STARTTLS, mail clients warn",
            )
        ]
        if s.https_port is not None:
            findings.append(
                await self._certificate(
                    "HTTPS certificate",
                    s.https_port,
                    public_host(s.public_url) or s.hostname,
                    "browsers refuse it",
                )
            )
        return findings

    async def _certificate(
        self, check: str, port: int, name: str, when_self_signed: str
    ) -> Finding:
        host = self._local_address()
        try:
            der = await _peer_certificate(host, port, name)
        except (OSError, TimeoutError, ssl.SSLError) as error:
            return Finding(
                check,
                Status.FAIL,
                f"no TLS handshake on {host}:{port}: {_reason(error)}",
                "start the server, then run mailmark doctor again",
            )
        certificate = x509.load_der_x509_certificate(der)
        now = datetime.datetime.now(datetime.UTC)
        left = certificate.not_valid_after_utc - now
        fix_cert = (
            "set MAILMARK_TLS_CERT and MAILMARK_TLS_KEY to a certificate for "
            f"{name} from a CA (e.g. Let's Encrypt with certbot)"
        )
        if left.total_seconds() <= 0 or certificate.not_valid_before_utc > now:
            expired = certificate.not_valid_after_utc.date()
            return Finding(check, Status.FAIL, f"not valid now (expires {expired})", fix_cert)
        if not certificate_covers(certificate, name):
            return Finding(check, Status.FAIL, f"does not name {name}", fix_cert)
        if left.days < CERTIFICATE_WARN_DAYS:
            return Finding(check, Status.WARN, f"expires in {left.days} days", "renew it")
        until = f"valid for {name} until {certificate.not_valid_after_utc.date()}"
        if certificate.issuer == certificate.subject:
            return Finding(
                check, Status.WARN, f"self-signed, {until}: {when_self_signed}", fix_cert
            )
        try:
            await _peer_certificate(host, port, name, verify=True)
        except ssl.SSLCertVerificationError as error:
            return Finding(check, Status.FAIL, f"{until}, but {error.verify_message}", fix_cert)
        except (OSError, TimeoutError, ssl.SSLError) as error:
            return Finding(check, Status.FAIL, _reason(error), fix_cert)
        return Finding(check, Status.OK, until)

    # --- the world outside ----------------------------------------------------------------------

    async def outbound(self) -> list[Finding]:
        """With a relay host set: its port answers `220`. Otherwise: the most preferred MX of
        the probe domain (gmail.com unless --probe-domain says otherwise) answers `220` on the
        remote SMTP port (25), a plain TCP connect with a short timeout, then QUIT; no mail."""
        s = self._settings
        if s.relay_host:
            host = s.relay_host.strip("[]")
            port = s.relay_port or (465 if s.relay_tls == "implicit" else 587)
            return [await self._smtp_answers(f"relay {host}:{port}", host, port, relay=True)]
        domain = self._options.probe_domain
        try:
            exchangers = await asyncio.to_thread(self._resolver.mx, domain)
        except DnsTemporaryError as error:
            return [Finding("outbound port 25", Status.FAIL, str(error), _DNS_FIX)]
        hosts = [host for _, host in exchangers if host]
        addresses: list[str] = []
        if hosts:
            try:
                addresses = await asyncio.to_thread(self._resolver.addresses, hosts[0])
            except DnsTemporaryError as error:
                return [Finding("outbound port 25", Status.FAIL, str(error), _DNS_FIX)]
        if not addresses:
            return [
                Finding(
                    "outbound port 25",
                    Status.WARN,
                    f"{domain} has no MX record (with an address) to try",
                    "pass --probe-domain with a domain that receives mail",
                )
            ]
        return [
            await self._smtp_answers(
                f"outbound port {s.remote_smtp_port}",
                addresses[0],
                s.remote_smtp_port,
                relay=False,
                name=hosts[0],
            )
        ]

    async def _smtp_answers(
        self, check: str, host: str, port: int, *, relay: bool, name: str = ""
    ) -> Finding:
        """Connect to host:port (`name`: the host name it was resolved from, for the report)."""
        where = f"{name} ({host}):{port}" if name else f"{host}:{port}"
        fix = (
            "check relay_host and relay_port, and that this network reaches them"
            if relay
            else "ask your provider to open outbound port 25, or set relay_host to send "
            "through a relay (README: Sending through a relay host)"
        )
        implicit = relay and self._settings.relay_tls == "implicit"
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    host,
                    port,
                    ssl=ssl.create_default_context() if implicit else None,
                    server_hostname=host if implicit else None,
                ),
                CONNECT_TIMEOUT,
            )
        except (OSError, TimeoutError, ssl.SSLError) as error:
            return Finding(check, Status.FAIL, f"cannot connect to {where}: {_reason(error)}", fix)
        try:
            banner = await asyncio.wait_for(reader.readline(), CONNECT_TIMEOUT)
            writer.write(b"QUIT\r\n")
        except (OSError, TimeoutError, ssl.SSLError) as error:
            banner = f"({_reason(error)})".encode()
        finally:
            writer.close()
        if not banner.startswith(b"220"):
            return Finding(check, Status.FAIL, f"{where} answered {banner[:80]!r}", fix)
        return Finding(check, Status.OK, f"{where} answers 220")

    async def clock(self) -> list[Finding]:
        """Synchronised per timedatectl, else chronyc; else (or with --ntp-server) the offset
        from an SNTP server (RFC 4330), one UDP query bounded by a timeout."""
        if not self._options.ntp_server:
            for command, synced in (
                (["timedatectl", "show", "-p", "NTPSynchronized", "--value"], _timedatectl_synced),
                (["chronyc", "-n", "tracking"], _chrony_synced),
            ):
                if shutil.which(command[0]) is None:
                    continue
                output = await _command_output(command)
                if output is None:
                    continue  # e.g. timedatectl in a container without systemd
                if synced(output):
                    return [Finding("clock", Status.OK, f"synchronised ({command[0]})")]
                return [
                    Finding(
                        "clock",
                        Status.WARN,
                        f"{command[0]} says the clock is not synchronised",
                        "enable time synchronisation: timedatectl set-ntp true, or chrony",
                    )
                ]
        server = self._options.ntp_server or DEFAULT_NTP_SERVER
        try:
            offset = await sntp_offset(server)
        except (OSError, TimeoutError, ValueError) as error:
            return [
                Finding(
                    "clock",
                    Status.WARN,
                    f"cannot tell: no timedatectl or chronyc answer, and {server}: {_reason(error)}",
                    "install chrony or systemd-timesyncd, or pass --ntp-server HOST",
                )
            ]
        detail = f"{offset:+.3f}s from {server}"
        fix = "synchronise the clock: timedatectl set-ntp true, or install chrony"
        if abs(offset) > CLOCK_FAIL_SECONDS:
            return [Finding("clock", Status.FAIL, detail, fix)]
        if abs(offset) > CLOCK_WARN_SECONDS:
            return [Finding("clock", Status.WARN, detail, fix)]
        return [Finding("clock", Status.OK, detail)]

    async def disk(self) -> list[Finding]:
        path = self._settings.data_dir
        usage = await asyncio.to_thread(shutil.disk_usage, path)
        detail = f"{_size(usage.free)} free of {_size(usage.total)} for {path.absolute()}"
        fix = "free space or grow the disk: mail, the database and the queue live here"
        if usage.free < self._options.disk_fail_bytes:
            return [Finding("disk space", Status.FAIL, detail, fix)]
        if usage.free < self._options.disk_warn_bytes:
            return [Finding("disk space", Status.WARN, detail, fix)]
        return [Finding("disk space", Status.OK, detail)]


_DNS_FIX = "check MAILMARK_DNS_NAMESERVERS (or /etc/resolv.conf) and that DNS answers"


def report(findings: list[Finding]) -> str:
    """One line per check, its fix indented under it."""
    lines = []
    width = max((len(f.check) for f in findings), default=0)
    for finding in findings:
        lines.append(f"{finding.status.upper():4}  {finding.check:{width}}  {finding.detail}")
        for fix in finding.fix.splitlines():
            lines.append(f"{'':4}  {'':{width}}  fix: {fix}")
    failed = sum(f.status is Status.FAIL for f in findings)
    warned = sum(f.status is Status.WARN for f in findings)
    lines.append(f"{failed} failed, {warned} warnings, {len(findings) - failed - warned} ok")
    return "\n".join(lines)


async def sntp_offset(server: str, timeout: float = CONNECT_TIMEOUT) -> float:
    """This clock's offset from `server` ("host" or "host:port"), in seconds (positive: ours
    is behind), from one SNTP exchange (RFC 4330 §5)."""
    host, _, port = server.rpartition(":") if server.count(":") == 1 else (server, "", "")
    address = (host or server, int(port) if port else 123)
    loop = asyncio.get_running_loop()

    async def exchange() -> tuple[float, bytes, float]:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            await loop.sock_connect(sock, address)
            # LI 0, version 4, mode 3 (client); the transmit timestamp comes back as "originate".
            sent = time.time()
            await loop.sock_sendall(sock, b"\x23" + bytes(39) + _ntp_timestamp(sent))
            answer = await loop.sock_recv(sock, 512)
            return sent, answer, time.time()

    sent, answer, received = await asyncio.wait_for(exchange(), timeout)
    if len(answer) < 48 or answer[0] & 0x07 != 4:
        raise ValueError("not an NTP server answer")
    server_received = _from_ntp(answer[32:40])
    server_sent = _from_ntp(answer[40:48])
    if server_sent == 0:
        raise ValueError("the NTP server sent no time (kiss-o'-death)")
    return ((server_received - sent) + (server_sent - received)) / 2


def _ntp_timestamp(seconds: float) -> bytes:
    whole = int(seconds) + NTP_EPOCH_OFFSET
    return struct.pack("!II", whole & 0xFFFFFFFF, int((seconds % 1) * 2**32))


def _from_ntp(raw: bytes) -> float:
    whole, fraction = (int(part) for part in struct.unpack("!II", raw))
    if whole == 0 and fraction == 0:
        return 0.0
    return float(whole - NTP_EPOCH_OFFSET + fraction / 2**32)


def _timedatectl_synced(output: str) -> bool:
    return output.strip() == "yes"


def _chrony_synced(output: str) -> bool:
    return any(
        line.split(":", 1)[0].strip() == "Leap status" and "Normal" in line
        for line in output.splitlines()
    )


async def _command_output(command: list[str]) -> str | None:
    """Its standard output if it ran and succeeded within COMMAND_TIMEOUT, else None."""
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), COMMAND_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        return None
    return out.decode(errors="replace") if process.returncode == 0 else None


async def _peer_certificate(host: str, port: int, name: str, *, verify: bool = False) -> bytes:
    context = ssl.create_default_context() if verify else _unverified_tls()
    _, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, ssl=context, server_hostname=name), CONNECT_TIMEOUT
    )
    try:
        transport_ssl = writer.get_extra_info("ssl_object")
        der = transport_ssl.getpeercert(binary_form=True) if transport_ssl else None
    finally:
        writer.close()
    if not der:
        raise ssl.SSLError("the server sent no certificate")
    return bytes(der)


def _unverified_tls() -> ssl.SSLContext:
    """To read whatever certificate a listener presents, valid or not."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _reason(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return f"no answer within {CONNECT_TIMEOUT:g}s"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


def _size(count: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024:
            return f"{count:.0f} {unit}"
        count //= 1024
    return f"{count} TiB"
