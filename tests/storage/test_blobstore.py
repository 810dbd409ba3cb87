"""The filesystem blob store: content addressing, durability order, and keys that never come from users."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mailmark.bootstrap import build_services
from mailmark.config import Settings
from mailmark.storage.blobstore import FileBlobStore

DATA = b"From: a@example.org\r\nSubject: hi\r\n\r\nbody\r\n"
KEY = hashlib.sha256(DATA).hexdigest()


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


async def test_put_is_content_addressed_and_readable(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path / "blobs")

    key, created = await store.put(DATA)

    assert (key, created) == (KEY, True)
    assert files_under(store.root) == [store.root / KEY[:2] / KEY]
    assert await store.get(key) == DATA
    assert await store.exists(key)
    empty_key, _ = await store.put(b"")
    assert empty_key == hashlib.sha256(b"").hexdigest() and await store.get(empty_key) == b""


async def test_get_many_returns_each_blob_in_order(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path / "blobs")
    keys = [(await store.put(data))[0] for data in (b"one", b"two", b"three")]
    assert await store.get_many([keys[2], keys[0], keys[2]]) == [b"three", b"one", b"three"]
    assert await store.get_many([]) == []
    await store.delete(keys[1])
    with pytest.raises(FileNotFoundError):
        await store.get_many(keys)


async def test_identical_content_is_stored_once(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path / "blobs")
    first = await store.put(DATA)
    again = await store.put(DATA)
    assert first == (KEY, True) and again == (KEY, False)

    # Many writers racing on the same new content still leave exactly one complete file.
    other = DATA * 1000
    results = await asyncio.gather(*(store.put(other) for _ in range(20)))
    other_key = hashlib.sha256(other).hexdigest()
    assert {key for key, _ in results} == {other_key}
    assert any(created for _, created in results)
    assert [p.name for p in files_under(store.root)] == sorted([KEY, other_key])
    assert await store.get(other_key) == other


async def test_delete_is_idempotent(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path / "blobs")
    key, _ = await store.put(DATA)
    await store.delete(key)
    await store.delete(key)
    assert not await store.exists(key)
    with pytest.raises(FileNotFoundError):
        await store.get(key)
    # Deleted content can be stored again (and is reported as new).
    assert await store.put(DATA) == (KEY, True)


@pytest.mark.parametrize(
    "bad_key",
    [
        "../../../etc/passwd",
        "../" + KEY[3:],
        KEY.upper(),
        KEY[:-1],
        KEY + "0",
        KEY[:2] + "/" + KEY[3:],
        "",
        "g" * 64,
    ],
)
async def test_keys_that_were_not_computed_here_are_refused(tmp_path: Path, bad_key: str) -> None:
    store = FileBlobStore(tmp_path / "blobs")
    outside = tmp_path / "precious"
    outside.write_bytes(b"keep me")
    for operation in (store.get, store.exists, store.delete):
        with pytest.raises(ValueError, match="not a blob key"):
            await operation(bad_key)
    assert outside.read_bytes() == b"keep me"


async def test_half_written_files_are_swept_on_start(settings: Settings) -> None:
    shard = settings.blob_path / "ab"
    shard.mkdir(parents=True)
    (shard / ".tmp-crashed").write_bytes(b"half a mess")
    kept = FileBlobStore(settings.blob_path)
    key, _ = await kept.put(DATA)

    services = await build_services(settings)
    try:
        assert not (shard / ".tmp-crashed").exists()
        assert await services.blobs.get(key) == DATA
        assert services.blobs.sweep_temporary() == 0
    finally:
        await services.close()
    assert FileBlobStore(settings.data_dir / "never-created").sweep_temporary() == 0


_CALL = re.compile(r"^\d+\s+(\w+)\((.*)\)\s+=\s+(-?\d+)")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace to watch the system calls")
def test_write_order_is_temp_fsync_rename_fsync_dir(tmp_path: Path) -> None:
    """Temp file → fsync → rename → fsync the directory; new directories are synced into their parent."""
    root = tmp_path / "new" / "blobs"  # neither level exists yet, as on a first start
    trace = tmp_path / "trace.txt"
    script = (
        "import sys; from pathlib import Path; from mailmark.storage.blobstore import FileBlobStore; "
        "print(FileBlobStore(Path(sys.argv[1]))._put(sys.argv[2].encode())[0])"
    )
    run = subprocess.run(
        [
            "strace",
            "-f",
            "-o",
            str(trace),
            "-e",
            "trace=openat,fsync,fdatasync,rename,renameat,renameat2,mkdir,mkdirat",
            sys.executable,
            "-c",
            script,
            str(root),
            DATA.decode(),
        ],
        capture_output=True,
        check=False,
        text=True,
        timeout=60,
    )
    if run.returncode != 0 and "ptrace" in run.stderr:
        pytest.skip(f"strace cannot trace here: {run.stderr.strip()[:200]}")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == KEY

    events: list[tuple[str, str]] = []  # (call, path) in order, fds resolved to paths
    fds: dict[str, str] = {}
    for line in trace.read_text().splitlines():
        match = _CALL.match(line)
        if not match or int(match[3]) < 0:
            continue
        call, args, result = match[1], match[2], match[3]
        paths = _QUOTED.findall(args)
        if call == "openat":
            fds[result] = paths[0]
        elif call in ("fsync", "fdatasync"):
            events.append(("fsync", fds.get(args.strip(), "?")))
        elif call.startswith("rename"):
            events.append(("rename", f"{paths[0]} -> {paths[-1]}"))
        elif call.startswith("mkdir"):
            events.append(("mkdir", paths[0]))
    mine = [(call, path) for call, path in events if str(tmp_path) in path]

    shard = root / KEY[:2]
    final = shard / KEY
    renames = [path for call, path in mine if call == "rename"]
    assert len(renames) == 1 and renames[0].endswith(f" -> {final}")
    temp = renames[0].split(" -> ")[0]
    assert Path(temp).parent == shard and Path(temp).name.startswith(".tmp-")
    rename_at = mine.index(("rename", renames[0]))
    assert ("fsync", temp) in mine[:rename_at], (
        "the temp file's data must be synced before the rename"
    )
    assert ("fsync", str(shard)) in mine[rename_at:], "the rename must be synced via its directory"
    for new_dir in (root.parent, root, shard):
        made = mine.index(("mkdir", str(new_dir)))
        assert ("fsync", str(new_dir.parent)) in mine[made:], (
            f"{new_dir} not synced into its parent"
        )


async def test_keys_written_before_lists_older_blobs_by_directory_and_skips_temporary_files(
    tmp_path: Path,
) -> None:
    store = FileBlobStore(tmp_path / "blobs")
    assert [page async for page in store.keys_written_before(datetime.now(UTC))] == []
    keys = [(await store.put(f"blob {n}".encode()))[0] for n in range(20)]
    recent = keys[0]
    an_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).timestamp()
    for key in keys[1:]:
        os.utime(tmp_path / "blobs" / key[:2] / key, (an_hour_ago - 60, an_hour_ago - 60))
    (tmp_path / "blobs" / keys[1][:2] / ".tmp-half-written").write_bytes(b"x")

    pages = [
        page async for page in store.keys_written_before(datetime.fromtimestamp(an_hour_ago, UTC))
    ]
    assert sorted(key for page in pages for key in page) == sorted(keys[1:])
    assert recent not in {key for page in pages for key in page}
    # One page per fan-out directory.
    assert all(len({key[:2] for key in page}) == 1 for page in pages)
