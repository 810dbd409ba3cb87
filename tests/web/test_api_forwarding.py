"""/api/mailboxes/{address}/forwarding over HTTP, as the dashboard calls it: read, set, refuse
with the reason, turn off; a member only for the mailbox assigned to them."""

from __future__ import annotations

from tests.support.web import ApiClient
from tests.support.world import World

URL = "/api/mailboxes/sales@acme.test/forwarding"


async def test_the_owner_sets_and_clears_forwarding(owner_client: ApiClient, world: World) -> None:
    assert (await owner_client.get(URL)).json() == {
        "addresses": [],
        "keepCopy": True,
        "maxAddresses": 5,
    }
    saved = await owner_client.put(
        URL, json={"addresses": ["bob@remote.test", "Carol@Other.TEST"], "keepCopy": False}
    )
    assert saved.status_code == 200, saved.text
    assert saved.json() == {
        "addresses": ["bob@remote.test", "Carol@other.test"],
        "keepCopy": False,
        "maxAddresses": 5,
    }
    assert (await owner_client.get(URL)).json() == saved.json()

    itself = await owner_client.put(URL, json={"addresses": ["sales@acme.test"]})
    assert itself.status_code == 400
    assert "cannot forward to itself" in itself.text
    bad = await owner_client.put(URL, json={"addresses": ["not an address"]})
    assert bad.status_code == 400 and "not a valid email address" in bad.text
    many = await owner_client.put(URL, json={"addresses": [f"r{n}@x.test" for n in range(6)]})
    assert many.status_code == 400 and "at most 5 addresses" in many.text
    assert (await owner_client.get(URL)).json() == saved.json()

    off = await owner_client.put(URL, json={"addresses": []})
    assert off.json() == {"addresses": [], "keepCopy": True, "maxAddresses": 5}


async def test_a_member_forwards_only_their_own_mailbox(member_client: ApiClient) -> None:
    mine = await member_client.put(URL, json={"addresses": ["me@home.test"]})
    assert mine.status_code == 200, mine.text
    other = await member_client.put(
        "/api/mailboxes/support@acme.test/forwarding", json={"addresses": ["me@home.test"]}
    )
    assert other.status_code == 404
    assert (
        await member_client.get("/api/mailboxes/support@acme.test/forwarding")
    ).status_code == 404
