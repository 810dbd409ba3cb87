"""The MX handler: accept mail for mailboxes hosted here, and only for them, and the reports other
servers send back to the VERP return paths of mail we sent.

Every decision is a core call: recipient resolution (relay policy, unknown mailboxes), header
limits, DMARC disposition, durable delivery, and bounce/complaint processing. This module
translates SMTP to those calls.
"""

from __future__ import annotations

import logging
import secrets
from email.utils import format_datetime
from typing import Any

from aiosmtpd.smtp import SMTP, Session

from mailmark.core.addresses import is_malformed_path, parse_verp
from mailmark.core.bounce_reports import parse_report
from mailmark.core.delivery import InboundDelivery, inbound_folder
from mailmark.core.delivery_reports import DeliveryReports
from mailmark.core.domains import DomainService
from mailmark.core.errors import MailmarkError, NotFound
from mailmark.core.mailboxes import MailboxService
from mailmark.core.message_meta import check_header_limits
from mailmark.core.ports import Clock
from mailmark.smtp_in.authentication import MessageAuthenticator
from mailmark.smtp_in.replies import TEMPORARY_FAILURE, reply_for
from mailmark.smtp_in.server import MailmarkEnvelope, has_bare_line_ending

log = logging.getLogger(__name__)

BARE_LINE_ENDING_REPLY = (
    "550 5.5.2 Message refused: it contains a bare CR or LF; lines must end with CRLF "
    "(RFC 5321 section 2.3.8)"
)
MALFORMED_SENDER_REPLY = "553 5.1.7 Malformed sender address"
MALFORMED_RECIPIENT_REPLY = "553 5.1.3 Malformed recipient address"


class MxHandler:
    def __init__(
        self,
        *,
        mailboxes: MailboxService,
        domains: DomainService,
        delivery: InboundDelivery,
        reports: DeliveryReports,
        authenticator: MessageAuthenticator,
        clock: Clock,
        hostname: str,
        max_recipients: int,
    ) -> None:
        self._mailboxes = mailboxes
        self._domains = domains
        self._delivery = delivery
        self._reports = reports
        self._authenticator = authenticator
        self._clock = clock
        self._hostname = hostname
        self._max_recipients = max_recipients

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        # aiosmtpd offers AUTH once TLS is up; the MX has no accounts to log in to, so every
        # attempt would fail with 535, and a client configured to authenticate would defer.
        extensions = [
            line[4:]
            for line in responses[1:]
            if line[4:] != "HELP" and line[4:].split(" ")[0].upper() != "AUTH"
        ]
        extensions += ["PIPELINING", "ENHANCEDSTATUSCODES"]
        lines = [responses[0], *(f"250-{ext}" for ext in extensions)]
        lines[-1] = "250 " + lines[-1][4:]
        return lines

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: MailmarkEnvelope, address: str, options: list[str]
    ) -> str:
        if is_malformed_path(address):
            return MALFORMED_SENDER_REPLY
        if address.startswith("@") and ":" in address:
            # RFC 5321 Appendix C: a source route in the reverse-path is ignored.
            address = address.split(":", 1)[1]
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        envelope.transaction_id = secrets.token_hex(8)
        return "250 2.1.0 Sender OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: MailmarkEnvelope, address: str, options: list[str]
    ) -> str:
        if len(envelope.rcpt_tos) >= self._max_recipients:
            # RFC 5321 §4.5.3.1.10: a temporary code, so the client sends the rest later.
            return "452 4.5.3 Too many recipients"
        if is_malformed_path(address):
            return MALFORMED_RECIPIENT_REPLY
        verp = parse_verp(address)
        if verp is not None and await self._is_hosted(verp.domain):
            # A report about mail we sent: accepted whatever the token, so that an unknown or
            # stale one is dropped after DATA rather than bounced back (no backscatter).
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(options)
            envelope.report_tokens.append(verp.token)
            return "250 2.1.5 Recipient OK"
        try:
            mailbox = await self._mailboxes.resolve_recipient(address)
        except MailmarkError as error:
            return reply_for(error)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        envelope.mailboxes.append(mailbox)
        return "250 2.1.5 Recipient OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: MailmarkEnvelope) -> str:
        raw = envelope.original_content
        assert isinstance(raw, bytes)
        if has_bare_line_ending(raw):
            log.warning("refused message with bare CR/LF from %s", session.peer)
            return BARE_LINE_ENDING_REPLY
        mail_from = envelope.mail_from or ""
        client_ip = str(session.peer[0]) if session.peer else ""
        try:
            check_header_limits(raw)
            if envelope.report_tokens:
                await self._process_reports(raw, envelope)
            if not envelope.mailboxes:
                return f"250 2.0.0 Ok: report received as {envelope.transaction_id}"
            auth = await self._authenticator.authenticate(
                raw=raw, client_ip=client_ip, helo=session.host_name or "", mail_from=mail_from
            )
            folder = inbound_folder(auth.dmarc, auth.dmarc_policy, auth.header_from_domain)
            prefix = self._trace_prefix(session, envelope, mail_from, client_ip) + auth.header()
            await self._delivery.deliver(
                raw,
                recipients=envelope.mailboxes,
                mail_from=mail_from,
                trace_prefix=prefix,
                folder=folder,
            )
        except MailmarkError as error:
            return reply_for(error)
        except Exception:
            log.exception("inbound delivery failed for transaction %s", envelope.transaction_id)
            return TEMPORARY_FAILURE
        return f"250 2.0.0 Ok: queued as {envelope.transaction_id}"

    async def _is_hosted(self, domain: str) -> bool:
        try:
            await self._domains.get(domain)
        except NotFound:
            return False
        return True

    async def _process_reports(self, raw: bytes, envelope: MailmarkEnvelope) -> None:
        """Hand a DSN or ARF report to the delivery reports once per VERP recipient. What cannot be used (no
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
                    report.kind, envelope.transaction_id,
                )

    def _trace_prefix(
        self, session: Session, envelope: MailmarkEnvelope, mail_from: str, client_ip: str
    ) -> bytes:
        """Return-Path (RFC 5321 §4.4: added at final delivery) and a Received trace field."""
        if session.ssl is not None:
            protocol = "ESMTPS"  # RFC 3848
        elif session.extended_smtp:
            protocol = "ESMTP"
        else:
            protocol = "SMTP"
        literal = f"IPv6:{client_ip}" if ":" in client_ip else client_ip
        helo = _printable(session.host_name or "unknown")
        # Name a single recipient only: listing several would disclose Bcc recipients to each other.
        recipient = f"\r\n\tfor <{_printable(envelope.rcpt_tos[0])}>" if len(envelope.rcpt_tos) == 1 else ""
        received = (
            f"Received: from {helo} ([{literal}])\r\n"
            f"\tby {self._hostname} (Mailmark) with {protocol} id {envelope.transaction_id}{recipient};\r\n"
            f"\t{format_datetime(self._clock.now())}\r\n"
        )
        return_path = f"Return-Path: <{_printable(mail_from)}>\r\n"
        return (return_path + received).encode("utf-8", errors="replace")


def _printable(text: str) -> str:
    """Keep client-supplied text from breaking our header fields."""
    return "".join(ch for ch in text if ch.isprintable() and ch not in "<>")[:256]
