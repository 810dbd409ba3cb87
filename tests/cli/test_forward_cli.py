"""`mailmark mailbox forward`, the real console script: set, show, refuse, turn off."""

from __future__ import annotations

from pathlib import Path

from tests.support.serve import cli_environment, mailmark


async def test_forward_set_show_refuse_and_off(tmp_path: Path, database_url: str) -> None:
    env = cli_environment(tmp_path / "data", database_url)

    async def run(*args: str) -> tuple[int, str, str]:
        done = await mailmark(env, *args, cwd=tmp_path)
        return done.code, done.out, done.err

    for command in (
        ("account", "create", "acme", "--owner", "o@acme.test", "--password", "owner-pass-1"),
        ("domain", "add", "acme.test", "--account", "acme", "--trust"),
        ("mailbox", "add", "sales@acme.test"),
    ):
        code, _, err = await run(*command)
        assert code == 0, err

    assert await run("mailbox", "forward", "sales@acme.test") == (
        0,
        "sales@acme.test does not forward its mail\n",
        "",
    )
    assert await run(
        "mailbox",
        "forward",
        "sales@acme.test",
        "--to",
        "bob@remote.test",
        "--to",
        "Carol@Other.TEST",
    ) == (
        0,
        "sales@acme.test forwards to bob@remote.test, Carol@other.test, keeping a copy\n",
        "",
    )
    done = await mailmark(
        env,
        "mailbox",
        "forward",
        "sales@acme.test",
        "--to",
        "bob@remote.test",
        "--no-keep",
        "--json",
        cwd=tmp_path,
    )
    assert (done.code, done.json) == (0, {"addresses": ["bob@remote.test"], "keepCopy": False})

    code, _, err = await run("mailbox", "forward", "sales@acme.test", "--to", "sales@acme.test")
    assert (code, err) == (1, "mailmark: sales@acme.test cannot forward to itself.\n")
    code, _, err = await run("mailbox", "forward", "nobody@acme.test", "--to", "bob@remote.test")
    assert (code, err) == (1, "mailmark: No mailbox nobody@acme.test here.\n")

    assert await run("mailbox", "forward", "sales@acme.test", "--off") == (
        0,
        "sales@acme.test does not forward its mail\n",
        "",
    )
