"""Sieve filtering cost per message: a 20-rule script run at delivery.

    cd /work/main && .venv/bin/python bench/sieve.py [--messages N] [--database-url URL]

Three figures for the same 10 KiB text message (already parsed, as `InboundMessage.message` is
once per delivery), each beside its baseline measured in the same run:
- interpreter: `run()` of a checked 20-rule script (header :contains / :matches, address :domain,
  envelope, one body test; none matches, so every test runs) against `run()` of `keep;`;
- compile: parsing and checking the 20-rule script (paid once per script revision: delivery
  caches the compiled script per mailbox);
- delivery rule: `SieveFilter.apply` on a fresh SQLite data dir (or --database-url): the active
  script's revision checked (against the database at most every 5 s per mailbox, so almost
  always from memory), the cached compiled script run, the disposition built; its baseline is
  `apply` for a mailbox without a script (what every other mailbox pays).

This is a benchmark, not a test: the figures depend on whatever else the machine is doing.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import timeit
from pathlib import Path

from mailmark.bootstrap import build_services
from mailmark.config import Settings
from mailmark.core.dispositions import Disposition, InboundMessage
from mailmark.core.sieve.compiler import compile_script
from mailmark.core.sieve.interpreter import SieveMessage, run

RULES = 20


def twenty_rules() -> str:
    lines = ['require ["fileinto", "imap4flags", "envelope", "body"];']
    for n in range(RULES - 2):
        kind = n % 3
        if kind == 0:
            test = f'header :contains ["subject", "x-topic"] "project-{n}"'
        elif kind == 1:
            test = f'header :matches "list-id" "*<list{n}.example.org>*"'
        else:
            test = f'address :domain :is ["from", "sender"] "vendor{n}.example"'
        lines.append(f'if {test} {{ fileinto "Folder {n}"; addflag "$Rule{n}"; stop; }}')
    lines.append('if envelope :domain :is "from" "bulk.example" { discard; stop; }')
    lines.append('if body :text :contains "unsubscribe-me-now" { fileinto "Bulk"; }')
    return "\n".join(lines) + "\n"


def message_bytes() -> bytes:
    body = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 170)[:10_000]
    return (
        "From: Ann Example <ann@example.org>\r\n"
        "To: sales@acme.test\r\n"
        "Subject: Quarterly numbers\r\n"
        "List-Id: <announce.example.org>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"\r\n{body}\r\n"
    ).encode()


def per_call(function: object, number: int) -> float:
    timer = timeit.Timer(function)  # type: ignore[arg-type]
    return min(timer.repeat(repeat=5, number=number)) / number


async def delivery_rule(
    messages: int, database_url: str | None, script: str
) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as directory:
        data = Path(directory) / "data"
        settings = Settings(
            data_dir=data,
            database_url=database_url or f"sqlite+aiosqlite:///{data}/mailmark.db",
            hostname="mx.bench.test",
            password_hash_cost="test",
        )
        services = await build_services(settings)
        try:
            await services.accounts.create(
                "bench", owner_email="o@acme.test", password="owner-pass-1", plan="unlimited"
            )
            await services.domains.add("acme.test", account_name="bench", trust=True)
            with_script = await services.mailboxes.create("sales@acme.test")
            without = await services.mailboxes.create("support@acme.test")
            await services.sieve.put("sales@acme.test", script)
            raw = message_bytes()
            inbound = InboundMessage(raw, b"", "ann@example.org", ["sales@acme.test"], "B1")
            inbound.message  # noqa: B018 - parsed once per delivery, before the rules run
            rule = services.sieve_filter

            async def measure(mailbox: object) -> float:
                start = Disposition(mailbox, ("INBOX",))  # type: ignore[arg-type]
                await rule.apply(inbound, start)  # warm: compile and cache
                began = time.perf_counter()
                for _ in range(messages):
                    await rule.apply(inbound, start)
                return (time.perf_counter() - began) / messages

            return await measure(with_script), await measure(without)
        finally:
            await services.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    script_text = twenty_rules()
    script = compile_script(script_text)
    keep_only = compile_script("keep;\n")
    raw = message_bytes()
    message = InboundMessage(raw, b"", "ann@example.org", ["sales@acme.test"], "B1").message

    def fresh() -> SieveMessage:
        return SieveMessage(message, len(raw), "ann@example.org", "sales@acme.test")

    twenty = per_call(lambda: run(script, fresh()), args.messages)
    headers_only = compile_script(script_text.rpartition("if body")[0])
    no_body = per_call(lambda: run(headers_only, fresh()), args.messages)
    baseline = per_call(lambda: run(keep_only, fresh()), args.messages)
    compiling = per_call(lambda: compile_script(script_text), max(args.messages // 10, 1))
    with_rule, lookup_only = asyncio.run(
        delivery_rule(args.messages, args.database_url, script_text)
    )
    print(f"script: {RULES} rules, {len(script_text)} bytes; message: {len(raw)} bytes")
    print(f"interpreter   20 rules {twenty * 1e6:8.1f} µs/message   keep; {baseline * 1e6:8.1f} µs")
    print(
        f"interpreter   19 rules {no_body * 1e6:8.1f} µs/message   (the same without the body test)"
    )
    print(f"compile       20 rules {compiling * 1e6:8.1f} µs/revision (cached per mailbox)")
    print(
        f"delivery rule 20 rules {with_rule * 1e6:8.1f} µs/message   no script "
        f"{lookup_only * 1e6:8.1f} µs"
    )


if __name__ == "__main__":
    main()
