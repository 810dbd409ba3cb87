"""GET /v1/suppressions, DELETE /v1/suppressions/{address}: addresses the domain no longer mails."""

from __future__ import annotations

from datetime import datetime

import msgspec
from litestar import Controller, delete, get
from litestar.params import FromPath, FromQuery

from mailmark.core.apikeys import ApiPrincipal
from mailmark.core.emails import EmailService
from mailmark.web.api.v1.auth import Injected
from mailmark.web.api.v1.docs import samples
from mailmark.web.api.v1.mailboxes import Deleted


class SuppressionOut(msgspec.Struct, rename="camel"):
    address: str
    reason: str  # "bounce" | "complaint" | "manual"
    detail: str
    created_at: datetime


class SuppressionPage(msgspec.Struct, rename="camel"):
    data: list[SuppressionOut]
    next_cursor: str | None


class SuppressionController(Controller):
    path = "/suppressions"
    tags = ("Suppressions",)

    @get(
        operation_id="listSuppressions",
        summary="List suppressed addresses",
        operation_class=samples(
            "GET",
            "/v1/suppressions",
            response={
                "data": [
                    {
                        "address": "gone@example.com",
                        "reason": "bounce",
                        "detail": "550 5.1.1 user unknown",
                        "createdAt": "2026-12-03T13:00:00+00:00",
                    }
                ],
                "nextCursor": None,
            },
            sdk="const page = await client.listSuppressions();",
        ),
    )
    async def list_suppressions(
        self,
        principal: Injected[ApiPrincipal],
        emails: Injected[EmailService],
        cursor: FromQuery[str | None] = None,
        limit: FromQuery[int | None] = None,
    ) -> SuppressionPage:
        """Addresses mail is no longer sent to (hard bounces, complaints), oldest first."""
        page = await emails.suppressions(principal.domain_id, cursor=cursor, limit=limit)
        return SuppressionPage(
            [SuppressionOut(s.address, s.reason, s.detail, s.created_at) for s in page.items],
            page.next_cursor,
        )

    @delete(
        "/{address:str}",
        operation_id="deleteSuppression",
        summary="Mail a suppressed address again",
        status_code=200,
        operation_class=samples(
            "DELETE",
            "/v1/suppressions/gone@example.com",
            response={"deleted": True},
            sdk="await client.deleteSuppression('gone@example.com');",
        ),
    )
    async def delete_suppression(
        self,
        principal: Injected[ApiPrincipal],
        emails: Injected[EmailService],
        address: FromPath[str],
    ) -> Deleted:
        """Remove the address from the suppression list; 404 when it is not on it."""
        await emails.unsuppress(principal.domain_id, address)
        return Deleted()
