"""The affiliate program end to end on an injected clock: an application reviewed by the operator
over /api, the referral link followed by a real HTTP client that keeps its cookies, the sign-up
that records the attribution, Polar's signed order events turned into commissions and clawbacks,
and the monthly statements with the $50 minimum."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from mailmark.bootstrap import Listeners, Services
from mailmark.config import Settings
from mailmark.core.affiliates import ATTRIBUTION_WINDOW
from mailmark.storage.tables import affiliate_ledger, affiliates, referrals
from tests.support.clock import SettableClock
from tests.support.polar import START, order_event, post_webhook
from tests.support.web import ApiClient
from tests.web.api.conftest import assert_error

OPERATOR = ("op@host.test", "operator-pass-1")
PARTNER = ("pat@partner.test", "partner-pass-1")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"signup": "open"})


@dataclass
class Program:
    services: Services
    base_url: str
    operator: ApiClient
    partner: ApiClient
    code: str

    def browser(self) -> ApiClient:
        """A new visitor: no cookies yet."""
        return ApiClient(self.base_url)

    async def sign_up(self, browser: ApiClient, name: str, email: str) -> int:
        await browser.session()
        created = await browser.post(
            "/api/auth/sign-up",
            json={
                "accountName": name,
                "name": name.title(),
                "email": email,
                "password": "pw-12345678",
            },
        )
        assert created.status_code == 201, created.text
        async with self.services.uow(read_only=True) as uow:
            account = await uow.accounts.get_by_name(name)
        assert account is not None and account.id is not None
        return account.id

    async def referred_by(self, account_id: int) -> int | None:
        async with self.services.uow(read_only=True) as uow:
            return await uow.affiliates.referral_of(account_id)

    async def pays(self, event_id: str, document: dict[str, Any]) -> str:
        async with httpx.AsyncClient(base_url=self.base_url, trust_env=False) as polar:
            response = await post_webhook(polar, event_id, document)
        assert response.status_code == 200, response.text
        outcome: str = response.json()["outcome"]
        return outcome

    async def sign_in_again(self) -> None:
        """After the clock jumped past the sessions' lifetime."""
        await self.operator.signed_in(*OPERATOR)
        await self.partner.signed_in(*PARTNER)

    async def dashboard(self) -> dict[str, Any]:
        shown = await self.partner.get("/api/affiliates")
        assert shown.status_code == 200, shown.text
        dashboard: dict[str, Any] = shown.json()["dashboard"]
        return dashboard


@pytest.fixture
async def program(services: Services, listeners: Listeners) -> AsyncIterator[Program]:
    """The operator's account (the server's first), and a partner account whose application the
    operator approved over /api."""
    await services.accounts.create(
        "hostco", owner_email=OPERATOR[0], password=OPERATOR[1], plan="unlimited"
    )
    await services.accounts.create("partnerco", owner_email=PARTNER[0], password=PARTNER[1])
    base_url = f"http://127.0.0.1:{listeners.http_port}"
    async with ApiClient(base_url) as operator, ApiClient(base_url) as partner:
        await operator.signed_in(*OPERATOR)
        await partner.signed_in(*PARTNER)
        applied = await partner.post(
            "/api/affiliates/application",
            json={"website": "https://partner.test/blog", "pitch": "I review email hosts."},
        )
        assert applied.status_code == 201, applied.text
        application = applied.json()["application"]
        assert application["status"] == "pending" and applied.json()["dashboard"] is None

        listed = await operator.get("/api/affiliates/applications")
        assert [a["account"] for a in listed.json()] == ["partnerco"]
        assert listed.json()[0]["email"] == PARTNER[0]
        approved = await operator.post(f"/api/affiliates/applications/{application['id']}/approve")
        assert approved.status_code == 200, approved.text
        assert approved.json()["status"] == "approved"
        again = await operator.post(f"/api/affiliates/applications/{application['id']}/reject")
        assert_error(again, 409, "conflict")

        link = (await partner.get("/api/affiliates")).json()["dashboard"]["link"]
        assert link.startswith(f"{services.settings.public_url}/r/")
        yield Program(services, base_url, operator, partner, link.rpartition("/")[2])


async def test_a_referred_sign_up_pays_and_the_dashboard_shows_it(
    program: Program, clock: SettableClock
) -> None:
    async with program.browser() as visitor:
        followed = await visitor.http.get(f"/r/{program.code}")
        assert followed.status_code == 302 and followed.headers["location"] == "/sign-up"
        cookie = followed.headers["set-cookie"]
        assert "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
        assert f"Max-Age={int(ATTRIBUTION_WINDOW.total_seconds())}" in cookie
        assert "Secure" not in cookie  # plain http here; over https the cookie is Secure
        customer = await program.sign_up(visitor, "newco", "ceo@newco.test")
        assert "mailmark_ref" not in visitor.http.cookies  # spent by the sign-up

    async with program.services.uow(read_only=True) as uow:
        affiliate = await uow.affiliates.get_by_code(program.code)
    assert affiliate is not None
    assert await program.referred_by(customer) == affiliate.id

    outcome = await program.pays(
        "evt_o1", order_event("paid", "ord_1", customer, amount=5000, at=clock.now())
    )
    assert outcome.endswith("affiliate commission 1500")
    # Polar sends order.updated for the same order: the commission is not recorded twice.
    again = await program.pays(
        "evt_o1b", order_event("updated", "ord_1", customer, amount=5000, at=clock.now())
    )
    assert "affiliate" not in again

    dashboard = await program.dashboard()
    assert {k: dashboard[k] for k in ("clicks", "signups", "payingCustomers")} == {
        "clicks": 1,
        "signups": 1,
        "payingCustomers": 1,
    }
    assert (dashboard["earnedCents"], dashboard["pendingCents"], dashboard["paidCents"]) == (
        1500,
        1500,
        0,
    )


async def test_commissions_over_a_year_with_a_refund_and_statements_on_the_15th(
    program: Program, clock: SettableClock
) -> None:
    async with program.browser() as visitor:
        await visitor.http.get(f"/r/{program.code}")
        customer = await program.sign_up(visitor, "yearco", "ceo@yearco.test")
    affiliates_service = program.services.affiliates

    # Pro ($50) every month from January 2030: $15 each, the March one refunded in April.
    for month in range(1, 13):
        paid_at = datetime(2030, month, 7, 9, tzinfo=UTC)
        clock.current = paid_at
        await program.pays(
            f"evt_{month}", order_event("paid", f"ord_{month}", customer, amount=5000, at=paid_at)
        )
        if month == 4:
            refund = order_event(
                "refunded", "ord_3", customer, amount=5000, refunded=5000, at=START
            )
            assert (await program.pays("evt_refund", refund)).endswith("affiliate clawback 1500")
            assert "affiliate" not in await program.pays("evt_refund_again", refund)

    # Nothing closes before the 15th of the month after.
    clock.current = datetime(2030, 2, 14, 23, 59, tzinfo=UTC)
    assert await affiliates_service.close_statements() == 0

    clock.current = datetime(2031, 1, 15, tzinfo=UTC)
    assert await affiliates_service.close_statements() == 12
    assert await affiliates_service.close_statements() == 0  # idempotent
    await program.sign_in_again()

    statements = {s["month"]: s for s in (await program.dashboard())["statements"]}
    paid = {month: s["payoutCents"] for month, s in statements.items()}
    # Jan 1500, Feb 3000, Mar 4500: below $50, rolled over; April 6000 - 1500 (March refunded)
    # = 4500 rolled over; May 6000 paid; then 1500, 3000, 4500, 6000 paid in September...
    assert paid == {
        "2030-01": 0,
        "2030-02": 0,
        "2030-03": 0,
        "2030-04": 0,
        "2030-05": 6000,
        "2030-06": 0,
        "2030-07": 0,
        "2030-08": 0,
        "2030-09": 6000,
        "2030-10": 0,
        "2030-11": 0,
        "2030-12": 0,
    }
    april = statements["2030-04"]
    assert (april["openingCents"], april["earnedCents"], april["balanceCents"]) == (4500, 0, 4500)
    assert statements["2030-05"]["payableOn"] == "2030-06-15"
    december = statements["2030-12"]
    assert december["balanceCents"] == 4500 and december["payoutCents"] == 0

    dashboard = await program.dashboard()
    assert dashboard["earnedCents"] == 11 * 1500
    assert dashboard["paidCents"] == 12000
    assert dashboard["pendingCents"] == 11 * 1500 - 12000

    # The ledger only grew: one row per commission, the clawback and each payout.
    async with program.services.engine.connect() as conn:
        kinds = (
            await conn.execute(
                sa.select(affiliate_ledger.c.kind, sa.func.count()).group_by(
                    affiliate_ledger.c.kind
                )
            )
        ).all()
        amounts = (await conn.execute(sa.select(affiliate_ledger.c.amount_cents))).scalars().all()
    assert dict(kinds) == {"commission": 12, "clawback": 1, "payout": 2}
    assert all(isinstance(amount, int) for amount in amounts)

    payouts = await program.operator.get("/api/affiliates/payouts", params={"month": "2030-09"})
    assert [(p["code"], p["amountCents"], p["payableOn"]) for p in payouts.json()] == [
        (program.code, 6000, "2030-10-15")
    ]


async def test_attribution_keeps_the_first_touch_for_90_days_and_refuses_self_referral(
    program: Program, clock: SettableClock, services: Services
) -> None:
    await services.accounts.create("rivalco", owner_email="r@rival.test", password="rival-pass-1")
    async with program.browser() as rival:
        await rival.signed_in("r@rival.test", "rival-pass-1")
        rival_app = await rival.post(
            "/api/affiliates/application",
            json={"website": "https://rival.test", "pitch": "Deals."},
        )
        await program.operator.post(
            f"/api/affiliates/applications/{rival_app.json()['application']['id']}/approve"
        )
        rival_code = (
            (await rival.get("/api/affiliates")).json()["dashboard"]["link"].rpartition("/")[2]
        )

    # The affiliate itself, signed in, following its own link and opening another account.
    await program.partner.http.get(f"/r/{program.code}")
    own = await program.sign_up(program.partner, "sideco", "someone@side.test")
    assert await program.referred_by(own) is None

    # The same person under a +tag of the affiliate's owner address.
    async with program.browser() as tagged:
        await tagged.http.get(f"/r/{program.code}")
        also_own = await program.sign_up(tagged, "tagco", "Pat+side@partner.test")
    assert await program.referred_by(also_own) is None

    # First touch: the partner's link, then the rival's; the sign-up goes to the partner.
    async with program.browser() as visitor:
        await visitor.http.get(f"/r/{program.code}")
        clock.advance(timedelta(days=30))
        second = await visitor.http.get(f"/r/{rival_code}")
        assert "set-cookie" not in second.headers
        first = await program.sign_up(visitor, "firstco", "a@first.test")
    async with services.uow(read_only=True) as uow:
        partner = await uow.affiliates.get_by_code(program.code)
    assert partner is not None and await program.referred_by(first) == partner.id

    # A cookie older than 90 days attributes nothing (the browser drops it too: Max-Age).
    async with program.browser() as late:
        await late.http.get(f"/r/{program.code}")
        clock.advance(ATTRIBUTION_WINDOW + timedelta(minutes=1))
        unattributed = await program.sign_up(late, "lateco", "b@late.test")
    assert await program.referred_by(unattributed) is None

    # An unknown code redirects the same way and sets nothing.
    async with program.browser() as stranger:
        unknown = await stranger.http.get("/r/zzzzzzzz")
        assert unknown.status_code == 302 and "set-cookie" not in unknown.headers


async def test_payout_method_is_sealed_and_the_operator_alone_exports_payouts(
    program: Program, clock: SettableClock, services: Services
) -> None:
    bank = '=HYPERLINK("x") Pat Doe, IBAN DE89370400440532013000, BIC COBADEFFXXX'
    saved = await program.partner.put(
        "/api/affiliates/payout-method", json={"method": "bank", "bankDetails": bank}
    )
    assert saved.status_code == 200, saved.text
    dashboard = saved.json()["dashboard"]
    assert dashboard["payoutMethod"] == "bank" and dashboard["hasBankDetails"] is True
    assert bank not in saved.text  # never sent back
    async with services.engine.connect() as conn:
        stored = await conn.scalar(sa.select(sa.type_coerce(affiliates.c.bank_details, sa.Text)))
    assert stored.startswith("enc:v1:") and "DE89" not in stored

    refused = await program.partner.put(
        "/api/affiliates/payout-method", json={"method": "paypal", "paypalEmail": "not an address"}
    )
    assert refused.status_code == 400

    async with program.browser() as visitor:
        await visitor.http.get(f"/r/{program.code}")
        customer = await program.sign_up(visitor, "bigco", "ceo@bigco.test")
    await program.pays(
        "evt_b1",
        order_event("paid", "ord_b1", customer, amount=20000, at=clock.now(), plan="business"),
    )
    clock.current = datetime(2030, 2, 15, tzinfo=UTC)
    await services.affiliates.close_statements()
    await program.sign_in_again()

    for forbidden in (
        await program.partner.get("/api/affiliates/payouts.csv", params={"month": "2030-01"}),
        await program.partner.get("/api/affiliates/applications"),
        await program.partner.get("/api/operator/accounts"),
    ):
        assert_error(forbidden, 403, "forbidden")
    exported = await program.operator.get(
        "/api/affiliates/payouts.csv", params={"month": "2030-01"}
    )
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"].startswith("text/csv")
    assert 'filename="payouts-2030-01.csv"' in exported.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(r["affiliate"], r["amount"], r["method"], r["payable_on"]) for r in rows] == [
        (program.code, "60.00", "bank", "2030-02-15")
    ]
    assert rows[0]["bank_details"] == "'" + bank  # a formula is shown as text, not run
    bad_month = await program.operator.get("/api/affiliates/payouts", params={"month": "2030-13"})
    assert_error(bad_month, 400, "invalid_input", "month")

    accounts = await program.operator.get("/api/operator/accounts")
    # A month on, the trials have ended.
    assert {a["name"]: a["status"] for a in accounts.json()} == {
        "bigco": "paused",
        "hostco": "active",
        "partnerco": "paused",
    }
    assert (await program.operator.get("/api/operator")).json() == {
        "operator": True,
        "affiliateProgram": True,
    }
    assert (await program.partner.get("/api/operator")).json()["operator"] is False


async def test_money_is_integer_cents_and_refunds_are_clawed_back_in_parts(
    program: Program, clock: SettableClock
) -> None:
    async with program.browser() as visitor:
        await visitor.http.get(f"/r/{program.code}")
        customer = await program.sign_up(visitor, "partco", "ceo@partco.test")
    async with httpx.AsyncClient(base_url=program.base_url, trust_env=False) as polar:
        floated = await post_webhook(
            polar, "evt_f", order_event("paid", "ord_f", customer, amount=50.0, at=clock.now())
        )
    assert_error(floated, 400, "invalid_input")

    # $10 paid: $3 earned; $4 then $10 refunded: $1.20 then the remaining $1.80 taken back.
    await program.pays(
        "evt_p", order_event("paid", "ord_p", customer, amount=1000, at=clock.now(), plan="starter")
    )
    partial = order_event(
        "refunded", "ord_p", customer, amount=1000, refunded=400, at=clock.now(), plan="starter"
    )
    assert (await program.pays("evt_r1", partial)).endswith("clawback 120")
    whole = order_event(
        "refunded", "ord_p", customer, amount=1000, refunded=1000, at=clock.now(), plan="starter"
    )
    assert (await program.pays("evt_r2", whole)).endswith("clawback 180")
    dashboard = await program.dashboard()
    assert (dashboard["earnedCents"], dashboard["payingCustomers"]) == (0, 1)

    async with program.services.engine.connect() as conn:
        attributed = await conn.scalar(sa.select(sa.func.count()).select_from(referrals))
    assert attributed == 1
