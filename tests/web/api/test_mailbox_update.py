"""PATCH /v1/mailboxes/{address} over real HTTP: display name, signature and password, on the
API key's own domain only; the new password checked by logging in over IMAPS."""

from __future__ import annotations

import asyncio
import imaplib

from mailmark.bootstrap import Listeners
from tests.support.tls import client_tls
from tests.support.world import World
from tests.web.api.conftest import Tenant, assert_error


def imap_login(port: int, user: str, password: str) -> bool:
    client = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=client_tls())
    try:
        client.login(user, password)
    except imaplib.IMAP4.error:
        return False
    finally:
        client.shutdown()
    return True


async def test_only_the_fields_given_change(acme: Tenant, world: World) -> None:
    named = await acme.client.patch(
        "/v1/mailboxes/sales", json={"displayName": "Sales Team", "signature": "<b>Sales</b>"}
    )
    html = await acme.client.patch(
        "/v1/mailboxes/sales@acme.test",
        json={"signatureFormat": "html", "signature": "<p onclick='x()'>Sales</p>"},
    )

    assert named.status_code == 200, named.text
    assert named.json() == {
        "_id": str(world.sales.id),
        "address": "sales",
        "fullAddress": "sales@acme.test",
        "displayName": "Sales Team",
    }
    assert html.status_code == 200, html.text
    sales = await world.services.mailboxes.get("sales@acme.test")
    # The display name stayed; the HTML signature was sanitised.
    assert (sales.display_name, sales.signature_format) == ("Sales Team", "html")
    assert sales.signature == "<p>Sales</p>"


async def test_a_new_password_is_the_one_imap_accepts(
    acme: Tenant, listeners: Listeners, world: World
) -> None:
    changed = await acme.client.patch("/v1/mailboxes/support", json={"password": "new-pass-123"})

    assert changed.status_code == 200, changed.text
    assert "password" not in changed.json()
    port = listeners.imaps_port
    assert await asyncio.to_thread(imap_login, port, "support@acme.test", "new-pass-123")
    assert not await asyncio.to_thread(imap_login, port, "support@acme.test", "support-pass-1")


async def test_bad_input_and_other_domains_are_refused(
    acme: Tenant, other: Tenant, world: World
) -> None:
    injected = await acme.client.patch(
        "/v1/mailboxes/sales", json={"displayName": "A\r\nBcc: x@example.com"}
    )
    short = await acme.client.patch("/v1/mailboxes/sales", json={"password": "short"})
    unknown_field = await acme.client.patch("/v1/mailboxes/sales", json={"plan": "business"})
    missing = await acme.client.patch("/v1/mailboxes/nobody", json={"displayName": "X"})
    foreign = await acme.client.patch(
        f"/v1/mailboxes/news@{other.domain}", json={"displayName": "Hijacked"}
    )
    format_ = await acme.client.patch("/v1/mailboxes/sales", json={"signatureFormat": "rtf"})

    assert "line breaks" in assert_error(injected, 422, "header_injection")
    assert "at least 8" in assert_error(short, 400, "invalid_input", "password")
    assert_error(unknown_field, 422, "unknown_field", "plan")
    assert "No mailbox nobody@acme.test" in assert_error(missing, 404, "not_found")
    assert_error(foreign, 404, "not_found")
    assert_error(format_, 400, "invalid_input", "signatureFormat")
    assert (await world.services.mailboxes.get("sales@acme.test")).display_name == "Sales"
    news = await world.services.mailboxes.get(f"news@{other.domain}")
    assert news.display_name == "News"
