"""Billing runs with Polar: its API answered by a loopback stand-in, its webhook secret and
products set, on a clock the tests move."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from mailmark.bootstrap import Listeners, Services
from mailmark.config import Settings
from tests.support.clock import SettableClock
from tests.support.polar import PRODUCTS, SECRET, START, Customer, polar_answer
from tests.support.viewers import viewer_of
from tests.support.webhook_receiver import Receiver
from tests.web.api.conftest import client


@pytest.fixture
def clock() -> SettableClock:
    return SettableClock(START)


@pytest.fixture
async def polar_api() -> AsyncIterator[Receiver]:
    server = Receiver(answer=polar_answer)
    await server.start()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
def settings(settings: Settings, polar_api: Receiver) -> Settings:
    return settings.model_copy(
        update={
            "billing": "polar",
            "polar_access_token": SecretStr("polar_oat_test_token"),
            "polar_webhook_secret": SecretStr(SECRET),
            "polar_base_url": f"http://127.0.0.1:{polar_api.port}",
            "polar_product_starter": PRODUCTS["starter"],
            "polar_product_pro": PRODUCTS["pro"],
            "polar_product_business": PRODUCTS["business"],
        }
    )


@pytest.fixture
async def customer(services: Services, listeners: Listeners) -> AsyncIterator[Customer]:
    await services.accounts.create("trialco", owner_email="owner@trial.test", password="pw-123456")
    await services.domains.add("trial.test", account_name="trialco", trust=True)
    await services.mailboxes.create("hi@trial.test")
    key = await services.api_keys.create("trial.test", name="tests")
    async with client(listeners.http_port, key.secret) as api:
        found = Customer(services, listeners, await viewer_of(services, "owner@trial.test"), api)
        try:
            yield found
        finally:
            await found.web.aclose()
