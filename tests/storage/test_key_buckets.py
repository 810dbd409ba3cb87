"""API keys' token buckets. The one rule answers the same in process and in PostgreSQL; there,
the buckets of two processes are one (concurrent requests never admit more than the burst), a
connection the server closed is replaced, a deleted key's bucket goes with it, and the table skips
the write-ahead log."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from mailmark.bootstrap import Services
from mailmark.core.apikeys import BucketRule, KeyBuckets, TokenBucket
from mailmark.core.errors import NotFound
from mailmark.storage.key_buckets import PgKeyBuckets
from mailmark.storage.tables import api_key_buckets, api_keys
from tests.support.database import TEST_DATABASE_URL
from tests.support.world import World

needs_postgresql = pytest.mark.skipif(
    not TEST_DATABASE_URL,
    reason="the shared buckets are PostgreSQL's: set MAILMARK_TEST_DATABASE_URL",
)
T = 1_900_000_000.0
RULE = BucketRule(rate=2.0, burst=3)
# (moment, the answer: 0 admitted, else the seconds until a token). Rate 2: a token per 0.5 s.
SCENARIO = [
    (T, 0.0),
    (T, 0.0),
    (T, 0.0),
    (T, 0.5),  # empty; the refusal took nothing
    (T + 0.25, 0.25),  # half a token back
    (T + 0.5, 0.0),  # a whole one
    (T - 100, 0.5),  # a clock gone back adds nothing and takes nothing...
    (T + 0.75, 0.25),  # ...and the bucket kept the later moment
    (T + 100, 0.0),  # refilled, to the burst and no further
    (T + 100, 0.0),
    (T + 100, 0.0),
    (T + 100, 0.5),
]


async def new_key(services: Services, domain: str) -> int:
    created = await services.api_keys.create(domain)
    assert created.key.id is not None
    return created.key.id


@pytest.fixture(params=["in process", "shared"])
async def buckets(request: pytest.FixtureRequest, world: World) -> AsyncIterator[KeyBuckets]:
    made: KeyBuckets
    if request.param == "in process":
        made = TokenBucket(RULE)
    elif TEST_DATABASE_URL:
        made = PgKeyBuckets(world.services.engine, RULE)
    else:
        pytest.skip("the shared buckets are PostgreSQL's: set MAILMARK_TEST_DATABASE_URL")
    try:
        yield made
    finally:
        await made.close()


async def test_one_rule_refills_and_takes(buckets: KeyBuckets, world: World) -> None:
    key_id = await new_key(world.services, world.domain)
    other = await new_key(world.services, world.domain)

    answers = [await buckets.take(key_id, moment) for moment, _ in SCENARIO]

    assert answers == pytest.approx([wait for _, wait in SCENARIO])
    assert await buckets.take(other, T) == 0.0  # each key has a bucket of its own


@needs_postgresql
async def test_concurrent_requests_of_two_processes_never_admit_more_than_the_burst(
    world: World,
) -> None:
    key_id = await new_key(world.services, world.domain)
    rule = BucketRule(rate=1e-9, burst=20)
    processes = [PgKeyBuckets(world.services.engine, rule) for _ in range(2)]
    try:
        answers = await asyncio.gather(
            *(processes[n % 2].take(key_id, T + n * 1e-6) for n in range(80))
        )
    finally:
        for process in processes:
            await process.close()

    assert sum(1 for wait in answers if wait == 0) == 20


@needs_postgresql
async def test_a_connection_the_server_closed_is_replaced_within_the_request(world: World) -> None:
    """What a PostgreSQL restart does to the connections kept for the buckets."""
    key_id = await new_key(world.services, world.domain)
    buckets = PgKeyBuckets(world.services.engine, RULE)
    try:
        assert await buckets.take(key_id, T) == 0.0
        async with world.services.engine.connect() as conn:
            closed = await conn.scalar(
                sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND query LIKE 'INSERT INTO api_key%'"
                )
            )
        assert closed == 1

        assert await buckets.take(key_id, T) == 0.0
        assert await buckets.take(key_id, T) == 0.0
        assert await buckets.take(key_id, T) == pytest.approx(0.5)  # the same bucket
    finally:
        await buckets.close()


@needs_postgresql
async def test_a_deleted_keys_bucket_goes_with_it(world: World) -> None:
    services = world.services
    key_id = await new_key(services, world.domain)
    buckets = PgKeyBuckets(services.engine, RULE)
    try:
        assert await buckets.take(key_id, T) == 0.0
        count = sa.select(sa.func.count()).select_from(api_key_buckets)
        async with services.engine.connect() as conn:
            assert await conn.scalar(count) == 1

        await services.domains.delete(world.domain)

        async with services.engine.connect() as conn:
            assert await conn.scalar(count) == 0
        with pytest.raises(NotFound):
            await buckets.take(key_id, T)
    finally:
        await buckets.close()


@needs_postgresql
async def test_a_revoked_key_takes_nothing_on_any_node(world: World) -> None:
    """Revoked by another node, whose notice may not have arrived: the key's next request is
    refused by the bucket statement itself, whether or not the key had a bucket yet."""
    services = world.services
    used = await new_key(services, world.domain)
    unused = await new_key(services, world.domain)
    buckets = PgKeyBuckets(services.engine, RULE)
    try:
        assert await buckets.take(used, T) == 0.0
        async with services.engine.begin() as conn:
            await conn.execute(
                api_keys.update()
                .where(api_keys.c.id.in_([used, unused]))
                .values(revoked_at=services.clock.now())
            )
        for key_id in (used, unused):
            with pytest.raises(NotFound):
                await buckets.take(key_id, T + 1)
        async with services.engine.connect() as conn:
            tokens = await conn.scalar(sa.select(api_key_buckets.c.tokens))
        assert tokens == RULE.burst - 1  # the refused request took nothing
    finally:
        await buckets.close()


@needs_postgresql
async def test_the_buckets_skip_the_write_ahead_log(world: World) -> None:
    async with world.services.engine.connect() as conn:
        persistence = await conn.scalar(
            sa.text("SELECT relpersistence::text FROM pg_class WHERE relname = 'api_key_buckets'")
        )
    assert persistence == "u"  # UNLOGGED
