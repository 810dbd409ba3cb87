"""The report addresses every hosted domain publishes (rua=mailto:dmarc@<domain> in its DMARC
record, RFC 7489 §7.1; rua=mailto:tls-reports@<domain> in its TLS-RPT record, RFC 8460 §3), the
reports that arrive there, and what they tell the domain's owner.

The addresses accept mail for every hosted domain without a mailbox; a mailbox of the same name,
when someone created one, receives the message as well. Reports are stored once per reporter and
report id; one that cannot be read is stored as failed, with the reason.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import compat32

from mailmark.core.access import Viewer, require_manager
from mailmark.core.addresses import normalize_domain, parse_recipient
from mailmark.core.aggregate_reports import (
    AggregateReport,
    ReportKind,
    ReportOverview,
    parse_report_message,
)
from mailmark.core.domains import owned_domain
from mailmark.core.errors import MailmarkError, NotFound, ReportRefused
from mailmark.core.ports import Clock, UnitOfWorkFactory

log = logging.getLogger(__name__)

DMARC_REPORT_LOCAL_PART = "dmarc"
TLS_REPORT_LOCAL_PART = "tls-reports"
REPORT_LOCAL_PARTS = {
    DMARC_REPORT_LOCAL_PART: ReportKind.DMARC,
    TLS_REPORT_LOCAL_PART: ReportKind.TLS,
}
OVERVIEW_SOURCES = 100
OVERVIEW_REPORTS = 50
OVERVIEW_TLS_FAILURES = 50
MAX_REASON = 500


@dataclass(frozen=True)
class ReportAddress:
    """An envelope recipient that is a report address of a hosted domain."""

    kind: ReportKind
    domain: str
    domain_id: int


@dataclass(frozen=True)
class ReportOutcome:
    address: ReportAddress
    stored: bool  # False for a report already stored, or one refused
    refused: str | None = None  # why the report could not be used


class ReportService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def recipient(self, address: str) -> ReportAddress | None:
        """The report address `address` names (dmarc@ or tls-reports@ a hosted domain, any
        +tag ignored), or None."""
        try:
            recipient = parse_recipient(address)
        except MailmarkError:
            return None  # a relay trick: resolving it as a mailbox refuses it
        kind = REPORT_LOCAL_PARTS.get(recipient.local_part)
        if kind is None:
            return None
        async with self._uow(read_only=True) as uow:
            domain = await uow.domains.get_by_name(recipient.domain)
        if domain is None or domain.id is None:
            return None
        return ReportAddress(kind, domain.name, domain.id)

    async def receive(
        self, raw: bytes, addresses: Sequence[ReportAddress], *, sender: str
    ) -> list[ReportOutcome]:
        """Parse the message once per kind of report address it went to, and store what it
        holds for each domain; a report that cannot be used is stored as failed."""
        parsed: dict[ReportKind, AggregateReport | ReportRefused] = {}
        for kind in dict.fromkeys(address.kind for address in addresses):
            try:
                # Inflating and parsing a large report takes a while: off the event loop.
                parsed[kind] = await asyncio.to_thread(parse_report_message, raw, kind)
            except ReportRefused as refusal:
                parsed[kind] = refusal
        outcomes = []
        now = self._clock.now()
        sender = sender[:320]
        for address in dict.fromkeys(addresses):
            report = parsed[address.kind]
            if isinstance(report, AggregateReport) and not _covers(address.domain, report.domain):
                report = ReportRefused(
                    f"The report is about {report.domain}, not {address.domain} or a subdomain "
                    "of it."
                )
            async with self._uow() as uow:
                if isinstance(report, ReportRefused):
                    reason = report.message[:MAX_REASON]
                    await uow.reports.add_failed(
                        address.domain_id, address.kind, reason, received_at=now, sender=sender
                    )
                    outcome = ReportOutcome(address, stored=False, refused=reason)
                else:
                    stored = await uow.reports.add(
                        address.domain_id, report, received_at=now, sender=sender
                    )
                    outcome = ReportOutcome(address, stored=stored)
                await uow.commit()
            outcomes.append(outcome)
            _log_outcome(outcome, _reporter(raw))
        return outcomes

    async def overview(self, name: str) -> ReportOverview:
        """What a domain's reports say: its senders by IP, SPF/DKIM/alignment, TLS failures."""
        domain_name = normalize_domain(name)
        async with self._uow(read_only=True) as uow:
            domain = await uow.domains.get_by_name(domain_name)
            if domain is None or domain.id is None:
                raise NotFound(f"No domain {domain_name} here.")
            return await uow.reports.overview(
                domain.id,
                domain.name,
                sources=OVERVIEW_SOURCES,
                reports=OVERVIEW_REPORTS,
                tls_failures=OVERVIEW_TLS_FAILURES,
            )

    async def overview_for(self, viewer: Viewer, name: str) -> ReportOverview:
        require_manager(viewer, "see a domain's reports")
        async with self._uow(read_only=True) as uow:
            domain = await owned_domain(uow, viewer, name)
        return await self.overview(domain.name)


def _covers(domain: str, reported: str) -> bool:
    """RFC 7489 §7.1: a domain's rua receives reports about it and its subdomains; reports about
    any other domain would need that domain's authorisation record, which we never publish."""
    return reported == domain or reported.endswith("." + domain)


def _reporter(raw: bytes) -> str:
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw[:65536])
    return " ".join(str(headers.get("From", "")).split())[:200]


def _log_outcome(outcome: ReportOutcome, reporter: str) -> None:
    address = outcome.address
    if outcome.refused is not None:
        log.info(
            "%s report for %s from %s refused: %s",
            address.kind,
            address.domain,
            reporter,
            outcome.refused,
        )
    elif not outcome.stored:
        log.info("%s report for %s from %s already stored", address.kind, address.domain, reporter)
