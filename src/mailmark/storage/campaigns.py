"""Campaigns, their recipients (one row each, with the stage it gets next) and the stage messages
sent, with the counts the stats and the guardrails read."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from mailmark.core.campaign_records import (
    ActivityHit,
    CampaignMessageRef,
    DueRecipient,
    MailboxUsage,
    RecipientEvent,
    RecipientMessage,
    RecipientView,
    SentStage,
    StageCounts,
)
from mailmark.core.contacts import ContactFilter, ContactStatus
from mailmark.core.sequences import (
    Audience,
    Campaign,
    CampaignStatus,
    MergeValues,
    RecipientState,
    Schedule,
    Stage,
    ThreadState,
    clean_audience,
    clean_schedule,
    clean_stages,
)
from mailmark.core.states import DeliveryStatus, EventType
from mailmark.storage.contacts import contact_conditions
from mailmark.storage.sql import Repository, chunks
from mailmark.storage.tables import (
    campaign_messages,
    campaign_recipients,
    campaigns,
    contacts,
    deliveries,
    domains,
    events,
    mailboxes,
)

# Contact states that take a recipient out of the sequence, as the recipient state they become.
_CONTACT_STOPS = {
    ContactStatus.UNSUBSCRIBED.value: RecipientState.UNSUBSCRIBED,
    ContactStatus.BOUNCED.value: RecipientState.BOUNCED,
    ContactStatus.COMPLAINED.value: RecipientState.COMPLAINED,
}
_DELIVERY_STOPS = {
    DeliveryStatus.BOUNCED.value: RecipientState.BOUNCED,
    DeliveryStatus.COMPLAINED.value: RecipientState.COMPLAINED,
}


def _departure(last_outcome: Any, contact_status: str | None) -> dict[str, Any]:
    """Why a due recipient leaves the sequence instead, as DueRecipient fields (none: it stays)."""
    if last_outcome is not None:
        status = str(last_outcome)
        return {
            "departed": _DELIVERY_STOPS[status],
            "departure_reason": f"The last message {status}.",
        }
    if contact_status in _CONTACT_STOPS:
        return {
            "departed": _CONTACT_STOPS[contact_status],
            "departure_reason": f"The contact is {contact_status}.",
        }
    return {}


def _row(campaign: Campaign) -> dict[str, Any]:
    return {
        "account_id": campaign.account_id,
        "domain_id": campaign.domain_id,
        "name": campaign.name,
        "status": campaign.status.value,
        "mailbox_id": campaign.mailbox_id,
        "sender_group_id": campaign.sender_group_id,
        "audience": campaign.audience.as_json(),
        "stages": [stage.as_json() for stage in campaign.stages],
        "schedule": campaign.schedule.as_json(),
        "pause_reason": campaign.pause_reason,
        "created_at": campaign.created_at,
        "updated_at": campaign.updated_at,
        "launched_at": campaign.launched_at,
        "finished_at": campaign.finished_at,
    }


def _campaign(row: Any) -> Campaign:
    stages: tuple[Stage, ...] = clean_stages(row.stages)
    audience: Audience = clean_audience(row.audience)
    schedule: Schedule = clean_schedule(row.schedule)
    return Campaign(
        account_id=row.account_id,
        domain_id=row.domain_id,
        name=row.name,
        status=CampaignStatus(row.status),
        stages=stages,
        audience=audience,
        schedule=schedule,
        created_at=row.created_at,
        updated_at=row.updated_at,
        mailbox_id=row.mailbox_id,
        sender_group_id=row.sender_group_id,
        pause_reason=row.pause_reason,
        launched_at=row.launched_at,
        finished_at=row.finished_at,
        id=row.id,
        from_address=row.from_address,
    )


def _select() -> sa.Select[Any]:
    """Campaign rows with their sending mailbox's address."""
    address = (mailboxes.c.local_part + "@" + domains.c.name).label("from_address")
    return sa.select(*campaigns.c, address).select_from(
        campaigns.outerjoin(mailboxes, mailboxes.c.id == campaigns.c.mailbox_id).outerjoin(
            domains, domains.c.id == mailboxes.c.domain_id
        )
    )


class SqlCampaigns(Repository):
    async def add(self, campaign: Campaign) -> Campaign:
        new_id = await self._insert(campaigns, _row(campaign))
        return Campaign(**{**campaign.__dict__, "id": new_id})

    async def get(self, domain_id: int, campaign_id: int) -> Campaign | None:
        query = _select().where(campaigns.c.domain_id == domain_id, campaigns.c.id == campaign_id)
        row = (await self._conn.execute(query)).first()
        return _campaign(row) if row is not None else None

    async def lock(self, campaign_id: int) -> Campaign | None:
        """The campaign, locked until commit (PostgreSQL) so its status changes one at a time."""
        await self._dialect.lock_row(self._conn, campaigns, campaign_id)
        row = (await self._conn.execute(_select().where(campaigns.c.id == campaign_id))).first()
        return _campaign(row) if row is not None else None

    async def page(self, domain_id: int, after_id: int | None, limit: int) -> list[Campaign]:
        return await self._page(campaigns.c.domain_id == domain_id, after_id, limit)

    async def get_in_account(self, account_id: int, campaign_id: int) -> Campaign | None:
        query = _select().where(campaigns.c.account_id == account_id, campaigns.c.id == campaign_id)
        row = (await self._conn.execute(query)).first()
        return _campaign(row) if row is not None else None

    async def page_for_account(
        self, account_id: int, after_id: int | None, limit: int
    ) -> list[Campaign]:
        return await self._page(campaigns.c.account_id == account_id, after_id, limit)

    async def _page(
        self, owned: sa.ColumnElement[bool], after_id: int | None, limit: int
    ) -> list[Campaign]:
        """Newest first, after the cursor `after_id`."""
        query = _select().where(owned).order_by(campaigns.c.id.desc()).limit(limit)
        if after_id is not None:
            query = query.where(campaigns.c.id < after_id)
        return [_campaign(row) for row in await self._conn.execute(query)]

    async def running(self) -> list[Campaign]:
        query = _select().where(campaigns.c.status == CampaignStatus.RUNNING.value)
        return [_campaign(row) for row in await self._conn.execute(query.order_by(campaigns.c.id))]

    async def update(self, campaign: Campaign) -> None:
        values = _row(campaign)
        del values["created_at"]
        await self._conn.execute(
            campaigns.update().where(campaigns.c.id == campaign.id).values(**values)
        )

    async def add_contacts(
        self, campaign_id: int, account_id: int, where: ContactFilter, first_at: datetime
    ) -> None:
        """Every subscribed, unsuppressed contact the filter matches becomes a recipient (one
        INSERT … SELECT, however many); one already there stays as it is."""
        conditions = contact_conditions(
            self._dialect,
            account_id,
            ContactFilter(
                status=ContactStatus.SUBSCRIBED,
                tag=where.tag,
                field=where.field,
                suppressed=False,
                list_id=where.list_id,
            ),
        )
        select = sa.select(
            sa.literal(campaign_id).label("campaign_id"),
            contacts.c.id,
            contacts.c.email,
            contacts.c.email_key,
            *_new_recipient_columns(first_at),
        ).where(*conditions)
        insert = self._dialect.insert_or_ignore(campaign_recipients).from_select(
            [
                "campaign_id",
                "contact_id",
                "email",
                "email_key",
                "state",
                "next_stage",
                "next_send_at",
                "auto_replies",
                "stop_reason",
                "updated_at",
            ],
            select,
        )
        await self._conn.execute(insert)

    async def add_emails(self, campaign_id: int, emails: Sequence[str], first_at: datetime) -> None:
        """Recipients that are addresses only (a sender group's)."""
        rows = [
            {
                "campaign_id": campaign_id,
                "contact_id": None,
                "email": email,
                "email_key": email.lower(),
                "state": RecipientState.ACTIVE.value,
                "next_stage": 1,
                "next_send_at": first_at,
                "auto_replies": 0,
                "stop_reason": "",
                "updated_at": first_at,
            }
            for email in emails
        ]
        for chunk in chunks(rows):
            await self._conn.execute(
                self._dialect.insert_or_ignore(campaign_recipients), list(chunk)
            )

    async def count_recipients(self, campaign_id: int, state: RecipientState | None = None) -> int:
        query = sa.select(sa.func.count()).where(campaign_recipients.c.campaign_id == campaign_id)
        if state is not None:
            query = query.where(campaign_recipients.c.state == state.value)
        return int((await self._conn.execute(query)).scalar_one())

    async def stop_departed(self, campaign_id: int, now: datetime) -> int:
        """Take out of the sequence the active recipients whose last message bounced or drew a
        complaint, or whose contact unsubscribed, bounced or complained since; how many."""
        changed = 0
        for status, state in _DELIVERY_STOPS.items():
            bounced = sa.select(deliveries.c.outbound_id).where(
                deliveries.c.status == status,
                deliveries.c.outbound_id == campaign_recipients.c.last_outbound_id,
            )
            result = await self._conn.execute(
                campaign_recipients.update()
                .where(
                    campaign_recipients.c.campaign_id == campaign_id,
                    campaign_recipients.c.state.in_(
                        [RecipientState.ACTIVE.value, RecipientState.COMPLETED.value]
                    ),
                    sa.exists(bounced),
                )
                .values(
                    state=state.value, stop_reason=f"The last message {status}.", updated_at=now
                )
            )
            changed += int(result.rowcount or 0)
        for status, state in _CONTACT_STOPS.items():
            departed = sa.select(contacts.c.id).where(
                contacts.c.id == campaign_recipients.c.contact_id, contacts.c.status == status
            )
            result = await self._conn.execute(
                campaign_recipients.update()
                .where(
                    campaign_recipients.c.campaign_id == campaign_id,
                    campaign_recipients.c.state == RecipientState.ACTIVE.value,
                    sa.exists(departed),
                )
                .values(state=state.value, stop_reason=f"The contact is {status}.", updated_at=now)
            )
            changed += int(result.rowcount or 0)
        return changed

    async def due(self, campaign_id: int, now: datetime, limit: int) -> list[DueRecipient]:
        last_outcome = (
            sa.select(deliveries.c.status)
            .where(
                deliveries.c.outbound_id == campaign_recipients.c.last_outbound_id,
                deliveries.c.status.in_(list(_DELIVERY_STOPS)),
            )
            .limit(1)
            .scalar_subquery()
        )
        query = (
            sa.select(
                campaign_recipients,
                contacts.c.first_name,
                contacts.c.last_name,
                contacts.c.company,
                contacts.c.fields,
                contacts.c.status.label("contact_status"),
                last_outcome.label("last_outcome"),
            )
            .select_from(
                campaign_recipients.outerjoin(
                    contacts, contacts.c.id == campaign_recipients.c.contact_id
                )
            )
            .where(
                campaign_recipients.c.campaign_id == campaign_id,
                campaign_recipients.c.state == RecipientState.ACTIVE.value,
                campaign_recipients.c.next_send_at <= now,
            )
            .order_by(campaign_recipients.c.next_send_at, campaign_recipients.c.id)
            .limit(limit)
        )
        return [
            DueRecipient(
                id=row.id,
                contact_id=row.contact_id,
                email=row.email,
                next_stage=row.next_stage,
                mailbox_id=row.mailbox_id,
                thread=ThreadState(
                    row.thread_subject, tuple((row.thread_references or "").split())
                ),
                values=MergeValues(
                    row.email,
                    row.first_name or "",
                    row.last_name or "",
                    row.company or "",
                    dict(row.fields or {}),
                ),
                **_departure(row.last_outcome, row.contact_status),
            )
            for row in await self._conn.execute(query)
        ]

    async def mailbox_usage(
        self, mailbox_ids: Sequence[int], since: datetime
    ) -> dict[int, MailboxUsage]:
        """Per mailbox: campaign messages sent since `since`, and when its last one was."""
        if not mailbox_ids:
            return {}
        today = sa.func.sum(sa.case((campaign_messages.c.sent_at >= since, 1), else_=0))
        query = (
            sa.select(
                campaign_messages.c.mailbox_id,
                today.label("today"),
                sa.func.max(campaign_messages.c.sent_at).label("last"),
            )
            .where(campaign_messages.c.mailbox_id.in_(list(mailbox_ids)))
            .group_by(campaign_messages.c.mailbox_id)
        )
        found = {}
        for row in await self._conn.execute(query):
            found[row.mailbox_id] = MailboxUsage(int(row.today or 0), row.last)
        return found

    async def record_sent(self, campaign_id: int, sent: Sequence[SentStage], now: datetime) -> None:
        """The stage messages just queued, and each recipient moved on to its next stage (or
        finished), in the queuing transaction."""
        if not sent:
            return
        await self._conn.execute(
            campaign_messages.insert(),
            [
                {
                    "campaign_id": campaign_id,
                    "recipient_id": s.recipient_id,
                    "stage": s.stage,
                    "variant": s.variant,
                    "outbound_id": s.outbound_id,
                    "message_id": s.message_id,
                    "mailbox_id": s.mailbox_id,
                    "sent_at": now,
                }
                for s in sent
            ],
        )
        statement = (
            campaign_recipients.update()
            .where(
                campaign_recipients.c.id == sa.bindparam("recipient"),
                campaign_recipients.c.next_stage == sa.bindparam("stage"),
            )
            .values(
                next_stage=sa.bindparam("stage") + 1,
                next_send_at=sa.bindparam("next_at"),
                mailbox_id=sa.bindparam("mailbox"),
                thread_subject=sa.bindparam("subject"),
                thread_references=sa.bindparam("references"),
                last_outbound_id=sa.bindparam("outbound"),
                # A reply recorded meanwhile keeps its state.
                state=sa.case(
                    (
                        sa.and_(
                            sa.bindparam("finished", type_=sa.Boolean()),
                            campaign_recipients.c.state == RecipientState.ACTIVE.value,
                        ),
                        RecipientState.COMPLETED.value,
                    ),
                    else_=campaign_recipients.c.state,
                ),
                updated_at=now,
            )
        )
        await self._conn.execute(
            statement,
            [
                {
                    "recipient": s.recipient_id,
                    "stage": s.stage,
                    "next_at": s.next_send_at,
                    "mailbox": s.mailbox_id,
                    "subject": s.thread_subject,
                    "references": " ".join(s.references),
                    "outbound": s.outbound_id,
                    "finished": s.finished,
                }
                for s in sent
            ],
        )

    async def stop(
        self, recipient_ids: Sequence[int], state: RecipientState, reason: str, now: datetime
    ) -> None:
        for chunk in chunks(list(recipient_ids)):
            await self._conn.execute(
                campaign_recipients.update()
                .where(
                    campaign_recipients.c.id.in_(chunk),
                    campaign_recipients.c.state == RecipientState.ACTIVE.value,
                )
                .values(state=state.value, stop_reason=reason, updated_at=now)
            )

    async def cancel_recipients(self, campaign_id: int, now: datetime) -> None:
        await self._conn.execute(
            campaign_recipients.update()
            .where(
                campaign_recipients.c.campaign_id == campaign_id,
                campaign_recipients.c.state == RecipientState.ACTIVE.value,
            )
            .values(
                state=RecipientState.CANCELED.value,
                stop_reason="The campaign was canceled.",
                updated_at=now,
            )
        )

    async def messages_with_ids(
        self, message_ids: Sequence[str], account_id: int
    ) -> list[CampaignMessageRef]:
        """The account's campaign messages with these Message-IDs (without <>)."""
        if not message_ids:
            return []
        query = (
            sa.select(
                campaign_messages.c.id,
                campaign_messages.c.campaign_id,
                campaign_messages.c.recipient_id,
                campaign_messages.c.stage,
                campaign_messages.c.outbound_id,
                campaign_messages.c.message_id,
                campaign_messages.c.replied_at,
                campaign_recipients.c.email,
                campaign_recipients.c.contact_id,
                campaign_recipients.c.state,
                campaigns.c.account_id,
                campaigns.c.domain_id,
            )
            .select_from(
                campaign_messages.join(
                    campaign_recipients,
                    campaign_recipients.c.id == campaign_messages.c.recipient_id,
                ).join(campaigns, campaigns.c.id == campaign_messages.c.campaign_id)
            )
            .where(
                campaign_messages.c.message_id.in_(list(message_ids)[:100]),
                campaigns.c.account_id == account_id,
            )
        )
        return [
            CampaignMessageRef(
                id=row.id,
                campaign_id=row.campaign_id,
                recipient_id=row.recipient_id,
                stage=row.stage,
                outbound_id=row.outbound_id,
                message_id=row.message_id,
                replied=row.replied_at is not None,
                email=row.email,
                contact_id=row.contact_id,
                state=RecipientState(row.state),
                account_id=row.account_id,
                domain_id=row.domain_id,
            )
            for row in await self._conn.execute(query)
        ]

    async def mark_replied(self, message: CampaignMessageRef, now: datetime) -> None:
        await self._conn.execute(
            campaign_messages.update()
            .where(campaign_messages.c.id == message.id)
            .values(replied_at=now)
        )
        await self._conn.execute(
            campaign_recipients.update()
            .where(
                campaign_recipients.c.id == message.recipient_id,
                campaign_recipients.c.state.in_(
                    [RecipientState.ACTIVE.value, RecipientState.COMPLETED.value]
                ),
            )
            .values(
                state=RecipientState.REPLIED.value,
                stop_reason=f"Replied to stage {message.stage}.",
                updated_at=now,
            )
        )

    async def count_auto_reply(self, recipient_id: int, now: datetime) -> None:
        await self._conn.execute(
            campaign_recipients.update()
            .where(campaign_recipients.c.id == recipient_id)
            .values(auto_replies=campaign_recipients.c.auto_replies + 1, updated_at=now)
        )

    async def stage_counts(self, campaign_id: int) -> list[StageCounts]:
        """Per (stage, variant): sent, and delivered/bounced/complained from the queue, replied,
        opened and clicked (distinct messages with such an event), unsubscribed (recipients
        that left the sequence unsubscribed after this stage was their last)."""
        by_key: dict[tuple[int, int], dict[str, int]] = {}

        def slot(stage: int, variant: int) -> dict[str, int]:
            return by_key.setdefault((stage, variant), {})

        base = sa.select(campaign_messages.c.stage, campaign_messages.c.variant).where(
            campaign_messages.c.campaign_id == campaign_id
        )
        sent = base.add_columns(
            sa.func.count().label("sent"),
            sa.func.count(campaign_messages.c.replied_at).label("replied"),
        ).group_by(campaign_messages.c.stage, campaign_messages.c.variant)
        for row in await self._conn.execute(sent):
            slot(row.stage, row.variant).update(sent=row.sent, replied=row.replied)
        statuses = (
            base.add_columns(deliveries.c.status, sa.func.count().label("n"))
            .join_from(
                campaign_messages,
                deliveries,
                deliveries.c.outbound_id == campaign_messages.c.outbound_id,
            )
            .group_by(campaign_messages.c.stage, campaign_messages.c.variant, deliveries.c.status)
        )
        for row in await self._conn.execute(statuses):
            counts = slot(row.stage, row.variant)
            counts[str(row.status)] = counts.get(str(row.status), 0) + row.n
        for event_type, name in ((EventType.OPENED, "opened"), (EventType.CLICKED, "clicked")):
            for human in (False, True):
                engaged = (
                    base.add_columns(
                        sa.func.count(sa.distinct(campaign_messages.c.outbound_id)).label("n")
                    )
                    .join_from(
                        campaign_messages,
                        events,
                        events.c.outbound_id == campaign_messages.c.outbound_id,
                    )
                    .where(events.c.type == event_type.value)
                    .group_by(campaign_messages.c.stage, campaign_messages.c.variant)
                )
                if human:
                    engaged = engaged.where(_by_a_person())
                for row in await self._conn.execute(engaged):
                    slot(row.stage, row.variant)[f"human_{name}" if human else name] = row.n
        unsubscribed = (
            base.add_columns(sa.func.count().label("n"))
            .join_from(
                campaign_messages,
                campaign_recipients,
                sa.and_(
                    campaign_recipients.c.id == campaign_messages.c.recipient_id,
                    campaign_recipients.c.last_outbound_id == campaign_messages.c.outbound_id,
                ),
            )
            .where(campaign_recipients.c.state == RecipientState.UNSUBSCRIBED.value)
            .group_by(campaign_messages.c.stage, campaign_messages.c.variant)
        )
        for row in await self._conn.execute(unsubscribed):
            slot(row.stage, row.variant)["unsubscribed"] = row.n
        return [
            StageCounts(
                stage=stage,
                variant=variant,
                sent=counts.get("sent", 0),
                delivered=counts.get(DeliveryStatus.DELIVERED.value, 0),
                bounced=counts.get(DeliveryStatus.BOUNCED.value, 0),
                complained=counts.get(DeliveryStatus.COMPLAINED.value, 0),
                replied=counts.get("replied", 0),
                opened=counts.get("opened", 0),
                clicked=counts.get("clicked", 0),
                unsubscribed=counts.get("unsubscribed", 0),
                human_opened=counts.get("human_opened", 0),
                human_clicked=counts.get("human_clicked", 0),
            )
            for (stage, variant), counts in sorted(by_key.items())
        ]

    async def recipients_page(
        self, campaign_id: int, state: RecipientState | None, after_id: int | None, limit: int
    ) -> list[RecipientView]:
        where = campaign_recipients.c.campaign_id == campaign_id
        if state is not None:
            where = sa.and_(where, campaign_recipients.c.state == state.value)
        if after_id is not None:
            where = sa.and_(where, campaign_recipients.c.id > after_id)
        return await self._recipient_views(where, limit)

    async def _recipient_views(
        self, where: sa.ColumnElement[bool], limit: int
    ) -> list[RecipientView]:
        sent = (
            sa.select(sa.func.count())
            .where(campaign_messages.c.recipient_id == campaign_recipients.c.id)
            .scalar_subquery()
        )
        query = (
            sa.select(campaign_recipients, sent.label("sent"))
            .where(where)
            .order_by(campaign_recipients.c.id)
            .limit(limit)
        )
        return [
            RecipientView(
                id=row.id,
                contact_id=row.contact_id,
                email=row.email,
                state=RecipientState(row.state),
                stages_sent=int(row.sent),
                next_stage=row.next_stage,
                next_send_at=row.next_send_at,
                stop_reason=row.stop_reason,
                auto_replies=row.auto_replies,
                updated_at=row.updated_at,
            )
            for row in await self._conn.execute(query)
        ]

    async def activity(self, campaign_id: int, *, quarter_hours: bool = False) -> list[ActivityHit]:
        """Stages sent, replies, and opens and clicks by people, counted per UTC hour (one row
        per hour and kind however large the campaign: the charts poll this while it runs), or
        per quarter of an hour for a time zone whose hours do not start with UTC's."""
        slot = self._dialect.utc_quarter_hour if quarter_hours else self._dialect.utc_hour
        hits: list[ActivityHit] = []
        mine = campaign_messages.c.campaign_id == campaign_id
        for kind, column in (
            ("sent", campaign_messages.c.sent_at),
            ("replied", campaign_messages.c.replied_at),
        ):
            hour = slot(column).label("hour")
            query = (
                sa.select(hour, sa.func.count().label("n"))
                .where(mine, column.is_not(None))
                .group_by(hour)
            )
            hits += [_hourly(kind, row.hour, row.n) for row in await self._conn.execute(query)]
        hour = slot(events.c.created_at).label("hour")
        engaged = (
            sa.select(events.c.type, hour, sa.func.count().label("n"))
            .join_from(
                campaign_messages, events, events.c.outbound_id == campaign_messages.c.outbound_id
            )
            .where(
                mine,
                events.c.type.in_([EventType.OPENED.value, EventType.CLICKED.value]),
                _by_a_person(),
            )
            .group_by(events.c.type, hour)
        )
        for row in await self._conn.execute(engaged):
            kind = "opened" if row.type == EventType.OPENED.value else "clicked"
            hits.append(_hourly(kind, row.hour, row.n))
        return hits

    async def recipient(self, campaign_id: int, recipient_id: int) -> RecipientView | None:
        found = await self._recipient_views(
            sa.and_(
                campaign_recipients.c.campaign_id == campaign_id,
                campaign_recipients.c.id == recipient_id,
            ),
            1,
        )
        return found[0] if found else None

    async def recipient_messages(self, recipient_id: int) -> list[RecipientMessage]:
        query = (
            sa.select(campaign_messages)
            .where(campaign_messages.c.recipient_id == recipient_id)
            .order_by(campaign_messages.c.stage)
        )
        return [
            RecipientMessage(
                stage=row.stage,
                variant=row.variant,
                outbound_id=row.outbound_id,
                message_id=row.message_id,
                sent_at=row.sent_at,
                replied_at=row.replied_at,
            )
            for row in await self._conn.execute(query)
        ]

    async def recipient_events(self, recipient_id: int) -> list[RecipientEvent]:
        query = (
            sa.select(events.c.type, events.c.created_at, events.c.outbound_id, events.c.payload)
            .join_from(
                campaign_messages, events, events.c.outbound_id == campaign_messages.c.outbound_id
            )
            .where(campaign_messages.c.recipient_id == recipient_id)
            .order_by(events.c.created_at, events.c.id)
        )
        return [
            RecipientEvent(
                type=row.type,
                at=row.created_at,
                outbound_id=row.outbound_id,
                payload=dict(row.payload or {}),
            )
            for row in await self._conn.execute(query)
        ]

    async def recipient_event_counts(
        self, recipient_ids: Sequence[int]
    ) -> dict[int, dict[str, int]]:
        """Per recipient: how many events of each type its stage messages drew."""
        counts: dict[int, dict[str, int]] = {}
        for chunk in chunks(list(recipient_ids)):
            query = (
                sa.select(campaign_messages.c.recipient_id, events.c.type, sa.func.count())
                .join_from(
                    campaign_messages,
                    events,
                    events.c.outbound_id == campaign_messages.c.outbound_id,
                )
                .where(campaign_messages.c.recipient_id.in_(chunk))
                .group_by(campaign_messages.c.recipient_id, events.c.type)
            )
            for recipient_id, kind, number in await self._conn.execute(query):
                counts.setdefault(recipient_id, {})[kind] = number
        return counts


def _hourly(kind: str, hour: str, count: int) -> ActivityHit:
    """An hour's (or quarter's) count, from the "YYYY-MM-DD HH" text `utc_hour` groups by (or
    the "YYYY-MM-DD HH:MM" of `utc_quarter_hour`)."""
    start = datetime.strptime(hour, "%Y-%m-%d %H:%M" if ":" in hour else "%Y-%m-%d %H")
    start = start.replace(tzinfo=UTC)
    return ActivityHit(kind, start, int(count))


def _by_a_person() -> sa.ColumnElement[bool]:
    """An open or click event not flagged as a machine's (core/tracking.py `machine`)."""
    return sa.func.coalesce(events.c.payload["machine"].as_boolean(), sa.false()) == sa.false()


def _new_recipient_columns(first_at: datetime) -> list[sa.ColumnElement[Any]]:
    """The constant columns of a new recipient row, for an INSERT … SELECT."""
    stamp = sa.literal(first_at, campaign_recipients.c.next_send_at.type)
    return [
        sa.literal(RecipientState.ACTIVE.value).label("state"),
        sa.literal(1).label("next_stage"),
        stamp.label("next_send_at"),
        sa.literal(0).label("auto_replies"),
        sa.literal("").label("stop_reason"),
        sa.literal(first_at, campaign_recipients.c.updated_at.type).label("updated_at"),
    ]
