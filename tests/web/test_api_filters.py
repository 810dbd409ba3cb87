"""/api/mailboxes/{address}/filters over a real listener: simple rules saved as Sieve and shown
again, a script edited by hand shown as text only, a broken script refused with its line, the
check route, the last run-time error, and the same visibility rules as other mailbox settings."""

from __future__ import annotations

import asyncio
import smtplib

from tests.support.web import ApiClient
from tests.web.api.conftest import assert_error

URL = "/api/mailboxes/sales@acme.test/filters"


def send(port: int, subject: str) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as smtp:
        smtp.sendmail(
            "ann@example.org",
            ["sales@acme.test"],
            f"From: ann@example.org\r\nSubject: {subject}\r\n\r\nHello.\r\n",
        )


RULES = [
    {"field": "from", "operator": "contains", "value": "boss@", "action": "flag"},
    {
        "field": "header",
        "header": "List-Id",
        "operator": "is",
        "value": "news.example.org",
        "action": "move",
        "target": "News",
    },
]


async def test_rules_round_trip_through_sieve(owner_client: ApiClient) -> None:
    empty = (await owner_client.get(URL)).json()
    assert empty == {
        "name": "filters",
        "script": "",
        "rules": [],
        "lastError": None,
        "lastErrorAt": None,
        "updatedAt": None,
    }
    saved = await owner_client.put(URL, json={"rules": RULES})
    assert saved.status_code == 200, saved.text
    body = saved.json()
    assert 'if header :contains "from" "boss@" {\n    addflag "\\\\Flagged";\n}' in body["script"]
    assert 'fileinto "News";' in body["script"]
    shown = (await owner_client.get(URL)).json()
    assert shown["rules"] == [{"header": "", "target": "", **RULES[0]}, RULES[1]]
    edited = body["script"].replace("addflag", "setflag")
    by_hand = (await owner_client.put(URL, json={"script": edited})).json()
    assert by_hand["rules"] is None and by_hand["script"] == edited
    assert by_hand["name"] == "filters"


async def test_a_broken_script_is_refused_with_its_line(owner_client: ApiClient) -> None:
    refused = await owner_client.put(
        URL, json={"script": 'require "fileinto";\n\nif header :contains "subject" "x" {\n'}
    )
    message = assert_error(refused, 400, "invalid_input", "script")
    assert message == 'Line 3: the block opened here with "{" is never closed.'
    bad_rule = await owner_client.put(URL, json={"rules": [{**RULES[1], "target": ""}]})
    assert assert_error(bad_rule, 400, "invalid_input", "rules").startswith("Rule 1:")
    assert (await owner_client.get(URL)).json()["script"] == ""
    checked = await owner_client.post(f"{URL}/check", json={"script": 'keep;\nfileinto "x";'})
    assert checked.json() == {
        "valid": False,
        "line": 2,
        "message": 'fileinto needs require "fileinto" at the top of the script',
    }
    fine = await owner_client.post(f"{URL}/check", json={"script": "keep;"})
    assert fine.json() == {"valid": True, "line": None, "message": None}


async def test_the_last_run_time_error_is_shown(owner_client: ApiClient, mx_port: int) -> None:
    rule = {**RULES[1], "field": "subject", "operator": "contains", "value": "x marks"}
    await owner_client.put(URL, json={"rules": [rule]})
    await asyncio.to_thread(send, mx_port, "x marks the spot")
    shown = (await owner_client.get(URL)).json()
    assert 'fileinto "News": there is no such folder' in shown["lastError"]
    assert shown["lastErrorAt"] is not None


async def test_a_member_edits_only_assigned_mailboxes(member_client: ApiClient) -> None:
    assert (await member_client.put(URL, json={"rules": RULES})).status_code == 200
    other = "/api/mailboxes/support@acme.test/filters"
    assert_error(await member_client.get(other), 404, "not_found")
    assert_error(await member_client.put(other, json={"script": "keep;"}), 404, "not_found")
