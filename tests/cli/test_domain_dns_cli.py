"""`mailmark domain records|verify|rotate-dkim` against a real DNS server: the JSON contract of
ARCHITECTURE.md and the exit statuses scripts rely on."""

from __future__ import annotations

from pathlib import Path

import dns.zone

from tests.fakedns import FakeDns
from tests.support.serve import Run, cli_environment, mailmark


async def test_records_then_verify_then_rotate(
    tmp_path: Path, database_url: str, fake_dns: FakeDns
) -> None:
    env = cli_environment(
        tmp_path / "data",
        database_url,
        MAILMARK_DNS_NAMESERVERS=fake_dns.address,
        MAILMARK_PUBLIC_IPS="192.0.2.10",
    )

    async def run(*args: str) -> Run:
        return await mailmark(env, *args, cwd=tmp_path)

    assert (
        await run(
            "account", "create", "acme", "--owner", "o@acme.test", "--password", "pass-word-1"
        )
    ).code == 0
    assert (await run("domain", "add", "acme.test", "--account", "acme")).code == 0

    records = await run("domain", "records", "acme.test", "--json")
    assert records.code == 0, records.err
    listed = records.json
    assert isinstance(listed, list)
    for record in listed:
        assert record["type"] in {"MX", "TXT", "CNAME", "SRV", "PTR"}
        assert not record["name"].endswith(".")
        assert ("priority" in record) == (record["type"] == "MX")
    mx = next(r for r in listed if r["type"] == "MX" and r["name"] == "acme.test")
    assert (mx["value"], mx["priority"], mx["required"]) == ("mx.mailmark.test", 10, True)
    rsa = next(r for r in listed if r["name"].endswith("r._domainkey.acme.test"))
    assert rsa["value"].startswith("v=DKIM1; k=rsa; p=") and len(rsa["value"]) > 255

    zone = await run("domain", "records", "acme.test", "--zone")
    parsed = dns.zone.from_text(zone.out, origin=".", relativize=False, check_origin=False)
    dkim_rdata = parsed.find_rdataset(rsa["name"] + ".", "TXT")
    assert b"".join(next(iter(dkim_rdata)).strings).decode() == rsa["value"]

    before = await run("domain", "verify", "acme.test", "--json")
    assert before.code == 1
    assert {c["status"] for c in before.json} == {"missing"}  # type: ignore[union-attr]
    assert all(isinstance(c["found"], list) for c in before.json)  # type: ignore[union-attr]
    # The records the return path depends on say which one the domain's mail uses, and why.
    explained = {
        (c["type"], c["name"]): c["returnPath"]
        for c in before.json  # type: ignore[union-attr]
        if "returnPath" in c
    }
    assert set(explained) == {("MX", "mail.acme.test"), ("TXT", "mail.acme.test")}
    for return_path in explained.values():
        assert (return_path["domain"], return_path["custom"]) == ("mx.mailmark.test", False)
        assert "no MX record; no SPF record" in return_path["reason"]
    text = await run("domain", "verify", "acme.test")
    assert text.code == 1
    assert "MISSING  MX    mail.acme.test\n" in text.out
    assert "Return path: bounce+<token>@mx.mailmark.test: mail.acme.test is not usable" in text.out

    for record in listed:
        if not record["required"]:
            continue
        if record["type"] == "MX":
            fake_dns.add(record["name"], "MX", f"{record['priority']} {record['value']}.")
        else:
            fake_dns.add(record["name"], record["type"], record["value"])
    after = await run("domain", "verify", "acme.test")
    assert after.code == 0, after.out
    assert "acme.test is verified." in after.out
    assert "OK       MX    acme.test" in after.out
    assert "Return path: bounce+<token>@mail.acme.test: mail.acme.test publishes" in after.out
    assert (await run("mailbox", "add", "hello@acme.test")).code == 0

    rotated = await run("domain", "rotate-dkim", "acme.test", "--json")
    assert rotated.code == 0
    assert sorted(k["algorithm"] for k in rotated.json) == ["ed25519-sha256", "rsa-sha256"]  # type: ignore[union-attr]
    again = await run("domain", "rotate-dkim", "acme.test")
    assert again.code == 1 and "already waiting" in again.err
