"""Tenant isolation, generated from the app's route table: every /v1 route, called with another
domain's key and this domain's ids, answers 404 (or, for listings, shows none of this domain's
data), and changes nothing. A route added without a case here fails the test."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest
from litestar import Litestar

from mailmark.bootstrap import Listeners
from mailmark.config import Settings
from tests.support.world import World
from tests.web.api.conftest import Tenant, assert_error
from tests.web.api.test_send import later_ms


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # A webhook of acme.test may point at loopback, so one can be created for the matrix.
    return settings.model_copy(update={"webhook_allow_private_networks": ["127.0.0.1/32"]})


@dataclass
class AcmeIds:
    mailbox: str
    group: str
    email: str
    message_id: str
    webhook: str
    suppressed: str
    contact: str
    contact_list: str
    contact_import: str
    campaign: str


CONTACT = "acme-contact@example.com"
LIST_NAME = "Acme customers"
CAMPAIGN_NAME = "Acme outreach"


async def acme_ids(acme: Tenant, world: World) -> AcmeIds:
    group = (await acme.client.post("/v1/sender-groups", json={"name": "G"})).json()
    sent = (
        await acme.client.post(
            "/v1/send",
            json={
                "from": "sales@acme.test",
                "to": "ann@example.com",
                "subject": "s",
                "text": "t",
                "scheduledAt": later_ms(),
            },
        )
    ).json()
    email = (await acme.client.get(f"/v1/emails/{sent['messageId']}")).json()
    alias = await acme.client.post("/v1/aliases", json={"address": "team", "targets": ["sales"]})
    assert alias.status_code == 201, alias.text
    domain = await world.services.domains.get(world.domain)
    assert domain.id is not None
    hook = await world.services.webhooks.create(
        domain.account_id, domain.id, "http://127.0.0.1:9/hook", None
    )
    from mailmark.core.model import Suppression

    async with world.services.uow() as uow:
        await uow.suppressions.add(
            Suppression(domain.id, "gone@example.com", "bounce", "550", world.services.clock.now())
        )
        await uow.commit()
    contact = await acme.client.post("/v1/contacts", json={"email": CONTACT})
    contact_list = await acme.client.post("/v1/lists", json={"name": LIST_NAME})
    await acme.client.post(
        f"/v1/lists/{contact_list.json()['_id']}/members", json={"emails": [CONTACT]}
    )
    contact_import = await acme.client.post(
        "/v1/contacts/import", content=b"email\nimported@example.com\n"
    )
    assert contact_import.status_code == 202, contact_import.text
    campaign = await acme.client.post(
        "/v1/campaigns",
        json={
            "name": CAMPAIGN_NAME,
            "from": "sales@acme.test",
            "audience": {"listIds": [contact_list.json()["_id"]]},
            "stages": [{"subject": "Hello", "html": "<p>Hi</p>"}],
        },
    )
    assert campaign.status_code == 201, campaign.text
    return AcmeIds(
        "sales",
        group["_id"],
        email["_id"],
        sent["messageId"],
        str(hook.webhook.id),
        "gone@example.com",
        contact.json()["_id"],
        contact_list.json()["_id"],
        contact_import.json()["_id"],
        campaign.json()["_id"],
    )


Call = Callable[[httpx.AsyncClient, AcmeIds], Awaitable[httpx.Response]]
# What "none of acme's data" means for a listing: these strings must not appear in it.
LISTING = "listing"


def cases() -> dict[tuple[str, str], list[tuple[Call, str]]]:
    """(method, route path) → calls with the other key, each expecting 404 or a clean listing."""
    return {
        ("GET", "/v1/mailboxes"): [(lambda c, i: c.get("/v1/mailboxes"), LISTING)],
        ("POST", "/v1/mailboxes"): [
            (lambda c, i: c.post("/v1/mailboxes", json={"address": "x@acme.test"}), "404"),
        ],
        ("DELETE", "/v1/mailboxes/{address:str}"): [
            (lambda c, i: c.delete(f"/v1/mailboxes/{i.mailbox}@acme.test"), "404"),
            (lambda c, i: c.delete(f"/v1/mailboxes/{i.mailbox}"), "404"),
        ],
        ("PATCH", "/v1/mailboxes/{address:str}"): [
            (
                lambda c, i: c.patch(
                    f"/v1/mailboxes/{i.mailbox}@acme.test", json={"displayName": "stolen"}
                ),
                "404",
            ),
            (
                lambda c, i: c.patch(f"/v1/mailboxes/{i.mailbox}", json={"password": "x" * 20}),
                "404",
            ),
        ],
        ("GET", "/v1/aliases"): [(lambda c, i: c.get("/v1/aliases"), LISTING)],
        ("POST", "/v1/aliases"): [
            (
                lambda c, i: c.post(
                    "/v1/aliases", json={"address": "steal", "targets": ["sales@acme.test"]}
                ),
                "404",
            ),
        ],
        ("DELETE", "/v1/aliases/{address:str}"): [
            (lambda c, i: c.delete("/v1/aliases/team@acme.test"), "404"),
            (lambda c, i: c.delete("/v1/aliases/team"), "404"),
        ],
        ("GET", "/v1/sender-groups"): [(lambda c, i: c.get("/v1/sender-groups"), LISTING)],
        ("POST", "/v1/sender-groups"): [
            (
                lambda c, i: c.post(
                    "/v1/sender-groups", json={"name": "n", "mailboxes": ["sales@acme.test"]}
                ),
                "404",
            ),
        ],
        ("PATCH", "/v1/sender-groups/{group_id:str}"): [
            (lambda c, i: c.patch(f"/v1/sender-groups/{i.group}", json={"name": "stolen"}), "404"),
        ],
        ("DELETE", "/v1/sender-groups/{group_id:str}"): [
            (lambda c, i: c.delete(f"/v1/sender-groups/{i.group}"), "404"),
        ],
        ("POST", "/v1/send"): [
            (
                lambda c, i: c.post(
                    "/v1/send",
                    json={
                        "from": "sales@acme.test",
                        "to": "a@example.com",
                        "subject": "s",
                        "text": "t",
                    },
                ),
                "404",
            ),
            (
                lambda c, i: c.post(
                    "/v1/send",
                    json={
                        "senderGroupId": i.group,
                        "to": "a@example.com",
                        "subject": "s",
                        "text": "t",
                        "type": "campaign",
                    },
                ),
                "404",
            ),
        ],
        ("GET", "/v1/emails"): [
            (lambda c, i: c.get("/v1/emails"), LISTING),
            (lambda c, i: c.get("/v1/emails", params={"from": "sales@acme.test"}), LISTING),
        ],
        ("GET", "/v1/emails/{email_id:str}"): [
            (lambda c, i: c.get(f"/v1/emails/{i.email}"), "404"),
            (lambda c, i: c.get(f"/v1/emails/{i.message_id}"), "404"),
        ],
        ("POST", "/v1/emails/{email_id:str}/cancel"): [
            (lambda c, i: c.post(f"/v1/emails/{i.email}/cancel"), "404"),
            (lambda c, i: c.post(f"/v1/emails/{i.message_id}/cancel"), "404"),
        ],
        ("PATCH", "/v1/emails/{email_id:str}"): [
            (
                lambda c, i: c.patch(f"/v1/emails/{i.email}", json={"scheduledAt": later_ms(7200)}),
                "404",
            ),
        ],
        ("GET", "/v1/suppressions"): [(lambda c, i: c.get("/v1/suppressions"), LISTING)],
        ("DELETE", "/v1/suppressions/{address:str}"): [
            (lambda c, i: c.delete(f"/v1/suppressions/{i.suppressed}"), "404"),
        ],
        ("GET", "/v1/webhooks"): [(lambda c, i: c.get("/v1/webhooks"), LISTING)],
        ("POST", "/v1/webhooks"): [
            (lambda c, i: c.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/x"}), "own"),
        ],
        ("DELETE", "/v1/webhooks/{webhook:str}"): [
            (lambda c, i: c.delete(f"/v1/webhooks/{i.webhook}"), "404"),
        ],
        ("GET", "/v1/contacts"): [
            (lambda c, i: c.get("/v1/contacts"), LISTING),
            (lambda c, i: c.get("/v1/contacts", params={"listId": i.contact_list}), "404"),
        ],
        ("POST", "/v1/contacts"): [
            (lambda c, i: c.post("/v1/contacts", json={"email": "own@example.com"}), "own"),
        ],
        ("GET", "/v1/contacts/{contact_id:str}"): [
            (lambda c, i: c.get(f"/v1/contacts/{i.contact}"), "404"),
        ],
        ("PATCH", "/v1/contacts/{contact_id:str}"): [
            (lambda c, i: c.patch(f"/v1/contacts/{i.contact}", json={"firstName": "x"}), "404"),
        ],
        ("DELETE", "/v1/contacts/{contact_id:str}"): [
            (lambda c, i: c.delete(f"/v1/contacts/{i.contact}"), "404"),
        ],
        ("POST", "/v1/contacts/import"): [
            (
                lambda c, i: c.post(
                    "/v1/contacts/import",
                    content=b"email\nx@example.com\n",
                    params={"listId": i.contact_list},
                ),
                "404",
            ),
        ],
        ("POST", "/v1/contacts/import/preview"): [
            (
                lambda c, i: c.post("/v1/contacts/import/preview", content=b"email\nbroken\n"),
                LISTING,
            ),
        ],
        ("GET", "/v1/contacts/import/{import_id:str}"): [
            (lambda c, i: c.get(f"/v1/contacts/import/{i.contact_import}"), "404"),
        ],
        ("GET", "/v1/contacts/export"): [
            (lambda c, i: c.get("/v1/contacts/export"), LISTING),
            (lambda c, i: c.get("/v1/contacts/export", params={"listId": i.contact_list}), "404"),
        ],
        ("GET", "/v1/lists"): [(lambda c, i: c.get("/v1/lists"), LISTING)],
        ("POST", "/v1/lists"): [
            (lambda c, i: c.post("/v1/lists", json={"name": "Own list"}), "own")
        ],
        ("GET", "/v1/lists/{list_id:str}"): [
            (lambda c, i: c.get(f"/v1/lists/{i.contact_list}"), "404"),
        ],
        ("PATCH", "/v1/lists/{list_id:str}"): [
            (lambda c, i: c.patch(f"/v1/lists/{i.contact_list}", json={"name": "x"}), "404"),
        ],
        ("DELETE", "/v1/lists/{list_id:str}"): [
            (lambda c, i: c.delete(f"/v1/lists/{i.contact_list}"), "404"),
        ],
        ("POST", "/v1/lists/{list_id:str}/members"): [
            (
                lambda c, i: c.post(
                    f"/v1/lists/{i.contact_list}/members", json={"contactIds": [i.contact]}
                ),
                "404",
            ),
        ],
        ("DELETE", "/v1/lists/{list_id:str}/members/{contact_id:str}"): [
            (lambda c, i: c.delete(f"/v1/lists/{i.contact_list}/members/{i.contact}"), "404"),
        ],
        ("GET", "/v1/campaigns"): [(lambda c, i: c.get("/v1/campaigns"), LISTING)],
        ("POST", "/v1/campaigns"): [
            (
                lambda c, i: c.post(
                    "/v1/campaigns",
                    json={
                        "name": "n",
                        "from": "sales@acme.test",
                        "stages": [{"subject": "s", "html": "h"}],
                    },
                ),
                "404",
            ),
            (
                lambda c, i: c.post(
                    "/v1/campaigns",
                    json={
                        "name": "n",
                        "from": "news@other.test",
                        "audience": {"listIds": [i.contact_list]},
                        "stages": [{"subject": "s", "html": "h"}],
                    },
                ),
                "404",
            ),
            (
                lambda c, i: c.post(
                    "/v1/campaigns",
                    json={
                        "name": "n",
                        "senderGroupId": i.group,
                        "stages": [{"subject": "s", "html": "h"}],
                    },
                ),
                "404",
            ),
        ],
        ("GET", "/v1/campaigns/{campaign_id:str}"): [
            (lambda c, i: c.get(f"/v1/campaigns/{i.campaign}"), "404"),
        ],
        ("PATCH", "/v1/campaigns/{campaign_id:str}"): [
            (lambda c, i: c.patch(f"/v1/campaigns/{i.campaign}", json={"name": "x"}), "404"),
        ],
        **{
            ("POST", f"/v1/campaigns/{{campaign_id:str}}/{action}"): [
                (lambda c, i, action=action: c.post(f"/v1/campaigns/{i.campaign}/{action}"), "404")
            ]
            for action in ("launch", "pause", "resume", "cancel")
        },
        ("GET", "/v1/campaigns/{campaign_id:str}/stats"): [
            (lambda c, i: c.get(f"/v1/campaigns/{i.campaign}/stats"), "404"),
        ],
        ("GET", "/v1/campaigns/{campaign_id:str}/recipients"): [
            (lambda c, i: c.get(f"/v1/campaigns/{i.campaign}/recipients"), "404"),
        ],
        ("POST", "/v1/campaigns/{campaign_id:str}/preview"): [
            (
                lambda c, i: c.post(
                    f"/v1/campaigns/{i.campaign}/preview", json={"contactId": i.contact}
                ),
                "404",
            ),
        ],
        ("POST", "/v1/campaigns/{campaign_id:str}/test-send"): [
            (
                lambda c, i: c.post(
                    f"/v1/campaigns/{i.campaign}/test-send", json={"to": "me@other.test"}
                ),
                "404",
            ),
        ],
    }


def v1_routes(app: Litestar) -> set[tuple[str, str]]:
    return {
        (method, route.path)
        for route in app.routes
        if route.path.startswith("/v1")
        for method in getattr(route, "methods", set())
        if method not in ("HEAD", "OPTIONS")
    }


async def test_every_v1_route_hides_other_domains(
    listeners: Listeners, acme: Tenant, other: Tenant, world: World
) -> None:
    app = listeners.http.server.config.app
    assert isinstance(app, Litestar)
    matrix = cases()
    assert v1_routes(app) == set(matrix), "every /v1 route needs an isolation case"
    ids = await acme_ids(acme, world)
    before = await snapshot(acme)

    for (method, path), calls in matrix.items():
        for call, expected in calls:
            response = await call(other.client, ids)
            where = f"{method} {path}: {response.text}"
            if expected == "404":
                assert response.status_code == 404, where
                assert_error(response, 404, "not_found")
            elif expected == LISTING:
                assert response.status_code == 200, where
                for secret in (
                    ids.mailbox + "@acme.test",
                    ids.group,
                    ids.message_id,
                    "acme.test",
                    ids.suppressed,
                    "127.0.0.1:9/hook",
                    CONTACT,
                    LIST_NAME,
                    CAMPAIGN_NAME,
                ):
                    assert secret not in response.text, where
            else:  # created in the caller's own domain, never acme's
                assert response.status_code == 201, where

    assert await snapshot(acme) == before


async def snapshot(acme: Tenant) -> list[object]:
    paths = [
        "/v1/mailboxes",
        "/v1/aliases",
        "/v1/sender-groups",
        "/v1/emails",
        "/v1/suppressions",
        "/v1/contacts",
        "/v1/lists",
        "/v1/campaigns",
        "/v1/webhooks",
    ]
    answers = [(await acme.client.get(path)).json() for path in paths]
    for hook in answers[-1]:  # delivery state changes on its own; the set of hooks must not
        hook.pop("recentDeliveries", None)
    return answers
