"""DNS blocklists (DNSBL, RFC 5782): refuse mail from a client whose address a list names."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Sequence

from mailmark.core.errors import ClientBlocklisted
from mailmark.core.spam import NO_VERDICT, SpamVerdict
from mailmark.dns_tools.resolver import DnsResolver, DnsTemporaryError

log = logging.getLogger(__name__)

# RFC 5782 §2.1: a listing is an A record in 127.0.0.0/8 (127.0.0.1 is reserved for tests of the
# list's own reach). Spamhaus answers 127.255.255.0/24 for its errors (a public resolver, too
# many queries): those are not listings.
_LISTED = ipaddress.ip_network("127.0.0.0/8")
_LIST_ERRORS = ipaddress.ip_network("127.255.255.0/24")


class DnsBlocklists:
    """A `SpamFilter` that looks the client's address up in each zone, all zones at once. A zone
    that cannot be asked (timeout, SERVFAIL) is passed over with a log line: mail keeps flowing."""

    def __init__(self, resolver: DnsResolver, zones: Sequence[str]) -> None:
        self._resolver = resolver
        self._zones = [zone.strip(".").lower() for zone in zones]

    async def check(
        self,
        raw: bytes,
        *,
        transaction_id: str,
        client_ip: str,
        helo: str,
        mail_from: str,
        rcpt_tos: Sequence[str],
    ) -> SpamVerdict:
        try:
            address = ipaddress.ip_address(client_ip)
        except ValueError:
            return NO_VERDICT
        listed = await asyncio.gather(
            *(asyncio.to_thread(self._listed, query_name(address, zone)) for zone in self._zones)
        )
        for zone, hit in zip(self._zones, listed, strict=True):
            if hit:
                raise ClientBlocklisted(
                    f"Mail from {address} refused: the address is listed by {zone}"
                )
        return NO_VERDICT

    def _listed(self, name: str) -> bool:
        try:
            answers = self._resolver.records(name, "A")
        except DnsTemporaryError as error:
            log.warning("DNS blocklist lookup %s failed, passed over: %s", name, error)
            return False
        for answer in answers:
            try:
                address = ipaddress.ip_address(answer)
            except ValueError:
                continue
            if address in _LIST_ERRORS:
                log.warning("DNS blocklist lookup %s answered error code %s", name, address)
            elif address in _LISTED:
                return True
        return False


def query_name(address: ipaddress.IPv4Address | ipaddress.IPv6Address, zone: str) -> str:
    """RFC 5782 §2.1 (IPv4: octets reversed) and §2.4 (IPv6: nibbles reversed) under `zone`."""
    pointer = address.reverse_pointer
    suffix = ".in-addr.arpa" if address.version == 4 else ".ip6.arpa"
    return f"{pointer.removesuffix(suffix)}.{zone}"
