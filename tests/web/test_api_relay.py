"""/api/domains/{name}/relay over a real listener: show, set a relay (its password never in a
response, kept when only the port changes), direct, default, the errors' words, and what the
outbound worker then uses."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from mailmark.config import Settings
from mailmark.core.relays import Relay, RelayTls
from tests.support.web import ApiClient
from tests.support.world import World
from tests.web.api.conftest import assert_error

PASSWORD = "relay password 1"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "relay_host": "smtp.provider.test",
            "relay_port": 2587,
            "relay_username": "installation",
            "relay_password": SecretStr("installation password"),
        }
    )


async def test_a_domain_chooses_its_relay(owner_client: ApiClient, world: World) -> None:
    url = f"/api/domains/{world.domain}/relay"
    shown = await owner_client.get(url)
    assert shown.status_code == 200, shown.text
    assert shown.json() == {
        "domain": world.domain,
        "choice": "default",
        "host": None,
        "port": None,
        "tls": None,
        "username": None,
        "passwordSet": False,
        "installationRelay": "smtp.provider.test:2587",
    }
    relays = world.services.relays
    installation = Relay(
        "smtp.provider.test", 2587, RelayTls.STARTTLS, "installation", "installation password"
    )
    assert await relays.relay_for(world.domain) == installation

    chosen = await owner_client.put(
        url,
        json={
            "choice": "relay",
            "host": "smtp.eu.relay.test",
            "tls": "implicit",
            "username": "acme",
            "password": PASSWORD,
        },
    )
    assert chosen.status_code == 200, chosen.text
    assert PASSWORD not in chosen.text
    assert chosen.json() | {"installationRelay": None} == {
        "domain": world.domain,
        "choice": "relay",
        "host": "smtp.eu.relay.test",
        "port": 465,
        "tls": "implicit",
        "username": "acme",
        "passwordSet": True,
        "installationRelay": None,
    }
    assert await relays.relay_for(world.domain) == Relay(
        "smtp.eu.relay.test", 465, RelayTls.IMPLICIT, "acme", PASSWORD
    )

    # The form sends no password back (it never had it): the stored one stays.
    moved = await owner_client.put(
        url,
        json={
            "choice": "relay",
            "host": "smtp.eu.relay.test",
            "port": 2465,
            "tls": "implicit",
            "username": "acme",
        },
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["passwordSet"] is True and moved.json()["port"] == 2465
    assert PASSWORD not in (await owner_client.get(url)).text
    stored = await relays.relay_for(world.domain)
    assert stored is not None and stored.password == PASSWORD

    direct = await owner_client.put(url, json={"choice": "direct"})
    assert direct.status_code == 200 and direct.json()["choice"] == "direct"
    assert direct.json()["host"] is None and direct.json()["passwordSet"] is False
    assert await relays.relay_for(world.domain) is None

    default = await owner_client.put(url, json={"choice": "default"})
    assert default.status_code == 200 and default.json()["choice"] == "default"
    assert await relays.relay_for(world.domain) == installation


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"choice": "relay", "host": "smtp.relay.test:587"}, "host", "is not a host name"),
        ({"choice": "relay", "host": ""}, "host", "is not a host name"),
        (
            {"choice": "relay", "host": "smtp.relay.test", "username": "acme"},
            "password",
            "Enter the password of acme at smtp.relay.test.",
        ),
        (
            {"choice": "relay", "host": "r.test", "username": "a", "password": "x\r\nRSET"},
            "password",
            "on one line",
        ),
    ],
)
async def test_bad_relays_are_refused_with_the_field(
    owner_client: ApiClient, world: World, body: dict[str, object], field: str, words: str
) -> None:
    refused = await owner_client.put(f"/api/domains/{world.domain}/relay", json=body)
    message = assert_error(refused, 400, "invalid_input", field)
    assert words in message
    assert await world.services.relays.relay_for(world.domain) is not None  # unchanged


async def test_a_malformed_body_is_refused(owner_client: ApiClient, world: World) -> None:
    for body, status, code, field in (
        ({"choice": "smoke-signals"}, 400, "invalid_request", "choice"),
        ({"choice": "relay", "host": "r.test", "port": 0}, 400, "invalid_request", "port"),
        ({"choice": "direct", "x": 1}, 422, "unknown_field", "x"),
    ):
        refused = await owner_client.put(f"/api/domains/{world.domain}/relay", json=body)
        assert_error(refused, status, code, field)
    shown = await owner_client.get(f"/api/domains/{world.domain}/relay")
    assert shown.json()["choice"] == "default"
