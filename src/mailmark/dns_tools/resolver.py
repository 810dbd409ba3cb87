"""Blocking DNS lookups for mail authentication; the one place that talks to dnspython."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

import dns.exception
import dns.name
import dns.nameserver
import dns.resolver
import spf  # type: ignore[import-untyped]

__all__ = ["DnsResolver", "DnsTemporaryError"]

_CACHE_SIZE = 10_000
# Errors for names that cannot exist (empty or over-long labels, bad IDNA): no such domain.
_INVALID_NAME_ERRORS = (dns.exception.SyntaxError, dns.name.NameTooLong, dns.name.IDNAException)
_BRACKETED = re.compile(r"\[([^\]]*)\](?::([0-9]+))?")  # [2001:db8::1] or [2001:db8::1]:53
_WITH_PORT = re.compile(r"([^:]*):([0-9]+)")  # 192.0.2.1:53; bare IPv6 has more colons


class DnsTemporaryError(Exception):
    """A lookup that may succeed later: timeout, SERVFAIL, or no nameserver answering."""


class DnsResolver:
    """Stub resolver with an LRU cache (negative answers included) shared by all its lookups.

    The methods block; async callers run them in a thread. A name that does not exist, has no
    record of the type asked, or is not a valid DNS name yields an empty result.
    """

    def __init__(
        self, nameservers: list[str] | None = None, timeout: float = 5.0, *, cache: bool = True
    ) -> None:
        """`nameservers`: "host", "host:port", "[v6]:port" or bare IPv6; none → system config.

        `timeout` bounds each lookup, retries and fallback to the next nameserver included.
        `cache=False` is for checks a person re-runs right after fixing their DNS.
        """
        try:
            resolver = dns.resolver.Resolver(configure=not nameservers)
        except dns.resolver.NoResolverConfiguration as exc:
            raise ValueError(f"no nameservers given and no system resolver: {exc}") from exc
        if nameservers:
            resolver.nameservers = [_parse_nameserver(entry) for entry in nameservers]
        resolver.lifetime = timeout
        # dnspython caches NXDOMAIN and no-answer responses too (SOA minimum, else 300 s).
        resolver.cache = dns.resolver.LRUCache(_CACHE_SIZE) if cache else None
        self._resolver = resolver
        self._timeout = timeout

    def txt(self, name: str) -> list[str]:
        """Each TXT record at `name`, its strings joined (RFC 7208 §3.3), decoded as UTF-8."""
        return [record.decode("utf-8", "replace") for record in self._txt(name, self._timeout)]

    def mx(self, name: str) -> list[tuple[int, str]]:
        """(preference, host) pairs, most preferred first; a null MX (RFC 7505) has host ""."""
        hosts = [
            (rdata.preference, rdata.exchange.to_text(omit_final_dot=True).rstrip("."))
            for rdata in self._lookup(name, "MX", self._timeout)
        ]
        return sorted(hosts)

    def addresses(self, name: str) -> list[str]:
        """IPv4 then IPv6 addresses of `name`."""
        return [
            rdata.address
            for rdtype in ("A", "AAAA")
            for rdata in self._lookup(name, rdtype, self._timeout)
        ]

    def records(self, name: str, rdtype: str) -> list[str]:
        """Any record type in presentation form (e.g. SRV "0 1 465 mx.example.com."), CNAMEs
        followed; TXT as its strings joined, like `txt`."""
        if rdtype == "TXT":
            return self.txt(name)
        return [rdata.to_text() for rdata in self._lookup(name, rdtype, self._timeout)]

    def dkim_dnsfunc(self, name: bytes, timeout: float = 5) -> bytes | None:
        """dkimpy's `dnsfunc`: the first TXT record at `name`, or None when there is none.

        Raises DnsTemporaryError rather than dkimpy's DnsTimeoutError, which dkimpy swallows
        into a plain verification failure; this way the caller can report temperror.
        """
        try:
            text = name.decode("utf-8")
        except UnicodeDecodeError:
            return None
        records = self._txt(text, min(timeout, self._timeout))
        return records[0] if records else None

    def spf_lookup(
        self, name: str, qtype: str, strict: bool | int = True, timeout: float = 20
    ) -> list[tuple[tuple[str, str], Any]]:
        """pyspf's DNSLookup hook, returning what `spf.DNSLookup_dnspython` returns.

        `strict` is part of pyspf's calling convention; this lookup does not depend on it.
        """
        try:
            rdatas = self._lookup(name, qtype, min(timeout, self._timeout))
        except DnsTemporaryError as exc:
            raise spf.TempError(f"DNS {exc}") from exc
        key = (name, qtype)
        if qtype in ("A", "AAAA"):
            return [(key, rdata.address) for rdata in rdatas]
        if qtype == "MX":
            return [(key, (rdata.preference, rdata.exchange)) for rdata in rdatas]
        if qtype == "PTR":
            return [(key, rdata.target.to_text(True)) for rdata in rdatas]
        if qtype in ("TXT", "SPF"):
            return [(key, rdata.strings) for rdata in rdatas]
        return []

    def _txt(self, name: str, timeout: float) -> list[bytes]:
        return [b"".join(rdata.strings) for rdata in self._lookup(name, "TXT", timeout)]

    def _lookup(self, name: str, rdtype: str, timeout: float) -> list[Any]:
        """The rdatas of `rdtype` at `name` (CNAMEs followed); [] if the name or type is absent."""
        try:
            qname = dns.name.from_text(name)
        except _INVALID_NAME_ERRORS:
            return []
        try:
            answer = self._resolver.resolve(
                qname, rdtype, lifetime=timeout, search=False, raise_on_no_answer=False
            )
        except (dns.resolver.NXDOMAIN, dns.resolver.YXDOMAIN):
            return []
        except dns.exception.Timeout as exc:
            raise DnsTemporaryError(
                f"lookup of {name} {rdtype} timed out after {timeout:g}s"
            ) from exc
        except dns.resolver.NoNameservers as exc:
            raise DnsTemporaryError(f"no nameserver answered {name} {rdtype}: {exc}") from exc
        return list(answer.rrset) if answer.rrset is not None else []


def _parse_nameserver(entry: str) -> dns.nameserver.Do53Nameserver:
    """An IP literal with optional port: 192.0.2.1, 192.0.2.1:5353, ::1, [::1]:5353."""
    match = _BRACKETED.fullmatch(entry) or _WITH_PORT.fullmatch(entry)
    host, port = (match[1], match[2] or "53") if match else (entry, "53")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(
            f"nameserver must be an IP address with optional port, not {entry!r}"
        ) from None
    if not 0 < int(port) < 65536:
        raise ValueError(f"nameserver port out of range in {entry!r}")
    return dns.nameserver.Do53Nameserver(str(address), int(port))
