"""/api/domains/{name}/api-keys and /webhooks over a real listener: a key shown once and used
with curl against /v1 until it is revoked; webhooks created, tested through the real signed
delivery path, their attempts after a real event, secret rotation and deletion."""

from __future__ import annotations

import asyncio
import json
import shutil
import smtplib
import subprocess

import pytest

from mailmark.bootstrap import Listeners
from mailmark.config import Settings
from mailmark.core.webhooks import verify_signature
from tests.support.web import ApiClient
from tests.support.webhook_receiver import Receiver
from tests.support.world import World
from tests.web.api.conftest import assert_error

CURL = shutil.which("curl")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The test receiver listens on loopback.
    return settings.model_copy(update={"webhook_allow_private_networks": ["127.0.0.1/32"]})


def curl(port: int, key: str, path: str) -> tuple[int, str]:
    assert CURL is not None
    result = subprocess.run(
        [
            CURL,
            "--silent",
            "--noproxy",
            "*",
            "--max-time",
            "20",
            "--header",
            f"Authorization: Bearer {key}",
            "--write-out",
            "\n%{http_code}",
            f"http://127.0.0.1:{port}{path}",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    body, _, status = result.stdout.rpartition("\n")
    return int(status), body


@pytest.mark.skipif(CURL is None, reason="curl is not installed (Debian package curl)")
async def test_a_key_is_shown_once_works_with_curl_and_stops_when_revoked(
    owner_client: ApiClient, listeners: Listeners, world: World
) -> None:
    created = await owner_client.post(
        f"/api/domains/{world.domain}/api-keys", json={"name": "deploy"}
    )
    assert created.status_code == 201, created.text
    key = created.json()
    assert key["key"].startswith("dm_live_") and key["key"].startswith(key["prefix"])
    assert key["name"] == "deploy" and key["revokedAt"] is None

    status, body = await asyncio.to_thread(curl, listeners.http_port, key["key"], "/v1/mailboxes")
    assert status == 200
    assert {m["fullAddress"] for m in json.loads(body)} == {"sales@acme.test", "support@acme.test"}

    listing = (await owner_client.get(f"/api/domains/{world.domain}/api-keys")).json()
    assert [k["prefix"] for k in listing] == [key["prefix"]]
    assert "key" not in listing[0] and key["key"] not in str(listing)
    assert listing[0]["lastUsedAt"] is not None

    revoked = await owner_client.delete(f"/api/domains/{world.domain}/api-keys/{key['id']}")
    assert revoked.status_code == 204
    status, body = await asyncio.to_thread(curl, listeners.http_port, key["key"], "/v1/mailboxes")
    assert status == 401 and json.loads(body)["error"]["code"] == "authentication_failed"
    listing = (await owner_client.get(f"/api/domains/{world.domain}/api-keys")).json()
    assert listing[0]["revokedAt"] is not None
    assert_error(
        await owner_client.delete(f"/api/domains/{world.domain}/api-keys/999999"),
        404,
        "not_found",
    )


async def test_webhook_test_delivery_attempts_and_secret_rotation(
    owner_client: ApiClient, listeners: Listeners, world: World, receiver: Receiver
) -> None:
    base = f"/api/domains/{world.domain}/webhooks"
    url = f"http://127.0.0.1:{receiver.port}/hook"
    created = await owner_client.post(base, json={"url": url, "events": ["email.received"]})
    assert created.status_code == 201, created.text
    hook = created.json()
    assert hook["secret"].startswith("whsec_") and hook["events"] == ["email.received"]

    tested = (await owner_client.post(f"{base}/{hook['id']}/test")).json()
    assert tested["ok"] is True and tested["statusCode"] == 200 and tested["error"] is None
    assert tested["durationMs"] >= 0
    request = receiver.requests[-1]
    assert request.event["type"] == "webhook.test"
    now = int(world.services.clock.now().timestamp())
    assert verify_signature(
        hook["secret"], request.headers["mailmark-signature"], request.body, now
    )

    rotated = (await owner_client.post(f"{base}/{hook['id']}/rotate-secret")).json()["secret"]
    assert rotated != hook["secret"]
    receiver.statuses.append(500)
    failed = (await owner_client.post(f"{base}/{hook['id']}/test")).json()
    assert (failed["ok"], failed["statusCode"]) == (False, 500)
    request = receiver.requests[-1]
    assert verify_signature(rotated, request.headers["mailmark-signature"], request.body, now)

    # A real event: mail arrives at sales@, the worker posts email.received.
    def deliver() -> None:
        with smtplib.SMTP("127.0.0.1", listeners.mx_port, timeout=20) as smtp:
            smtp.sendmail("ann@example.com", ["sales@acme.test"], b"Subject: hi\r\n\r\nhello\r\n")

    await asyncio.to_thread(deliver)
    await receiver.wait_for(3)
    for _ in range(200):
        attempts = (await owner_client.get(f"{base}/{hook['id']}/attempts")).json()
        if attempts and attempts[0]["status"] == "delivered":
            break
        await asyncio.sleep(0.05)
    [attempt] = attempts
    assert attempt["event"] == "email.received" and attempt["statusCode"] == 200
    assert attempt["attempts"] == 1 and attempt["error"] is None

    assert [h["url"] for h in (await owner_client.get(base)).json()] == [url]
    assert (await owner_client.delete(f"{base}/{hook['id']}")).status_code == 204
    assert (await owner_client.get(base)).json() == []
    assert_error(await owner_client.post(f"{base}/{hook['id']}/test"), 404, "not_found")


async def test_a_webhook_to_an_internal_address_is_refused(
    owner_client: ApiClient, world: World
) -> None:
    refused = await owner_client.post(
        f"/api/domains/{world.domain}/webhooks", json={"url": "https://10.0.0.1/hook"}
    )
    assert_error(refused, 422, "target_refused", "url")
