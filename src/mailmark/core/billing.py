"""The plan lifecycle: trial → paid plan → cancelled at the period end → paused → resumed on
payment (PRODUCT.md "Pricing & Plans", "Billing & Subscriptions").

Plans are paid through a `PaymentProvider` (Polar) when the installation sells them; without one
the operator sets plans (`mailmark account plan`). The provider's webhook events drive the
account: each is kept once by its id, and an event about a subscription older than the last one
applied is kept but changes nothing, so replays and late deliveries never roll an account back.

A paused account keeps everything it has: its domains, mailboxes, stored mail, API keys,
webhooks, team and settings. Mail is still received, filtered and read (IMAP, webmail, API), and
delivery events still reach its webhooks. It cannot send: new mail is refused with the product's
text, and mail already queued is held until a plan is paid for (core/queue.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from mailmark.core.access import Viewer, require_manager
from mailmark.core.accounts import AccountOverview, AccountService
from mailmark.core.affiliates import PaidOrder, record_order
from mailmark.core.errors import Conflict, InvalidInput, NotFound, QuotaExceeded
from mailmark.core.model import Account
from mailmark.core.plans import PLANS, Plan, plan_named, settled
from mailmark.core.ports import Clock, PaymentProvider, UnitOfWork, UnitOfWorkFactory
from mailmark.core.states import AccountStatus

# The plans a customer pays for, cheapest first: moving right is an upgrade.
PAID_PLANS = ("starter", "pro", "business")
# PRODUCT.md "Pricing & Plans": the monthly price in cents (Polar's products charge it; the
# billing page shows it).
MONTHLY_PRICE_CENTS = {"starter": 1000, "pro": 5000, "business": 10000}
BILLING_OFF_TEXT = (
    "Billing is off on this server: its operator sets each account's plan "
    "(`mailmark account plan`)."
)
# The provider's subscription states that pay for a plan; "past_due" keeps the plan while the
# provider retries the card, and the rest end it.
PAYING_STATES = ("active", "trialing", "past_due")
ENDED_STATES = ("canceled", "unpaid", "incomplete_expired")


@dataclass(frozen=True)
class SubscriptionSnapshot:
    """What a provider event says about one subscription, in our terms."""

    subscription_id: str
    customer_id: str | None
    account_ref: str | None  # the account id as text, as checkout told the provider
    plan: str | None  # None: a product this installation does not sell
    status: str
    current_period_end: datetime | None
    cancel_at_period_end: bool
    modified_at: datetime  # the ordering stamp: an older snapshot never overrides a newer one


@dataclass(frozen=True)
class BillingEvent:
    """One verified provider webhook: its id (replays share it), type and raw body."""

    event_id: str
    event_type: str
    occurred_at: datetime
    payload: str
    subscription: SubscriptionSnapshot | None
    revoked: bool = False  # the subscription ended now, whatever its period says
    order: PaidOrder | None = None  # a paid (or refunded) order: affiliate commissions


@dataclass(frozen=True)
class BillingOverview:
    overview: AccountOverview
    billing_enabled: bool
    current_period_end: datetime | None
    cancel_at_period_end: bool
    scheduled_plan: str | None


def downgrade_refusal(target: Plan, domains: int, mailboxes: int) -> str | None:
    """Why the account cannot move down to `target` yet (it uses more than the plan allows)."""
    over: list[str] = []
    if target.domains is not None and domains > target.domains:
        over.append(f"{domains} domains (it allows {target.domains})")
    if target.mailboxes is not None and mailboxes > target.mailboxes:
        over.append(f"{mailboxes} mailboxes (it allows {target.mailboxes})")
    if not over:
        return None
    return (
        f"You cannot move to the {target.name.title()} plan while your account uses "
        f"{' and '.join(over)}. Remove the extra ones first, then downgrade."
    )


def apply_subscription(account: Account, event: BillingEvent) -> Account:
    """The account as the subscription in `event` leaves it."""
    snapshot = event.subscription
    assert snapshot is not None
    account = replace(
        account,
        subscription_id=snapshot.subscription_id,
        billing_customer_id=snapshot.customer_id or account.billing_customer_id,
        subscription_modified_at=snapshot.modified_at,
    )
    if event.revoked or snapshot.status in ENDED_STATES:
        return replace(
            account,
            status=AccountStatus.PAUSED,
            cancel_at_period_end=False,
            scheduled_plan=None,
            current_period_end=snapshot.current_period_end,
        )
    if snapshot.status not in PAYING_STATES:  # "incomplete": not paid yet, nothing changes
        return account
    plan = snapshot.plan or account.plan
    return replace(
        account,
        status=AccountStatus.ACTIVE,
        plan=plan,
        trial_ends_at=None,
        current_period_end=snapshot.current_period_end,
        cancel_at_period_end=snapshot.cancel_at_period_end,
        scheduled_plan=None if account.scheduled_plan == plan else account.scheduled_plan,
    )


class BillingService:
    """What an account's owner or admin does with its plan, and the provider's events."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        accounts: AccountService,
        provider: PaymentProvider | None,
        *,
        wake_queue: Callable[[], None] = lambda: None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._accounts = accounts
        self._provider = provider
        self._wake_queue = wake_queue

    @property
    def enabled(self) -> bool:
        return self._provider is not None

    async def overview(self, viewer: Viewer) -> BillingOverview:
        """Any member may see the plan, its period and this month's usage."""
        overview = await self._accounts.overview(viewer)
        account = settled(overview.account, self._clock.now())
        return BillingOverview(
            overview,
            self.enabled,
            account.current_period_end,
            account.cancel_at_period_end,
            account.scheduled_plan,
        )

    async def checkout(
        self, viewer: Viewer, plan: str, *, success_url: str, return_url: str
    ) -> str:
        """Where to pay for `plan`: the account becomes active on it when the provider says the
        subscription is paid (a webhook), never on the browser's return."""
        require_manager(viewer, "choose a plan")
        provider = self._require_provider()
        chosen = _paid_plan(plan)
        account = await self._current(viewer.account_id)
        if account.status == AccountStatus.ACTIVE and account.subscription_id is not None:
            raise Conflict(
                "This account already pays for a plan: change that plan instead.", field="plan"
            )
        return await provider.checkout_url(
            chosen.name,
            account_ref=str(viewer.account_id),
            email=viewer.email,
            success_url=success_url,
            return_url=return_url,
        )

    async def portal(self, viewer: Viewer, *, return_url: str) -> str:
        """The provider's page for the account's card and invoices."""
        require_manager(viewer, "manage billing")
        provider = self._require_provider()
        account = await self._current(viewer.account_id)
        if account.billing_customer_id is None:
            raise Conflict("This account has not paid for a plan yet: there is nothing to show.")
        return await provider.portal_url(account_ref=str(viewer.account_id), return_url=return_url)

    async def change_plan(self, viewer: Viewer, plan: str) -> BillingOverview:
        """Upgrades take effect at once (the provider prorates); downgrades at the end of the
        paid period, refused while the account uses more than the lower plan allows."""
        require_manager(viewer, "change the plan")
        provider = self._require_provider()
        target = _paid_plan(plan)
        account = await self._current(viewer.account_id)
        if account.status != AccountStatus.ACTIVE or account.subscription_id is None:
            raise Conflict("Choose a plan through checkout first.", field="plan")
        current = plan_named(account.plan)
        if target.name == current.name:
            if account.scheduled_plan is None:
                raise Conflict(f"The account is already on the {target.name.title()} plan.")
            await provider.change_plan(account.subscription_id, target.name, at_once=False)
            await self._save(viewer.account_id, lambda a: replace(a, scheduled_plan=None))
        elif _rank(target.name) > _rank(current.name):
            await provider.change_plan(account.subscription_id, target.name, at_once=True)
            await self._save(
                viewer.account_id, lambda a: replace(a, plan=target.name, scheduled_plan=None)
            )
        else:
            async with self._uow(read_only=True) as uow:
                domains = await uow.domains.count_for_account(viewer.account_id)
                mailboxes = await uow.mailboxes.count_for_account(viewer.account_id)
            refusal = downgrade_refusal(target, domains, mailboxes)
            if refusal is not None:
                raise QuotaExceeded(refusal, field="plan")
            await provider.change_plan(account.subscription_id, target.name, at_once=False)
            await self._save(viewer.account_id, lambda a: replace(a, scheduled_plan=target.name))
        return await self.overview(viewer)

    async def cancel(self, viewer: Viewer, *, cancel: bool = True) -> BillingOverview:
        """Cancel at the end of the paid period (the plan is kept until then), or undo that."""
        require_manager(viewer, "cancel the plan")
        provider = self._require_provider()
        account = await self._current(viewer.account_id)
        if account.status != AccountStatus.ACTIVE or account.subscription_id is None:
            raise Conflict("This account does not pay for a plan.")
        if account.cancel_at_period_end == cancel:
            raise Conflict(
                "The plan is already cancelled." if cancel else "The plan is not cancelled."
            )
        await provider.set_cancel_at_period_end(account.subscription_id, cancel)
        await self._save(viewer.account_id, lambda a: replace(a, cancel_at_period_end=cancel))
        return await self.overview(viewer)

    async def handle_event(self, event: BillingEvent) -> str:
        """Keep the event (once by its id) and apply it in the same transaction; what it did."""
        now = self._clock.now()
        released = 0
        async with self._uow() as uow:
            if not await uow.billing_events.add(
                event.event_id, event.event_type, event.occurred_at, now, event.payload
            ):
                return "duplicate: already received"
            outcome, released = await self._apply(uow, event, now)
            if event.order is not None:
                commissions = await record_order(uow, event.order, now)
                if commissions:
                    outcome = f"{outcome}; affiliate {commissions}"
            await uow.billing_events.set_outcome(event.event_id, outcome)
            await uow.commit()
        if released:
            self._wake_queue()
        return outcome

    async def _apply(self, uow: UnitOfWork, event: BillingEvent, now: datetime) -> tuple[str, int]:
        snapshot = event.subscription
        if snapshot is None:
            return "recorded", 0
        account = await uow.accounts.get_by_subscription(snapshot.subscription_id)
        if account is None and snapshot.account_ref is not None and snapshot.account_ref.isdigit():
            account = await uow.accounts.get(int(snapshot.account_ref))
        if account is None or account.id is None:
            return "ignored: no account for this subscription", 0
        await uow.accounts.lock(account.id)
        account = await uow.accounts.get(account.id)
        assert account is not None and account.id is not None
        last = account.subscription_modified_at
        if last is not None and snapshot.modified_at < last:
            return f"stale: the subscription changed later ({last.isoformat()})", 0
        if snapshot.plan is None and snapshot.status in PAYING_STATES:
            return "ignored: a product this server does not sell", 0
        updated = apply_subscription(settled(account, now), event)
        await uow.accounts.save_lifecycle(updated)
        released = 0
        if updated.status != AccountStatus.PAUSED:
            released = await uow.deliveries.release_held(account.id, now)
        return f"applied: {updated.status} on {updated.plan}", released

    async def _current(self, account_id: int) -> Account:
        async with self._uow(read_only=True) as uow:
            account = await uow.accounts.get(account_id)
        if account is None:
            raise NotFound("No such account.")
        return settled(account, self._clock.now())

    async def _save(self, account_id: int, change: Callable[[Account], Account]) -> None:
        """Apply `change` to the settled account under its lock, releasing held mail when it
        may send."""
        now = self._clock.now()
        async with self._uow() as uow:
            await uow.accounts.lock(account_id)
            account = await uow.accounts.get(account_id)
            if account is None:
                raise NotFound("No such account.")
            updated = change(settled(account, now))
            await uow.accounts.save_lifecycle(updated)
            released = 0
            if updated.status != AccountStatus.PAUSED:
                released = await uow.deliveries.release_held(account_id, now)
            await uow.commit()
        if released:
            self._wake_queue()

    def _require_provider(self) -> PaymentProvider:
        if self._provider is None:
            raise Conflict(BILLING_OFF_TEXT)
        return self._provider


def _paid_plan(name: str) -> Plan:
    if name not in PAID_PLANS:
        raise InvalidInput(
            f"Unknown plan {name!r}; choose one of {', '.join(PAID_PLANS)}.", field="plan"
        )
    return PLANS[name]


def _rank(name: str) -> int:
    return PAID_PLANS.index(name) if name in PAID_PLANS else len(PAID_PLANS)
