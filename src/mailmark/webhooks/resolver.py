"""Addresses of webhook hosts, from the DNS."""

from __future__ import annotations

from mailmark.dns_tools.resolver import DnsResolver, DnsTemporaryError


class WebhookHostResolver:
    """`HostResolver` over the DNS resolver, its temporary failures turned into LookupError."""

    def __init__(self, dns: DnsResolver) -> None:
        self._dns = dns

    def addresses(self, name: str) -> list[str]:
        try:
            return self._dns.addresses(name)
        except DnsTemporaryError as exc:
            raise LookupError(str(exc)) from exc
