"""Webhooks: the URLs a domain registered to be sent its events, and which events each wants."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from mailmark.core.model import Webhook
from mailmark.core.ports import WebhookSubscription
from mailmark.storage.sql import Repository
from mailmark.storage.tables import webhooks


def _webhook(row: Any) -> Webhook:
    values = dict(row._mapping)
    values["events"] = tuple(values["events"])
    return Webhook(**values)


class SqlWebhooks(Repository):
    async def add(self, webhook: Webhook) -> Webhook:
        values: dict[str, Any] = {
            "account_id": webhook.account_id,
            "domain_id": webhook.domain_id,
            "url": webhook.url,
            "events": list(webhook.events),
            "secret": webhook.secret,
            "created_at": webhook.created_at,
        }
        return dataclasses.replace(webhook, id=await self._insert(webhooks, values))

    async def get(self, webhook_id: int) -> Webhook | None:
        row = (
            await self._conn.execute(webhooks.select().where(webhooks.c.id == webhook_id))
        ).first()
        return _webhook(row) if row else None

    async def list_for_domain(self, domain_id: int) -> list[Webhook]:
        query = webhooks.select().where(webhooks.c.domain_id == domain_id).order_by(webhooks.c.id)
        return [_webhook(row) for row in await self._conn.execute(query)]

    async def delete(self, webhook_id: int) -> None:
        await self._conn.execute(webhooks.delete().where(webhooks.c.id == webhook_id))

    async def set_secret(self, webhook_id: int, secret: str) -> None:
        await self._conn.execute(
            webhooks.update().where(webhooks.c.id == webhook_id).values(secret=secret)
        )

    async def subscriptions(self, account_ids: Sequence[int]) -> list[WebhookSubscription]:
        # One indexed SELECT: with no webhook on the accounts (the common case on the mail
        # paths) it is all that recording events costs the webhooks.
        query = sa.select(webhooks.c.id, webhooks.c.domain_id, webhooks.c.events).where(
            webhooks.c.account_id.in_(account_ids)
        )
        return [
            WebhookSubscription(row.id, row.domain_id, tuple(row.events))
            for row in await self._conn.execute(query)
        ]
