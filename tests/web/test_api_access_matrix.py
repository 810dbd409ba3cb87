"""Who may call what, generated from the app's route table: every /api route is called as the
acme account's owner, an admin, a member (assigned sales@acme.test only), the owner of another
account, and someone signed out, and each answer is the one the rules give. A route without a
case here fails the test.

Owners and admins manage the account; a member gets 403 `forbidden` for management and sees
only the assigned mailbox; another account's owner gets 404 for anything of acme's, exactly as
for something that does not exist; signed out is 401. The routes that work signed out (sign-in,
setup, invitations) must answer without a server error whoever calls them, and every route that
needs a session answers 401 without one. The calls of the member, the other owner and the
signed-out client change nothing of acme's."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from litestar import Litestar

from mailmark.bootstrap import Listeners
from mailmark.config import Settings
from mailmark.core.access import Role
from mailmark.core.campaign_engine import CampaignDraft, CampaignScope
from mailmark.core.webmail_compose import Composition
from tests.support.viewers import add_user, viewer_of
from tests.support.web import ApiClient, api_url
from tests.support.world import World

OWNER, ADMIN, MEMBER, OTHER, ANONYMOUS = "owner", "admin", "member", "other", "anonymous"
# The order the matrix runs in: those who must change nothing of acme's first.
PERSONAS = (ANONYMOUS, OTHER, MEMBER, ADMIN, OWNER)
ANY_ANSWER = 0  # a public route: any status but a server error


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Webhooks of the matrix point at a closed port on loopback.
    return settings.model_copy(update={"webhook_allow_private_networks": ["127.0.0.1/32"]})


@dataclass
class Scene:
    """acme's things each persona's destructive calls aim at, made before the matrix runs: each
    owner or admin call that succeeds consumes its own; the others must leave theirs alone."""

    world: World
    domains: dict[str, str] = field(default_factory=dict)
    mailboxes: dict[str, str] = field(default_factory=dict)
    keys: dict[str, int] = field(default_factory=dict)
    hooks: dict[str, int] = field(default_factory=dict)
    invitations: dict[str, int] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)
    member_id: int = 0
    current: int = 0
    # The webmail: sales@ (the member's) and support@ (not the member's), each with one message
    # in its Inbox and a folder per persona for the folder changes to consume.
    sales_id: int = 0
    support_id: int = 0
    inbox: dict[int, int] = field(default_factory=dict)
    trash: dict[int, int] = field(default_factory=dict)
    thread: dict[int, str] = field(default_factory=dict)
    user_folders: dict[tuple[int, str], int] = field(default_factory=dict)
    # (persona, mailbox address) → the UID of a message of theirs waiting in that Outbox.
    outbox: dict[tuple[str, str], int] = field(default_factory=dict)
    # mailbox address → (Outbox folder id, UID) of a waiting message nobody cancels.
    waiting: dict[str, tuple[int, int]] = field(default_factory=dict)
    # acme's contacts and lists: one of each per persona to delete, and one of each kept.
    contacts: dict[str, int] = field(default_factory=dict)
    lists: dict[str, int] = field(default_factory=dict)
    import_id: int = 0
    # A draft campaign of acme's every persona reads, and one per persona to cancel.
    campaign: str = ""
    campaigns: dict[str, str] = field(default_factory=dict)

    def mail(self, address: str, path: str) -> str:
        mailbox = self.world.sales if address == SALES else self.world.support
        return f"/api/mail/{mailbox.id}{path}"

    async def prepare(self) -> None:
        services = self.world.services
        owner = await viewer_of(services, "owner@acme.test")
        self.member_id = (await viewer_of(services, "member@acme.test")).user_id
        acme = await services.domains.get(self.world.domain)
        assert acme.id is not None
        for persona in PERSONAS:
            name = f"{persona}.matrix.test"
            await services.domains.add(name, account_name="acme", trust=True)
            self.domains[persona] = name
            mailbox = await services.mailboxes.create(f"gone-{persona}@acme.test")
            self.mailboxes[persona] = mailbox.address
            key = await services.api_keys.create(name, persona)
            assert key.key.id is not None
            self.keys[persona] = key.key.id
            hook = await services.webhooks.create(
                acme.account_id, acme.id, f"http://127.0.0.1:9/{persona}", None
            )
            assert hook.webhook.id is not None
            self.hooks[persona] = hook.webhook.id
            invited = await services.team.invite(
                owner, f"invited-{persona}@acme.test", "member", []
            )
            assert invited.invitation.id is not None
            self.invitations[persona] = invited.invitation.id
            user = await add_user(services, "acme", f"leaving-{persona}@acme.test", Role.MEMBER)
            self.users[persona] = user.user_id
        scope = CampaignScope(acme.account_id, acme.id, acme.name)
        for persona in ("shared", *PERSONAS):
            made = await services.campaign_service.create(
                scope,
                CampaignDraft(
                    name=f"Matrix {persona}",
                    from_address=SALES,
                    stages=[{"subject": "Hi {{firstName|there}}", "html": "<p>Hello</p>"}],
                ),
            )
            self.campaigns[persona] = str(made.id)
        self.campaign = self.campaigns["shared"]
        tomorrow = services.clock.now() + timedelta(days=1)
        for mailbox in (self.world.sales, self.world.support):
            assert mailbox.id is not None
            for persona in (*PERSONAS, "kept"):
                sent = await services.compose.send(
                    owner,
                    mailbox.id,
                    Composition(to=("bob@remote.test",), subject=persona, html="<p>x</p>"),
                    scheduled_at=tomorrow,
                )
                assert sent.outbox is not None
                self.outbox[(persona, mailbox.address)] = sent.outbox.uid
                self.waiting[mailbox.address] = (sent.outbox.folder_id, sent.outbox.uid)
        await self.prepare_mail()
        await self.prepare_contacts()

    async def prepare_contacts(self) -> None:
        services = self.world.services
        acme = (await services.domains.get(self.world.domain)).account_id
        for persona in (*PERSONAS, "kept"):
            contact = await services.contacts.create(acme, email=f"{persona}@contacts.test")
            made = await services.contacts.create_list(acme, f"List {persona}")
            assert contact.id is not None and made.id is not None
            self.contacts[persona], self.lists[persona] = contact.id, made.id

        async def upload() -> AsyncIterator[bytes]:
            yield b"email\r\nimported@contacts.test\r\n"

        job = await services.contacts.start_import(acme, upload())
        assert job.id is not None
        self.import_id = job.id

    async def prepare_mail(self) -> None:
        services = self.world.services
        for mailbox in (self.world.sales, self.world.support):
            assert mailbox.id is not None
            receipt = await services.delivery.deliver(
                b"From: a@example.org\r\nSubject: Matrix\r\nMessage-ID: <matrix-"
                + mailbox.address.encode()
                + b">\r\n\r\nHello.\r\n",
                recipients=[mailbox],
                mail_from="a@example.org",
            )
            self.thread[mailbox.id] = receipt.placements[0].thread_id
            folders = {f.name: f.id for f in await services.mailstore.list_folders(mailbox.id)}
            self.inbox[mailbox.id], self.trash[mailbox.id] = folders["INBOX"], folders["Trash"]
            for persona in PERSONAS:
                made = await services.mailstore.create_folder(mailbox.id, f"Matrix {persona}")
                self.user_folders[(mailbox.id, persona)] = made.id
        assert self.world.sales.id is not None and self.world.support.id is not None
        self.sales_id, self.support_id = self.world.sales.id, self.world.support.id


Call = Callable[[ApiClient, str, Scene], Awaitable[httpx.Response]]


@dataclass
class Case:
    call: Call
    expect: Mapping[str, int]  # persona → status; ANY_ANSWER: no server error


def manage(call: Call, ok: int, *, other: int = 404) -> Case:
    """Owner/admin only: a member is forbidden, another account's owner finds nothing."""
    return Case(call, {OWNER: ok, ADMIN: ok, MEMBER: 403, OTHER: other, ANONYMOUS: 401})


def everyone(call: Call, ok: int, *, member: int | None = None, other: int = 404) -> Case:
    """Any signed-in person of acme (a member: when the mailbox is theirs)."""
    return Case(
        call,
        {
            OWNER: ok,
            ADMIN: ok,
            MEMBER: ok if member is None else member,
            OTHER: other,
            ANONYMOUS: 401,
        },
    )


def mail(call: Call, ok: int) -> list[Case]:
    """A webmail route, called for sales@ (the member's) and for support@ (not the member's:
    404, as for another account's owner). `call(c, p, s)` reads the mailbox id from
    `s.current`."""

    def on(mailbox: str) -> Call:
        def bound(c: ApiClient, p: str, s: Scene) -> Awaitable[httpx.Response]:
            s.current = s.sales_id if mailbox == "sales" else s.support_id
            return call(c, p, s)

        return bound

    return [everyone(on("sales"), ok), everyone(on("support"), ok, member=404)]


def public(call: Call) -> Case:
    return Case(call, dict.fromkeys(PERSONAS, ANY_ANSWER))


def signed_in_only(call: Call) -> Case:
    """Routes of the signed-in person themselves (sessions, two-factor): signed out is 401; with
    a session they act on the caller's own user, which the auth tests cover."""
    return Case(call, {ANONYMOUS: 401})


ACME = "acme.test"
SALES, SUPPORT = "sales@acme.test", "support@acme.test"
HOOKS = f"/api/domains/{ACME}/webhooks"


def mailbox_routes(call: Callable[[str], Call], ok: int) -> list[Case]:
    """A webmail route on sales@ (the member's) and on support@ (not the member's: 404)."""
    return [everyone(call(SALES), ok), everyone(call(SUPPORT), ok, member=404)]


def upload(address: str) -> Call:
    return lambda c, p, s: c.post(
        s.mail(address, "/uploads"), files={"file": ("matrix.txt", b"matrix", "text/plain")}
    )


def save_draft(address: str) -> Call:
    return lambda c, p, s: c.put(s.mail(address, "/drafts"), json={"subject": f"draft {p}"})


def send(address: str) -> Call:
    return lambda c, p, s: c.post(
        s.mail(address, "/send"),
        json={"to": ["support@acme.test"], "subject": f"sent by {p}", "html": "<p>x</p>"},
    )


def cancel(address: str) -> Call:
    return lambda c, p, s: c.post(s.mail(address, f"/outbox/{s.outbox[(p, address)]}/cancel"))


def reschedule(address: str) -> Call:
    later = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    return lambda c, p, s: c.post(
        s.mail(address, f"/outbox/{s.waiting[address][1]}/reschedule"),
        json={"scheduledAt": later},
    )


def delivery(address: str) -> Call:
    def call(c: ApiClient, p: str, s: Scene) -> Awaitable[httpx.Response]:
        folder, uid = s.waiting[address]
        return c.get(s.mail(address, f"/messages/{folder}/{uid}/delivery"))

    return call


def contacts(address: str) -> Call:
    return lambda c, p, s: c.get(s.mail(address, "/contacts"), params={"q": "bo"})


def cases() -> dict[tuple[str, str], list[Case]]:
    return {
        # --- webmail, compose side: a member uses sales@, never support@
        ("POST", "/api/mail/{mailbox_id:int}/uploads"): mailbox_routes(upload, 201),
        ("PUT", "/api/mail/{mailbox_id:int}/drafts"): mailbox_routes(save_draft, 200),
        ("POST", "/api/mail/{mailbox_id:int}/send"): mailbox_routes(send, 202),
        ("POST", "/api/mail/{mailbox_id:int}/outbox/{uid:int}/cancel"): mailbox_routes(cancel, 200),
        ("POST", "/api/mail/{mailbox_id:int}/outbox/{uid:int}/reschedule"): mailbox_routes(
            reschedule, 200
        ),
        ("GET", "/api/mail/{mailbox_id:int}/messages/{folder_id:int}/{uid:int}/delivery"): (
            mailbox_routes(delivery, 200)
        ),
        ("GET", "/api/mail/{mailbox_id:int}/contacts"): mailbox_routes(contacts, 200),
        # --- contacts and lists (owner/admin only; another account sees its own, empty)
        ("GET", "/api/contacts"): [manage(lambda c, p, s: c.get("/api/contacts"), 200, other=200)],
        ("POST", "/api/contacts"): [
            manage(
                lambda c, p, s: c.post("/api/contacts", json={"email": f"new-{p}@contacts.test"}),
                201,
                other=201,
            )
        ],
        ("GET", "/api/contacts/{contact_id:str}"): [
            manage(lambda c, p, s: c.get(f"/api/contacts/{s.contacts['kept']}"), 200)
        ],
        ("PATCH", "/api/contacts/{contact_id:str}"): [
            manage(
                lambda c, p, s: c.patch(
                    f"/api/contacts/{s.contacts[p]}", json={"firstName": f"By {p}"}
                ),
                200,
            )
        ],
        ("DELETE", "/api/contacts/{contact_id:str}"): [
            manage(lambda c, p, s: c.delete(f"/api/contacts/{s.contacts[p]}"), 204)
        ],
        ("POST", "/api/contacts/import/columns"): [
            manage(
                lambda c, p, s: c.post(
                    "/api/contacts/import/columns",
                    content=b"Mail,Name\r\ncolumns@contacts.test,Cy\r\n",
                    headers={"content-type": "text/csv"},
                ),
                200,
                other=200,
            )
        ],
        ("POST", "/api/contacts/import/preview"): [
            manage(
                lambda c, p, s: c.post(
                    "/api/contacts/import/preview",
                    content=b"email\r\npreview@contacts.test\r\n",
                    headers={"content-type": "text/csv"},
                ),
                200,
                other=200,
            )
        ],
        ("POST", "/api/contacts/import"): [
            manage(
                lambda c, p, s: c.post(
                    "/api/contacts/import",
                    content=f"email\r\nimport-{p}@contacts.test\r\n".encode(),
                    headers={"content-type": "text/csv"},
                ),
                202,
                other=202,
            )
        ],
        ("GET", "/api/contacts/import/{import_id:str}"): [
            manage(lambda c, p, s: c.get(f"/api/contacts/import/{s.import_id}"), 200)
        ],
        ("GET", "/api/contacts/export"): [
            manage(lambda c, p, s: c.get("/api/contacts/export"), 200, other=200)
        ],
        ("GET", "/api/lists"): [manage(lambda c, p, s: c.get("/api/lists"), 200, other=200)],
        ("POST", "/api/lists"): [
            manage(lambda c, p, s: c.post("/api/lists", json={"name": f"New {p}"}), 201, other=201)
        ],
        ("PATCH", "/api/lists/{list_id:str}"): [
            manage(
                lambda c, p, s: c.patch(f"/api/lists/{s.lists[p]}", json={"name": f"Renamed {p}"}),
                200,
            )
        ],
        ("DELETE", "/api/lists/{list_id:str}"): [
            manage(lambda c, p, s: c.delete(f"/api/lists/{s.lists[p]}"), 204)
        ],
        ("POST", "/api/lists/{list_id:str}/members"): [
            manage(
                lambda c, p, s: c.post(
                    f"/api/lists/{s.lists['kept']}/members",
                    json={"contactIds": [str(s.contacts["kept"])]},
                ),
                200,
            )
        ],
        ("DELETE", "/api/lists/{list_id:str}/members/{contact_id:str}"): [
            manage(
                lambda c, p, s: c.delete(
                    f"/api/lists/{s.lists['kept']}/members/{s.contacts['kept']}"
                ),
                204,
            )
        ],
        # --- domains
        ("GET", "/api/domains"): [manage(lambda c, p, s: c.get("/api/domains"), 200, other=200)],
        ("POST", "/api/domains"): [
            manage(
                lambda c, p, s: c.post("/api/domains", json={"name": f"new-{p}.test"}),
                201,
                other=201,  # in their own account
            )
        ],
        ("GET", "/api/domains/{name:str}"): [
            manage(lambda c, p, s: c.get(f"/api/domains/{ACME}"), 200)
        ],
        ("DELETE", "/api/domains/{name:str}"): [
            manage(
                lambda c, p, s: c.delete(
                    f"/api/domains/{s.domains[p]}", json={"confirm": s.domains[p]}
                ),
                204,
            )
        ],
        ("POST", "/api/domains/{name:str}/verify"): [
            manage(lambda c, p, s: c.post(f"/api/domains/{s.domains[p]}/verify"), 200)
        ],
        ("GET", "/api/domains/{name:str}/zone"): [
            manage(lambda c, p, s: c.get(f"/api/domains/{ACME}/zone"), 200)
        ],
        ("GET", "/api/domains/{name:str}/reports"): [
            manage(lambda c, p, s: c.get(f"/api/domains/{ACME}/reports"), 200)
        ],
        ("GET", "/api/domains/{name:str}/relay"): [
            manage(lambda c, p, s: c.get(f"/api/domains/{ACME}/relay"), 200)
        ],
        ("PUT", "/api/domains/{name:str}/relay"): [
            manage(
                lambda c, p, s: c.put(f"/api/domains/{ACME}/relay", json={"choice": "direct"}),
                200,
            )
        ],
        ("GET", "/api/domains/{name:str}/aliases"): [
            manage(lambda c, p, s: c.get(f"/api/domains/{ACME}/aliases"), 200)
        ],
        ("POST", "/api/domains/{name:str}/aliases"): [
            manage(
                lambda c, p, s: c.post(
                    f"/api/domains/{ACME}/aliases",
                    json={"localPart": f"alias-{p}", "targets": [SALES]},
                ),
                201,
            )
        ],
        ("DELETE", "/api/domains/{name:str}/aliases/{local_part:str}"): [
            manage(lambda c, p, s: c.delete(f"/api/domains/{ACME}/aliases/alias-{p}"), 204)
        ],
        ("GET", "/api/domains/{name:str}/catch-all"): [
            manage(lambda c, p, s: c.get(f"/api/domains/{ACME}/catch-all"), 200)
        ],
        ("PUT", "/api/domains/{name:str}/catch-all"): [
            manage(
                lambda c, p, s: c.put(f"/api/domains/{ACME}/catch-all", json={"mailbox": None}),
                200,
            )
        ],
        ("PUT", "/api/domains/{name:str}/tracking-host"): [
            manage(
                lambda c, p, s: c.put(f"/api/domains/{ACME}/tracking-host", json={"host": None}),
                200,
            )
        ],
        ("POST", "/api/domains/{name:str}/dkim/rotate"): [
            manage(lambda c, p, s: c.post(f"/api/domains/{s.domains[p]}/dkim/rotate"), 200)
        ],
        # --- developer
        ("GET", "/api/domains/{name:str}/api-keys"): [
            manage(lambda c, p, s: c.get(f"/api/domains/{ACME}/api-keys"), 200)
        ],
        ("POST", "/api/domains/{name:str}/api-keys"): [
            manage(lambda c, p, s: c.post(f"/api/domains/{ACME}/api-keys", json={"name": p}), 201)
        ],
        ("DELETE", "/api/domains/{name:str}/api-keys/{key_id:str}"): [
            manage(
                lambda c, p, s: c.delete(f"/api/domains/{s.domains[p]}/api-keys/{s.keys[p]}"),
                204,
            )
        ],
        ("GET", "/api/domains/{name:str}/webhooks"): [manage(lambda c, p, s: c.get(HOOKS), 200)],
        ("POST", "/api/domains/{name:str}/webhooks"): [
            manage(lambda c, p, s: c.post(HOOKS, json={"url": f"http://127.0.0.1:9/new-{p}"}), 201)
        ],
        ("DELETE", "/api/domains/{name:str}/webhooks/{webhook_id:str}"): [
            manage(lambda c, p, s: c.delete(f"{HOOKS}/{s.hooks[p]}"), 204)
        ],
        ("POST", "/api/domains/{name:str}/webhooks/{webhook_id:str}/test"): [
            manage(lambda c, p, s: c.post(f"{HOOKS}/{s.hooks[OWNER]}/test"), 200)
        ],
        ("GET", "/api/domains/{name:str}/webhooks/{webhook_id:str}/attempts"): [
            manage(lambda c, p, s: c.get(f"{HOOKS}/{s.hooks[OWNER]}/attempts"), 200)
        ],
        ("POST", "/api/domains/{name:str}/webhooks/{webhook_id:str}/rotate-secret"): [
            manage(lambda c, p, s: c.post(f"{HOOKS}/{s.hooks[OWNER]}/rotate-secret"), 200)
        ],
        # --- mailboxes: a member uses sales@, never support@
        ("GET", "/api/mailboxes"): [
            everyone(lambda c, p, s: c.get("/api/mailboxes"), 200, other=200)
        ],
        ("POST", "/api/mailboxes"): [
            manage(
                lambda c, p, s: c.post(
                    "/api/mailboxes", json={"domain": ACME, "localPart": f"new-{p}"}
                ),
                201,
            )
        ],
        ("GET", "/api/mailboxes/{address:str}"): [
            everyone(lambda c, p, s: c.get(f"/api/mailboxes/{SALES}"), 200),
            everyone(lambda c, p, s: c.get(f"/api/mailboxes/{SUPPORT}"), 200, member=404),
        ],
        ("PATCH", "/api/mailboxes/{address:str}"): [
            everyone(
                lambda c, p, s: c.patch(f"/api/mailboxes/{SALES}", json={"displayName": "Sales"}),
                200,
            ),
            everyone(
                lambda c, p, s: c.patch(f"/api/mailboxes/{SUPPORT}", json={"displayName": ""}),
                200,
                member=404,
            ),
        ],
        ("DELETE", "/api/mailboxes/{address:str}"): [
            manage(
                lambda c, p, s: c.delete(
                    f"/api/mailboxes/{s.mailboxes[p]}", json={"confirm": s.mailboxes[p]}
                ),
                204,
            )
        ],
        ("PUT", "/api/mailboxes/{address:str}/password"): [
            everyone(
                lambda c, p, s: c.put(
                    f"/api/mailboxes/{SALES}/password", json={"password": "sales-pass-1"}
                ),
                204,
            ),
            everyone(
                lambda c, p, s: c.put(
                    f"/api/mailboxes/{SUPPORT}/password", json={"password": "support-pass-1"}
                ),
                204,
                member=404,
            ),
        ],
        ("POST", "/api/mailboxes/{address:str}/password/generate"): [
            everyone(
                lambda c, p, s: c.post(f"/api/mailboxes/{SUPPORT}/password/generate"),
                200,
                member=404,
            ),
        ],
        ("GET", "/api/mailboxes/{address:str}/forwarding"): [
            everyone(lambda c, p, s: c.get(f"/api/mailboxes/{SALES}/forwarding"), 200),
            everyone(
                lambda c, p, s: c.get(f"/api/mailboxes/{SUPPORT}/forwarding"), 200, member=404
            ),
        ],
        ("PUT", "/api/mailboxes/{address:str}/forwarding"): [
            everyone(
                lambda c, p, s: c.put(
                    f"/api/mailboxes/{SALES}/forwarding", json={"addresses": ["a@remote.test"]}
                ),
                200,
            ),
            everyone(
                lambda c, p, s: c.put(
                    f"/api/mailboxes/{SUPPORT}/forwarding", json={"addresses": []}
                ),
                200,
                member=404,
            ),
        ],
        ("GET", "/api/mailboxes/{address:str}/connection"): [
            everyone(lambda c, p, s: c.get(f"/api/mailboxes/{SALES}/connection"), 200),
            everyone(
                lambda c, p, s: c.get(f"/api/mailboxes/{SUPPORT}/connection"), 200, member=404
            ),
        ],
        ("GET", "/api/mailboxes/{address:str}/vacation"): [
            everyone(lambda c, p, s: c.get(f"/api/mailboxes/{SALES}/vacation"), 200),
            everyone(lambda c, p, s: c.get(f"/api/mailboxes/{SUPPORT}/vacation"), 200, member=404),
        ],
        ("PUT", "/api/mailboxes/{address:str}/vacation"): [
            everyone(
                lambda c, p, s: c.put(f"/api/mailboxes/{SALES}/vacation", json={"enabled": False}),
                200,
            ),
            everyone(
                lambda c, p, s: c.put(
                    f"/api/mailboxes/{SUPPORT}/vacation", json={"enabled": False}
                ),
                200,
                member=404,
            ),
        ],
        ("GET", "/api/mailboxes/{address:str}/filters"): [
            everyone(lambda c, p, s: c.get(f"/api/mailboxes/{SALES}/filters"), 200),
            everyone(lambda c, p, s: c.get(f"/api/mailboxes/{SUPPORT}/filters"), 200, member=404),
        ],
        ("PUT", "/api/mailboxes/{address:str}/filters"): [
            everyone(
                lambda c, p, s: c.put(f"/api/mailboxes/{SALES}/filters", json={"script": "keep;"}),
                200,
            ),
            everyone(
                lambda c, p, s: c.put(
                    f"/api/mailboxes/{SUPPORT}/filters", json={"script": "keep;"}
                ),
                200,
                member=404,
            ),
        ],
        ("POST", "/api/mailboxes/{address:str}/filters/check"): [
            everyone(
                lambda c, p, s: c.post(
                    f"/api/mailboxes/{SALES}/filters/check", json={"script": "keep;"}
                ),
                200,
            ),
            everyone(
                lambda c, p, s: c.post(
                    f"/api/mailboxes/{SUPPORT}/filters/check", json={"script": "keep;"}
                ),
                200,
                member=404,
            ),
        ],
        # --- webmail (read side)
        ("GET", "/api/mail/mailboxes"): [
            everyone(lambda c, p, s: c.get("/api/mail/mailboxes"), 200, other=200)
        ],
        ("GET", "/api/mail/{mb:int}/folders"): mail(
            lambda c, p, s: c.get(f"/api/mail/{s.current}/folders"), 200
        ),
        ("POST", "/api/mail/{mb:int}/folders"): mail(
            lambda c, p, s: c.post(
                f"/api/mail/{s.current}/folders", json={"name": f"New {p} {s.current}"}
            ),
            201,
        ),
        ("PATCH", "/api/mail/{mb:int}/folders/{folder_id:int}"): mail(
            lambda c, p, s: c.patch(
                f"/api/mail/{s.current}/folders/{s.user_folders[(s.current, p)]}",
                json={"name": f"Renamed {p}"},
            ),
            200,
        ),
        ("DELETE", "/api/mail/{mb:int}/folders/{folder_id:int}"): mail(
            lambda c, p, s: c.delete(
                f"/api/mail/{s.current}/folders/{s.user_folders[(s.current, p)]}"
            ),
            204,
        ),
        ("POST", "/api/mail/{mb:int}/folders/{folder_id:int}/empty"): mail(
            lambda c, p, s: c.post(f"/api/mail/{s.current}/folders/{s.trash[s.current]}/empty"),
            204,
        ),
        ("GET", "/api/mail/{mb:int}/folders/{folder_id:int}/conversations"): mail(
            lambda c, p, s: c.get(
                f"/api/mail/{s.current}/folders/{s.inbox[s.current]}/conversations"
            ),
            200,
        ),
        ("GET", "/api/mail/{mb:int}/search"): mail(
            lambda c, p, s: c.get(f"/api/mail/{s.current}/search", params={"q": "hello"}), 200
        ),
        ("GET", "/api/mail/{mb:int}/threads/{thread_id:str}"): mail(
            lambda c, p, s: c.get(f"/api/mail/{s.current}/threads/{s.thread[s.current]}"), 200
        ),
        ("GET", "/api/mail/{mb:int}/messages/{folder_id:int}/{uid:int}"): mail(
            lambda c, p, s: c.get(f"/api/mail/{s.current}/messages/{s.inbox[s.current]}/1"), 200
        ),
        ("GET", "/api/mail/{mb:int}/messages/{folder_id:int}/{uid:int}/body"): mail(
            lambda c, p, s: c.get(f"/api/mail/{s.current}/messages/{s.inbox[s.current]}/1/body"),
            200,
        ),
        ("GET", "/api/mail/{mb:int}/messages/{folder_id:int}/{uid:int}/raw"): mail(
            lambda c, p, s: c.get(f"/api/mail/{s.current}/messages/{s.inbox[s.current]}/1/raw"),
            200,
        ),
        ("GET", "/api/mail/{mb:int}/messages/{folder_id:int}/{uid:int}/parts/{part_id:str}"): mail(
            lambda c, p, s: c.get(f"/api/mail/{s.current}/messages/{s.inbox[s.current]}/1/parts/1"),
            200,
        ),
        ("POST", "/api/mail/{mb:int}/trusted-senders"): mail(
            lambda c, p, s: c.post(
                f"/api/mail/{s.current}/trusted-senders", json={"address": "a@example.org"}
            ),
            204,
        ),
        ("POST", "/api/mail/{mb:int}/actions"): mail(
            lambda c, p, s: c.post(
                f"/api/mail/{s.current}/actions",
                json={"messages": [{"folderId": s.inbox[s.current], "uid": 1}], "action": "star"},
            ),
            200,
        ),
        ("GET", "/api/mail/{mb:int}/events"): mail(
            lambda c, p, s: first_event(c, f"/api/mail/{s.current}/events"), 200
        ),
        ("GET", "/api/mail/image"): [
            everyone(
                lambda c, p, s: c.get(
                    "/api/mail/image", params={"url": "http://127.0.0.1/x.png", "sig": "forged"}
                ),
                404,
            )
        ],
        # --- account
        ("GET", "/api/account"): [everyone(lambda c, p, s: c.get("/api/account"), 200, other=200)],
        ("PATCH", "/api/account"): [
            manage(
                lambda c, p, s: c.patch("/api/account", json={"name": f"renamed {p}"}),
                200,
                other=200,  # their own account
            )
        ],
        # --- billing (off here: owners and admins are told the operator sets plans)
        ("GET", "/api/operator"): [
            everyone(lambda c, p, s: c.get("/api/operator"), 200, other=200)
        ],
        # acme is the server's first account: its owner operates the server, no one else.
        ("GET", "/api/operator/accounts"): [
            Case(
                lambda c, p, s: c.get("/api/operator/accounts"),
                {OWNER: 200, ADMIN: 403, MEMBER: 403, OTHER: 403, ANONYMOUS: 401},
            )
        ],
        ("GET", "/api/billing"): [everyone(lambda c, p, s: c.get("/api/billing"), 200, other=200)],
        ("POST", "/api/billing/checkout"): [
            manage(
                lambda c, p, s: c.post("/api/billing/checkout", json={"plan": "pro"}),
                409,
                other=409,
            )
        ],
        ("POST", "/api/billing/portal"): [
            manage(lambda c, p, s: c.post("/api/billing/portal"), 409, other=409)
        ],
        ("POST", "/api/billing/plan"): [
            manage(
                lambda c, p, s: c.post("/api/billing/plan", json={"plan": "pro"}), 409, other=409
            )
        ],
        ("POST", "/api/billing/cancel"): [
            manage(lambda c, p, s: c.post("/api/billing/cancel"), 409, other=409)
        ],
        ("POST", "/api/billing/resume"): [
            manage(lambda c, p, s: c.post("/api/billing/resume"), 409, other=409)
        ],
        # --- campaigns (owner/admin only; another account's owner sees their own, empty list)
        ("GET", "/api/campaigns"): [
            manage(lambda c, p, s: c.get("/api/campaigns"), 200, other=200)
        ],
        ("GET", "/api/campaigns/choices"): [
            manage(lambda c, p, s: c.get("/api/campaigns/choices"), 200, other=200)
        ],
        ("POST", "/api/campaigns"): [
            manage(
                lambda c, p, s: c.post(
                    "/api/campaigns",
                    json={
                        "domain": ACME,
                        "name": f"New {p}",
                        "from": SALES,
                        "stages": [{"subject": "Hi", "html": "<p>Hi</p>"}],
                    },
                ),
                201,
            )
        ],
        **{
            ("GET", f"/api/campaigns/{{campaign_id:str}}{tail}"): [
                manage(lambda c, p, s, tail=tail: c.get(f"/api/campaigns/{s.campaign}{tail}"), 200)
            ]
            for tail in ("", "/stats", "/activity", "/recipients", "/recipients.csv", "/contacts")
        },
        ("GET", "/api/campaigns/{campaign_id:str}/recipients/{recipient_id:str}"): [
            # The draft has no recipients yet: acme's owner and admin are told so too.
            manage(lambda c, p, s: c.get(f"/api/campaigns/{s.campaign}/recipients/1"), 404)
        ],
        ("PATCH", "/api/campaigns/{campaign_id:str}"): [
            manage(lambda c, p, s: c.patch(f"/api/campaigns/{s.campaign}", json={"name": p}), 200)
        ],
        ("POST", "/api/campaigns/{campaign_id:str}/preview"): [
            manage(
                lambda c, p, s: c.post(f"/api/campaigns/{s.campaign}/preview", json={"stage": 1}),
                200,
            )
        ],
        ("POST", "/api/campaigns/{campaign_id:str}/test-send"): [
            manage(
                lambda c, p, s: c.post(
                    f"/api/campaigns/{s.campaign}/test-send", json={"to": f"test-{p}@remote.test"}
                ),
                202,
            )
        ],
        # Nobody is on the draft's audience: launching it is refused after the access check.
        ("POST", "/api/campaigns/{campaign_id:str}/launch"): [
            manage(lambda c, p, s: c.post(f"/api/campaigns/{s.campaign}/launch"), 400)
        ],
        ("POST", "/api/campaigns/{campaign_id:str}/pause"): [
            manage(lambda c, p, s: c.post(f"/api/campaigns/{s.campaign}/pause"), 409)
        ],
        ("POST", "/api/campaigns/{campaign_id:str}/resume"): [
            manage(lambda c, p, s: c.post(f"/api/campaigns/{s.campaign}/resume"), 409)
        ],
        ("POST", "/api/campaigns/{campaign_id:str}/cancel"): [
            manage(lambda c, p, s: c.post(f"/api/campaigns/{s.campaigns[p]}/cancel"), 200)
        ],
        # --- team (owner/admin only)
        ("GET", "/api/team"): [manage(lambda c, p, s: c.get("/api/team"), 200, other=200)],
        ("POST", "/api/team/invitations"): [
            manage(
                lambda c, p, s: c.post(
                    "/api/team/invitations",
                    json={"email": f"new-{p}@example.com", "role": "member", "mailboxes": []},
                ),
                201,
                other=201,
            )
        ],
        ("DELETE", "/api/team/invitations/{invitation_id:int}"): [
            manage(lambda c, p, s: c.delete(f"/api/team/invitations/{s.invitations[p]}"), 204)
        ],
        ("PATCH", "/api/team/members/{user_id:int}"): [
            manage(
                lambda c, p, s: c.patch(
                    f"/api/team/members/{s.member_id}", json={"mailboxes": [SALES]}
                ),
                200,
            )
        ],
        ("DELETE", "/api/team/members/{user_id:int}"): [
            manage(lambda c, p, s: c.delete(f"/api/team/members/{s.users[p]}"), 204)
        ],
        # --- the signed-in person themselves
        ("GET", "/api/me"): [everyone(lambda c, p, s: c.get("/api/me"), 200, other=200)],
        ("PATCH", "/api/me"): [signed_in_only(lambda c, p, s: c.patch("/api/me", json={}))],
        ("POST", "/api/me/password"): [
            signed_in_only(lambda c, p, s: c.post("/api/me/password", json={}))
        ],
        ("GET", "/api/me/sessions"): [
            everyone(lambda c, p, s: c.get("/api/me/sessions"), 200, other=200)
        ],
        ("DELETE", "/api/me/sessions/{session_id:int}"): [
            signed_in_only(lambda c, p, s: c.delete("/api/me/sessions/1"))
        ],
        ("POST", "/api/me/totp/setup"): [
            signed_in_only(lambda c, p, s: c.post("/api/me/totp/setup"))
        ],
        ("POST", "/api/me/totp/enable"): [
            signed_in_only(lambda c, p, s: c.post("/api/me/totp/enable", json={"code": "1"}))
        ],
        ("POST", "/api/me/totp/disable"): [
            signed_in_only(lambda c, p, s: c.post("/api/me/totp/disable", json={}))
        ],
        # --- public: answers whoever asks, never with a server error
        ("GET", "/api/session"): [public(lambda c, p, s: c.get("/api/session"))],
        ("POST", "/api/setup"): [public(lambda c, p, s: c.post("/api/setup", json={}))],
        ("POST", "/api/auth/sign-up"): [
            public(lambda c, p, s: c.post("/api/auth/sign-up", json={}))
        ],
        ("POST", "/api/auth/sign-in"): [
            public(
                lambda c, p, s: c.post(
                    "/api/auth/sign-in", json={"email": "nobody@acme.test", "password": "x" * 9}
                )
            )
        ],
        ("POST", "/api/auth/totp"): [
            public(lambda c, p, s: c.post("/api/auth/totp", json={"code": "000000"}))
        ],
        ("POST", "/api/auth/sign-out"): [
            Case(lambda c, p, s: c.post("/api/auth/sign-out"), {ANONYMOUS: ANY_ANSWER})
        ],
        ("POST", "/api/auth/password-reset"): [
            public(lambda c, p, s: c.post("/api/auth/password-reset", json={"email": "x@y.test"}))
        ],
        ("POST", "/api/auth/password-reset/confirm"): [
            public(
                lambda c, p, s: c.post(
                    "/api/auth/password-reset/confirm", json={"token": "x", "password": "y"}
                )
            )
        ],
        ("GET", "/api/invitations/{token:str}"): [
            public(lambda c, p, s: c.get("/api/invitations/not-a-token"))
        ],
        ("POST", "/api/invitations/{token:str}/accept"): [
            public(lambda c, p, s: c.post("/api/invitations/not-a-token/accept", json={}))
        ],
        ("GET", "/api/auth/oidc/{provider:str}/start"): [
            public(lambda c, p, s: c.get("/api/auth/oidc/nowhere/start"))
        ],
        ("GET", "/api/auth/oidc/{provider:str}/callback"): [
            public(lambda c, p, s: c.get("/api/auth/oidc/nowhere/callback"))
        ],
        ("GET", "/api/auth/oidc/error"): [public(lambda c, p, s: c.get("/api/auth/oidc/error"))],
    }


async def first_event(client: ApiClient, url: str) -> httpx.Response:
    """The event stream's answer, closed after its first event (or at once when refused)."""
    async with client.http.stream("GET", url) as response:
        if response.status_code != 200:
            await response.aread()
            return response
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                return httpx.Response(200, content=line.encode())
    return httpx.Response(200)


def api_routes(app: Litestar) -> set[tuple[str, str]]:
    return {
        (method, route.path)
        for route in app.routes
        if route.path == "/api" or route.path.startswith("/api/")
        for method in getattr(route, "methods", set())
        if method not in ("HEAD", "OPTIONS")
    }


def deletions_last(item: tuple[tuple[str, str], list[Case]]) -> tuple[bool, bool]:
    """The other calls of a persona use what its deletions remove; a domain goes last of all,
    with its keys."""
    method, path = item[0]
    return method == "DELETE", path == "/api/domains/{name:str}"


async def snapshot(owner: ApiClient) -> list[object]:
    paths = [
        "/api/domains",
        "/api/mailboxes",
        "/api/account",
        f"/api/domains/{ACME}/api-keys",
        HOOKS,
        "/api/team",
        "/api/contacts",
        "/api/lists",
        "/api/campaigns",
    ]
    found = [(await owner.get(path)).json() for path in paths]
    # A member may send from the mailbox assigned to them: that counts toward the month's usage.
    del found[2]["usage"]["emailsThisMonth"]
    return found


async def test_every_api_route_answers_each_persona_as_the_rules_say(
    listeners: Listeners,
    world: World,
    owner_client: ApiClient,
    admin_client: ApiClient,
    member_client: ApiClient,
) -> None:
    app = listeners.http.server.config.app
    assert isinstance(app, Litestar)
    matrix = cases()
    routes = api_routes(app)
    assert routes - set(matrix) == set(), "every /api route needs a case in the access matrix"

    services = world.services
    await services.accounts.create(
        "other", owner_email="owner@other.test", password="owner-pass-1", plan="unlimited"
    )
    async with ApiClient(api_url(listeners)) as other, ApiClient(api_url(listeners)) as anonymous:
        await other.signed_in("owner@other.test", "owner-pass-1")
        clients = {
            OWNER: owner_client,
            ADMIN: admin_client,
            MEMBER: member_client,
            OTHER: other,
            ANONYMOUS: anonymous,
        }
        scene = Scene(world)
        await scene.prepare()
        before = await snapshot(owner_client)
        for persona in PERSONAS:
            if persona == ADMIN:
                # Everyone who may not change acme's things has had their turn.
                assert await snapshot(owner_client) == before
            for (method, path), calls in sorted(matrix.items(), key=deletions_last):
                if (method, path) not in routes:
                    continue  # a route of the contract not served yet
                for case in calls:
                    if persona not in case.expect:
                        continue
                    response = await case.call(clients[persona], persona, scene)
                    where = f"{persona} {method} {path}: {response.status_code} {response.text}"
                    expected = case.expect[persona]
                    if expected == ANY_ANSWER:
                        assert response.status_code < 500, where
                        continue
                    assert response.status_code == expected, where
                    if expected in (401, 403, 404):
                        code = {401: "unauthenticated", 403: "forbidden", 404: "not_found"}
                        assert response.json()["error"]["code"] == code[expected], where
                    if persona == OTHER and expected == 200:
                        assert "acme.test" not in response.text, where


async def test_every_api_route_is_in_the_openapi_document_with_a_tag(
    listeners: Listeners, owner_client: ApiClient
) -> None:
    app = listeners.http.server.config.app
    assert isinstance(app, Litestar)
    schema = (await owner_client.get("/schema/openapi.json")).json()
    documented = {
        (method.upper(), path)
        for path, item in schema["paths"].items()
        if path.startswith("/api/")
        for method, operation in item.items()
        if operation.get("tags") and operation.get("operationId")
    }
    # The route table writes path parameters with their type ({name:str}); OpenAPI without.
    served = {(method, re.sub(r"\{(\w+):\w+\}", r"{\1}", path)) for method, path in api_routes(app)}
    assert served - documented == set()
