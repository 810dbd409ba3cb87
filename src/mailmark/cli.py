"""The `mailmark` admin command line. Human text by default, `--json` for scripts."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from mailmark.bootstrap import Services, build_services, serve, serve_http, setup_url
from mailmark.config import Settings, SettingsError, load_settings
from mailmark.core.aggregate_reports import ReportOverview, SourceSummary
from mailmark.core.domains import ReturnPath, return_path_checks
from mailmark.core.errors import InvalidInput, MailmarkError, NotFound
from mailmark.core.model import ApiKey, Mailbox, QueueEntry
from mailmark.core.plans import PLANS
from mailmark.core.sieve.model import SieveScript
from mailmark.core.sieve.scripts import DEFAULT_SCRIPT, check_script
from mailmark.core.sieve.syntax import MAX_SCRIPT_BYTES
from mailmark.core.states import DeliveryStatus
from mailmark.dns_tools.record_set import record_json, zone_fragment
from mailmark.startup import StartupError

log = logging.getLogger("mailmark")

# A command returns (text, JSON data) or (text, JSON data, exit status).
Command = Callable[[Services, argparse.Namespace], Awaitable[tuple[Any, ...]]]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mailmark", description="Self-hosted email for your domains."
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="settings file (default: $MAILMARK_CONFIG, else ./mailmark.toml, else "
        "/etc/mailmark/mailmark.toml, the first that exists)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="where the database, mail and keys are (default: $MAILMARK_DATA_DIR, else the "
        "settings file's data_dir, else ./data)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="migrate, then run every listener until SIGTERM")
    serve.add_argument(
        "--http-workers",
        type=int,
        default=1,
        metavar="N",
        help="serve HTTP from N processes (N-1 extra, HTTP only, same port and database)",
    )
    # The extra processes of --http-workers run `serve --http-only`.
    serve.add_argument("--http-only", action="store_true", help=argparse.SUPPRESS)
    serve.add_argument("--http-port", type=int, help=argparse.SUPPRESS)

    account = commands.add_parser("account", help="manage accounts").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    create = account.add_parser("create", help="create an account and its owner")
    create.add_argument("name")
    create.add_argument("--owner", required=True, metavar="EMAIL")
    create.add_argument("--password", required=True, help="the owner's password ('-' reads stdin)")
    create.add_argument("--plan", choices=list(PLANS), default="unlimited")

    domain = commands.add_parser("domain", help="manage domains").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    add = domain.add_parser("add", help="add a domain to an account")
    add.add_argument("domain")
    add.add_argument("--account", required=True, metavar="NAME")
    add.add_argument("--trust", action="store_true", help="mark verified without DNS checks")
    records = domain.add_parser("records", help="print the DNS records the domain needs")
    records.add_argument("domain")
    records.add_argument("--zone", action="store_true", help="print a BIND zone-file fragment")
    verify = domain.add_parser("verify", help="check the domain's DNS records, one by one")
    verify.add_argument("domain")
    rotate = domain.add_parser(
        "rotate-dkim", help="publish new DKIM keys alongside the current ones"
    )
    rotate.add_argument("domain")

    mailbox = commands.add_parser("mailbox", help="manage mailboxes").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    madd = mailbox.add_parser("add", help="create a mailbox")
    madd.add_argument("address", metavar="LOCAL@DOMAIN")
    madd.add_argument("--display-name", default="")
    madd.add_argument("--signature", default="")
    madd.add_argument("--password", help="password for IMAP/SMTP ('-' reads stdin)")
    mailbox.add_parser("list", help="list a domain's mailboxes").add_argument("domain")
    mailbox.add_parser("delete", help="delete a mailbox and all its mail").add_argument(
        "address", metavar="LOCAL@DOMAIN"
    )

    sieve = commands.add_parser(
        "sieve", help="a mailbox's Sieve filter script (RFC 5228)"
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    sget = sieve.add_parser("get", help="print the active script (or the one named)")
    sput = sieve.add_parser("put", help="check a script, save it and make it the active one")
    scheck = sieve.add_parser("check", help="check a script file (or the stored one) and say why")
    for sub in (sget, sput, scheck):
        sub.add_argument("address", metavar="LOCAL@DOMAIN")
    for sub in (sput, scheck):
        sub.add_argument("file", nargs="?", help="the script ('-' or none: stdin for put)")
    for sub in (sget, sput):
        sub.add_argument("--name", help="the script's name (default: the active one / filters)")

    queue = commands.add_parser(
        "queue", help="inspect and steer the outbound queue"
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    qlist = queue.add_parser("list", help="list deliveries, oldest first")
    qlist.add_argument(
        "--status", choices=list(DeliveryStatus), help="only deliveries in this state"
    )
    qlist.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    retry = queue.add_parser("retry", help="attempt deferred deliveries now")
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument("id", type=int, nargs="?", help="the delivery to retry")
    which.add_argument("--all", action="store_true", help="every deferred delivery")
    qdelete = queue.add_parser("delete", help="remove a delivery from the queue")
    qdelete.add_argument("id", type=int)

    apikey = commands.add_parser("apikey", help="manage REST API keys").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    kcreate = apikey.add_parser("create", help="create a key for a domain; prints it once")
    kcreate.add_argument("domain")
    kcreate.add_argument("--name", default="", help="what the key is for")
    apikey.add_parser("revoke", help="revoke a key").add_argument(
        "key", metavar="PREFIX|ID", help="the key's prefix (dm_live_…, or the whole key) or id"
    )
    apikey.add_parser("list", help="list a domain's keys with their last use").add_argument(
        "domain"
    )

    report = commands.add_parser(
        "report", help="what the DMARC and TLS reports received for a domain say"
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    report.add_parser(
        "list", help="a domain's senders by IP with SPF, DKIM and alignment, TLS failures, reports"
    ).add_argument("domain")

    setup_link = commands.add_parser(
        "setup-link",
        help="print a new one-time link to create the owner account (older links stop working)",
    )
    setup_link.set_defaults(action="")

    for sub in (
        setup_link,
        create,
        add,
        records,
        verify,
        rotate,
        *mailbox.choices.values(),
        *sieve.choices.values(),
        *queue.choices.values(),
        *apikey.choices.values(),
        *report.choices.values(),
    ):
        sub.add_argument("--json", action="store_true", help="print JSON")
    return parser


def _password(value: str | None) -> str | None:
    if value == "-":
        return sys.stdin.readline().rstrip("\r\n")
    return value


def _mailbox_json(mailbox: Mailbox) -> dict[str, Any]:
    return {
        "id": mailbox.id,
        "address": mailbox.local_part,
        "fullAddress": mailbox.address,
        "displayName": mailbox.display_name,
    }


async def _account_create(services: Services, args: argparse.Namespace) -> tuple[str, Any]:
    password = _password(args.password) or ""
    account = await services.accounts.create(
        args.name, owner_email=args.owner, password=password, plan=args.plan
    )
    text = f"Created account {account.name} (plan {account.plan}) owned by {args.owner.lower()}"
    return text, {
        "id": account.id,
        "name": account.name,
        "plan": account.plan,
        "status": account.status,
    }


async def _domain_add(services: Services, args: argparse.Namespace) -> tuple[str, Any]:
    domain = await services.domains.add(args.domain, account_name=args.account, trust=args.trust)
    text = f"Added {domain.name} ({domain.status})"
    if not args.trust:
        text += "; publish its DNS records, then verify it"
    return text, {"id": domain.id, "name": domain.name, "status": domain.status}


async def _domain_records(services: Services, args: argparse.Namespace) -> tuple[str, Any]:
    domain, records = await services.domains.records(args.domain)
    if args.zone:
        return zone_fragment(records).rstrip("\n"), [record_json(r) for r in records]
    lines = [f"DNS records for {domain.name} (publish the required ones, then verify):", ""]
    for record in records:
        need = "required" if record.required else "recommended"
        value = record.value if record.priority is None else f"{record.priority} {record.value}"
        lines += [
            f"{record.type:5} {record.name}  [{need}]",
            f"      {value}",
            f"      {record.purpose}",
        ]
    return "\n".join(lines), [record_json(r) for r in records]


async def _domain_verify(services: Services, args: argparse.Namespace) -> tuple[str, Any, int]:
    verification = await services.domains.verify(args.domain)
    lines = []
    for check in verification.checks:
        need = "" if check.record.required else " (recommended)"
        lines.append(f"{check.status.upper():8} {check.record.type:5} {check.record.name}{need}")
        if check.status != "ok":
            lines.append(f"         expected: {check.record.value}")
            if check.found:
                lines.append(f"         found:    {' | '.join(check.found)}")
            if check.detail:
                lines.append(f"         {check.detail}")
    for key in verification.promoted_keys:
        lines.append(f"DKIM selector {key.selector} now signs mail for {verification.domain.name}.")
    lines.append(
        f"{verification.domain.name} is verified."
        if verification.required_ok
        else f"{verification.domain.name}: some required records are not right yet."
    )
    return_path = verification.return_path
    lines.append(f"Return path: bounce+<token>@{return_path.domain}: {return_path.reason}")
    # The list stays the ARCHITECTURE.md contract; the records the return path depends on say
    # which one the domain's mail uses now, and why.
    depends = {id(c) for c in return_path_checks(verification.domain.name, verification.checks)}
    data = [
        {
            **record_json(c.record),
            "status": c.status,
            "found": list(c.found),
            "detail": c.detail,
            **({"returnPath": _return_path_json(return_path)} if id(c) in depends else {}),
        }
        for c in verification.checks
    ]
    # Exit status 0 only when every required record is ok (ARCHITECTURE.md contract).
    return "\n".join(lines), data, 0 if verification.required_ok else 1


def _return_path_json(return_path: ReturnPath) -> dict[str, object]:
    return {
        "domain": return_path.domain,
        "custom": return_path.custom,
        "reason": return_path.reason,
    }


async def _domain_rotate_dkim(services: Services, args: argparse.Namespace) -> tuple[str, Any]:
    keys = await services.domains.rotate_dkim(args.domain)
    lines = ["New DKIM keys, published alongside the current ones:"]
    lines += [f"  {k.selector} ({k.algorithm})" for k in keys]
    lines.append(
        "Publish their records (mailmark domain records), then run mailmark domain verify:"
    )
    lines.append("signing switches to the new keys once their records verify.")
    return "\n".join(lines), [{"selector": k.selector, "algorithm": k.algorithm} for k in keys]


async def _mailbox_add(services: Services, args: argparse.Namespace) -> tuple[str, Any]:
    mailbox = await services.mailboxes.create(
        args.address,
        display_name=args.display_name,
        signature=args.signature,
        password=_password(args.password),
    )
    return f"Created mailbox {mailbox.address}", _mailbox_json(mailbox)


async def _mailbox_list(services: Services, args: argparse.Namespace) -> tuple[str, Any]:
    mailboxes = await services.mailboxes.list(args.domain)
    lines = [
        f"{m.address}" + (f"  ({m.display_name})" if m.display_name else "") for m in mailboxes
    ]
    return "\n".join(lines) or "No mailboxes.", [_mailbox_json(m) for m in mailboxes]


async def _mailbox_delete(services: Services, args: argparse.Namespace) -> tuple[str, Any]:
    await services.mailboxes.delete(args.address)
    return f"Deleted mailbox {args.address.lower()} and all its mail", {"deleted": True}


def _queue_entry_json(entry: QueueEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "outboundId": entry.outbound_id,
        "from": entry.from_addr,
        "to": entry.recipient,
        "subject": entry.subject,
        "messageId": entry.message_id_header,
        "status": entry.status,
        "attempts": entry.attempts,
        "nextAttemptAt": entry.next_attempt_at.isoformat(),
        "expiresAt": entry.expires_at.isoformat(),
        "createdAt": entry.created_at.isoformat(),
        "updatedAt": entry.updated_at.isoformat(),
        "lastCode": entry.last_code,
        "lastStatus": entry.last_status,
        "lastReply": entry.last_reply,
        "mxHost": entry.mx_host,
    }


def _queue_entry_text(entry: QueueEntry) -> list[str]:
    when = entry.next_attempt_at.strftime("%Y-%m-%d %H:%M:%SZ")
    lines = [
        f"{entry.id:>6}  {entry.status:10} {entry.from_addr} -> {entry.recipient}",
        f"        attempts {entry.attempts}, next {when}, subject {entry.subject or '(none)'!r}",
    ]
    if entry.last_code is not None or entry.last_reply:
        reply = " ".join(str(part) for part in (entry.last_code, entry.last_status) if part)
        last = " ".join((entry.last_reply or "").split())[:200]
        lines.append(f"        last reply: {reply} {last}".rstrip())
    return lines


async def _queue_list(services: Services, args: argparse.Namespace) -> tuple[str, Any]:
    if args.limit < 1:
        raise InvalidInput("--limit must be at least 1.")
    status = DeliveryStatus(args.status) if args.status else None
    entries = await services.queue_admin.list(status, limit=args.limit)
    lines = [line for entry in entries for line in _queue_entry_text(entry)]
    return "\n".join(lines) or "The queue is empty.", [_queue_entry_json(e) for e in entries]


async def _queue_retry(services: Services, args: argparse.Namespace) -> tuple[str, Any]:
    count = await services.queue_admin.retry(None if args.all else args.id)
    noun = "delivery" if count == 1 else "deliveries"
    return f"{count} {noun} due now", {"retried": count}


async def _queue_delete(services: Services, args: argparse.Namespace) -> tuple[str, Any]:
    await services.queue_admin.delete(args.id)
    return f"Deleted delivery {args.id}; it will not be attempted again", {"deleted": True}


def _api_key_json(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "prefix": key.prefix,
        "domain": key.domain_name,
        "name": key.name,
        "createdAt": key.created_at.isoformat(),
        "lastUsedAt": key.last_used_at.isoformat() if key.last_used_at else None,
        "revokedAt": key.revoked_at.isoformat() if key.revoked_at else None,
    }


async def _apikey_create(services: Services, args: argparse.Namespace) -> tuple[str, Any]:
    created = await services.api_keys.create(args.domain, args.name)
    key = created.key
    text = "\n".join(
        [
            f"Created API key {key.id} ({key.prefix}…) for {key.domain_name}.",
            "It is shown only now; store it safely:",
            created.secret,
        ]
    )
    return text, {**_api_key_json(key), "key": created.secret}


async def _apikey_revoke(services: Services, args: argparse.Namespace) -> tuple[str, Any]:
    key = await services.api_keys.revoke(args.key)
    return f"Revoked API key {key.id} ({key.prefix}…) of {key.domain_name}", _api_key_json(key)


async def _apikey_list(services: Services, args: argparse.Namespace) -> tuple[str, Any]:
    keys = await services.api_keys.list(args.domain)

    def when(moment: datetime | None) -> str:
        return moment.strftime("%Y-%m-%d %H:%M:%SZ") if moment else "never"

    lines = [
        f"{k.id:>5}  {k.prefix}…  {'revoked' if k.revoked_at else 'active':7}  "
        f"last used {when(k.last_used_at)}  {k.name}".rstrip()
        for k in keys
    ]
    return "\n".join(lines) or "No API keys.", [_api_key_json(k) for k in keys]


def _source_json(source: SourceSummary) -> dict[str, Any]:
    return {
        "sourceIp": source.source_ip,
        "messages": source.messages,
        "dmarcPass": source.dmarc_pass,
        "spfPass": source.spf_pass,
        "spfAligned": source.spf_aligned,
        "dkimPass": source.dkim_pass,
        "dkimAligned": source.dkim_aligned,
        "quarantined": source.quarantined,
        "rejected": source.rejected,
        "reporters": source.reporters,
    }


def _overview_json(overview: ReportOverview) -> dict[str, Any]:
    """The shape of GET /api/domains/{name}/reports."""

    def when(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment else None

    return {
        "domain": overview.domain,
        "reports": overview.reports,
        "failedReports": overview.failed_reports,
        "totals": _source_json(overview.totals),
        "sources": [_source_json(s) for s in overview.sources],
        "tls": {
            "successfulSessions": overview.tls_successful,
            "failedSessions": overview.tls_failed,
            "failures": [
                {
                    "resultType": f.result_type,
                    "receivingMx": f.receiving_mx_hostname,
                    "sessions": f.sessions,
                }
                for f in overview.tls_failures
            ],
        },
        "recent": [
            {
                "kind": r.kind,
                "status": r.status,
                "organization": r.org_name,
                "reportId": r.report_id,
                "begin": when(r.begin),
                "end": when(r.end),
                "policy": r.policy,
                "messages": r.messages,
                "reason": r.reason,
                "receivedAt": r.received_at.isoformat(),
            }
            for r in overview.recent
        ],
    }


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "-"


async def _report_list(services: Services, args: argparse.Namespace) -> tuple[str, Any]:
    overview = await services.reports.overview(args.domain)
    if not overview.reports:
        text = (
            f"No reports for {overview.domain} yet. Receivers send DMARC reports to "
            f"dmarc@{overview.domain} and TLS reports to tls-reports@{overview.domain}, usually "
            "once a day, once the DNS records point there."
        )
        return text, _overview_json(overview)
    totals = overview.totals
    lines = [
        f"Reports for {overview.domain}: {overview.reports} received, "
        f"{overview.failed_reports} unreadable.",
        f"DMARC: {totals.messages} messages, {_percent(totals.dmarc_pass, totals.messages)} pass "
        f"(SPF aligned {_percent(totals.spf_aligned, totals.messages)}, DKIM aligned "
        f"{_percent(totals.dkim_aligned, totals.messages)}).",
    ]
    if overview.sources:
        lines += ["", f"{'source IP':39} {'messages':>9} {'DMARC':>6} {'SPF':>5} {'DKIM':>5}"]
        for s in overview.sources:
            lines.append(
                f"{s.source_ip:39} {s.messages:>9} {_percent(s.dmarc_pass, s.messages):>6} "
                f"{_percent(s.spf_aligned, s.messages):>5} "
                f"{_percent(s.dkim_aligned, s.messages):>5}"
            )
    if overview.tls_successful or overview.tls_failed:
        lines += [
            "",
            f"TLS: {overview.tls_successful} sessions succeeded, {overview.tls_failed} failed.",
        ]
        lines += [
            f"  {f.sessions:>9}  {f.result_type}  {f.receiving_mx_hostname}".rstrip()
            for f in overview.tls_failures
        ]
    lines += ["", "Latest reports:"]
    for r in overview.recent:
        received = r.received_at.strftime("%Y-%m-%d %H:%M")
        if r.reason is not None:
            lines.append(f"  {received}  {r.kind:5}  failed: {r.reason}")
        else:
            lines.append(
                f"  {received}  {r.kind:5}  {r.org_name}  {r.report_id}  {r.messages} messages"
            )
    return "\n".join(lines), _overview_json(overview)


async def _setup_link(services: Services, args: argparse.Namespace) -> tuple[str, Any]:
    token = await services.identity.issue_setup_link()
    link = setup_url(services.settings, token)
    text = f"Open this link to create the owner account (single use, valid 24 hours):\n{link}"
    return text, {"url": link, "expiresInHours": 24}


def _script_file(name: str | None) -> str:
    if name is None or name == "-":
        return sys.stdin.read(MAX_SCRIPT_BYTES + 1)
    try:
        with open(name, encoding="utf-8") as file:
            return file.read(MAX_SCRIPT_BYTES + 1)
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInput(f"Cannot read {name}: {error}") from error


def _sieve_json(script: SieveScript) -> dict[str, Any]:
    return {
        "name": script.name,
        "active": script.active,
        "script": script.content,
        "lastError": script.last_error,
        "lastErrorAt": script.last_error_at.isoformat() if script.last_error_at else None,
    }


async def _sieve_get(services: Services, args: argparse.Namespace) -> tuple[str, Any]:
    script = await services.sieve.get(args.address, args.name)
    if script is None:
        raise NotFound(f"{args.address} has no such Sieve script.")
    return script.content.rstrip("\n"), _sieve_json(script)


async def _sieve_put(services: Services, args: argparse.Namespace) -> tuple[str, Any]:
    text = _script_file(args.file)
    script = await services.sieve.put(args.address, text, name=args.name or DEFAULT_SCRIPT)
    return f"Saved the Sieve script {script.name} of {args.address} (active)", _sieve_json(script)


async def _sieve_check(services: Services, args: argparse.Namespace) -> tuple[str, Any, int]:
    if args.file is not None:
        text = _script_file(args.file)
    else:
        stored = await services.sieve.get(args.address)
        if stored is None:
            raise NotFound(f"{args.address} has no active Sieve script.")
        text = stored.content
    problem = check_script(text)
    if problem is None:
        return "The script is valid", {"valid": True}, 0
    return (
        f"Line {problem.line}: {problem.message}",
        {"valid": False, "line": problem.line, "message": problem.message},
        1,
    )


COMMANDS: dict[tuple[str, str], Command] = {
    ("setup-link", ""): _setup_link,
    ("account", "create"): _account_create,
    ("domain", "add"): _domain_add,
    ("domain", "records"): _domain_records,
    ("domain", "verify"): _domain_verify,
    ("domain", "rotate-dkim"): _domain_rotate_dkim,
    ("mailbox", "add"): _mailbox_add,
    ("mailbox", "list"): _mailbox_list,
    ("mailbox", "delete"): _mailbox_delete,
    ("sieve", "get"): _sieve_get,
    ("sieve", "put"): _sieve_put,
    ("sieve", "check"): _sieve_check,
    ("queue", "list"): _queue_list,
    ("queue", "retry"): _queue_retry,
    ("queue", "delete"): _queue_delete,
    ("apikey", "create"): _apikey_create,
    ("apikey", "revoke"): _apikey_revoke,
    ("apikey", "list"): _apikey_list,
    ("report", "list"): _report_list,
}
# The commands that may start a new installation in an empty data directory; every other one
# needs the database that `serve` or these made, and says where it looked when there is none.
CREATING_COMMANDS = {("account", "create"), ("setup-link", "")}


async def _run_command(settings: Settings, command: Command, args: argparse.Namespace) -> int:
    services = await build_services(settings)
    try:
        text, data, *status = await command(services, args)
    except MailmarkError as error:
        return _fail(args, error.message)
    finally:
        await services.close()
    print(json.dumps(data, indent=2) if args.json else text)
    return status[0] if status else 0


async def _serve(settings: Settings, args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if args.http_only:
        await serve_http(settings, stop)
    else:
        await serve(settings, stop, http_workers=args.http_workers)
    return 0


def _missing_database(settings: Settings) -> Path | None:
    """The SQLite file that does not exist yet, or None (a server database is always 'there')."""
    path = settings.sqlite_path
    return path.resolve() if path is not None and not path.exists() else None


def _fail(args: argparse.Namespace, message: str) -> int:
    """An error: one line on stderr (and as JSON on stdout with --json), exit status 1."""
    if getattr(args, "json", False):
        print(json.dumps({"error": message}))
    print(f"mailmark: {message}", file=sys.stderr)
    return 1


async def _guarded(main: Coroutine[Any, Any, int], args: argparse.Namespace) -> int:
    """What cannot start (a port in use, an unwritable data dir, an unreachable database) ends
    in one line, not a traceback."""
    try:
        return await main
    except StartupError as error:
        return _fail(args, str(error))


def _run(main: Coroutine[Any, Any, int]) -> int:
    """Run on uvloop when it is installed (the `fast` extra), else on asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    overrides: dict[str, Any] = {}
    if args.data_dir is not None:
        overrides["data_dir"] = args.data_dir
    if args.command == "serve":
        if args.http_workers < 1:
            print("mailmark: --http-workers must be at least 1", file=sys.stderr)
            return 2
        if args.http_port is not None:
            overrides["http_port"] = args.http_port
    try:
        settings = load_settings(args.config, **overrides)
    except SettingsError as error:
        print(f"mailmark: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(
        # Admin commands print their result; only `serve` narrates what it does.
        level=settings.log_level if args.command == "serve" else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # aiosmtpd narrates every connection at INFO, alembic every migration check: too chatty.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if args.command == "serve":
        return _run(_guarded(_serve(settings, args), args))
    command = (args.command, args.action)
    if (missing := _missing_database(settings)) is not None:
        if command not in CREATING_COMMANDS:
            return _fail(
                args,
                f"no Mailmark data in {missing.parent} (no {missing.name} there); run this "
                "where the server runs, or say where its data is with --data-dir DIR, "
                "MAILMARK_DATA_DIR or a settings file (--config FILE, MAILMARK_CONFIG, "
                "/etc/mailmark/mailmark.toml)",
            )
        print(f"mailmark: new installation in {missing.parent}", file=sys.stderr)
    return _run(_guarded(_run_command(settings, COMMANDS[command], args), args))


if __name__ == "__main__":
    sys.exit(main())
