"""The DNS records a hosted domain should publish, built from the server's settings.

Pure functions: no lookups here (verification.py checks what the DNS actually says).
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from mailmark.core.addresses import custom_return_path_domain
from mailmark.core.model import DkimKey, DnsRecord
from mailmark.core.reports import DMARC_REPORT_LOCAL_PART, TLS_REPORT_LOCAL_PART

MX_PRIORITY = 10
MTA_STS_MAX_AGE = 604_800  # one week, RFC 8461 §3.2 (max 31557600)


@dataclass(frozen=True)
class MailServer:
    """What the outside world must know about this server to route and trust mail."""

    hostname: str
    public_ips: tuple[str, ...] = ()
    submission_port: int = 587
    submissions_port: int = 465
    imap_port: int = 143
    imaps_port: int = 993
    mta_sts_mode: str = "testing"  # RFC 8461 §5: "enforce" | "testing" | "none"


def spf_value(server: MailServer) -> str:
    """An SPF record authorising this server: by address when known, else by host name."""
    mechanisms = [
        f"ip6:{ip}" if ipaddress.ip_address(ip).version == 6 else f"ip4:{ip}"
        for ip in server.public_ips
    ] or [f"a:{server.hostname}"]
    return "v=spf1 " + " ".join(mechanisms) + " ~all"


def dkim_value(key: DkimKey) -> str:
    algorithm = "ed25519" if key.algorithm.startswith("ed25519") else "rsa"
    return f"v=DKIM1; k={algorithm}; p={key.public_key}"


def mta_sts_policy(server: MailServer) -> str:
    """The policy file served at https://mta-sts.<domain>/.well-known/mta-sts.txt (RFC 8461 §3.2)."""
    return (
        "version: STSv1\r\n"
        f"mode: {server.mta_sts_mode}\r\n"
        f"mx: {server.hostname}\r\n"
        f"max_age: {MTA_STS_MAX_AGE}\r\n"
    )


def mta_sts_id(server: MailServer) -> str:
    """Changes whenever the policy changes, as RFC 8461 §3.1 requires of the TXT record's id."""
    return hashlib.sha256(mta_sts_policy(server).encode()).hexdigest()[:20]


def reverse_name(ip: str) -> str:
    return ipaddress.ip_address(ip).reverse_pointer


def record_set(domain: str, server: MailServer, dkim_keys: Sequence[DkimKey]) -> list[DnsRecord]:
    """Every record for `domain`; `required` ones decide whether the domain counts as verified."""
    host = server.hostname
    mail_from = custom_return_path_domain(domain)
    records = [
        DnsRecord(
            "MX",
            domain,
            host,
            "Inbound mail: route the domain's mail to this server",
            priority=MX_PRIORITY,
        ),
        DnsRecord(
            "TXT", domain, spf_value(server), "SPF: authorise this server to send as the domain"
        ),
    ]
    for key in dkim_keys:
        signing = "signing key" if key.active else "next signing key, published ahead of rotation"
        records.append(
            DnsRecord(
                "TXT",
                f"{key.selector}._domainkey.{domain}",
                dkim_value(key),
                f"DKIM ({key.algorithm}): {signing}",
                # RFC 8463 keys are signed alongside RSA; verifiers that lack Ed25519 ignore them.
                required=key.active and key.algorithm == "rsa-sha256",
            )
        )
    records += [
        DnsRecord(
            "TXT",
            f"_dmarc.{domain}",
            f"v=DMARC1; p=quarantine; rua=mailto:{DMARC_REPORT_LOCAL_PART}@{domain}",
            "DMARC: tell receivers to quarantine mail that fails SPF and DKIM alignment",
        ),
        DnsRecord(
            "MX",
            mail_from,
            host,
            "Return path (custom MAIL FROM): the envelope sender's domain resolves, and bounces "
            "come back to this server",
            priority=MX_PRIORITY,
        ),
        DnsRecord(
            "TXT",
            mail_from,
            spf_value(server),
            "Return path (custom MAIL FROM): SPF for the envelope sender, aligned with the domain",
        ),
        DnsRecord(
            "TXT",
            f"_mta-sts.{domain}",
            f"v=STSv1; id={mta_sts_id(server)}",
            "MTA-STS: senders must use TLS to reach this server",
            required=False,
        ),
        DnsRecord(
            "CNAME",
            f"mta-sts.{domain}",
            host,
            "MTA-STS: where the policy file is served",
            required=False,
        ),
        DnsRecord(
            "TXT",
            f"_smtp._tls.{domain}",
            f"v=TLSRPTv1; rua=mailto:{TLS_REPORT_LOCAL_PART}@{domain}",
            "TLS-RPT: where senders report TLS failures",
            required=False,
        ),
        # RFC 6186 and RFC 8314 §5.1: let mail clients find IMAP and submission by themselves.
        DnsRecord(
            "SRV",
            f"_imaps._tcp.{domain}",
            f"0 1 {server.imaps_port} {host}",
            "Client setup: IMAP over TLS",
            required=False,
        ),
        DnsRecord(
            "SRV",
            f"_imap._tcp.{domain}",
            f"0 1 {server.imap_port} {host}",
            "Client setup: IMAP with STARTTLS",
            required=False,
        ),
        DnsRecord(
            "SRV",
            f"_submissions._tcp.{domain}",
            f"0 1 {server.submissions_port} {host}",
            "Client setup: submission over TLS",
            required=False,
        ),
        DnsRecord(
            "SRV",
            f"_submission._tcp.{domain}",
            f"0 1 {server.submission_port} {host}",
            "Client setup: submission with STARTTLS",
            required=False,
        ),
    ]
    records += [
        DnsRecord(
            "PTR",
            reverse_name(ip),
            host,
            "Reverse DNS of the server's address (set at your hosting provider)",
            required=False,
        )
        for ip in server.public_ips
    ]
    return records


def record_json(record: DnsRecord) -> dict[str, object]:
    """The `domain records --json` shape: type, name, value, priority on MX only, and more."""
    data: dict[str, object] = {"type": record.type, "name": record.name, "value": record.value}
    if record.priority is not None:
        data["priority"] = record.priority
    data["required"] = record.required
    data["purpose"] = record.purpose
    return data


def zone_fragment(records: Sequence[DnsRecord], ttl: int = 3600) -> str:
    """A BIND zone-file fragment: absolute names, TXT split into ≤255-octet strings (RFC 1035)."""
    lines = []
    for record in records:
        if record.type == "TXT":
            text = record.value
            chunks = [text[i : i + 255] for i in range(0, len(text), 255)] or [""]
            rdata = " ".join(
                '"' + c.replace("\\", "\\\\").replace('"', '\\"') + '"' for c in chunks
            )
        elif record.type == "MX":
            rdata = f"{record.priority} {record.value}."
        else:  # CNAME, SRV and PTR end in a host name, made absolute
            rdata = f"{record.value}."
        marker = "" if record.required else "  ; recommended"
        lines.append(f"{record.name}.\t{ttl}\tIN\t{record.type}\t{rdata}{marker}")
    return "\n".join(lines) + "\n"
