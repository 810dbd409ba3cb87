"""The S3 blob store against a real S3 server (SeaweedFS on loopback): content addressing, the
file store's layout under the prefix, batches, deletion, and errors a person can act on."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from mailmark.bootstrap import build_services, open_blob_store
from mailmark.config import Settings
from mailmark.core.errors import StorageUnavailable
from mailmark.startup import StartupError
from mailmark.storage.s3blobstore import S3BlobStore
from tests.support.seaweedfs_server import BUCKET, SeaweedFs
from tests.support.serve import free_port

DATA = b"From: a@example.org\r\nSubject: hi\r\n\r\nbody\r\n"
KEY = hashlib.sha256(DATA).hexdigest()
EMPTY_KEY = hashlib.sha256(b"").hexdigest()


@pytest.fixture
def s3_settings(settings: Settings, seaweedfs: SeaweedFs) -> Settings:
    return seaweedfs.settings_for(settings)


@pytest.fixture
async def store(s3_settings: Settings) -> AsyncIterator[S3BlobStore]:
    opened = await open_blob_store(s3_settings)
    assert isinstance(opened, S3BlobStore)
    try:
        yield opened
    finally:
        await opened.close()


def prefix_of(settings: Settings) -> str:
    location = settings.blob_bucket
    assert location is not None
    return location[1]


async def test_put_is_content_addressed_in_the_file_stores_layout(
    store: S3BlobStore, s3_settings: Settings, seaweedfs: SeaweedFs
) -> None:
    key, created = await store.put(DATA)

    assert (key, created) == (KEY, True)
    assert await store.get(key) == DATA
    assert await store.exists(key)
    prefix = prefix_of(s3_settings)
    # The start-up check stored the empty blob; every object is <prefix>/<2 hex>/<sha256>.
    assert seaweedfs.object_names(prefix) == sorted(
        [f"{prefix}/{KEY[:2]}/{KEY}", f"{prefix}/{EMPTY_KEY[:2]}/{EMPTY_KEY}"]
    )
    large = secrets.token_bytes(3 * 1024 * 1024)
    large_key, _ = await store.put(large)
    assert large_key == hashlib.sha256(large).hexdigest()
    assert await store.get(large_key) == large


async def test_identical_content_is_created_once_even_by_racing_writers(
    store: S3BlobStore,
) -> None:
    assert await store.put(DATA) == (KEY, True)
    assert await store.put(DATA) == (KEY, False)

    other = secrets.token_bytes(64 * 1024)
    results = await asyncio.gather(*(store.put(other) for _ in range(12)))
    assert {key for key, _ in results} == {hashlib.sha256(other).hexdigest()}
    # A failed transaction removes the blob only when its put created it: exactly one did.
    assert [created for _, created in results].count(True) == 1


async def test_batches_put_and_read_in_order_with_duplicates(store: S3BlobStore) -> None:
    items = [secrets.token_bytes(4096) for _ in range(40)]
    stored = await store.put_many([*items, items[0]])

    assert all(not isinstance(result, Exception) for result in stored)
    keys = [result[0] for result in stored if not isinstance(result, Exception)]
    assert keys == [hashlib.sha256(item).hexdigest() for item in [*items, items[0]]]
    assert await store.get_many([keys[5], keys[0], keys[5]]) == [items[5], items[0], items[5]]
    assert await store.get_many(keys[:40]) == items
    assert await store.get_many([]) == []


async def test_delete_is_idempotent_and_a_missing_blob_is_file_not_found(
    store: S3BlobStore,
) -> None:
    key, _ = await store.put(DATA)
    other, _ = await store.put(b"other")
    await store.delete(key)
    await store.delete(key)

    assert not await store.exists(key)
    with pytest.raises(FileNotFoundError):
        await store.get(key)
    with pytest.raises(FileNotFoundError):
        await store.get_many([other, key])
    assert await store.get(other) == b"other"
    assert await store.put(DATA) == (KEY, True)


@pytest.mark.parametrize("bad_key", ["../" + KEY[3:], KEY.upper(), KEY[:-1], "", "g" * 64])
async def test_keys_that_were_not_computed_here_are_refused(
    store: S3BlobStore, bad_key: str
) -> None:
    for operation in (store.get, store.exists, store.delete):
        with pytest.raises(ValueError, match="not a blob key"):
            await operation(bad_key)


async def test_a_stopped_server_is_storage_unavailable_and_recovers(
    store: S3BlobStore, seaweedfs: SeaweedFs
) -> None:
    key, _ = await store.put(DATA)
    await store.check()

    seaweedfs.stop(crash=True)
    outcomes = await asyncio.gather(
        store.put(b"new while stopped"),
        store.get(key),
        store.get_many([key]),
        store.exists(key),
        store.delete(key),
        store.check(),
        return_exceptions=True,
    )
    assert all(isinstance(outcome, StorageUnavailable) for outcome in outcomes), outcomes
    [error] = await store.put_many([b"batch while stopped"])
    assert isinstance(error, StorageUnavailable)

    seaweedfs.start()
    await store.check()
    assert await store.get(key) == DATA
    assert await store.put(b"new while stopped") == (
        hashlib.sha256(b"new while stopped").hexdigest(),
        True,
    )


async def test_the_services_use_the_s3_store_the_settings_name(s3_settings: Settings) -> None:
    services = await build_services(s3_settings)
    try:
        assert isinstance(services.blobs, S3BlobStore)
        key, _ = await services.blobs.put(DATA)
        assert await services.blobs.get(key) == DATA
    finally:
        await services.close()
    # No blob directory is made for an S3 store.
    assert not (s3_settings.data_dir / "blobs").exists()


async def test_wrong_credentials_end_the_start_with_one_clear_line(
    s3_settings: Settings,
) -> None:
    wrong = s3_settings.model_copy(update={"s3_secret_key": SecretStr("not-the-secret")})
    with pytest.raises(StartupError) as refused:
        await build_services(wrong)
    message = str(refused.value)
    assert "refused the access key or secret key" in message, message
    assert "MAILMARK_S3_ACCESS_KEY and MAILMARK_S3_SECRET_KEY" in message
    assert "not-the-secret" not in message

    unknown = s3_settings.model_copy(update={"s3_access_key": "nobody"})
    with pytest.raises(StartupError, match="refused the access key"):
        await open_blob_store(unknown)


async def test_an_unreachable_server_ends_the_start_with_one_clear_line(
    s3_settings: Settings,
) -> None:
    nowhere = s3_settings.model_copy(
        update={
            "s3_endpoint_url": f"http://127.0.0.1:{free_port()}",
            "s3_timeout": timedelta(seconds=2),
        }
    )
    with pytest.raises(StartupError, match=r"cannot reach the S3 server http://127\.0\.0\.1:"):
        await open_blob_store(nowhere)


async def test_secret_key_file_and_validation(tmp_path: Path) -> None:
    secret_file = tmp_path / "s3-secret"
    secret_file.write_text("from-a-file\n")
    settings = Settings(
        data_dir=tmp_path,
        blob_url=f"s3://{BUCKET}/some/prefix/",
        s3_access_key="key",
        s3_secret_key_file=secret_file,
    )
    assert settings.blob_bucket == (BUCKET, "some/prefix")
    assert settings.s3_secret_key is not None
    assert settings.s3_secret_key.get_secret_value() == "from-a-file"
    assert "from-a-file" not in repr(settings)
    for bad_url, reason in [
        ("s3://Upper_Case/x", "not an S3 bucket name"),
        ("s3://ab", "not an S3 bucket name"),
        ("s3://bucket/with space", "not a key prefix"),
        ("ftp://x", "must be file:///a/directory or s3://bucket/prefix"),
    ]:
        with pytest.raises(ValueError, match=reason):
            Settings(data_dir=tmp_path, blob_url=bad_url)
    with pytest.raises(ValueError, match="must be set together"):
        Settings(data_dir=tmp_path, blob_url=f"s3://{BUCKET}", s3_access_key="key")
    with pytest.raises(ValueError, match="not both"):
        Settings(
            data_dir=tmp_path,
            s3_access_key="key",
            s3_secret_key=SecretStr("x"),
            s3_secret_key_file=secret_file,
        )


async def test_keys_written_before_lists_the_prefixs_blobs_by_their_write_time(
    store: S3BlobStore,
) -> None:
    keys = {(await store.put(f"blob {n}".encode()))[0] for n in range(5)}

    later = datetime.now(UTC) + timedelta(minutes=5)
    listed = {key async for page in store.keys_written_before(later) for key in page}
    # The start-up check's empty blob is there too; nothing outside this store's prefix is.
    assert listed == keys | {EMPTY_KEY}
    earlier = datetime.now(UTC) - timedelta(hours=1)
    assert [page async for page in store.keys_written_before(earlier)] == []
