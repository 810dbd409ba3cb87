"""The MX handler: accept mail for mailboxes hosted here, and only for them, the reports other
servers send back to the VERP return paths of mail we sent (bounce+<token>@mail.<domain> or
bounce+<token>@<our host name>), and the DMARC and TLS reports sent to the report addresses
every hosted domain publishes (dmarc@ and tls-reports@<domain>).

Every decision is a core call: recipient resolution (relay policy, unknown mailboxes) at RCPT, and
the whole end of the transaction (`InboundMail.accept`) at DATA. This module translates SMTP to
those calls.
"""

from __future__ import annotations

import logging
import random

from aiosmtpd.smtp import SMTP, Session

from mailmark.core.addresses import is_malformed_path
from mailmark.core.domains import DomainService
from mailmark.core.errors import MailmarkError
from mailmark.core.forwarding import Forwarder
from mailmark.core.inbound import InboundEnvelope, InboundMail
from mailmark.core.mailboxes import MailboxService
from mailmark.core.reports import ReportService
from mailmark.smtp_in import replies
from mailmark.smtp_in.server import MailmarkEnvelope, SmtpHandler, has_bare_line_ending

log = logging.getLogger(__name__)
# A transaction id names a transaction in our logs, its Received field and rspamd's Queue-Id:
# unique, never a secret, so drawn from a generator seeded once instead of a system call each.
_transaction_ids = random.Random()


class MxHandler(SmtpHandler):
    # aiosmtpd offers AUTH once TLS is up; the MX has no accounts to log in to, so every
    # attempt would fail with 535, and a client configured to authenticate would defer.
    offers_auth = False

    def __init__(
        self,
        *,
        mailboxes: MailboxService,
        domains: DomainService,
        inbound: InboundMail,
        max_recipients: int,
        reports: ReportService | None = None,
        forwarder: Forwarder | None = None,
    ) -> None:
        super().__init__(max_recipients=max_recipients)
        self._mailboxes = mailboxes
        self._domains = domains
        self._inbound = inbound
        self._reports = reports
        self._forwarder = forwarder

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: MailmarkEnvelope,
        address: str,
        options: list[str],
    ) -> str:
        if is_malformed_path(address):
            return replies.MALFORMED_SENDER
        if address.startswith("@") and ":" in address:
            # RFC 5321 Appendix C: a source route in the reverse-path is ignored.
            address = address.split(":", 1)[1]
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        envelope.transaction_id = f"{_transaction_ids.getrandbits(64):016x}"
        return replies.SENDER_OK

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: MailmarkEnvelope,
        address: str,
        options: list[str],
    ) -> str:
        refusal = self.recipient_refusal(envelope, address)
        if refusal is not None:
            return refusal
        if self._forwarder is not None:
            # The SRS return path of mail a mailbox forwarded: a bounce to send on. A forged or
            # expired one is refused here, with the reason.
            try:
                original = await self._forwarder.srs_recipient(address)
            except MailmarkError as error:
                return replies.reply_for(error)
            if original is not None:
                envelope.srs_returns.append(address)
                return self.accept_recipient(envelope, address, options)
        token = await self._domains.report_token(address)
        if token is not None:
            # A report about mail we sent: accepted whatever the token, so that an unknown or
            # stale one is dropped after DATA rather than bounced back (no backscatter).
            envelope.report_tokens.append(token)
            return self.accept_recipient(envelope, address, options)
        report_address = await self._reports.recipient(address) if self._reports else None
        try:
            # A catch-all never takes a report address: the report is stored for the domain.
            mailboxes = await self._mailboxes.resolve_recipients(
                address, catch_all=report_address is None
            )
        except MailmarkError as error:
            if report_address is None:
                return replies.reply_for(error)
        else:
            # One copy per mailbox per transaction, however many recipients (an alias and its
            # members, two aliases sharing one) lead to it.
            taken = {mailbox.id for mailbox in envelope.mailboxes}
            envelope.mailboxes.extend(mailbox for mailbox in mailboxes if mailbox.id not in taken)
        if report_address is not None:
            # The domain's published rua address (RFC 7489 §7.1, RFC 8460 §3): the report is
            # stored for the domain, and the mailbox of that name (if any) gets the message too.
            envelope.report_addresses.append(report_address)
        return self.accept_recipient(envelope, address, options)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: MailmarkEnvelope) -> str:
        raw = envelope.original_content
        assert isinstance(raw, bytes)
        if has_bare_line_ending(raw):
            log.warning("refused message with bare CR/LF from %s", session.peer)
            return replies.BARE_LINE_ENDING
        transaction = envelope.transaction_id
        try:
            receipt = await self._inbound.accept(
                raw,
                InboundEnvelope(
                    transaction_id=transaction,
                    mail_from=envelope.mail_from or "",
                    rcpt_tos=envelope.rcpt_tos,
                    mailboxes=envelope.mailboxes,
                    report_tokens=envelope.report_tokens,
                    report_addresses=envelope.report_addresses,
                    srs_returns=envelope.srs_returns,
                    client_ip=str(session.peer[0]) if session.peer else "",
                    helo=session.host_name or "",
                    esmtp=session.extended_smtp,
                    tls=session.ssl is not None,
                ),
            )
        except MailmarkError as error:
            return replies.reply_for(error)
        except Exception:
            log.exception("inbound delivery failed for transaction %s", transaction)
            return replies.TEMPORARY_FAILURE
        if receipt is None and not envelope.mailboxes and not envelope.srs_returns:
            return replies.report_received(transaction)
        return replies.queued(transaction)
