"""Replies to campaign emails, seen by our own MX once a message is delivered to a mailbox.

A message whose In-Reply-To or References names a campaign email of the receiving mailbox's
account is a reply: the recipient leaves the sequence and a `campaign.replied` event (and its
webhook) is recorded. An automatic answer (RFC 3834 `Auto-Submitted` other than `no`,
`X-Autoreply`/`X-Autorespond`, `Precedence: auto_reply`, or an out-of-office subject) is counted
on the recipient and recorded, but the sequence goes on.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from mailmark.core.events import record_events
from mailmark.core.message_meta import header_values
from mailmark.core.model import Mailbox
from mailmark.core.ports import Clock, NewEvent, UnitOfWorkFactory
from mailmark.core.states import EventType

log = logging.getLogger(__name__)

# Recorded for the timeline, not sent to webhooks (not an EventType).
AUTO_REPLIED = "campaign.auto_replied"
MAX_REFERENCED = 50
_MESSAGE_ID = re.compile(r"<([^<>\s]{1,500})>")
# Subjects of out-of-office answers that carry none of the RFC 3834 fields.
_AUTOMATIC_SUBJECT = re.compile(
    r"^\s*(auto(matic)?[ -]?(reply|response|answer)|autoreply|out of (the )?office|"
    r"away from (the )?office|on vacation|abwesenheit|absence|r[ée]ponse automatique|"
    r"respuesta autom[áa]tica|risposta automatica|autosvar|automatisch antwoord|auto:)",
    re.IGNORECASE,
)


def referenced_ids(raw: bytes) -> list[str]:
    """The Message-IDs (without <>) In-Reply-To and References name, latest first, bounded."""
    found: list[str] = []
    for name in (b"in-reply-to", b"references"):
        for value in header_values(raw, name):
            found.extend(_MESSAGE_ID.findall(value))
    unique = list(dict.fromkeys(reversed(found)))
    return unique[:MAX_REFERENCED]


def automatic_reply(raw: bytes) -> str | None:
    """Why the message is an automatic answer, or None for one a person wrote."""
    for value in header_values(raw, b"auto-submitted"):
        keyword = value.split(";", 1)[0].strip().lower()
        if keyword and keyword != "no":  # RFC 3834 §5.1
            return f"Auto-Submitted: {keyword}"
    for name in (b"x-autoreply", b"x-autorespond"):
        if header_values(raw, name):
            return f"{name.decode()} is present"
    if any(v.strip().lower() == "auto_reply" for v in header_values(raw, b"precedence")):
        return "Precedence: auto_reply"
    for subject in header_values(raw, b"subject"):
        if _AUTOMATIC_SUBJECT.match(subject):
            return "an out-of-office subject"
    return None


class CampaignReplies:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def delivered(self, raw: bytes, mailboxes: Sequence[Mailbox]) -> None:
        """Link a message just delivered to these mailboxes to the campaign emails it answers."""
        wanted = referenced_ids(raw)
        if not wanted or not mailboxes:
            return
        automatic = automatic_reply(raw)
        now = self._clock.now()
        async with self._uow() as uow:
            events: list[NewEvent] = []
            for account_id in sorted({m.account_id for m in mailboxes}):
                found = await uow.campaigns.messages_with_ids(wanted, account_id)
                # One answer per recipient: the latest stage it names.
                latest = {}
                for message in sorted(found, key=lambda m: m.stage):
                    latest[message.recipient_id] = message
                for message in latest.values():
                    payload: dict[str, object] = {
                        "campaignId": str(message.campaign_id),
                        "contactId": str(message.contact_id) if message.contact_id else None,
                        "email": message.email,
                        "stage": message.stage,
                        "messageId": message.message_id,
                    }
                    if automatic is not None:
                        await uow.campaigns.count_auto_reply(message.recipient_id, now)
                        payload["automatic"] = automatic
                        kind = AUTO_REPLIED
                    elif message.replied:
                        continue
                    else:
                        await uow.campaigns.mark_replied(message, now)
                        kind = EventType.CAMPAIGN_REPLIED
                    events.append(
                        NewEvent(
                            account_id,
                            kind,
                            payload,
                            now,
                            outbound_id=message.outbound_id,
                            domain_id=message.domain_id,
                        )
                    )
            await record_events(uow, events)
            await uow.commit()
