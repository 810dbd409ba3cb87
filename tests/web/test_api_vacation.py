"""/api/mailboxes/{address}/vacation over a real listener: the defaults, turning the responder
on with dates in the owner's zone, HTML sanitised, clear errors, and a member limited to the
mailboxes assigned to them."""

from __future__ import annotations

from tests.support.web import ApiClient
from tests.support.world import World
from tests.web.api.conftest import assert_error

URL = "/api/mailboxes/sales@acme.test/vacation"


async def test_off_until_turned_on(owner_client: ApiClient, world: World) -> None:
    shown = await owner_client.get(URL)
    assert shown.status_code == 200, shown.text
    assert shown.json() == {
        "enabled": False,
        "active": False,
        "subject": "",
        "body": "",
        "bodyFormat": "text",
        "days": 7,
        "timeZone": "UTC",
        "startsAt": None,
        "endsAt": None,
    }
    # The clock of these tests is the real one: a window around today is active.
    turned_on = await owner_client.put(
        URL,
        json={
            "enabled": True,
            "subject": "Away",
            "body": "Back soon.",
            "days": 3,
            "timeZone": "America/New_York",
            "startsAt": "2020-01-01T08:30",
            "endsAt": "2999-12-31",
        },
    )
    assert turned_on.status_code == 200, turned_on.text
    body = turned_on.json()
    assert body["active"] is True and body["days"] == 3
    assert (body["startsAt"], body["endsAt"]) == ("2020-01-01T08:30", "3000-01-01T00:00")
    assert (await owner_client.get(URL)).json() == body
    settings = await world.services.vacation.get(world.sales.address)
    assert settings.settings.starts_at is not None
    assert settings.settings.starts_at.isoformat() == "2020-01-01T13:30:00+00:00"


async def test_html_is_sanitised(owner_client: ApiClient) -> None:
    saved = await owner_client.put(
        URL,
        json={
            "enabled": True,
            "bodyFormat": "html",
            "body": '<p onclick="steal()">Away<script>alert(1)</script></p>',
        },
    )
    assert saved.status_code == 200, saved.text
    assert saved.json()["body"] == "<p>Away</p>"


async def test_bad_input_is_explained(owner_client: ApiClient) -> None:
    empty = await owner_client.put(URL, json={"enabled": True, "body": "  "})
    assert assert_error(empty, 400, "invalid_input", "body") == (
        "Write the message the responder sends."
    )
    backwards = await owner_client.put(
        URL,
        json={"enabled": True, "body": "x", "startsAt": "2030-02-01", "endsAt": "2030-01-01"},
    )
    assert assert_error(backwards, 400, "invalid_input", "endsAt") == (
        "The last day comes before the first."
    )
    not_a_date = await owner_client.put(
        URL, json={"enabled": True, "body": "x", "startsAt": "next monday"}
    )
    assert_error(not_a_date, 400, "invalid_input", "startsAt")
    zone = await owner_client.put(URL, json={"enabled": True, "body": "x", "timeZone": "Nowhere"})
    assert_error(zone, 400, "invalid_input", "timeZone")
    injected = await owner_client.put(
        URL, json={"enabled": True, "body": "x", "subject": "Hi\r\nBcc: all@example.com"}
    )
    assert_error(injected, 422, "header_injection")
    days = await owner_client.put(URL, json={"enabled": True, "body": "x", "days": 0})
    assert_error(days, 400, "invalid_input", "days")


async def test_a_member_sets_only_their_own(member_client: ApiClient) -> None:
    mine = await member_client.put(URL, json={"enabled": True, "body": "Away."})
    assert mine.status_code == 200, mine.text
    other = "/api/mailboxes/support@acme.test/vacation"
    assert_error(await member_client.get(other), 404, "not_found")
    assert_error(await member_client.put(other, json={"enabled": False}), 404, "not_found")
