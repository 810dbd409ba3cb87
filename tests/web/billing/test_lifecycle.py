"""The plan lifecycle on an injected clock, driven the way it is in production: sends through
/v1/send over HTTP, Polar's webhooks signed with the real Standard Webhooks library and posted to
the running server, and Polar's API answered by a loopback stand-in that records each call."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from mailmark.bootstrap import Services
from mailmark.core.errors import Conflict, QuotaExceeded
from mailmark.core.plans import PAUSED_TEXT, TRIAL_ENDED_TEXT
from mailmark.storage.tables import billing_events
from tests.support.clock import SettableClock
from tests.support.polar import (
    PRODUCTS,
    START,
    Customer,
    pay_for,
    subscription_data,
    subscription_event,
)
from tests.support.web import ApiClient
from tests.support.webhook_receiver import Receiver
from tests.web.api.conftest import assert_error


async def test_trial_expiry_pauses_sending_and_payment_resumes(
    customer: Customer, clock: SettableClock
) -> None:
    sent = await customer.send()
    assert sent.status_code == 200, sent.text
    assert await customer.state() == ("trial", "starter")

    clock.advance(timedelta(days=7))
    refused = await customer.send()
    assert assert_error(refused, 403, "account_paused") == TRIAL_ENDED_TEXT
    assert (await customer.state())[0] == "paused"

    await pay_for(customer, "pro", clock.now(), clock.now() + timedelta(days=31))
    assert await customer.state() == ("active", "pro")
    resumed = await customer.send()
    assert resumed.status_code == 200, resumed.text


async def test_usage_is_one_row_counted_with_each_send_and_reset_each_month(
    customer: Customer, clock: SettableClock
) -> None:
    assert (await customer.send()).status_code == 200
    response = await customer.api.post(
        "/v1/send",
        json={
            "from": "hi@trial.test",
            "to": ["bob@example.com", "cy@example.com"],
            "subject": "Hi",
            "text": "Hi",
        },
    )
    assert response.status_code == 200, response.text
    assert await customer.usage("2030-01") == 3

    await pay_for(customer, "starter", clock.now(), datetime(2030, 3, 7, tzinfo=UTC))
    clock.current = datetime(2030, 2, 1, 0, 0, tzinfo=UTC)
    assert (await customer.send()).status_code == 200
    assert (await customer.usage("2030-01"), await customer.usage("2030-02")) == (3, 1)
    overview = await customer.services.accounts.overview(customer.viewer)
    assert overview.usage.emails_this_month == 1

    # The quota reads the row: at the Starter limit the next send is refused with no queue
    # row behind the count.
    async with customer.services.uow() as uow:
        await uow.usage.add(customer.account_id, "2030-02", 999)
        await uow.commit()
    refused = await customer.send()
    assert assert_error(refused, 403, "quota_exceeded") == (
        "Monthly email limit reached (1000 emails). Please upgrade your plan."
    )


async def test_upgrade_is_at_once_and_a_downgrade_waits_for_the_period_end(
    customer: Customer, clock: SettableClock, polar_api: Receiver
) -> None:
    period_end = START + timedelta(days=31)
    await pay_for(customer, "pro", clock.now(), period_end)
    billing = customer.services.billing

    await billing.change_plan(customer.viewer, "business")
    upgrade = polar_api.requests[-1]
    assert (upgrade.method, upgrade.target) == ("PATCH", "/v1/subscriptions/sub_1")
    assert json.loads(upgrade.body) == {
        "product_id": PRODUCTS["business"],
        "proration_behavior": "invoice",
    }
    assert upgrade.headers["authorization"] == "Bearer polar_oat_test_token"
    assert await customer.state() == ("active", "business")

    overview = await billing.change_plan(customer.viewer, "pro")
    assert json.loads(polar_api.requests[-1].body)["proration_behavior"] == "next_period"
    assert overview.scheduled_plan == "pro" and overview.overview.plan.name == "business"

    clock.current = period_end
    assert await customer.state() == ("active", "pro")


async def test_a_downgrade_is_refused_while_the_account_is_above_the_lower_plan(
    customer: Customer, clock: SettableClock, polar_api: Receiver
) -> None:
    await pay_for(customer, "pro", clock.now(), START + timedelta(days=31))
    await customer.services.domains.add("second.test", account_name="trialco", trust=True)
    calls = len(polar_api.requests)

    with pytest.raises(QuotaExceeded) as refused:
        await customer.services.billing.change_plan(customer.viewer, "starter")

    assert refused.value.message == (
        "You cannot move to the Starter plan while your account uses 2 domains (it allows 1). "
        "Remove the extra ones first, then downgrade."
    )
    assert len(polar_api.requests) == calls  # Polar was not asked
    assert await customer.state() == ("active", "pro")


async def test_cancel_keeps_the_plan_until_the_period_end_then_pauses(
    customer: Customer, clock: SettableClock, polar_api: Receiver
) -> None:
    period_end = START + timedelta(days=31)
    await pay_for(customer, "pro", clock.now(), period_end)

    overview = await customer.services.billing.cancel(customer.viewer)
    assert json.loads(polar_api.requests[-1].body) == {"cancel_at_period_end": True}
    assert overview.cancel_at_period_end and overview.current_period_end == period_end
    clock.current = period_end - timedelta(minutes=1)
    assert await customer.state() == ("active", "pro")
    resumed = await customer.send()
    assert resumed.status_code == 200, resumed.text

    clock.current = period_end
    assert assert_error(await customer.send(), 403, "account_paused") == PAUSED_TEXT
    with pytest.raises(Conflict):
        await customer.services.billing.cancel(customer.viewer)


async def test_checkout_and_portal_go_through_polar(
    customer: Customer, clock: SettableClock, polar_api: Receiver
) -> None:
    billing = customer.services.billing
    url = await billing.checkout(
        customer.viewer, "pro", success_url="https://app.test/ok", return_url="https://app.test/b"
    )

    assert url == "https://sandbox.polar.sh/checkout/polar_c_1"
    checkout = polar_api.requests[-1]
    assert (checkout.method, checkout.target) == ("POST", "/v1/checkouts/")
    assert checkout.headers["polar-version"]
    body = json.loads(checkout.body)
    assert body["products"] == [PRODUCTS["pro"]]
    assert body["external_customer_id"] == str(customer.account_id)
    with pytest.raises(Conflict):  # nothing paid yet: no portal to show
        await billing.portal(customer.viewer, return_url="https://app.test/b")

    await pay_for(customer, "pro", clock.now(), START + timedelta(days=31))
    portal = await billing.portal(customer.viewer, return_url="https://app.test/b")
    assert portal == "https://sandbox.polar.sh/portal/cs_1"
    assert json.loads(polar_api.requests[-1].body)["external_customer_id"] == str(
        customer.account_id
    )


async def test_webhooks_replayed_reordered_duplicated_and_forged(
    customer: Customer, clock: SettableClock, services: Services
) -> None:
    period_end = START + timedelta(days=31)
    created = subscription_data(customer.account_id, modified_at=START, period_end=period_end)
    canceled = subscription_data(
        customer.account_id,
        modified_at=START + timedelta(hours=2),
        period_end=period_end,
        cancel=True,
    )

    # The newer event arrives first; the older one after it is kept but changes nothing.
    first = await customer.webhook("evt_2", subscription_event("canceled", canceled))
    assert first.status_code == 200 and first.json()["outcome"].startswith("applied")
    late = await customer.webhook("evt_1", subscription_event("created", created))
    assert late.json()["outcome"].startswith("stale")
    # A replay of an event already received (Polar retries) is acknowledged and skipped.
    again = await customer.webhook("evt_2", subscription_event("canceled", canceled))
    assert again.status_code == 200 and again.json()["outcome"].startswith("duplicate")

    forged = await customer.webhook(
        "evt_3", subscription_event("revoked", canceled), secret="polar_whs_someone_else"
    )
    assert_error(forged, 401, "invalid_signature")
    unsigned = await customer.web.post(
        "/billing/polar/webhook", content=b"{}", headers={"content-type": "application/json"}
    )
    assert_error(unsigned, 401, "invalid_signature")
    garbled = await customer.webhook("evt_4", {"type": 5})
    assert_error(garbled, 400, "invalid_input")

    billing = await services.billing.overview(customer.viewer)
    assert billing.overview.status == "active" and billing.cancel_at_period_end
    async with services.engine.connect() as conn:
        rows = (
            await conn.execute(sa.select(billing_events.c.event_id).order_by(billing_events.c.id))
        ).all()
    assert [row[0] for row in rows] == ["evt_2", "evt_1"]

    revoked = subscription_data(
        customer.account_id,
        status="canceled",
        modified_at=START + timedelta(hours=3),
        period_end=period_end,
    )
    applied = await customer.webhook("evt_5", subscription_event("revoked", revoked))
    assert applied.json()["outcome"] == "applied: paused on pro"
    assert assert_error(await customer.send(), 403, "account_paused") == PAUSED_TEXT


async def test_the_billing_routes_need_the_session_and_its_csrf_token(
    customer: Customer, polar_api: Receiver
) -> None:
    async with ApiClient(f"http://127.0.0.1:{customer.listeners.http_port}") as owner:
        await owner.signed_in("owner@trial.test", "pw-123456")
        shown = await owner.get("/api/billing")
        assert shown.status_code == 200, shown.text
        assert shown.json()["enabled"] is True
        assert shown.json()["account"]["status"] == "trial"
        assert [(p["plan"]["name"], p["priceCents"]) for p in shown.json()["plans"]] == [
            ("starter", 1000),
            ("pro", 5000),
            ("business", 10000),
        ]

        calls = len(polar_api.requests)
        forged = await owner.post("/api/billing/checkout", json={"plan": "pro"}, csrf=False)
        assert_error(forged, 403, "csrf_failed")
        assert len(polar_api.requests) == calls  # refused before Polar was asked

        checkout = await owner.post("/api/billing/checkout", json={"plan": "pro"})
        assert checkout.status_code == 200, checkout.text
        assert checkout.json() == {"url": "https://sandbox.polar.sh/checkout/polar_c_1"}
        sent = json.loads(polar_api.requests[-1].body)
        assert sent["success_url"].endswith("/dashboard/billing?checkout=done")

        unknown = await owner.post("/api/billing/plan", json={"plan": "gold"})
        assert unknown.status_code == 400
        not_yet = await owner.post("/api/billing/plan", json={"plan": "business"})
        assert_error(not_yet, 409, "conflict")


async def test_the_operator_resumes_a_plan_that_lapsed_after_a_cancel(
    customer: Customer, clock: SettableClock
) -> None:
    period_end = START + timedelta(days=31)
    await pay_for(customer, "pro", clock.now(), period_end)
    await customer.services.billing.cancel(customer.viewer)
    clock.current = period_end + timedelta(days=1)
    assert (await customer.state())[0] == "paused"

    overview, _ = await customer.services.accounts.resume("trialco")

    assert (overview.status, overview.plan.name) == ("active", "pro")
    assert not (await customer.services.billing.overview(customer.viewer)).cancel_at_period_end
    resumed = await customer.send()
    assert resumed.status_code == 200, resumed.text
