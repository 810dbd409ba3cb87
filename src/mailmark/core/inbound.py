"""Accepting one inbound message at the end of an MX transaction (ARCHITECTURE.md "Inbound").

The steps after the mail data is in: header limits, the delivery and complaint reports that come
back to our VERP return paths, sender authentication and the folder its DMARC verdict chooses, the
trace fields (Return-Path, Received, Authentication-Results), and durable delivery to every
mailbox recipient. SPF, DKIM and DMARC evaluation needs DNS and the libraries that speak them, so
it is a port (`MessageAuthentication`) that the SMTP adapter implements.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import format_datetime
from typing import Protocol

from mailmark.core.bounce_reports import BounceReport, parse_report
from mailmark.core.delivery import DeliveryReceipt, DeliveryTarget, InboundDelivery, inbound_folder
from mailmark.core.dispositions import (
    AutoResponder,
    DeliveryRule,
    Disposition,
    InboundMessage,
    Redirector,
    decide,
)
from mailmark.core.errors import ReportRefused
from mailmark.core.message_meta import check_header_limits, without_our_authentication_results
from mailmark.core.model import Mailbox
from mailmark.core.ports import Clock
from mailmark.core.reports import ReportAddress, ReportOutcome
from mailmark.core.spam import NO_VERDICT, SpamFilter, without_spam_headers
from mailmark.core.states import SpecialFolder

log = logging.getLogger(__name__)


class AuthenticationVerdict(Protocol):
    """What SPF, DKIM and DMARC concluded about a message (RFC 8601 result words)."""

    @property
    def dmarc(self) -> str: ...

    @property
    def dmarc_policy(self) -> str | None: ...

    @property
    def header_from_domain(self) -> str | None: ...

    def header(self) -> bytes:
        """The Authentication-Results field, folded, ending in CRLF."""
        ...


class MessageAuthentication(Protocol):
    async def authenticate(
        self, *, raw: bytes, client_ip: str, helo: str, mail_from: str
    ) -> AuthenticationVerdict:
        """Never raises for bad input or DNS trouble: those are verdicts too."""
        ...


class ReportProcessor(Protocol):
    async def process_report(self, token: str, report: BounceReport) -> bool:
        """Apply a report that came back to bounce+<token>@…; False when the token is unknown."""
        ...


class ReturnToSender(Protocol):
    async def return_to_sender(
        self, raw: bytes, addresses: Sequence[str], trace_prefix: bytes
    ) -> None:
        """Queue what came back to these SRS addresses for the senders they decode to."""
        ...


class AggregateReportIntake(Protocol):
    async def receive(
        self, raw: bytes, addresses: Sequence[ReportAddress], *, sender: str
    ) -> list[ReportOutcome]:
        """Store the DMARC or TLS report in a message sent to these report addresses."""
        ...


class DeliveryObserver(Protocol):
    async def delivered(self, raw: bytes, mailboxes: Sequence[Mailbox]) -> None:
        """Learn of a message stored for these mailboxes (a reply to a campaign email)."""
        ...


@dataclass(frozen=True)
class InboundEnvelope:
    """One SMTP transaction as the MX received it, recipients resolved at RCPT time."""

    transaction_id: str
    mail_from: str  # the reverse-path without angle brackets; "" for the null one
    rcpt_tos: Sequence[str]  # every accepted recipient, as given
    mailboxes: Sequence[Mailbox]  # the recipients hosted here
    report_tokens: Sequence[str]  # tokens of the VERP return paths among the recipients
    client_ip: str
    helo: str
    esmtp: bool  # the client said EHLO
    tls: bool  # the session is encrypted
    # dmarc@ and tls-reports@ of hosted domains among the recipients (a mailbox of the same name,
    # if any, is among `mailboxes` too)
    report_addresses: Sequence[ReportAddress] = ()
    # SRS addresses of forwarded mail among the recipients (core/srs.py): what comes back to them
    # (bounces) is sent on to the original senders.
    srs_returns: Sequence[str] = ()


class InboundMail:
    def __init__(
        self,
        *,
        delivery: InboundDelivery,
        reports: ReportProcessor,
        authentication: MessageAuthentication,
        clock: Clock,
        hostname: str,
        aggregate_reports: AggregateReportIntake | None = None,
        rules: Sequence[DeliveryRule] = (),
        redirector: Redirector | None = None,
        responder: AutoResponder | None = None,
        returns: ReturnToSender | None = None,
        spam: SpamFilter | None = None,
        observers: Sequence[DeliveryObserver] = (),
    ) -> None:
        self._delivery = delivery
        self._observers = tuple(observers)
        self._rules = tuple(rules)
        self._redirector = redirector
        self._responder = responder
        self._returns = returns
        self._reports = reports
        self._aggregate_reports = aggregate_reports
        self._authentication = authentication
        self._clock = clock
        self._hostname = hostname
        self._spam = spam

    async def accept(self, raw: bytes, envelope: InboundEnvelope) -> DeliveryReceipt | None:
        """Take responsibility for the message: the receipt once it is stored for every mailbox
        recipient that keeps a copy and queued for every address a mailbox sends it on to; None
        when no mailbox keeps a copy (it went only to return paths, or rules discarded or
        redirected it).

        Raises MessageRejected (limits, DMARC p=reject, spam) for a message refused as a whole,
        SpamDeferred or SpamFilterUnavailable to have it sent again later."""
        check_header_limits(raw)
        if envelope.report_tokens:
            await self._process_reports(raw, envelope)
        if envelope.report_addresses:
            await self._receive_aggregate_reports(raw, envelope)
        if envelope.srs_returns and self._returns is not None:
            await self._returns.return_to_sender(
                raw, envelope.srs_returns, self._trace_prefix(envelope)
            )
        if not envelope.mailboxes:
            return None
        auth = await self._authentication.authenticate(
            raw=raw, client_ip=envelope.client_ip, helo=envelope.helo, mail_from=envelope.mail_from
        )
        folder = inbound_folder(auth.dmarc, auth.dmarc_policy, auth.header_from_domain)
        raw = without_spam_headers(without_our_authentication_results(raw, self._hostname))
        verdict = NO_VERDICT
        if self._spam is not None:
            verdict = await self._spam.check(
                raw,
                transaction_id=envelope.transaction_id,
                client_ip=envelope.client_ip,
                helo=envelope.helo,
                mail_from=envelope.mail_from,
                rcpt_tos=envelope.rcpt_tos,
            )
        if verdict.junk:
            folder = SpecialFolder.JUNK
        message = InboundMessage(
            raw=raw,
            trace_prefix=self._trace_prefix(envelope) + auth.header() + verdict.headers,
            mail_from=envelope.mail_from,
            rcpt_tos=envelope.rcpt_tos,
            transaction_id=envelope.transaction_id,
            dmarc=auth.dmarc,
        )
        dispositions = [
            await decide(self._rules, message, Disposition(mailbox, (folder,)))
            for mailbox in {mailbox.id: mailbox for mailbox in envelope.mailboxes}.values()
        ]
        return await self._carry_out(message, dispositions)

    async def _carry_out(
        self, message: InboundMessage, dispositions: Sequence[Disposition]
    ) -> DeliveryReceipt | None:
        """Store the kept copies, then queue the redirects: both durable before the 250. A
        failure after the copies are stored makes the client retry, and a retry may store a
        second copy: a duplicate is better than a loss. Auto-replies come last, best effort."""
        targets = [
            DeliveryTarget(d.mailbox, folder, d.flags) for d in dispositions for folder in d.folders
        ]
        receipt = None
        if targets:
            receipt = await self._delivery.deliver_to(
                message.raw, targets, mail_from=message.mail_from, trace_prefix=message.trace_prefix
            )
            await self._tell_observers(message, [d.mailbox for d in dispositions if d.folders])
        for disposition in dispositions:
            if disposition.redirects:
                if self._redirector is None:
                    raise RuntimeError("a delivery rule redirected mail, but nothing sends it on")
                await self._redirector.redirect(message, disposition.mailbox, disposition.redirects)
        for disposition in dispositions:
            for reply in disposition.replies:
                if self._responder is None:
                    continue
                try:
                    await self._responder.respond(message, disposition.mailbox, reply)
                except Exception:
                    log.exception("auto-reply from %s failed", disposition.mailbox.address)
        return receipt

    async def _tell_observers(self, message: InboundMessage, mailboxes: Sequence[Mailbox]) -> None:
        """After the copies are stored; a failing observer costs its own work, never the mail."""
        for observer in self._observers:
            try:
                await observer.delivered(message.raw, mailboxes)
            except Exception:
                log.exception("delivery observer failed on %s", message.transaction_id)

    async def _process_reports(self, raw: bytes, envelope: InboundEnvelope) -> None:
        """Hand a DSN or ARF report to the queue once per VERP recipient. What cannot be used (no
        report inside, a token matching no message) is dropped with a log line: answering it with
        a bounce would send mail to a sender that did not write it (backscatter)."""
        report = parse_report(raw)
        if report is None:
            log.info(
                "dropped message %s to a return path: no delivery report or complaint in it",
                envelope.transaction_id,
            )
            return
        for token in dict.fromkeys(envelope.report_tokens):
            if not await self._reports.process_report(token, report):
                log.info(
                    "dropped %s report %s: no outgoing message has its return path",
                    report.kind,
                    envelope.transaction_id,
                )

    async def _receive_aggregate_reports(self, raw: bytes, envelope: InboundEnvelope) -> None:
        """Store the DMARC or TLS report. One that cannot be read is stored as failed; when the
        message went to report addresses only, it is also refused (550 5.6.0), so the reporter
        learns of it. With mailbox recipients too, their copies are delivered regardless."""
        assert self._aggregate_reports is not None
        outcomes = await self._aggregate_reports.receive(
            raw, envelope.report_addresses, sender=envelope.mail_from
        )
        refusals = [outcome.refused for outcome in outcomes if outcome.refused is not None]
        if not envelope.mailboxes and len(refusals) == len(outcomes):
            raise ReportRefused(f"Report refused: {refusals[0]}")

    def _trace_prefix(self, envelope: InboundEnvelope) -> bytes:
        """Return-Path (RFC 5321 §4.4: added at final delivery) and a Received trace field."""
        if envelope.tls:
            protocol = "ESMTPS"  # RFC 3848
        elif envelope.esmtp:
            protocol = "ESMTP"
        else:
            protocol = "SMTP"
        client_ip = envelope.client_ip
        literal = f"IPv6:{client_ip}" if ":" in client_ip else client_ip
        helo = _printable(envelope.helo or "unknown")
        # Name a single recipient only: listing several would disclose Bcc recipients to each other.
        recipient = (
            f"\r\n\tfor <{_printable(envelope.rcpt_tos[0])}>" if len(envelope.rcpt_tos) == 1 else ""
        )
        received = (
            f"Received: from {helo} ([{literal}])\r\n"
            f"\tby {self._hostname} (Mailmark) with {protocol} id {envelope.transaction_id}"
            f"{recipient};\r\n"
            f"\t{format_datetime(self._clock.now())}\r\n"
        )
        return_path = f"Return-Path: <{_printable(envelope.mail_from)}>\r\n"
        return (return_path + received).encode("utf-8", errors="replace")


def _printable(text: str) -> str:
    """Keep client-supplied text from breaking our header fields."""
    return "".join(ch for ch in text if ch.isprintable() and ch not in "<>")[:256]
