"""Fixtures of the campaign tests: those of the outbound tests (a settable clock, the receiving
MTA for remote.test behind the loopback DNS, our DKIM key published there, the queue's worker and
an API client of acme.test), and helpers that build an audience through the API."""

from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage
from email.policy import SMTP

import httpx

from tests.smtp_out.conftest import api, clock, outbound, remote_dns, settings  # noqa: F401


async def contacts_list(
    client: httpx.AsyncClient, name: str, contacts: list[dict[str, object]]
) -> str:
    """A list of these new contacts; its id."""
    for contact in contacts:
        created = await client.post("/v1/contacts", json=contact)
        assert created.status_code == 201, created.text
    made = await client.post("/v1/lists", json={"name": name})
    assert made.status_code == 201, made.text
    list_id: str = made.json()["_id"]
    added = await client.post(
        f"/v1/lists/{list_id}/members", json={"emails": [str(c["email"]) for c in contacts]}
    )
    assert added.status_code in (200, 201), added.text
    return list_id


async def reply_through_mx(
    port: int,
    *,
    sender: str,
    to: str,
    in_reply_to: str,
    subject: str,
    **fields: str,
) -> None:
    """`sender` answers a message through our MX with smtplib, naming it in In-Reply-To."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["In-Reply-To"] = in_reply_to
    message["References"] = in_reply_to
    for name, value in fields.items():
        message[name.replace("_", "-")] = value
    message.set_content("Thanks, tell me more.\n")
    raw = message.as_bytes(policy=SMTP)

    def transaction() -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.sendmail(sender, [to], raw)

    await asyncio.to_thread(transaction)
