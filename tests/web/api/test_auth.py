"""The API-key guard and the one error shape, over real HTTP."""

from __future__ import annotations

import httpx

from mailmark.core.apikeys import KEY_PREFIX, public_prefix
from tests.support.world import World
from tests.web.api.conftest import Tenant, assert_error, client


async def test_a_key_opens_its_domain(acme: Tenant) -> None:
    response = await acme.client.get("/v1/mailboxes")

    assert response.status_code == 200
    assert {m["fullAddress"] for m in response.json()} == {"sales@acme.test", "support@acme.test"}


async def test_missing_malformed_and_unknown_keys_are_401(
    acme: Tenant, anonymous: httpx.AsyncClient
) -> None:
    unknown = KEY_PREFIX + "A" * (len(acme.key) - len(KEY_PREFIX))
    wrong_secret = public_prefix(acme.key) + "B" * (len(acme.key) - len(public_prefix(acme.key)))
    attempts = {
        "missing": {},
        "not bearer": {"Authorization": f"Basic {acme.key}"},
        "truncated": {"Authorization": f"Bearer {acme.key[:-1]}"},
        "unknown": {"Authorization": f"Bearer {unknown}"},
        "right prefix, wrong secret": {"Authorization": f"Bearer {wrong_secret}"},
        "garbage": {"Authorization": "Bearer \u00e9\u00e9".encode()},
    }
    for name, headers in attempts.items():
        response = await anonymous.get("/v1/mailboxes", headers=headers)
        message = assert_error(response, 401, "authentication_failed")
        assert "API key" in message, name


async def test_a_revoked_key_is_refused_at_once_in_this_process(acme: Tenant, world: World) -> None:
    assert (await acme.client.get("/v1/mailboxes")).status_code == 200

    revoked = await world.services.api_keys.revoke(public_prefix(acme.key))

    assert revoked.revoked_at is not None
    assert_error(await acme.client.get("/v1/mailboxes"), 401, "authentication_failed")


async def test_unknown_routes_and_methods_are_json_errors(acme: Tenant) -> None:
    assert_error(await acme.client.get("/v1/nothing-here"), 404, "not_found")
    assert_error(await acme.client.put("/v1/mailboxes"), 405, "method_not_allowed")


async def test_last_used_time_is_recorded(acme: Tenant, world: World) -> None:
    [before] = await world.services.api_keys.list(world.domain)
    await acme.client.get("/v1/mailboxes")

    [after] = await world.services.api_keys.list(world.domain)

    assert before.last_used_at is None
    assert after.last_used_at is not None


async def test_every_key_is_a_long_random_secret_stored_only_as_a_hash(world: World) -> None:
    created = [await world.services.api_keys.create(world.domain) for _ in range(5)]

    for made in created:
        assert made.secret.startswith(KEY_PREFIX) and len(made.secret) - len(KEY_PREFIX) >= 32
        assert made.secret not in (made.key.key_hash, made.key.prefix)
        assert made.key.prefix == public_prefix(made.secret)
    assert len({made.secret for made in created}) == 5


async def test_the_rate_limit_answers_429_with_retry_after(world: World) -> None:
    from mailmark.bootstrap import api_key_buckets, start_listeners
    from mailmark.core.apikeys import ApiKeyService, BucketRule

    services = world.services
    buckets = api_key_buckets(services.engine, BucketRule(rate=0.5, burst=3))
    services.api_keys = ApiKeyService(services.uow, services.clock, buckets)
    started = await start_listeners(services)
    try:
        created = await services.api_keys.create(world.domain)
        async with client(started.http_port, created.secret) as http:
            answers = [await http.get("/v1/mailboxes") for _ in range(4)]
    finally:
        await started.close()
        await buckets.close()

    assert [a.status_code for a in answers[:3]] == [200, 200, 200]
    assert_error(answers[3], 429, "rate_limited")
    assert int(answers[3].headers["Retry-After"]) in (1, 2)
