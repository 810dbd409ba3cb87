"""Session lifetimes with a clock the test moves: idle expiry (14 days), absolute expiry (30
days), last-seen written at most once a minute, the pending two-factor step's 5 minutes, and
sign-up when the setting opens it."""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
import sqlalchemy as sa

from mailmark.bootstrap import Listeners
from mailmark.config import Settings
from mailmark.core.ports import Clock
from mailmark.storage.tables import sessions
from tests.support.clock import SettableClock
from tests.support.web import OWNER_EMAIL, OWNER_PASSWORD, ApiClient, api_url
from tests.support.world import World
from tests.web.api.conftest import assert_error


@pytest.fixture
def clock() -> Clock:
    return SettableClock()


async def last_seen(world: World) -> list[object]:
    async with world.services.engine.connect() as conn:
        return list((await conn.execute(sa.select(sessions.c.last_seen_at))).scalars())


async def test_a_session_unused_for_14_days_ends(
    clock: SettableClock, owner_client: ApiClient
) -> None:
    clock.advance(timedelta(days=13, hours=23))
    assert (await owner_client.get("/api/me")).status_code == 200
    # Used just now: another 14 days from here.
    clock.advance(timedelta(days=13, hours=23))
    assert (await owner_client.get("/api/me")).status_code == 200
    clock.advance(timedelta(days=14))
    assert_error(await owner_client.get("/api/me"), 401, "unauthenticated")


async def test_a_session_ends_30_days_after_sign_in_however_used(
    clock: SettableClock, owner_client: ApiClient
) -> None:
    for _ in range(3):
        clock.advance(timedelta(days=9, hours=23))
        assert (await owner_client.get("/api/me")).status_code == 200
    clock.advance(timedelta(days=1))
    assert_error(await owner_client.get("/api/me"), 401, "unauthenticated")


async def test_last_seen_is_written_at_most_once_a_minute(
    clock: SettableClock, world: World, owner_client: ApiClient
) -> None:
    [signed_in_at] = await last_seen(world)
    clock.advance(timedelta(seconds=30))
    await owner_client.get("/api/me")
    assert await last_seen(world) == [signed_in_at]
    clock.advance(timedelta(seconds=31))
    await owner_client.get("/api/me")
    assert await last_seen(world) == [clock.now()]


async def test_the_two_factor_step_expires_after_5_minutes(
    clock: SettableClock, listeners: Listeners, owner_client: ApiClient
) -> None:
    secret = (await owner_client.post("/api/me/totp/setup")).json()["secret"]
    totp = pyotp.TOTP(secret)
    enabled = await owner_client.post("/api/me/totp/enable", json={"code": totp.at(clock.now())})
    assert enabled.status_code == 200, enabled.text
    async with ApiClient(api_url(listeners)) as client:
        assert (await client.sign_in(OWNER_EMAIL, OWNER_PASSWORD)).json()["totpRequired"]
        clock.advance(timedelta(minutes=5, seconds=1))
        late = await client.post("/api/auth/totp", json={"code": totp.at(clock.now())})
        assert_error(late, 401, "unauthenticated")


class TestOpenSignUp:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"signup": "open"})

    async def test_sign_up_makes_a_trial_account_and_signs_in(
        self, listeners: Listeners, world: World
    ) -> None:
        async with ApiClient(api_url(listeners)) as client:
            assert (await client.session())["signupOpen"] is True
            created = await client.post(
                "/api/auth/sign-up",
                json={
                    "accountName": "Newco",
                    "name": "Nell",
                    "email": "Nell@Newco.test",
                    "password": "a-long-password",
                },
            )
            assert created.status_code == 201, created.text
            me = created.json()
            assert (me["email"], me["role"], me["accountName"]) == (
                "nell@newco.test",
                "owner",
                "Newco",
            )
            assert (await client.get("/api/me")).json()["id"] == me["id"]
            account = await world.services.accounts.get("Newco")
            assert account.status == "trial" and account.trial_ends_at is not None
            assert account.trial_ends_at - account.created_at == timedelta(days=7)

            taken = await client.post(
                "/api/auth/sign-up",
                json={
                    "accountName": "Other",
                    "name": "Eve",
                    "email": OWNER_EMAIL,
                    "password": "a-long-password",
                },
            )
            assert_error(taken, 409, "conflict", "email")
