"""The team over a real listener: inviting by email (through the outbound queue), accepting,
roles, mailbox assignments, and removal ending sessions at once."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mailmark.bootstrap import Listeners
from mailmark.core.ports import Clock
from tests.support.clock import SettableClock
from tests.support.web import (
    ADMIN_EMAIL,
    MEMBER_EMAIL,
    MEMBER_PASSWORD,
    OWNER_EMAIL,
    ApiClient,
    api_url,
)
from tests.support.world import World, queued_emails
from tests.web.api.conftest import assert_error


async def invite(client: ApiClient, email: str, role: str = "member", **extra: object) -> dict:
    response = await client.post(
        "/api/team/invitations", json={"email": email, "role": role, **extra}
    )
    assert response.status_code == 201, response.text
    body: dict = response.json()
    return body


def token_of(invitation: dict) -> str:
    return str(invitation["acceptUrl"]).rpartition("/")[2]


async def test_an_invitation_is_emailed_and_accepting_it_joins_the_team(
    listeners: Listeners, world: World, owner_client: ApiClient
) -> None:
    invitation = await invite(owner_client, "New@Acme.test", mailboxes=[world.support.address])
    assert invitation["email"] == "new@acme.test"
    assert invitation["role"] == "member" and invitation["mailboxes"] == [world.support.address]
    assert invitation["invitedBy"] == OWNER_EMAIL
    assert invitation["acceptUrl"].startswith(f"{world.services.settings.public_url}/invite/")

    [mail] = await queued_emails(world.services)
    assert mail.recipient == "new@acme.test"
    assert mail.message["Subject"] == "You are invited to acme on Mailmark"
    assert invitation["acceptUrl"] in mail.text

    # Listed as pending, without the link (it is kept only as a hash).
    team = (await owner_client.get("/api/team")).json()
    assert [i["email"] for i in team["invitations"]] == ["new@acme.test"]
    assert team["invitations"][0]["acceptUrl"] is None

    async with ApiClient(api_url(listeners)) as joiner:
        token = token_of(invitation)
        preview = await joiner.get(f"/api/invitations/{token}")
        assert preview.status_code == 200
        assert preview.json() == {
            "email": "new@acme.test",
            "accountName": "acme",
            "role": "member",
            "invitedBy": OWNER_EMAIL,
            "expiresAt": invitation["expiresAt"],
        }
        await joiner.session()
        accepted = await joiner.post(
            f"/api/invitations/{token}/accept", json={"name": "Nina", "password": "nina-pass-1"}
        )
        assert accepted.status_code == 201, accepted.text
        me = accepted.json()
        assert (me["email"], me["role"], me["name"]) == ("new@acme.test", "member", "Nina")
        assert (await joiner.get("/api/me")).json()["id"] == me["id"]

        # The link is spent.
        assert_error(await joiner.get(f"/api/invitations/{token}"), 404, "not_found")
        again = await joiner.post(
            f"/api/invitations/{token}/accept", json={"name": "Eve", "password": "eve-pass-12"}
        )
        assert_error(again, 404, "not_found")

    team = (await owner_client.get("/api/team")).json()
    assert team["invitations"] == []
    member = next(m for m in team["members"] if m["email"] == "new@acme.test")
    assert member["mailboxes"] == [world.support.address] and member["role"] == "member"
    assert set(member) == {"id", "email", "name", "role", "mailboxes", "createdAt"}


async def test_the_member_fixture_has_its_mailbox(
    world: World, owner_client: ApiClient, member_client: ApiClient
) -> None:
    members = (await owner_client.get("/api/team")).json()["members"]
    member = next(m for m in members if m["email"] == MEMBER_EMAIL)
    assert member["mailboxes"] == [world.sales.address]


async def test_members_cannot_manage_the_team(member_client: ApiClient) -> None:
    message = assert_error(await member_client.get("/api/team"), 403, "forbidden")
    assert message.startswith("Only an owner or an admin can ")
    response = await member_client.post(
        "/api/team/invitations", json={"email": "x@acme.test", "role": "member"}
    )
    assert_error(response, 403, "forbidden")


async def test_nobody_is_invited_or_promoted_to_owner(
    owner_client: ApiClient, admin_client: ApiClient, member_client: ApiClient
) -> None:
    for client in (owner_client, admin_client):
        response = await client.post(
            "/api/team/invitations", json={"email": "boss@acme.test", "role": "owner"}
        )
        assert_error(response, 403, "forbidden")
    member_id = (await member_client.get("/api/me")).json()["id"]
    promoted = await admin_client.patch(f"/api/team/members/{member_id}", json={"role": "owner"})
    assert_error(promoted, 403, "forbidden", "role")
    bogus = await owner_client.patch(f"/api/team/members/{member_id}", json={"role": "god"})
    assert_error(bogus, 400, "invalid_input", "role")


async def test_the_owner_cannot_be_demoted_or_removed(
    owner_client: ApiClient, admin_client: ApiClient
) -> None:
    owner_id = (await owner_client.get("/api/me")).json()["id"]
    for client in (owner_client, admin_client):
        demoted = await client.patch(f"/api/team/members/{owner_id}", json={"role": "member"})
        assert_error(demoted, 403, "forbidden")
        assert_error(await client.delete(f"/api/team/members/{owner_id}"), 403, "forbidden")
    assert (await owner_client.get("/api/me")).json()["role"] == "owner"


async def test_a_demotion_shows_at_the_very_next_request(
    owner_client: ApiClient, admin_client: ApiClient
) -> None:
    assert (await admin_client.get("/api/team")).status_code == 200
    admin_id = (await admin_client.get("/api/me")).json()["id"]
    changed = await owner_client.patch(f"/api/team/members/{admin_id}", json={"role": "member"})
    assert changed.status_code == 200 and changed.json()["role"] == "member"
    assert (await admin_client.get("/api/me")).json()["role"] == "member"
    assert_error(await admin_client.get("/api/team"), 403, "forbidden")


async def test_assignments_can_be_changed(
    world: World, owner_client: ApiClient, member_client: ApiClient
) -> None:
    member_id = (await member_client.get("/api/me")).json()["id"]
    both = [world.support.address, world.sales.address]
    changed = await owner_client.patch(f"/api/team/members/{member_id}", json={"mailboxes": both})
    assert changed.status_code == 200, changed.text
    assert changed.json()["mailboxes"] == sorted(both)
    elsewhere = await owner_client.patch(
        f"/api/team/members/{member_id}", json={"mailboxes": ["news@other.test"]}
    )
    assert_error(elsewhere, 404, "not_found", "mailboxes")


async def test_removing_a_member_ends_their_sessions_at_once(
    listeners: Listeners, owner_client: ApiClient, member_client: ApiClient
) -> None:
    member_id = (await member_client.get("/api/me")).json()["id"]
    async with ApiClient(api_url(listeners)) as second_browser:
        await second_browser.signed_in(MEMBER_EMAIL, MEMBER_PASSWORD)
        removed = await owner_client.delete(f"/api/team/members/{member_id}")
        assert removed.status_code == 204
        assert_error(await member_client.get("/api/me"), 401, "unauthenticated")
        assert_error(await second_browser.get("/api/me"), 401, "unauthenticated")
        assert_error(
            await second_browser.sign_in(MEMBER_EMAIL, MEMBER_PASSWORD), 401, "invalid_credentials"
        )
    emails = [m["email"] for m in (await owner_client.get("/api/team")).json()["members"]]
    assert MEMBER_EMAIL not in emails


async def test_admins_may_remove_members_but_not_themselves(
    admin_client: ApiClient, member_client: ApiClient
) -> None:
    admin_id = (await admin_client.get("/api/me")).json()["id"]
    assert_error(await admin_client.delete(f"/api/team/members/{admin_id}"), 403, "forbidden")
    member_id = (await member_client.get("/api/me")).json()["id"]
    assert (await admin_client.delete(f"/api/team/members/{member_id}")).status_code == 204
    assert_error(await member_client.get("/api/me"), 401, "unauthenticated")


async def test_another_accounts_members_and_invitations_are_not_found(
    listeners: Listeners, world: World, owner_client: ApiClient
) -> None:
    services = world.services
    await services.accounts.create(
        "other", owner_email="owner@other.test", password="owner-pass-1", plan="unlimited"
    )
    async with ApiClient(api_url(listeners)) as stranger:
        await stranger.signed_in("owner@other.test", "owner-pass-1")
        invitation = await invite(owner_client, "someone@acme.test")
        owner_id = (await owner_client.get("/api/me")).json()["id"]
        for response in [
            await stranger.patch(f"/api/team/members/{owner_id}", json={"role": "admin"}),
            await stranger.delete(f"/api/team/members/{owner_id}"),
            await stranger.delete(f"/api/team/invitations/{invitation['id']}"),
        ]:
            assert_error(response, 404, "not_found")
        team = (await stranger.get("/api/team")).json()
        assert [m["email"] for m in team["members"]] == ["owner@other.test"]
        assert team["invitations"] == []


async def test_an_existing_user_cannot_be_invited(owner_client: ApiClient) -> None:
    response = await owner_client.post(
        "/api/team/invitations", json={"email": ADMIN_EMAIL.upper(), "role": "admin"}
    )
    assert response.status_code == 201  # not yet a user
    again = await owner_client.post(
        "/api/team/invitations", json={"email": OWNER_EMAIL, "role": "admin"}
    )
    assert_error(again, 409, "conflict", "email")


async def test_a_withdrawn_invitation_no_longer_works(
    listeners: Listeners, owner_client: ApiClient
) -> None:
    invitation = await invite(owner_client, "late@acme.test")
    withdrawn = await owner_client.delete(f"/api/team/invitations/{invitation['id']}")
    assert withdrawn.status_code == 204
    async with ApiClient(api_url(listeners)) as joiner:
        assert_error(await joiner.get(f"/api/invitations/{token_of(invitation)}"), 404, "not_found")


class TestExpiry:
    @pytest.fixture
    def clock(self) -> Clock:
        return SettableClock()

    async def test_an_invitation_expires_after_seven_days(
        self, listeners: Listeners, clock: SettableClock, owner_client: ApiClient
    ) -> None:
        invitation = await invite(owner_client, "slow@acme.test")
        clock.advance(timedelta(days=7, seconds=1))
        async with ApiClient(api_url(listeners)) as joiner:
            await joiner.session()
            accepted = await joiner.post(
                f"/api/invitations/{token_of(invitation)}/accept",
                json={"name": "Slow", "password": "slow-pass-1"},
            )
            assert_error(accepted, 404, "not_found")
