"""The `fake_dns` fixture: a started FakeDns on loopback, stopped after the test."""

from collections.abc import Iterator

import pytest

from tests.fakedns import FakeDns


@pytest.fixture
def fake_dns() -> Iterator[FakeDns]:
    with FakeDns() as server:
        yield server
