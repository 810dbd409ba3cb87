"""S3 blob store: content-addressed by SHA-256, acknowledged by the object store before `put`
returns.

Objects are `<prefix>/<first two hex digits>/<sha256>`, the file store's layout under its root,
so a file store's directory copied into the bucket (`aws s3 sync`, `rclone`) is a valid S3 store.
A PUT answered 200 is the object store's promise that the object is durable (AWS S3, MinIO and
SeaweedFS answer only after the write is committed), which is what a 250 to DATA relies on.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import aiohttp
from aiobotocore.config import AioConfig  # type: ignore[import-untyped]
from aiobotocore.session import get_session  # type: ignore[import-untyped]
from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

from mailmark.core.errors import StorageUnavailable

log = logging.getLogger(__name__)

_KEY = re.compile(r"[0-9a-f]{64}")
# Requests of one batch in flight at once (the file store's batch writes 32 files side by side).
PARALLEL_REQUESTS = 32
# Attempts per request, the first included (one retry, after a jittered pause of up to 2 s, for
# a 503 Slow Down or a dropped connection); the operation's deadline bounds them all.
ATTEMPTS = 2
# The blob whose key the start-up check and `check()` use: the empty message, harmless to store.
_PROBE = b""
_PROBE_KEY = hashlib.sha256(_PROBE).hexdigest()
_UNAVAILABLE = "The message store (S3) cannot be reached now; try again later."
T = TypeVar("T")


@dataclass(frozen=True)
class S3Location:
    """Where blobs live and how to reach them. `secret_key` is never logged or shown."""

    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None
    region: str = "us-east-1"
    access_key: str | None = None
    secret_key: str | None = None
    path_style: bool = False
    timeout: timedelta = timedelta(seconds=30)

    def __repr__(self) -> str:
        return f"S3Location(s3://{self.bucket}/{self.prefix} at {self.endpoint_url or 'AWS'})"


class S3SetupError(Exception):
    """The store cannot be used as configured (unreachable, refused credentials, no bucket);
    the message says which, in one line."""

    def __init__(self, message: str, *, setting: str) -> None:
        super().__init__(message)
        self.setting = setting


def _status(error: ClientError) -> int:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _is_missing(error: ClientError) -> bool:
    return _status(error) == 404 or _code(error) in ("NoSuchKey", "404", "NotFound")


# Anything that means the object store did not answer (or not in time): refused or reset
# connections, timeouts, a response cut short.
_TRANSPORT_ERRORS = (BotoCoreError, aiohttp.ClientError, TimeoutError, ConnectionError)


class _KeyedWrites:
    """One lock per key being written, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}

    @contextlib.asynccontextmanager
    async def turn(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.setdefault(key, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._locks[key]


class S3BlobStore:
    """Blobs in an S3 bucket (AWS S3, MinIO, SeaweedFS, Ceph RGW, …). Keys are computed here,
    never taken from users. Every operation is bounded by `location.timeout`, retries included;
    an object store that does not answer, or answers 5xx (or refuses us), is StorageUnavailable."""

    def __init__(self, location: S3Location) -> None:
        self.location = location
        self._prefix = location.prefix.strip("/")
        self._deadline = location.timeout.total_seconds()
        self._exit_stack = contextlib.AsyncExitStack()
        self._client: Any = None
        self._writes = _KeyedWrites()

    async def open(self) -> None:
        """Create the client and check that the bucket takes a write and a read; S3SetupError
        says why it does not."""
        timeout = max(self._deadline, 0.1)
        config = AioConfig(
            connect_timeout=min(timeout, 5.0),
            read_timeout=timeout,
            retries={"max_attempts": ATTEMPTS, "mode": "standard"},
            s3={"addressing_style": "path" if self.location.path_style else "auto"},
            max_pool_connections=PARALLEL_REQUESTS,
            # The integrity check is the SHA-256 we send with each PUT (the key itself), which
            # the server verifies; no second checksum of botocore's own.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self._client = await self._exit_stack.enter_async_context(
            get_session().create_client(
                "s3",
                endpoint_url=self.location.endpoint_url,
                region_name=self.location.region,
                aws_access_key_id=self.location.access_key or None,
                aws_secret_access_key=self.location.secret_key or None,
                config=config,
            )
        )
        try:
            await self._bounded(lambda: self._put_object(self._name(_PROBE_KEY), _PROBE))
            await self._bounded(lambda: self._get_object(self._name(_PROBE_KEY)))
        except BaseException as error:
            await self.close()
            if isinstance(error, Exception):
                raise self._setup_error(error) from None
            raise

    def _setup_error(self, error: Exception) -> S3SetupError:
        where = f"s3://{self.location.bucket}/{self._prefix}"
        if isinstance(error, ClientError):
            code, status = _code(error), _status(error)
            if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken") or (
                status == 403 and code in ("", "403", "Forbidden")
            ):
                return S3SetupError(
                    f"the S3 server refused the access key or secret key for {where} ({code})",
                    setting="MAILMARK_S3_ACCESS_KEY and MAILMARK_S3_SECRET_KEY",
                )
            if status == 403:
                return S3SetupError(
                    f"the S3 credentials may not write and read {where} ({code})",
                    setting="the bucket policy, or MAILMARK_S3_ACCESS_KEY",
                )
            if code == "NoSuchBucket" or status == 404:
                return S3SetupError(
                    f"the S3 server has no bucket {self.location.bucket!r}: create it first",
                    setting="MAILMARK_BLOB_URL",
                )
            return S3SetupError(
                f"the S3 server answered {status} {code} for {where}",
                setting="MAILMARK_S3_ENDPOINT_URL",
            )
        endpoint = self.location.endpoint_url or "AWS S3"
        reason = str(error) or type(error).__name__
        return S3SetupError(
            f"cannot reach the S3 server {endpoint} for {where}: {reason}",
            setting="MAILMARK_S3_ENDPOINT_URL and MAILMARK_S3_PATH_STYLE",
        )

    async def close(self) -> None:
        await self._exit_stack.aclose()
        self._client = None

    def _name(self, key: str) -> str:
        if not _KEY.fullmatch(key):
            raise ValueError(f"not a blob key: {key!r}")
        name = f"{key[:2]}/{key}"
        return f"{self._prefix}/{name}" if self._prefix else name

    async def _bounded(self, operation: Callable[[], Awaitable[T]]) -> T:
        async with asyncio.timeout(self._deadline):
            return await operation()

    async def _put_object(self, name: str, data: bytes, *, if_absent: bool = False) -> None:
        extra = {"IfNoneMatch": "*"} if if_absent else {}
        await self._client.put_object(
            Bucket=self.location.bucket,
            Key=name,
            Body=data,
            ContentLength=len(data),
            # The server refuses the object unless its bytes have this digest (BadDigest).
            ChecksumSHA256=base64.b64encode(hashlib.sha256(data).digest()).decode(),
            **extra,
        )

    async def _get_object(self, name: str) -> bytes:
        response = await self._client.get_object(Bucket=self.location.bucket, Key=name)
        async with response["Body"] as body:
            data: bytes = await body.read()
        return data

    async def _head(self, name: str) -> bool:
        try:
            await self._client.head_object(Bucket=self.location.bucket, Key=name)
        except ClientError as error:
            if _is_missing(error):
                return False
            raise
        return True

    async def _guarded(self, what: str, operation: Callable[[], Awaitable[T]]) -> T:
        """Run one bounded operation; a store that does not answer is StorageUnavailable."""
        try:
            return await self._bounded(operation)
        except ClientError as error:
            log.warning("S3 %s failed: %s %s", what, _status(error), _code(error))
            raise StorageUnavailable(_UNAVAILABLE) from error
        except _TRANSPORT_ERRORS as error:
            log.warning("S3 %s failed: %s", what, error or type(error).__name__)
            raise StorageUnavailable(_UNAVAILABLE) from error

    async def put(self, data: bytes) -> tuple[str, bool]:
        key = hashlib.sha256(data).hexdigest()
        name = self._name(key)

        async def write() -> bool:
            if await self._head(name):
                return False
            try:
                # Conditional: of writers racing on the same new content, one is told "created".
                await self._put_object(name, data, if_absent=True)
            except ClientError as error:
                if _status(error) == 412:  # RFC 9110 §13.1.2: it exists now
                    return False
                raise
            return True

        # Writers of the same content in this process take turns: the first creates it and the
        # others find it with HEAD. Racing conditional PUTs of one key can each wait seconds for
        # an answer (SeaweedFS 4.48 held 95 of 240 such requests past 3 s; unconditional ones
        # never), and a message delivered to many mailboxes, or a campaign's shared attachment,
        # is exactly that race.
        async with self._writes.turn(key):
            return key, await self._guarded("put", write)

    async def put_many(self, items: Sequence[bytes]) -> list[tuple[str, bool] | Exception]:
        # Each request in flight at once, within the connection pool's bound.
        results = await asyncio.gather(*(self.put(item) for item in items), return_exceptions=True)
        out: list[tuple[str, bool] | Exception] = []
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, Exception):
                raise result
            out.append(result)
        return out

    async def get(self, key: str) -> bytes:
        name = self._name(key)

        async def read() -> bytes:
            try:
                return await self._get_object(name)
            except ClientError as error:
                if _is_missing(error):
                    # As the file store: a missing blob is FileNotFoundError for every caller.
                    raise FileNotFoundError(f"no blob {key}") from None
                raise

        return await self._guarded("get", read)

    async def get_many(self, keys: Sequence[str]) -> list[bytes]:
        return list(await asyncio.gather(*(self.get(key) for key in keys)))

    async def delete(self, key: str) -> None:
        name = self._name(key)
        # S3 answers 204 for a missing object too: delete is idempotent as unlink(missing_ok).
        await self._guarded(
            "delete", lambda: self._client.delete_object(Bucket=self.location.bucket, Key=name)
        )

    async def exists(self, key: str) -> bool:
        name = self._name(key)
        return await self._guarded("exists", lambda: self._head(name))

    async def keys_written_before(self, moment: datetime) -> AsyncIterator[list[str]]:
        """One ListObjectsV2 page (up to 1,000 objects) at a time, by each object's LastModified;
        objects under the prefix that are not blobs are left out."""
        base = f"{self._prefix}/" if self._prefix else ""
        token: str | None = None
        while True:
            request = {"Bucket": self.location.bucket, "Prefix": base}
            if token:
                request["ContinuationToken"] = token
            page = await self._guarded(
                "list", functools.partial(self._client.list_objects_v2, **request)
            )
            keys = [
                item["Key"].rsplit("/", 1)[-1]
                for item in page.get("Contents", [])
                if item["LastModified"] < moment and _KEY.fullmatch(item["Key"].rsplit("/", 1)[-1])
            ]
            if keys:
                yield keys
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return

    async def check(self) -> None:
        """A cheap round trip (one HEAD); StorageUnavailable when the store does not answer."""
        await self.exists(_PROBE_KEY)
