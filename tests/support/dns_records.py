"""Publishing a domain's expected records in the loopback FakeDns, as its owner would."""

from __future__ import annotations

from mailmark.core.model import DnsRecord
from tests.fakedns import FakeDns


def publish(fake_dns: FakeDns, records: list[DnsRecord], *, only_required: bool = True) -> None:
    for record in records:
        if only_required and not record.required:
            continue
        if record.type == "MX":
            fake_dns.add(record.name, "MX", f"{record.priority} {record.value}.")
        elif record.type == "TXT":
            fake_dns.add(record.name, "TXT", record.value)
