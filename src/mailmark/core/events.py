"""Recording events, and fanning each out to the webhooks subscribed to it.

Every writer of events calls `record_events` in its unit of work: the events and the webhook
deliveries they fan out to commit or roll back together, so an event committed is an event its
webhooks will be sent, whatever crashes afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence

from mailmark.core.ports import NewEvent, NewWebhookDelivery, UnitOfWork, WebhookSubscription
from mailmark.core.webhooks import public_event_type


async def record_events(uow: UnitOfWork, events: Sequence[NewEvent]) -> None:
    """Write the events and one pending webhook delivery per (event, subscribed webhook)."""
    if not events:
        return
    ids = await uow.events.add_many(events)
    public = [
        (event, event_id)
        for event, event_id in zip(events, ids, strict=True)
        if public_event_type(event.type) is not None
    ]
    if not public:
        return
    # With no webhook on the events' accounts (the common case on the mail paths) this is all.
    hooks = await uow.webhooks.subscriptions(sorted({event.account_id for event, _ in public}))
    if not hooks:
        return
    # An event about sent mail names its outbound message; the message's domain is the event's.
    domain_of_outbound = await uow.outbound.domains_of(
        [e.outbound_id for e, _ in public if e.domain_id is None and e.outbound_id is not None]
    )
    deliveries: list[NewWebhookDelivery] = []
    for event, event_id in public:
        domain_id = event.domain_id
        if domain_id is None and event.outbound_id is not None:
            domain_id = domain_of_outbound.get(event.outbound_id)
        deliveries.extend(
            NewWebhookDelivery(hook.webhook_id, event_id, event.created_at)
            for hook in hooks
            if _subscribed(hook, event.type, domain_id)
        )
    await uow.webhook_deliveries.add_many(deliveries)


def _subscribed(hook: WebhookSubscription, event_type: str, domain_id: int | None) -> bool:
    """A webhook is sent its own domain's events of the types it asked for."""
    return hook.domain_id == domain_id and public_event_type(event_type) in hook.events
