"""A database per test, copied from a template migrated once per session (per xdist worker).

SQLite: the template is a migrated file, copied into each test's data dir. PostgreSQL (when
MAILMARK_TEST_DATABASE_URL names a server, e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test):
the template is a migrated database, and each test gets its own `CREATE DATABASE … TEMPLATE` copy,
dropped afterwards. Names carry a random token, so parallel workers and runs never share one.
The services still migrate on start; they find the schema at head and do nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from mailmark.storage.db import create_engine
from mailmark.storage.migrate import migrate

TEST_DATABASE_URL = os.environ.get("MAILMARK_TEST_DATABASE_URL", "")
SQLITE_FILE = "mailmark.db"  # under the data dir, where the settings' default puts it

T = TypeVar("T")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--database-tests-only",
        action="store_true",
        help="run only the tests that get a database (scripts/test's second pass, on PostgreSQL:"
        " a test that never opens one would repeat the first pass exactly)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--database-tests-only"):
        return
    kept = [item for item in items if _gets_a_database(item)]
    config.hook.pytest_deselected(items=[item for item in items if item not in kept])
    items[:] = kept


def _gets_a_database(item: pytest.Item) -> bool:
    """Whether the test asks, directly or through its fixtures, for a database of its own."""
    used = getattr(item, "fixturenames", ())
    return "database_template" in used or "empty_database_url" in used


def pytest_report_header() -> str:
    backend = make_url(TEST_DATABASE_URL).get_backend_name() if TEST_DATABASE_URL else "sqlite"
    return f"mailmark test database: {backend}"


def _run(coroutine: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine on a loop of its own in another thread: session fixtures are set up
    between tests, and must leave the event loop of this thread alone."""
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(lambda: asyncio.run(coroutine())).result()


async def _migrate(database_url: str) -> None:
    engine = create_engine(database_url, sqlite_synchronous="NORMAL")
    try:
        await migrate(engine)
    finally:
        await engine.dispose()


async def _administer(admin_url: URL, statement: str) -> None:
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(sa.text(statement))
    finally:
        await admin.dispose()


def _postgresql_url(admin_url: URL, name: str) -> str:
    return admin_url.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def database_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The migrated template: a SQLite file's path, or a PostgreSQL database's name."""
    if not TEST_DATABASE_URL:
        path = tmp_path_factory.mktemp("template") / SQLITE_FILE
        _run(lambda: _migrate(f"sqlite+aiosqlite:///{path}"))
        # Closing the last connection checkpointed the write-ahead log into the file.
        assert not path.with_name(f"{SQLITE_FILE}-wal").exists()
        yield str(path)
        return
    admin_url = make_url(TEST_DATABASE_URL)
    name = f"mailmark_template_{secrets.token_hex(6)}"
    _run(lambda: _administer(admin_url, f'CREATE DATABASE "{name}"'))
    try:
        _run(lambda: _migrate(_postgresql_url(admin_url, name)))
        yield name
    finally:
        _run(lambda: _administer(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.asynccontextmanager
async def _own_database(tmp_path: Path, template: str | None) -> AsyncIterator[str]:
    """A database for one test, copied from `template` or empty; PostgreSQL's is dropped after."""
    if not TEST_DATABASE_URL:
        path = tmp_path / "data" / SQLITE_FILE
        if template is not None:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            shutil.copyfile(template, path)
            path.chmod(0o600)
        yield f"sqlite+aiosqlite:///{path}"
        return
    admin_url = make_url(TEST_DATABASE_URL)
    name = f"mailmark_test_{secrets.token_hex(6)}"
    copy = f' TEMPLATE "{template}"' if template is not None else ""
    await _administer(admin_url, f'CREATE DATABASE "{name}"{copy}')
    try:
        yield _postgresql_url(admin_url, name)
    finally:
        await _administer(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def database_url(tmp_path: Path, database_template: str) -> AsyncIterator[str]:
    """A database of the test's own, with the schema at head."""
    async with _own_database(tmp_path, database_template) as url:
        yield url


@pytest.fixture
async def empty_database_url(tmp_path: Path) -> AsyncIterator[str]:
    """A database of the test's own with nothing in it, not even the schema."""
    async with _own_database(tmp_path, None) as url:
        yield url
