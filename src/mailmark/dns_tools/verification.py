"""Check each expected record against what the DNS says, judging equivalent forms as equal.

A record is `ok`, `missing`, `mismatch` (present but wrong, with what was found), or `error` when
the DNS did not answer (timeout, SERVFAIL): that is unknown, never reported as missing.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from mailmark.core.model import DkimKey, DnsRecord, RecordCheck
from mailmark.dns_tools.record_set import MailServer, record_set
from mailmark.dns_tools.records import InvalidRecord, is_dmarc_record, parse_dmarc
from mailmark.dns_tools.resolver import DnsResolver, DnsTemporaryError


def _host(text: str) -> str:
    return text.strip().rstrip(".").lower()


def _tags(text: str) -> dict[str, str]:
    """A DKIM/MTA-STS/TLS-RPT tag list (RFC 6376 §3.2): tags case-sensitive, values trimmed."""
    tags: dict[str, str] = {}
    for part in text.split(";"):
        name, equals, value = part.partition("=")
        if equals:
            tags.setdefault(name.strip(), "".join(value.split()))
    return tags


def _starts_with(text: str, version: str) -> bool:
    return text.strip().lower().startswith(version.lower())


def _is_spf(text: str) -> bool:
    # RFC 7208 §4.5: the version section is "v=spf1" ended by a space or the end of the record;
    # quoted ABNF strings are case-insensitive (RFC 5234 §2.3), as receivers such as pyspf treat it.
    version = text[:7].lower()
    return version == "v=spf1 " or version == "v=spf1" == text.lower()


class DomainDns:
    """Builds a domain's record set for this server and verifies it through a resolver."""

    def __init__(self, resolver: DnsResolver, server: MailServer) -> None:
        self._resolver = resolver
        self._server = server

    @property
    def server(self) -> MailServer:
        return self._server

    @property
    def hostname(self) -> str:
        return self._server.hostname

    def record_set(self, domain: str, dkim_keys: Sequence[DkimKey]) -> list[DnsRecord]:
        return record_set(domain, self._server, dkim_keys)

    async def verify(self, records: Sequence[DnsRecord]) -> list[RecordCheck]:
        """Check every record, concurrently (each lookup blocks, so each runs in a thread).

        A thread per record rather than the loop's default executor (a few threads on a small
        machine): with an unresponsive nameserver the whole set then takes one timeout, not
        one per batch of threads."""
        if not records:
            return []
        loop = asyncio.get_running_loop()
        pool = ThreadPoolExecutor(max_workers=len(records), thread_name_prefix="dns-verify")
        try:
            return list(
                await asyncio.gather(*(loop.run_in_executor(pool, self.check, r) for r in records))
            )
        finally:
            pool.shutdown(wait=False)

    def check(self, record: DnsRecord) -> RecordCheck:
        judge = self._judge_for(record)
        rdtype = record.type
        try:
            found = self._resolver.records(record.name, rdtype)
            if rdtype == "CNAME" and not found:
                # Address records with the server's addresses serve the policy just as well.
                found = self._resolver.addresses(record.name)
                rdtype = "A"
        except DnsTemporaryError as exc:
            return RecordCheck(record, "error", (), str(exc))
        if rdtype == "A":
            return self._judge_addresses(record, found)
        return judge(record, found)

    def _judge_for(self, record: DnsRecord) -> Callable[[DnsRecord, list[str]], RecordCheck]:
        if record.type == "TXT":
            for prefix, judge in (
                ("v=spf1", self._judge_spf),
                ("v=DKIM1", self._judge_dkim),
                ("v=DMARC1", self._judge_dmarc),
                ("v=STSv1", self._judge_mta_sts),
                ("v=TLSRPTv1", self._judge_tagged("v=TLSRPTv1", "rua")),
            ):
                if record.value.startswith(prefix):
                    return judge
        if record.type == "MX":
            return self._judge_mx
        if record.type == "SRV":
            return self._judge_srv
        return self._judge_host  # CNAME, PTR

    def _judge_mx(self, record: DnsRecord, found: list[str]) -> RecordCheck:
        if not found:
            return RecordCheck(record, "missing")
        hosts = {_host(entry.split()[-1]) for entry in found}
        if _host(record.value) in hosts:
            return RecordCheck(record, "ok", tuple(found))
        return RecordCheck(record, "mismatch", tuple(found), f"no MX points to {record.value}")

    def _judge_host(self, record: DnsRecord, found: list[str]) -> RecordCheck:
        if not found:
            return RecordCheck(record, "missing")
        if _host(record.value) in {_host(entry) for entry in found}:
            return RecordCheck(record, "ok", tuple(found))
        return RecordCheck(record, "mismatch", tuple(found), f"expected {record.value}")

    def _judge_addresses(self, record: DnsRecord, found: list[str]) -> RecordCheck:
        if not found:
            return RecordCheck(record, "missing")
        try:
            ours = set(self._server.public_ips) or set(self._resolver.addresses(record.value))
        except DnsTemporaryError as exc:
            return RecordCheck(record, "error", tuple(found), str(exc))
        if set(found) & ours:
            return RecordCheck(record, "ok", tuple(found))
        return RecordCheck(record, "mismatch", tuple(found), f"expected a CNAME to {record.value}")

    def _judge_srv(self, record: DnsRecord, found: list[str]) -> RecordCheck:
        if not found:
            return RecordCheck(record, "missing")
        _, _, port, target = record.value.split()
        for entry in found:
            parts = entry.split()
            if len(parts) == 4 and parts[2] == port and _host(parts[3]) == _host(target):
                return RecordCheck(record, "ok", tuple(found))
        return RecordCheck(record, "mismatch", tuple(found), f"expected port {port} on {target}")

    def _judge_spf(self, record: DnsRecord, found: list[str]) -> RecordCheck:
        spf = [text for text in found if _is_spf(text)]
        if not spf:
            return RecordCheck(record, "missing", tuple(found))
        if len(spf) > 1:
            # RFC 7208 §4.5: more than one SPF record is a permerror for every receiver.
            return RecordCheck(
                record, "mismatch", tuple(spf), "more than one SPF record: merge them into one"
            )
        if self._spf_authorises(spf[0]):
            return RecordCheck(record, "ok", tuple(spf))
        return RecordCheck(
            record,
            "mismatch",
            tuple(spf),
            f"the SPF record does not authorise {self._server.hostname}: merge "
            f"'{record.value.removeprefix('v=spf1 ').removesuffix(' ~all')}' into it",
        )

    def _spf_authorises(self, text: str) -> bool:
        """Whether the record passes this server, judged without evaluating it.

        Recognised as naming this server: a:<hostname>, ip4/ip6 ranges holding a configured
        public address, and mx (our MX record points here when the domain is set up). Other
        mechanisms (include, exists, ...) are skipped as unknown. RFC 7208 §4.6.2: mechanisms
        are tried in order and the first match decides, so a term naming this server with a
        qualifier other than "+" means it does not pass; §5.1: "all" matches everything, so
        nothing after it is ever tried."""
        hostname = _host(self._server.hostname)
        addresses = [ipaddress.ip_address(ip) for ip in self._server.public_ips]
        for term in text.lower().split()[1:]:
            qualifier, mechanism = (term[0], term[1:]) if term[0] in "+-~?" else ("+", term)
            name, _, argument = mechanism.partition(":")
            if name == "all":
                return qualifier == "+"
            if name == "a":
                matches = bool(argument) and _host(argument.split("/")[0]) == hostname
            elif name == "mx":
                matches = not argument
            elif name in ("ip4", "ip6"):
                try:
                    network = ipaddress.ip_network(argument, strict=False)
                except ValueError:
                    continue
                matches = any(ip in network for ip in addresses)
            else:
                continue
            if matches:
                return qualifier == "+"
        return False

    def _judge_dkim(self, record: DnsRecord, found: list[str]) -> RecordCheck:
        # RFC 6376 §3.2: FWS may surround the "=", so look for the p= tag, not the substring.
        keys = [text for text in found if "p" in _tags(text)]
        if not keys:
            return RecordCheck(record, "missing", tuple(found))
        expected = _tags(record.value)
        for text in keys:
            tags = _tags(text)
            if tags.get("p") == expected["p"] and tags.get("k", "rsa") == expected["k"]:
                return RecordCheck(record, "ok", tuple(keys))
        return RecordCheck(
            record, "mismatch", tuple(keys), "the published key is not this domain's key"
        )

    def _judge_dmarc(self, record: DnsRecord, found: list[str]) -> RecordCheck:
        # RFC 7489 §6.6.3 step 4: records not starting with a version tag are discarded.
        dmarc = [text for text in found if is_dmarc_record(text)]
        if not dmarc:
            return RecordCheck(record, "missing", tuple(found))
        if len(dmarc) > 1:
            # RFC 7489 §6.6.3 step 5: several records means no DMARC policy at all.
            return RecordCheck(record, "mismatch", tuple(dmarc), "more than one DMARC record")
        try:
            policy = parse_dmarc(dmarc[0])
        except InvalidRecord as exc:
            return RecordCheck(record, "mismatch", tuple(dmarc), str(exc))
        if policy.p not in ("quarantine", "reject"):
            return RecordCheck(
                record,
                "mismatch",
                tuple(dmarc),
                f"p={policy.p} does not protect the domain: use quarantine or reject",
            )
        if policy.pct < 100:
            # RFC 7489 §6.3: the policy then applies only to that share of failing mail.
            return RecordCheck(
                record,
                "mismatch",
                tuple(dmarc),
                f"pct={policy.pct} applies the policy to only part of the mail",
            )
        return RecordCheck(record, "ok", tuple(dmarc))

    def _judge_mta_sts(self, record: DnsRecord, found: list[str]) -> RecordCheck:
        """RFC 8461 §3.1: senders refetch the policy only when the id changes, so a stale id keeps
        them on an old policy (another host name or mode) for up to max_age."""
        check = self._judge_tagged("v=STSv1", "id")(record, found)
        if check.status != "ok":
            return check
        expected, published = _tags(record.value)["id"], _tags(check.found[0])["id"]
        if published != expected:
            return RecordCheck(
                record,
                "mismatch",
                check.found,
                f"id={published} is stale: publish id={expected} so senders refetch the policy",
            )
        return check

    @staticmethod
    def _judge_tagged(
        version: str, needed_tag: str
    ) -> Callable[[DnsRecord, list[str]], RecordCheck]:
        def judge(record: DnsRecord, found: list[str]) -> RecordCheck:
            matching = [text for text in found if _starts_with(text, version)]
            if not matching:
                return RecordCheck(record, "missing", tuple(found))
            if len(matching) == 1 and _tags(matching[0]).get(needed_tag):
                return RecordCheck(record, "ok", tuple(matching))
            return RecordCheck(
                record,
                "mismatch",
                tuple(matching),
                f"expected exactly one {version} record with {needed_tag}=",
            )

        return judge
