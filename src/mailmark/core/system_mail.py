"""Mail the server itself sends to people (password resets, invitations), through the outbound
queue like any other mail: retried, DKIM-signed where a key exists, bounces processed.

It comes from `no-reply@<the server's host name>`, with the VERP return path on that name that
mail of unverified domains already uses. Queue rows belong to an account and a domain; system
mail belongs to the server, so it is filed under an internal account (`_mailmark`, a name no
person can choose: account names start with a letter or digit) owning the host name as a
trusted domain with its own DKIM keys (`mailmark domain records <host name>` lists what to
publish), both created on first use. If the host name is already a domain hosted here, that
domain is used as it is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid

from mailmark.core.addresses import verp_address
from mailmark.core.domains import DomainService
from mailmark.core.errors import Conflict, HeaderInjection
from mailmark.core.model import Account, Domain, OutboundMessage
from mailmark.core.ports import BlobStore, Clock, UnitOfWork, UnitOfWorkFactory
from mailmark.core.queue import OutboundQueue, QueuedMessage
from mailmark.core.sending import new_token
from mailmark.core.states import AccountStatus

log = logging.getLogger(__name__)

SYSTEM_ACCOUNT = "_mailmark"
SENDER_NAME = "Mailmark"
SENDER_LOCAL_PART = "no-reply"


class SystemMail:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        blobs: BlobStore,
        clock: Clock,
        queue: OutboundQueue,
        domains: DomainService,
        *,
        hostname: str,
    ) -> None:
        self._uow = uow
        self._domains = domains
        self._blobs = blobs
        self._clock = clock
        self._queue = queue
        self._hostname = hostname.lower()
        # Two first messages at once must not both create the internal account and domain.
        self._first_use = asyncio.Lock()

    @property
    def sender(self) -> str:
        return f"{SENDER_LOCAL_PART}@{self._hostname}"

    async def send(self, to: str, subject: str, text: str) -> None:
        """Queue a plain-text message to one address (already validated by the caller)."""
        if any(ch in to + subject for ch in "\r\n\0"):
            raise HeaderInjection("A recipient or subject must not contain line breaks.")
        now = self._clock.now()
        message = EmailMessage(policy=SMTP)
        message["From"] = f"{SENDER_NAME} <{self.sender}>"
        message["To"] = to
        message["Subject"] = subject
        message["Date"] = format_datetime(now)
        message_id = make_msgid(domain=self._hostname)
        message["Message-ID"] = message_id
        # RFC 3834 §5: automatic mail; auto-responders should not answer it.
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(text)
        domain = await self._sender_domain()
        assert domain.id is not None
        token = new_token()
        await self.queue(
            message.as_bytes(),
            account_id=domain.account_id,
            domain_id=domain.id,
            envelope_from=verp_address(token, self._hostname),
            token=token,
            from_addr=self.sender,
            subject=subject,
            message_id=message_id.strip("<>"),
            recipients=[to],
            source="system",
        )

    async def queue(
        self,
        raw: bytes,
        *,
        account_id: int,
        domain_id: int,
        envelope_from: str,
        token: str,
        from_addr: str,
        subject: str | None,
        message_id: str | None,
        recipients: Sequence[str],
        source: str,
        mailbox_id: int | None = None,
        condition: Callable[[UnitOfWork], Awaitable[bool]] | None = None,
    ) -> bool:
        """Queue a built message: signed with the domain's DKIM key and retried, with no Sent
        copy; a bounce notice goes to `mailbox_id` only when one is named (mail no person wrote
        has no one to tell). Committed when this returns True. `condition`, checked first in
        the same transaction, may decline: then nothing is queued and this returns False."""
        now = self._clock.now()
        key, created = await self._blobs.put(raw)
        try:
            async with self._uow() as uow:
                if condition is not None and not await condition(uow):
                    if created:
                        await self._blobs.delete(key)
                    return False
                outbound = await uow.outbound.add(
                    OutboundMessage(
                        account_id=account_id,
                        domain_id=domain_id,
                        mailbox_id=mailbox_id,
                        blob_key=key,
                        size=len(raw),
                        envelope_from=envelope_from,
                        token=token,
                        from_addr=from_addr,
                        subject=subject,
                        message_id_header=message_id,
                        source=source,
                        created_at=now,
                    )
                )
                assert outbound.id is not None
                await self._queue.enqueue(
                    uow, [QueuedMessage(outbound.id, account_id, recipients)], now
                )
                await uow.commit()
        except BaseException:
            if created:
                await self._blobs.delete(key)
            raise
        self._queue.kick()
        return True

    async def _sender_domain(self) -> Domain:
        """The host name's domain, added (with DKIM keys, as any domain) on first use."""
        async with self._first_use:
            async with self._uow(read_only=True) as uow:
                domain = await uow.domains.get_by_name(self._hostname)
            if domain is not None:
                return domain
            async with self._uow() as uow:
                if await uow.accounts.get_by_name(SYSTEM_ACCOUNT) is None:
                    await uow.accounts.add(
                        Account(
                            SYSTEM_ACCOUNT, "unlimited", AccountStatus.ACTIVE, self._clock.now()
                        )
                    )
                    await uow.commit()
            log.info("system mail is sent from %s", self.sender)
            try:
                return await self._domains.add(
                    self._hostname, account_name=SYSTEM_ACCOUNT, trust=True
                )
            except Conflict:  # another node added it meanwhile
                return await self._domains.get(self._hostname)
