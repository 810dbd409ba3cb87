"""`mailmark mailbox vacation`, run as the real console script: turn the responder on with a
message file and dates, read it back, change one thing, turn it off; bad input is one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailmark.bootstrap import build_services
from tests.support.serve import Run, cli_environment, mailmark, settings_for


@pytest.fixture
async def env(tmp_path: Path, database_url: str) -> dict[str, str]:
    services = await build_services(settings_for(tmp_path / "data", database_url))
    try:
        await services.accounts.create("acme", owner_email="o@acme.test", password="owner-pass-1")
        await services.domains.add("acme.test", account_name="acme", trust=True)
        await services.mailboxes.create("sales@acme.test", display_name="Sales")
    finally:
        await services.close()
    return cli_environment(tmp_path / "data", database_url)


async def test_vacation_on_change_and_off(env: dict[str, str], tmp_path: Path) -> None:
    async def run(*args: str, stdin: str | None = None) -> Run:
        return await mailmark(env, "mailbox", "vacation", *args, stdin=stdin, cwd=tmp_path)

    body = tmp_path / "away.txt"
    body.write_text("Back on 14 July.\n", encoding="utf-8")
    on = await run(
        "sales@acme.test",
        "--on",
        "--subject",
        "Out of office",
        "--body-file",
        str(body),
        "--start",
        "2027-07-01",
        "--end",
        "2027-07-14",
        "--time-zone",
        "Europe/Paris",
        "--days",
        "3",
        "--json",
    )
    assert (on.code, on.err) == (0, "")
    assert on.json == {
        "enabled": True,
        "active": False,
        "subject": "Out of office",
        "body": "Back on 14 July.\n",
        "bodyFormat": "text",
        "days": 3,
        "timeZone": "Europe/Paris",
        "startsAt": "2027-07-01T00:00",
        "endsAt": "2027-07-15T00:00",
    }

    shown = await run("sales@acme.test")
    assert shown.code == 0
    assert "Vacation responder: on (outside its dates)\n" in shown.out
    assert "Reply once every: 3 day(s)\n" in shown.out

    # One change keeps the rest; the message can come from stdin.
    changed = await run("sales@acme.test", "--body-file", "-", "--json", stdin="Away.\n")
    assert changed.json["body"] == "Away.\n"  # type: ignore[index]
    assert changed.json["startsAt"] == "2027-07-01T00:00"  # type: ignore[index]
    assert changed.json["subject"] == "Out of office"  # type: ignore[index]

    off = await run("sales@acme.test", "--off", "--no-dates", "--json")
    assert off.json["enabled"] is False and off.json["startsAt"] is None  # type: ignore[index]

    wrong = await run("sales@acme.test", "--on", "--days", "0")
    assert (wrong.code, wrong.out) == (1, "")
    assert wrong.err == "mailmark: Reply to the same sender once every 1 to 365 days.\n"
    unknown_zone = await run("sales@acme.test", "--time-zone", "Mars/Olympus")
    assert unknown_zone.err.startswith("mailmark: 'Mars/Olympus' is not a time zone")
