"""Open tracking (PRODUCT.md "Email Tracking"): mail sent from a mailbox with tracking turned on
carries a 1×1 image at a signed URL; loading it records `email.opened` on the outbound message.

The URL names the message by its token and carries an HMAC of it under a key only this server
holds, so only URLs we wrote record anything: the token alone (it is also in the VERP return path
every recipient sees) is not enough. Every adapter (webmail, /v1, campaigns) gets its pixel from
`pixel_html`, and the web's endpoint calls `record_open`, here, once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import timedelta

from mailmark.core.errors import NotFound
from mailmark.core.events import record_events
from mailmark.core.ports import Clock, NewEvent, UnitOfWorkFactory
from mailmark.core.states import EventType

# A transparent 1×1 GIF (GIF89a, one colour, the colour transparent).
PIXEL_GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
SIGNATURE_LENGTH = 22  # 132 bits of the HMAC, base64url
# A client that loads images each time the message is shown records one open per this window.
REPEAT_WINDOW = timedelta(minutes=1)
MAX_USER_AGENT = 200
_TOKEN = re.compile(r"^[a-z0-9]{24}$")


class OpenTracking:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, key: bytes, public_url: str) -> None:
        """`key` is secret key material of this installation; a key of its own is derived."""
        self._uow = uow
        self._clock = clock
        self._key = hashlib.sha256(b"mailmark open tracking\0" + key).digest()
        self._base = public_url.rstrip("/")

    def signature(self, token: str) -> str:
        digest = hmac.new(self._key, token.encode("ascii"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode("ascii")[:SIGNATURE_LENGTH]

    def pixel_url(self, token: str) -> str:
        return f"{self._base}/t/o/{token}/{self.signature(token)}.gif"

    def pixel_html(self, token: str) -> str:
        """The image to append to a message's HTML."""
        return (
            f'<img src="{self.pixel_url(token)}" width="1" height="1" alt="" '
            'style="display:block;width:1px;height:1px;border:0">'
        )

    async def record_open(self, token: str, signature: str, user_agent: str | None) -> None:
        """Record `email.opened` for the message of `token`; NotFound for a URL we did not write
        or a message that is gone."""
        expected = self.signature(token) if _TOKEN.match(token) else ""
        if not expected or not hmac.compare_digest(expected, signature):
            raise NotFound("No such image.")
        now = self._clock.now()
        async with self._uow() as uow:
            outbound = await uow.outbound.get_by_token(token)
            if outbound is None or outbound.id is None:
                raise NotFound("No such image.")
            recent = await uow.sent_emails.events(outbound.id, 1000)
            if any(
                e.type == EventType.OPENED and now - e.created_at < REPEAT_WINDOW for e in recent
            ):
                return
            payload: dict[str, object] = {
                "messageId": outbound.message_id_header,
                "from": outbound.from_addr,
                "userAgent": (user_agent or "")[:MAX_USER_AGENT],
            }
            await record_events(
                uow,
                [
                    NewEvent(
                        outbound.account_id, EventType.OPENED, payload, now, outbound_id=outbound.id
                    )
                ],
            )
            await uow.commit()
