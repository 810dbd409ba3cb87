"""A live Mailmark (the listeners `mailmark serve` starts) with an API key, for the SDKs' tests."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from mailmark.bootstrap import Listeners, Services
from mailmark.config import Settings
from tests.support.world import World

# Low enough that a burst of 400 requests on the spare key meets a 429, high enough that the
# tests spending the main key never do: the npm package's test files run at once and together
# spend well over a hundred requests in a few seconds.
RATE_LIMIT = 20.0
RATE_BURST = 200


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "api_rate_limit": RATE_LIMIT,
            "api_rate_burst": RATE_BURST,
            # The webhook tests subscribe a loopback URL, refused as internal otherwise.
            "webhook_allow_private_networks": ["127.0.0.1/32"],
        }
    )


@dataclass(frozen=True)
class LiveApi:
    base_url: str
    api_key: str
    #: A second key of the same domain, for spending on the rate limit.
    spare_api_key: str
    #: A mailbox of the key's domain.
    sender: str
    domain: str


@pytest.fixture
async def live_api(services: Services, listeners: Listeners, world: World) -> LiveApi:
    key = await services.api_keys.create(world.domain, "sdk tests")
    spare = await services.api_keys.create(world.domain, "sdk tests, rate limit")
    return LiveApi(
        base_url=f"http://127.0.0.1:{listeners.http_port}",
        api_key=key.secret,
        spare_api_key=spare.secret,
        sender=world.sales.address,
        domain=world.domain,
    )
