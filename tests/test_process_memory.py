"""The server gives argon2's 19 MiB back after each hash (glibc), in a process of its own so the
test's heap does not blur the figure."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="the mmap threshold is glibc's"
)

# Hashes on one pool thread, as `Passwords` runs them; prints how much RSS grew over the later
# ones, in MiB, once the first has made the thread and its arena.
PROBE = textwrap.dedent(
    """
    import os, sys
    from concurrent.futures import ThreadPoolExecutor
    from mailmark.process_memory import give_large_blocks_back
    from mailmark.security import Argon2PasswordHasher

    if sys.argv[1] == "server":
        assert give_large_blocks_back()
    hasher = Argon2PasswordHasher()
    pool = ThreadPoolExecutor(1)

    def rss():
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    pool.submit(hasher.hash, "first").result()
    before = rss()
    for n in range(3):
        pool.submit(hasher.hash, f"later {n}").result()
    print((rss() - before) / 2**20)
    """
)


def grown_mib(setting: str) -> float:
    run = subprocess.run(
        [sys.executable, "-c", PROBE, setting],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    return float(run.stdout)


def test_argon2s_memory_is_returned_after_every_hash() -> None:
    assert grown_mib("server") < 4


def test_without_the_setting_glibc_keeps_a_hash_worth() -> None:
    """The control: what the setting prevents still happens without it, so the test above
    measures something."""
    assert grown_mib("default") > 16
