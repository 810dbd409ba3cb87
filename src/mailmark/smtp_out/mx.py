"""Where to deliver a domain's mail: MX hosts in preference order (RFC 5321 §5.1, RFC 7505)."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from itertools import groupby

from mailmark.dns_tools.resolver import DnsResolver, DnsTemporaryError

__all__ = ["DeliveryFailure", "MxHost", "MxResolver"]

# More MX hosts than this are not tried in one attempt (RFC 5321 §5.1 lets us bound it).
MAX_MX_HOSTS = 10


class DeliveryFailure(Exception):
    """A reply we give ourselves for a recipient when no remote server answered one.

    `code` follows SMTP: 4xx is temporary (retry later), 5xx permanent (bounce now)."""

    def __init__(self, code: int, enhanced: str, text: str) -> None:
        super().__init__(f"{code} {enhanced} {text}")
        self.code = code
        self.enhanced = enhanced
        self.text = text

    @property
    def permanent(self) -> bool:
        return self.code >= 500


@dataclass(frozen=True)
class MxHost:
    name: str
    addresses: tuple[str, ...]
    preference: int = 0
    implicit: bool = False  # no MX record: the domain itself, RFC 5321 §5.1


class MxResolver:
    """Resolves a recipient domain to MX hosts with their addresses."""

    def __init__(self, resolver: DnsResolver, rng: random.Random | None = None) -> None:
        self._resolver = resolver
        self._rng = rng or random.Random()

    async def hosts(self, domain: str) -> list[MxHost]:
        """The hosts to try, in order; raises DeliveryFailure when there is none (now or ever)."""
        return await asyncio.to_thread(self._hosts, domain)

    def _hosts(self, domain: str) -> list[MxHost]:
        try:
            records = self._resolver.mx(domain)
        except DnsTemporaryError as exc:
            raise DeliveryFailure(451, "4.4.3", f"DNS lookup of {domain} MX failed: {exc}") from exc
        named = [(preference, host) for preference, host in records if host]
        if records and not named:
            # RFC 7505 §3: a single MX of "." means the domain accepts no mail at all.
            raise DeliveryFailure(
                556, "5.1.10", f"{domain} publishes a null MX (RFC 7505): it accepts no email"
            )
        if not named:
            # RFC 5321 §5.1: no MX records, so the domain itself is the implicit MX.
            addresses = self._addresses(domain)
            if not addresses:
                raise DeliveryFailure(
                    550, "5.1.2", f"{domain} has no MX record and no address: no mail server"
                )
            return [MxHost(domain, tuple(addresses), implicit=True)]
        ordered: list[tuple[int, str]] = []
        for _, same in groupby(sorted(named), key=lambda record: record[0]):
            group = list(same)
            self._rng.shuffle(group)  # RFC 5321 §5.1: spread load across equal preferences
            ordered += group
        hosts: list[MxHost] = []
        failures: list[str] = []
        for preference, name in ordered[:MAX_MX_HOSTS]:
            try:
                addresses = self._addresses(name)
            except DeliveryFailure as exc:
                failures.append(exc.text)
                continue
            if addresses:
                hosts.append(MxHost(name, tuple(addresses), preference))
            else:
                failures.append(f"MX host {name} has no address")
        if not hosts:
            raise DeliveryFailure(
                451, "4.4.3", f"no usable MX host for {domain}: " + "; ".join(failures)
            )
        return hosts

    def _addresses(self, name: str) -> list[str]:
        try:
            return self._resolver.addresses(name)
        except DnsTemporaryError as exc:
            raise DeliveryFailure(451, "4.4.3", f"DNS lookup of {name} failed: {exc}") from exc
