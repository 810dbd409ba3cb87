"""/api/mailboxes/{address}/vacation: a mailbox's vacation responder, for whoever may edit the
mailbox (owners and admins; a member their assigned mailboxes)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, get, put
from litestar.params import FromPath, JSONBody

from mailmark.core.access import Viewer
from mailmark.core.vacation import (
    DEFAULT_DAYS,
    MAX_BODY,
    MAX_SUBJECT,
    MAX_TIME_ZONE,
    VacationChange,
    VacationService,
    VacationView,
)
from mailmark.web.api.app.mailboxes import Address
from mailmark.web.api.v1.auth import Injected

Moment = Annotated[str, msgspec.Meta(max_length=40)]


class VacationOut(msgspec.Struct, rename="camel"):
    enabled: bool
    # On and within its dates: answering mail now.
    active: bool
    subject: str
    body: str
    body_format: str
    days: int
    time_zone: str
    # Wall-clock times in `timeZone`, YYYY-MM-DDTHH:MM; `endsAt` is the first moment it is off.
    starts_at: str | None
    ends_at: str | None


class VacationIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    enabled: bool
    body: Annotated[str, msgspec.Meta(max_length=MAX_BODY)] = ""
    subject: Annotated[str, msgspec.Meta(max_length=MAX_SUBJECT)] = ""
    body_format: Annotated[str, msgspec.Meta(max_length=10)] = "text"
    days: int = DEFAULT_DAYS
    time_zone: Annotated[str, msgspec.Meta(max_length=MAX_TIME_ZONE)] = "UTC"
    starts_at: Moment | None = None
    ends_at: Moment | None = None


def vacation_out(view: VacationView) -> VacationOut:
    settings = view.settings
    return VacationOut(
        enabled=settings.enabled,
        active=view.active,
        subject=settings.subject,
        body=settings.body,
        body_format=settings.body_format,
        days=settings.days,
        time_zone=settings.time_zone,
        starts_at=view.local(settings.starts_at),
        ends_at=view.local(settings.ends_at),
    )


class VacationController(Controller):
    path = "/mailboxes/{address:str}/vacation"
    tags = ("Mailboxes",)

    @get(operation_id="appGetVacation", summary="A mailbox's vacation responder")
    async def get_vacation(
        self,
        viewer: Injected[Viewer],
        vacation: Injected[VacationService],
        address: FromPath[Address],
    ) -> VacationOut:
        return vacation_out(await vacation.get_for(viewer, address))

    @put(operation_id="appSetVacation", summary="Set a mailbox's vacation responder")
    async def set_vacation(
        self,
        viewer: Injected[Viewer],
        vacation: Injected[VacationService],
        address: FromPath[Address],
        data: JSONBody[VacationIn],
    ) -> VacationOut:
        """While `enabled` and between `startsAt` and `endsAt` (wall-clock times or dates in
        `timeZone`; a date as `endsAt` includes that whole day), mail to the mailbox is
        answered with `subject` (empty: "Auto: " and the original subject) and `body`, once
        every `days` days per sender, never to lists, bulk or automatic mail (RFC 3834)."""
        change = VacationChange(
            enabled=data.enabled,
            body=data.body,
            subject=data.subject,
            body_format=data.body_format,
            days=data.days,
            time_zone=data.time_zone,
            starts=data.starts_at,
            ends=data.ends_at,
        )
        return vacation_out(await vacation.set_for(viewer, address, change))
