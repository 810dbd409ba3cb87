"""Which installation the CLI uses: --data-dir, MAILMARK_DATA_DIR, a settings file found from any
directory, a clear refusal instead of a new empty database, private files, one-line start errors."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import pytest

from tests.support.serve import Run, cli_environment, free_port, mailmark

OWNER = ("--owner", "o@acme.test", "--password", "owner-pass-1")


def sqlite_environment(data_dir: Path, **extra: str) -> dict[str, str]:
    """A CLI environment on the default SQLite file in `data_dir`, whatever the test database."""
    env = cli_environment(data_dir, "", **extra)
    env.pop("MAILMARK_DATABASE_URL", None)
    return env


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_a_command_in_an_empty_directory_says_where_it_looked(tmp_path: Path) -> None:
    env = sqlite_environment(tmp_path / "data")
    env.pop("MAILMARK_DATA_DIR")  # the default, ./data of the working directory

    listed, as_json = await asyncio.gather(
        mailmark(env, "mailbox", "list", "acme.test", cwd=tmp_path),
        mailmark(env, "queue", "list", "--json", cwd=tmp_path),
    )

    assert (listed.code, listed.out) == (1, "")
    assert listed.err.count("\n") == 1
    assert listed.err.startswith(
        f"mailmark: no Mailmark data in {tmp_path / 'data'} (no mailmark.db there)"
    )
    assert "--data-dir" in listed.err and "MAILMARK_DATA_DIR" in listed.err
    assert as_json.code == 1 and as_json.json == {
        "error": listed.err.removeprefix("mailmark: ").strip()
    }
    assert not (tmp_path / "data").exists()  # no empty database left behind


async def test_every_way_to_name_the_installation_finds_it(tmp_path: Path) -> None:
    data = tmp_path / "srv" / "data"
    first = sqlite_environment(data)
    created = await mailmark(first, "account", "create", "acme", *OWNER, cwd=tmp_path)
    assert created.code == 0, created.err
    assert created.err == f"mailmark: new installation in {data}\n"
    added = await mailmark(
        first, "domain", "add", "acme.test", "--account", "acme", "--trust", cwd=tmp_path
    )
    assert (added.code, added.err) == (0, "")

    (tmp_path / "srv" / "mailmark.toml").write_text('data_dir = "data"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    bare = sqlite_environment(data)
    bare.pop("MAILMARK_DATA_DIR")

    async def mailboxes(env: dict[str, str], *options: str, cwd: Path = elsewhere) -> Run:
        return await mailmark(env, *options, "mailbox", "list", "acme.test", cwd=cwd)

    by_env, by_option, by_config, by_config_env, in_place = await asyncio.gather(
        mailboxes(first),
        mailboxes(bare, "--data-dir", "../srv/data"),
        mailboxes(bare, "--config", str(tmp_path / "srv" / "mailmark.toml")),
        mailboxes({**bare, "MAILMARK_CONFIG": str(tmp_path / "srv" / "mailmark.toml")}),
        # ./mailmark.toml of the working directory, and its data_dir relative to it.
        mailboxes(bare, cwd=tmp_path / "srv"),
    )
    for run in (by_env, by_option, by_config, by_config_env, in_place):
        assert (run.code, run.out, run.err) == (0, "No mailboxes.\n", "")

    # --data-dir beats the environment.
    overridden = await mailboxes(first, "--data-dir", str(tmp_path / "other"))
    assert overridden.code == 1 and f"no Mailmark data in {tmp_path / 'other'} " in overridden.err


async def test_the_data_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = sqlite_environment(data)
    assert (await mailmark(env, "account", "create", "acme", *OWNER, cwd=tmp_path)).code == 0

    assert mode(data) == 0o700
    assert mode(data / "mailmark.db") == 0o600  # DKIM private keys, secrets, password hashes
    assert mode(data / "blobs") == 0o700
    for extra in data.glob("mailmark.db-*"):
        assert mode(extra) == 0o600, extra

    # An installation made before: open to everyone. What is Mailmark's alone is tightened on the
    # next command; the data directory itself (the operator's choice) is only warned about.
    data.chmod(0o755)
    (data / "blobs").chmod(0o755)
    (data / "mailmark.db").chmod(0o644)
    added = await mailmark(
        env, "domain", "add", "acme.test", "--account", "acme", "--trust", cwd=tmp_path
    )
    assert added.code == 0, added.err
    assert mode(data / "blobs") == 0o700 and mode(data / "mailmark.db") == 0o600
    assert mode(data) == 0o755
    warnings = added.err.splitlines()
    assert len(warnings) == 3, added.err
    assert warnings[0].endswith(f"{data} is open to other users (drwxr-xr-x): chmod go= it")
    assert warnings[1].endswith(
        f"{data / 'blobs'} was open to other users (drwxr-xr-x); it is now readable by its owner only"
    )
    assert f"{data / 'mailmark.db'} was open to other users (-rw-r--r--)" in warnings[2]


async def test_serve_with_a_tls_file_it_cannot_read_ends_in_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "cert.pem"
    env = sqlite_environment(
        tmp_path / "data",
        MAILMARK_TLS_CERT=str(missing),
        MAILMARK_TLS_KEY=str(tmp_path / "key.pem"),
    )
    for name in ("MX", "SUBMISSION", "SUBMISSIONS", "IMAP", "IMAPS", "HTTP", "MANAGESIEVE"):
        env[f"MAILMARK_{name}_PORT"] = "0"
    served = await mailmark(env, "serve", cwd=tmp_path)
    assert served.code == 1
    assert served.err.splitlines()[-1] == (
        f"mailmark: cannot load the TLS certificate {missing} and key {tmp_path / 'key.pem'}: "
        "No such file or directory (check MAILMARK_TLS_CERT and MAILMARK_TLS_KEY)"
    )
    assert "Traceback" not in served.err


@pytest.mark.parametrize("case", ["file in the way", "unreachable database"])
async def test_what_cannot_start_ends_in_one_line(tmp_path: Path, case: str) -> None:
    (tmp_path / "file").write_text("")
    if case == "file in the way":
        env = sqlite_environment(tmp_path / "file" / "data")
        expected = (
            f"mailmark: cannot use the data directory {tmp_path / 'file' / 'data'}: Not a directory"
        )
    else:
        url = f"postgresql+asyncpg://mailmark:secret@127.0.0.1:{free_port()}/mailmark"
        env = cli_environment(tmp_path / "data", url, MAILMARK_DATABASE_URL=url)
        expected = "mailmark: cannot open the database postgresql+asyncpg://mailmark:***@127.0.0.1:"

    results = await asyncio.gather(
        mailmark(env, "account", "create", "acme", *OWNER, cwd=tmp_path),
        mailmark(env, "serve", cwd=tmp_path),
    )

    for result in results:
        assert result.code == 1, result.err
        assert result.err.splitlines()[-1].startswith(expected), result.err
        assert "Traceback" not in result.err
        assert "secret" not in result.err
