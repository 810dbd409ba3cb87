"""Unsubscribing from campaign mail (RFC 2369 §3.2, RFC 8058).

Every campaign message names its own unsubscribe URL in `List-Unsubscribe`, with
`List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058 §3.1): the recipient's mail provider
POSTs `List-Unsubscribe=One-Click` to it, with no cookie and no sign-in, and a person who opens it
gets a page with one button that does the same. The URL names the message by its token with an
HMAC under the server's key (no address in it), so only URLs we wrote unsubscribe anyone.

Unsubscribing marks the recipient's contact `unsubscribed` and adds an account-wide suppression,
which `SendingService` checks in the same transaction that queues every campaign message, so that
no campaign of the account mails the address again once the unsubscribe has committed.
"""

from __future__ import annotations

from dataclasses import replace

from mailmark.core.contacts import ContactStatus
from mailmark.core.events import record_events
from mailmark.core.ports import Clock, NewEvent, UnitOfWorkFactory
from mailmark.core.states import EventType, SuppressionReason
from mailmark.core.tracking import ONE_CLICK_BODY, LinkSigner

__all__ = ["ONE_CLICK_BODY", "Unsubscribes"]


class Unsubscribes:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, signer: LinkSigner) -> None:
        self._uow = uow
        self._clock = clock
        self._signer = signer

    def valid(self, token: str, signature: str) -> bool:
        """Whether this is an unsubscribe URL this server wrote."""
        return self._signer.verify("unsubscribe", token, signature)

    async def unsubscribe(self, token: str, signature: str) -> bool:
        """Unsubscribe the recipient of the message of `token`; False for a URL we did not write
        or a message that is gone. Doing it again changes nothing."""
        if not self.valid(token, signature):
            return False
        now = self._clock.now()
        async with self._uow() as uow:
            outbound = await uow.outbound.get_by_token(token)
            if outbound is None or outbound.id is None:
                return False
            recipients = sorted(
                {e.recipient.lower() for e in await uow.deliveries.for_outbound(outbound.id)}
            )
            known = await uow.suppressions.find_for_account(outbound.account_id, recipients)
            fresh = [address for address in recipients if address not in known]
            for address in fresh:
                await uow.suppressions.add_for_account(
                    outbound.account_id, address, SuppressionReason.UNSUBSCRIBE, now
                )
            contacts = await uow.contacts.find_by_keys(outbound.account_id, recipients)
            await uow.contacts.update_many(
                [
                    replace(contact, status=ContactStatus.UNSUBSCRIBED, updated_at=now)
                    for contact in contacts.values()
                    if contact.status == ContactStatus.SUBSCRIBED
                ]
            )
            await record_events(
                uow,
                [
                    NewEvent(
                        outbound.account_id,
                        EventType.UNSUBSCRIBED,
                        {
                            "messageId": outbound.message_id_header,
                            "from": outbound.from_addr,
                            "email": address,
                            "batchId": outbound.batch_id,
                        },
                        now,
                        outbound_id=outbound.id,
                    )
                    for address in fresh
                ],
            )
            await uow.commit()
        return True
