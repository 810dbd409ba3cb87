"""A real OpenID Connect provider on loopback (the `oidc-provider` npm package, run by
tests/support/oidc/provider.mjs), and a browser-like HTTP client that walks its sign-in pages.

The provider's packages are installed with `npm ci` into tests/support/oidc/node_modules
(gitignored) the first time, under a file lock: pytest-xdist workers share the directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

PROVIDER_DIR = Path(__file__).resolve().parent / "oidc"
NODE = shutil.which("node")
NPM = shutil.which("npm")
INSTALL_LOCK = Path(tempfile.gettempdir()) / (
    "mailmark-oidc-provider-"
    + hashlib.sha256(str(PROVIDER_DIR).encode()).hexdigest()[:16]
    + ".lock"
)
# Written into node_modules after a complete `npm ci`: the lock file it installed.
INSTALLED_STAMP = PROVIDER_DIR / "node_modules" / ".mailmark-installed"
START_TIMEOUT = 30.0


@dataclass(frozen=True)
class ProviderAccount:
    """A person with an account at the provider; `login` and `password` go in its sign-in form."""

    login: str
    password: str
    sub: str
    email: str
    email_verified: bool = True
    name: str = "Test Person"


@dataclass(frozen=True)
class ProviderClient:
    """A relying party registered at the provider (Mailmark, for the tests)."""

    client_id: str
    client_secret: str
    redirect_uris: list[str]
    # Lifetime of the ID tokens issued to this client, in seconds.
    id_token_ttl: int = 3600


@dataclass
class OidcProviderProcess:
    issuer: str
    process: asyncio.subprocess.Process
    log: Path

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


async def _run_npm_ci() -> None:
    assert NPM is not None, "npm is not installed (Debian: npm)"
    process = await asyncio.create_subprocess_exec(
        NPM,
        "ci",
        "--no-audit",
        "--no-fund",
        cwd=PROVIDER_DIR,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with asyncio.timeout(300):
            out, _ = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, f"npm ci exited {process.returncode}:\n{out.decode()[-4000:]}"


async def install_provider() -> None:
    """`npm ci` in tests/support/oidc unless node_modules already holds this lock file's tree."""
    wanted = hashlib.sha256((PROVIDER_DIR / "package-lock.json").read_bytes()).hexdigest()
    with INSTALL_LOCK.open("a") as lock:
        await asyncio.to_thread(fcntl.flock, lock, fcntl.LOCK_EX)
        try:
            if INSTALLED_STAMP.is_file() and INSTALLED_STAMP.read_text() == wanted:
                return
            await _run_npm_ci()
            INSTALLED_STAMP.write_text(wanted)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class ProviderDidNotStart(Exception):
    def __init__(self, reason: str, log: Path) -> None:
        super().__init__(f"{reason}; its stderr:\n{log.read_text()}")


async def _end(process: asyncio.subprocess.Process) -> int:
    """Kill the process unless it has ended already; its exit status."""
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    return await process.wait()


async def _spawn_provider(config: Path, log: Path) -> OidcProviderProcess:
    """Start provider.mjs once; it prints its issuer URL once it listens."""
    assert NODE is not None
    with log.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            NODE,
            str(PROVIDER_DIR / "provider.mjs"),
            str(config),
            cwd=PROVIDER_DIR,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
        )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(START_TIMEOUT):
            line = await process.stdout.readline()
    except TimeoutError:
        await _end(process)
        raise ProviderDidNotStart(f"no issuer line within {START_TIMEOUT:.0f} s", log) from None
    try:
        return OidcProviderProcess(json.loads(line)["issuer"], process, log)
    except (ValueError, KeyError):
        status = await _end(process)
        raise ProviderDidNotStart(
            f"it printed {line!r} and ended with status {status}", log
        ) from None


async def start_provider(
    workdir: Path, clients: Sequence[ProviderClient], accounts: Sequence[ProviderAccount]
) -> OidcProviderProcess:
    """Start provider.mjs on a free loopback port, trying a second time if the first process
    does not come up: once in a full CI run it ended, or hung, before printing its issuer, while
    it starts in 0.4 s otherwise. Both failures are reported if the second try fails too."""
    await install_provider()
    config = workdir / "oidc-provider.json"
    config.write_text(
        json.dumps(
            {
                "clients": [asdict(client) for client in clients],
                "accounts": {account.login: asdict(account) for account in accounts},
            }
        )
    )
    failures: list[str] = []
    for attempt in range(2):
        try:
            return await _spawn_provider(config, workdir / f"oidc-provider-{attempt}.log")
        except ProviderDidNotStart as failure:
            failures.append(str(failure))
    raise AssertionError("the OIDC provider did not start:\n" + "\n".join(failures))


StartProvider = Callable[
    [Sequence[ProviderClient], Sequence[ProviderAccount]], Awaitable[OidcProviderProcess]
]


@pytest.fixture
async def oidc_provider_factory(tmp_path: Path) -> AsyncIterator[StartProvider]:
    """Starts providers for the test; each is stopped (by its PID) when the test ends."""
    if NODE is None:
        pytest.skip("node is not installed (Debian: nodejs npm)")
    started: list[OidcProviderProcess] = []

    async def start(
        clients: Sequence[ProviderClient], accounts: Sequence[ProviderAccount]
    ) -> OidcProviderProcess:
        workdir = tmp_path / f"oidc-provider-{len(started)}"
        workdir.mkdir()
        provider = await start_provider(workdir, clients, accounts)
        started.append(provider)
        return provider

    try:
        yield start
    finally:
        for provider in started:
            await provider.stop()


@dataclass
class Browser:
    """Follows redirects across origins like a browser, with one cookie jar per origin (host and
    port: cookies on 127.0.0.1 would otherwise be shared by the provider and Mailmark)."""

    clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)
    # Every URL visited by the last `go`, in order.
    visited: list[str] = field(default_factory=list)

    def client(self, url: str) -> httpx.AsyncClient:
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(url))
        if origin not in self.clients:
            self.clients[origin] = httpx.AsyncClient(
                base_url=origin, timeout=30, follow_redirects=False, trust_env=False
            )
        return self.clients[origin]

    async def go(
        self,
        url: str,
        *,
        method: str = "GET",
        form: dict[str, str] | None = None,
        stop_before: str | None = None,
    ) -> httpx.Response:
        """Request `url` and follow redirects (303 turns a POST into a GET) to the last answer;
        with `stop_before`, the redirect to a URL starting with it is returned unfollowed."""
        self.visited = []
        for _ in range(20):
            self.visited.append(url)
            response = await self.client(url).request(method, url, data=form)
            if response.status_code not in (301, 302, 303, 307, 308):
                return response
            url = urljoin(url, response.headers["location"])
            if stop_before is not None and url.startswith(stop_before):
                return response
            if response.status_code in (301, 302, 303):
                method, form = "GET", None
        raise AssertionError(f"too many redirects: {self.visited}")

    def cookies(self, url: str) -> httpx.Cookies:
        return self.client(url).cookies

    async def aclose(self) -> None:
        for client in self.clients.values():
            await client.aclose()


_FORM_ACTION = re.compile(r'<form method="post" action="([^"]+)"')


async def sign_in_at_provider(
    browser: Browser,
    page: httpx.Response,
    account: ProviderAccount,
    *,
    stop_before: str | None = None,
    consent: bool = True,
) -> httpx.Response:
    """From the provider's sign-in page: post the login form, then the consent form (when the
    provider asks; `consent=False` denies it), as a person would; the answer the browser ends on
    (Mailmark's, normally, or the redirect to `stop_before`)."""
    assert page.status_code == 200 and "Sign in to" in page.text, page.text
    action = _FORM_ACTION.search(page.text)
    assert action is not None, page.text
    url = urljoin(str(page.url), action[1])
    form = {"login": account.login, "password": account.password}
    answer = await browser.go(url, method="POST", form=form, stop_before=stop_before)
    if answer.status_code == 200 and "Allow" in answer.text:
        allow, deny = _FORM_ACTION.findall(answer.text)
        answer = await browser.go(
            urljoin(str(answer.url), allow if consent else deny),
            method="POST",
            form={},
            stop_before=stop_before,
        )
    return answer


def redirect_query(response: httpx.Response) -> dict[str, str]:
    """The query parameters of the URL a redirect points at."""
    assert response.status_code in (302, 303), (response.status_code, response.text)
    return dict(httpx.URL(response.headers["location"]).params)
