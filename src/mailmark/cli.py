"""The `mailmark` admin command line. Human text by default, `--json` for scripts."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from mailmark.bootstrap import (
    Services,
    backup,
    build_services,
    restore,
    serve,
    serve_delivery,
    serve_http,
    serve_imap,
    setup_url,
)
from mailmark.config import Settings, SettingsError, load_settings, parse_size
from mailmark.core.accounts import PLAN_LABELS, AccountOverview
from mailmark.core.aggregate_reports import ReportOverview, SourceSummary
from mailmark.core.domains import ReturnPath, return_path_checks
from mailmark.core.errors import InvalidInput, MailmarkError, NotFound
from mailmark.core.model import Alias, ApiKey, Mailbox, QueueEntry
from mailmark.core.plans import PLANS
from mailmark.core.ports import DomainContents
from mailmark.core.relays import RelayChoice, RelaySetting, RelayTls
from mailmark.core.sieve.model import SieveScript
from mailmark.core.sieve.scripts import DEFAULT_SCRIPT, check_script
from mailmark.core.sieve.syntax import MAX_SCRIPT_BYTES
from mailmark.core.states import DeliveryStatus
from mailmark.core.vacation import VacationChange, describe
from mailmark.dns_tools.record_set import record_json, zone_fragment
from mailmark.doctor import (
    DEFAULT_NTP_SERVER,
    DEFAULT_PROBE_DOMAIN,
    DISK_FAIL_BYTES,
    Doctor,
    DoctorOptions,
    Status,
    report,
)
from mailmark.logs import configure_logging
from mailmark.startup import StartupError
from mailmark.storage.backup import BackupError

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
    serve.add_argument(
        "--delivery-workers",
        type=int,
        default=1,
        metavar="N",
        help="deliver the outbound queue from N processes (N-1 extra, delivery only, same "
        "database)",
    )
    serve.add_argument(
        "--imap-processes",
        type=int,
        default=0,
        metavar="N",
        help="serve IMAP and IMAPS from N processes of their own, apart from MX, submission and "
        "HTTP (default 0: this process serves them)",
    )
    # The extra processes of --http-workers run `serve --http-only`, those of --delivery-workers
    # `serve --delivery-only`, those of --imap-processes `serve --imap-only`.
    serve.add_argument("--http-only", action="store_true", help=argparse.SUPPRESS)
    serve.add_argument("--delivery-only", action="store_true", help=argparse.SUPPRESS)
    serve.add_argument("--imap-only", action="store_true", help=argparse.SUPPRESS)
    serve.add_argument("--http-port", type=int, help=argparse.SUPPRESS)
    serve.add_argument("--imap-port", type=int, help=argparse.SUPPRESS)
    serve.add_argument("--imaps-port", type=int, help=argparse.SUPPRESS)
    serve.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)
    serve.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)

    account = commands.add_parser("account", help="manage accounts").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    create = account.add_parser("create", help="create an account and its owner")
    create.add_argument("name")
    create.add_argument("--owner", required=True, metavar="EMAIL")
    create.add_argument("--password", required=True, help="the owner's password ('-' reads stdin)")
    create.add_argument("--plan", choices=list(PLANS), default="unlimited")
    account.add_parser("list", help="list accounts with their plan, status and usage")
    plan = account.add_parser(
        "plan", help="put an account on a plan (ends a trial or a pause; releases held mail)"
    )
    plan.add_argument("name")
    plan.add_argument("plan", choices=list(PLANS))
    account.add_parser(
        "pause", help="pause an account: nothing more is sent; its due mail is held"
    ).add_argument("name")
    account.add_parser(
        "resume", help="resume a paused account and send its held mail"
    ).add_argument("name")

    domain = commands.add_parser("domain", help="manage domains").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    add = domain.add_parser("add", help="add a domain to an account")
    add.add_argument("domain")
    add.add_argument("--account", required=True, metavar="NAME")
    add.add_argument("--trust", action="store_true", help="mark verified without DNS checks")
    add.add_argument(
        "--alias-of",
        metavar="DOMAIN",
        help="deliver every address of the new domain as the same one @DOMAIN (same account)",
    )
    records = domain.add_parser("records", help="print the DNS records the domain needs")
    records.add_argument("domain")
    records.add_argument("--zone", action="store_true", help="print a BIND zone-file fragment")
    verify = domain.add_parser("verify", help="check the domain's DNS records, one by one")
    verify.add_argument("domain")
    rotate = domain.add_parser(
        "rotate-dkim", help="publish new DKIM keys alongside the current ones"
    )
    rotate.add_argument("domain")
    relay = domain.add_parser(
        "relay",
        help="show or set the relay host (smarthost) the domain's mail goes through",
        description="Without options, show the domain's relay. --host sends its mail through "
        "that relay (TLS required, certificate verified); --direct sends it to each "
        "recipient's MX even when MAILMARK_RELAY_HOST is set; --default follows the "
        "installation's MAILMARK_RELAY_* setting again.",
    )
    relay.add_argument("domain")
    relay_choice = relay.add_mutually_exclusive_group()
    relay_choice.add_argument("--host", help="the relay's host name (or IP address)")
    relay_choice.add_argument("--direct", action="store_true", help="deliver to the MX directly")
    relay_choice.add_argument(
        "--default", action="store_true", help="follow the installation's relay setting"
    )
    relay.add_argument("--port", type=int, help="default: 587 with starttls, 465 with implicit")
    relay.add_argument("--tls", choices=[t.value for t in RelayTls], default="starttls")
    relay.add_argument("--username", help="AUTH login at the relay")
    relay.add_argument(
        "--password",
        help="AUTH password ('-' reads stdin); without it, a stored one for the same host "
        "and username is kept",
    )
    catch_all = domain.add_parser(
        "catch-all", help="send mail for unknown addresses of the domain to one mailbox"
    )
    catch_all.add_argument("domain")
    catch_all.add_argument(
        "mailbox", metavar="MAILBOX|off", help="a mailbox of the account, or off"
    )

    alias = commands.add_parser("alias", help="manage aliases").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    aadd = alias.add_parser("add", help="create an alias delivering to one or more mailboxes")
    aadd.add_argument("address", metavar="LOCAL@DOMAIN")
    aadd.add_argument("targets", nargs="+", metavar="MAILBOX", help="mailboxes of the account")
    alias.add_parser("list", help="list a domain's aliases").add_argument("domain")
    alias.add_parser("remove", help="remove an alias (its mailboxes keep their mail)").add_argument(
        "address", metavar="LOCAL@DOMAIN"
    )
    dlist = domain.add_parser("list", help="list domains with their account and mailboxes")
    dlist.add_argument("--account", metavar="NAME", help="only this account's domains")
    dremove = domain.add_parser(
        "remove",
        help="remove a domain with its mailboxes and their mail, queued mail, DKIM keys, "
        "API keys and webhooks",
    )
    dremove.add_argument("domain")
    dremove.add_argument(
        "--yes", action="store_true", help="really remove it (without: say what it holds)"
    )

    mailbox = commands.add_parser("mailbox", help="manage mailboxes").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    madd = mailbox.add_parser("add", help="create a mailbox")
    madd.add_argument("address", metavar="LOCAL@DOMAIN")
    madd.add_argument("--display-name", default="")
    madd.add_argument("--signature", default="")
    madd.add_argument("--password", help="password for IMAP/SMTP ('-' reads stdin)")
    medit = mailbox.add_parser("edit", help="change a mailbox's display name, signature, password")
    medit.add_argument("address", metavar="LOCAL@DOMAIN")
    medit.add_argument("--display-name")
    medit.add_argument("--signature")
    medit.add_argument("--signature-format", choices=["text", "html"])
    secret = medit.add_mutually_exclusive_group()
    secret.add_argument("--password", help="new password for IMAP/SMTP ('-' reads stdin)")
    secret.add_argument(
        "--password-file", type=Path, metavar="FILE", help="read the new password from FILE"
    )
    mailbox.add_parser("list", help="list a domain's mailboxes").add_argument("domain")
    mailbox.add_parser("delete", help="delete a mailbox and all its mail").add_argument(
        "address", metavar="LOCAL@DOMAIN"
    )
    forward = mailbox.add_parser(
        "forward", help="forward a mailbox's mail to other addresses, or show its forwarding"
    )
    forward.add_argument("address", metavar="LOCAL@DOMAIN")
    forward_to = forward.add_mutually_exclusive_group()
    forward_to.add_argument(
        "--to", action="append", default=[], metavar="ADDRESS", help="an address (repeatable)"
    )
    forward_to.add_argument("--off", action="store_true", help="stop forwarding")
    forward.add_argument(
        "--no-keep", action="store_true", help="keep no copy in the mailbox (default: keep one)"
    )
    vacation = mailbox.add_parser(
        "vacation",
        help="show or set the vacation responder (changes only what is given)",
    )
    vacation.add_argument("address", metavar="LOCAL@DOMAIN")
    switch = vacation.add_mutually_exclusive_group()
    switch.add_argument("--on", dest="enabled", action="store_const", const=True)
    switch.add_argument("--off", dest="enabled", action="store_const", const=False)
    vacation.add_argument("--subject", help="default: Auto: and the original subject")
    vacation.add_argument("--body-file", help="the message, from this file ('-' reads stdin)")
    vacation.add_argument("--html", action="store_true", help="the message file is HTML")
    vacation.add_argument("--start", help="first day, 2027-07-01 or 2027-07-01T09:00")
    vacation.add_argument("--end", help="last day, 2027-07-14 (the whole day) or a time")
    vacation.add_argument("--no-dates", action="store_true", help="on until turned off")
    vacation.add_argument("--time-zone", help="the zone of the dates, e.g. Europe/Paris")
    vacation.add_argument("--days", type=int, help="reply once every N days to a sender")

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
    retry = queue.add_parser(
        "retry", help="attempt deferred deliveries now (held ones: check their account again)"
    )
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument("id", type=int, nargs="?", help="the delivery to retry")
    which.add_argument("--all", action="store_true", help="every deferred or held delivery")
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

    doctor = commands.add_parser(
        "doctor",
        help="check DNS, ports, TLS, outbound port 25, the clock and disk space; say what to fix",
    )
    doctor.set_defaults(action="")
    doctor.add_argument(
        "--probe-domain",
        default=DEFAULT_PROBE_DOMAIN,
        metavar="DOMAIN",
        help="whose MX to connect to on port 25, to see that outbound mail is not blocked "
        f"(default {DEFAULT_PROBE_DOMAIN}; not used when a relay host is set)",
    )
    doctor.add_argument(
        "--ntp-server",
        default="",
        metavar="HOST[:PORT]",
        help="measure the clock against this SNTP server (default: ask timedatectl or chronyc, "
        f"else {DEFAULT_NTP_SERVER})",
    )
    doctor.add_argument(
        "--min-free",
        type=_size_argument,
        default=DISK_FAIL_BYTES,
        metavar="SIZE",
        help="fail below this much free space for the data dir (default 1G; warns below 5 times it)",
    )

    for sub in (
        doctor,
        setup_link,
        *account.choices.values(),
        add,
        records,
        verify,
        rotate,
        relay,
        catch_all,
        *alias.choices.values(),
        dlist,
        dremove,
        *mailbox.choices.values(),
        *sieve.choices.values(),
        *queue.choices.values(),
        *apikey.choices.values(),
        *report.choices.values(),
    ):
        sub.add_argument("--json", action="store_true", help="print JSON")
    _backup_parsers(commands)
    return parser


def _backup_parsers(commands: Any) -> None:
    backup = commands.add_parser(
        "backup",
        help="back up the database and every message into a new directory (server may run)",
    )
    backup.add_argument("destination", type=Path, metavar="DEST", help="a directory to create")
    restore = commands.add_parser(
        "restore", help="restore a backup into an empty data directory or database"
    )
    restore.add_argument("source", type=Path, metavar="SRC", help="a directory `backup` made")
    restore.add_argument(
        "--force", action="store_true", help="replace a database that is not empty"
    )
    for sub in (backup, restore):
        sub.set_defaults(action="")
        sub.add_argument("--json", action="store_true", help="print JSON")


def _password(value: str | None) -> str | None:
    if value == "-":
        return sys.stdin.readline().rstrip("\r\n")
    return value


def _relay_json(setting: RelaySetting) -> dict[str, Any]:
    """The shape of GET /api/domains/{name}/relay; never the password."""
    return {
        "domain": setting.domain,
        "choice": setting.choice.value,
        "host": setting.host,
        "port": setting.port,
        "tls": setting.tls.value if setting.tls else None,
        "username": setting.username,
        "passwordSet": setting.password_set,
        "installationRelay": setting.installation_relay,
    }


def _relay_text(setting: RelaySetting) -> str:
    fallback = (
        f"the installation's relay {setting.installation_relay}"
        if setting.installation_relay
        else "each recipient's MX (no MAILMARK_RELAY_HOST)"
    )
    if setting.choice is RelayChoice.RELAY:
        login = f", AUTH as {setting.username}" if setting.username else ", no AUTH"
        tls = "STARTTLS" if setting.tls is RelayTls.STARTTLS else "implicit TLS"
        return (
            f"{setting.domain} sends through relay {setting.host}:{setting.port} "
            f"({tls}, certificate verified{login})"
        )
    if setting.choice is RelayChoice.DIRECT:
        return f"{setting.domain} sends to each recipient's MX directly"
    return f"{setting.domain} follows the installation's setting: {fallback}"


async def _domain_relay(services: Services, args: argparse.Namespace) -> tuple[str, Any]:
    relays = services.relays
    options = (args.port, args.username, args.password)
    if args.host is None and any(option is not None for option in options):
        raise InvalidInput("--port, --username and --password go with --host.")
    if args.host is not None:
        setting = await relays.use_relay(
            args.domain,
            host=args.host,
            port=args.port,
            tls=RelayTls(args.tls),
            username=args.username,
            password=_password(args.password),
        )
    elif args.direct:
        setting = await relays.go_direct(args.domain)
    elif args.default:
        setting = await relays.use_default(args.domain)
    else:
        setting = await relays.setting(args.domain)
    return _relay_text(setting), _relay_json(setting)


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


def _account_json(overview: AccountOverview) -> dict[str, Any]:
    """The shape of GET /api/account's plan, status and usage."""
    plan, usage = overview.plan, overview.usage
    return {
        "id": overview.account.id,
        "name": overview.account.name,
        "status": overview.status,
        # The plan chosen; `plan` has the limits that apply now (Starter's on a trial or a pause).
        "accountPlan": overview.account.plan,
        "plan": {
            "name": plan.name,
            "label": overview.plan_label,
            "domains": plan.domains,
            "mailboxes": plan.mailboxes,
            "emailsPerMonth": plan.emails_per_month,
        },
        "trialEndsAt": _when(overview.account.trial_ends_at),
        "trialDaysLeft": overview.trial_days_left,
        "usage": {
            "domains": usage.domains,
            "mailboxes": usage.mailboxes,
            "emailsThisMonth": usage.emails_this_month,
        },
        "notices": list(overview.notices),
    }


def _when(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _of(used: int, limit: int | None) -> str:
    return f"{used}/{limit}" if limit is not None else f"{used}"


def _account_text(overview: AccountOverview) -> list[str]:
    plan, usage = overview.plan, overview.usage
    status = overview.status
    if overview.trial_days_left is not None:
        status += f" ({overview.trial_days_left} days left)"
    chosen = PLAN_LABELS.get(overview.account.plan, overview.account.plan)
    lines = [
        f"{overview.account.name:24} {chosen:10} {status:20} "
        f"domains {_of(usage.domains, plan.domains)}, "
        f"mailboxes {_of(usage.mailboxes, plan.mailboxes)}, "
        f"emails this month {_of(usage.emails_this_month, plan.emails_per_month)}"
    ]
    lines += [f"    {notice}" for notice in overview.notices]
    return lines


async def _account_list(services: Services, args: argparse.Namespace) -> tuple[str, Any]:
    overviews = await services.accounts.list_all()
    lines = [line for overview in overviews for line in _account_text(overview)]
    return "\n".join(lines) or "No accounts.", [_account_json(o) for o in overviews]


def _released_text(released: int) -> str:
    if not released:
        return ""
    noun = "delivery" if released == 1 else "deliveries"
    return f"\n{released} held {noun} will be sent now."


async def _account_plan(services: Services, args: argparse.Namespace) -> tuple[str, Any]:
    overview, released = await services.accounts.change_plan(args.name, args.plan)
    text = f"{overview.account.name} is now on the {overview.plan_label} plan ({overview.status})"
    text += "".join(f"\n{notice}" for notice in overview.notices) + _released_text(released)
    return text, {**_account_json(overview), "released": released}


async def _account_pause(services: Services, args: argparse.Namespace) -> tuple[str, Any]:
    overview = await services.accounts.pause(args.name)
    text = (
        f"Paused {overview.account.name}: its mail is held and nothing new is accepted for "
        "sending until it is resumed or put on a plan"
    )
    return text, _account_json(overview)


async def _account_resume(services: Services, args: argparse.Namespace) -> tuple[str, Any]:
    overview, released = await services.accounts.resume(args.name)
    text = f"Resumed {overview.account.name} ({overview.status})" + _released_text(released)
    return text, {**_account_json(overview), "released": released}


async def _domain_add(services: Services, args: argparse.Namespace) -> tuple[str, Any]:
    domain = await services.domains.add(
        args.domain, account_name=args.account, trust=args.trust, alias_of=args.alias_of
    )
    text = f"Added {domain.name} ({domain.status})"
    if args.alias_of:
        text += f" as an alias of {args.alias_of.lower()}"
    if not args.trust:
        text += "; publish its DNS records, then verify it"
    data = {"id": domain.id, "name": domain.name, "status": domain.status}
    if args.alias_of:
        data["aliasOf"] = args.alias_of.lower()
    return text, data


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


async def _domain_catch_all(services: Services, args: argparse.Namespace) -> tuple[str, Any]:
    off = args.mailbox.strip().lower() == "off"
    mailbox = await services.aliases.set_catch_all(args.domain, None if off else args.mailbox)
    domain = args.domain.lower()
    if mailbox is None:
        return f"Catch-all off for {domain}: unknown addresses are refused", {"catchAll": None}
    return (
        f"Mail for unknown addresses of {domain} now goes to {mailbox.address}",
        {"catchAll": mailbox.address},
    )


def _alias_json(alias: Alias) -> dict[str, Any]:
    return {
        "id": alias.id,
        "address": alias.address,
        "targets": [mailbox.address for mailbox in alias.targets],
        "createdAt": alias.created_at.isoformat(),
    }


async def _alias_add(services: Services, args: argparse.Namespace) -> tuple[str, Any]:
    alias = await services.aliases.add(args.address, args.targets)
    targets = ", ".join(mailbox.address for mailbox in alias.targets)
    return f"Created alias {alias.address} → {targets}", _alias_json(alias)


async def _alias_list(services: Services, args: argparse.Namespace) -> tuple[str, Any]:
    aliases = await services.aliases.list(args.domain)
    lines = [
        f"{alias.address} → {', '.join(mailbox.address for mailbox in alias.targets)}"
        for alias in aliases
    ]
    return "\n".join(lines) or "No aliases.", [_alias_json(alias) for alias in aliases]


async def _alias_remove(services: Services, args: argparse.Namespace) -> tuple[str, Any]:
    await services.aliases.remove(args.address)
    return f"Removed alias {args.address.lower()}", {"removed": True}


async def _domain_list(services: Services, args: argparse.Namespace) -> tuple[str, Any]:
    summaries = await services.domains.list_all(args.account)
    lines = [
        f"{s.domain.name:40} {s.domain.status:9} {s.account_name:24} "
        f"{s.mailbox_count} mailbox{'es' if s.mailbox_count != 1 else ''}"
        for s in summaries
    ]
    data = [
        {
            "id": s.domain.id,
            "name": s.domain.name,
            "status": s.domain.status,
            "account": s.account_name,
            "mailboxes": s.mailbox_count,
            "createdAt": s.domain.created_at.isoformat(),
        }
        for s in summaries
    ]
    return "\n".join(lines) or "No domains.", data


def _contents_json(contents: DomainContents) -> dict[str, int]:
    return {
        "mailboxes": contents.mailboxes,
        "messages": contents.messages,
        "queued": contents.queued,
        "apiKeys": contents.api_keys,
        "webhooks": contents.webhooks,
    }


def _contents_text(contents: DomainContents) -> str:
    counts = (
        (contents.mailboxes, "mailbox", "mailboxes"),
        (contents.messages, "message", "messages"),
        (contents.queued, "queued delivery", "queued deliveries"),
        (contents.api_keys, "API key", "API keys"),
        (contents.webhooks, "webhook", "webhooks"),
    )
    return ", ".join(f"{n} {one if n == 1 else many}" for n, one, many in counts)


async def _domain_remove(services: Services, args: argparse.Namespace) -> tuple[str, Any, int]:
    if not args.yes:
        domain, contents = await services.domains.contents(args.domain)
        text = (
            f"{domain.name} holds {_contents_text(contents)}. Removing it deletes all of these "
            "and its DKIM keys for good; run again with --yes to remove it."
        )
        return text, {"removed": False, "contains": _contents_json(contents)}, 1
    removed = await services.domains.delete(args.domain)
    name = args.domain.strip().lower().rstrip(".")
    text = f"Removed {name} and everything it held: {_contents_text(removed)}"
    return text, {"removed": True, "contains": _contents_json(removed)}, 0


async def _mailbox_add(services: Services, args: argparse.Namespace) -> tuple[str, Any]:
    mailbox = await services.mailboxes.create(
        args.address,
        display_name=args.display_name,
        signature=args.signature,
        password=_password(args.password),
    )
    return f"Created mailbox {mailbox.address}", _mailbox_json(mailbox)


async def _mailbox_edit(services: Services, args: argparse.Namespace) -> tuple[str, Any]:
    password = _password(args.password)
    if args.password_file is not None:
        try:
            password = args.password_file.read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as error:
            raise InvalidInput(f"Cannot read {args.password_file}: {error}") from None
    changes = (args.display_name, args.signature, args.signature_format, password)
    if all(change is None for change in changes):
        raise InvalidInput(
            "Say what to change: --display-name, --signature, --signature-format, --password "
            "or --password-file."
        )
    mailbox = await services.mailboxes.update(
        args.address,
        display_name=args.display_name,
        signature=args.signature,
        signature_format=args.signature_format,
        password=password,
    )
    changed = [
        label
        for label, value in zip(
            ("display name", "signature", "signature format", "password"), changes, strict=True
        )
        if value is not None
    ]
    return f"Updated the {', '.join(changed)} of {mailbox.address}", _mailbox_json(mailbox)


async def _mailbox_list(services: Services, args: argparse.Namespace) -> tuple[str, Any]:
    mailboxes = await services.mailboxes.list(args.domain)
    lines = [
        f"{m.address}" + (f"  ({m.display_name})" if m.display_name else "") for m in mailboxes
    ]
    return "\n".join(lines) or "No mailboxes.", [_mailbox_json(m) for m in mailboxes]


async def _mailbox_vacation(services: Services, args: argparse.Namespace) -> tuple[str, Any]:
    view = await services.vacation.get(args.address)
    current = view.settings
    wants_change = args.enabled is not None or any(
        value is not None
        for value in (args.subject, args.body_file, args.start, args.end, args.time_zone, args.days)
    )
    if wants_change or args.no_dates:
        body, body_format = current.body, current.body_format
        if args.body_file is not None:
            body = _read_text(args.body_file)
            body_format = "html" if args.html else "text"
        view = await services.vacation.set(
            args.address,
            VacationChange(
                enabled=current.enabled if args.enabled is None else args.enabled,
                body=body,
                subject=current.subject if args.subject is None else args.subject,
                body_format=body_format,
                days=current.days if args.days is None else args.days,
                time_zone=args.time_zone or current.time_zone,
                # Kept dates carry their offset, so a new time zone does not move them.
                starts=None if args.no_dates else args.start or _iso(current.starts_at),
                ends=None if args.no_dates else args.end or _iso(current.ends_at),
            ),
        )
    text = "\n".join(f"{label}: {value}" for label, value in describe(view))
    settings = view.settings
    data = {
        "enabled": settings.enabled,
        "active": view.active,
        "subject": settings.subject,
        "body": settings.body,
        "bodyFormat": settings.body_format,
        "days": settings.days,
        "timeZone": settings.time_zone,
        "startsAt": view.local(settings.starts_at),
        "endsAt": view.local(settings.ends_at),
    }
    return text, data


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _read_text(path: str) -> str:
    try:
        if path == "-":
            return sys.stdin.read()
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInput(f"Cannot read the message from {path}: {error}") from None


async def _mailbox_delete(services: Services, args: argparse.Namespace) -> tuple[str, Any]:
    await services.mailboxes.delete(args.address)
    return f"Deleted mailbox {args.address.lower()} and all its mail", {"deleted": True}


async def _mailbox_forward(services: Services, args: argparse.Namespace) -> tuple[str, Any]:
    if args.off or args.to:
        forwarding = await services.forwarding.set(
            args.address, [] if args.off else args.to, keep_copy=not args.no_keep
        )
    else:
        forwarding = await services.forwarding.get(args.address)
    address = args.address.strip().lower()
    data = {"addresses": list(forwarding.addresses), "keepCopy": forwarding.keep_copy}
    if not forwarding.addresses:
        return f"{address} does not forward its mail", data
    kept = "keeping a copy" if forwarding.keep_copy else "keeping no copy"
    return f"{address} forwards to {', '.join(forwarding.addresses)}, {kept}", data


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


def _size_argument(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


async def _doctor(services: Services, args: argparse.Namespace) -> tuple[str, Any, int]:
    options = DoctorOptions(
        probe_domain=args.probe_domain,
        ntp_server=args.ntp_server,
        disk_fail_bytes=args.min_free,
        disk_warn_bytes=args.min_free * 5,
    )
    findings = await Doctor(services.settings, services.resolver, services.domains, options).run()
    failed = any(finding.status is Status.FAIL for finding in findings)
    return report(findings), [finding.json() for finding in findings], 1 if failed else 0


COMMANDS: dict[tuple[str, str], Command] = {
    ("doctor", ""): _doctor,
    ("setup-link", ""): _setup_link,
    ("account", "create"): _account_create,
    ("account", "list"): _account_list,
    ("account", "plan"): _account_plan,
    ("account", "pause"): _account_pause,
    ("account", "resume"): _account_resume,
    ("domain", "add"): _domain_add,
    ("domain", "records"): _domain_records,
    ("domain", "verify"): _domain_verify,
    ("domain", "rotate-dkim"): _domain_rotate_dkim,
    ("domain", "relay"): _domain_relay,
    ("domain", "catch-all"): _domain_catch_all,
    ("alias", "add"): _alias_add,
    ("alias", "list"): _alias_list,
    ("alias", "remove"): _alias_remove,
    ("domain", "list"): _domain_list,
    ("domain", "remove"): _domain_remove,
    ("mailbox", "add"): _mailbox_add,
    ("mailbox", "edit"): _mailbox_edit,
    ("mailbox", "list"): _mailbox_list,
    ("mailbox", "delete"): _mailbox_delete,
    ("mailbox", "forward"): _mailbox_forward,
    ("mailbox", "vacation"): _mailbox_vacation,
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
    parent = args.parent_pid or os.getppid()
    if args.http_only:
        await serve_http(settings, stop, parent=parent)
    elif args.delivery_only:
        await serve_delivery(settings, stop, parent=parent)
    elif args.imap_only:
        await serve_imap(settings, stop, parent=parent, ready_fd=args.ready_fd)
    else:
        await serve(
            settings,
            stop,
            http_workers=args.http_workers,
            delivery_workers=args.delivery_workers,
            imap_processes=args.imap_processes,
        )
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
        for option in ("http_workers", "delivery_workers"):
            if getattr(args, option) < 1:
                print(f"mailmark: --{option.replace('_', '-')} must be at least 1", file=sys.stderr)
                return 2
        if args.imap_processes < 0:
            print("mailmark: --imap-processes must be 0 or more", file=sys.stderr)
            return 2
        for option in ("http_port", "imap_port", "imaps_port"):
            if getattr(args, option) is not None:
                overrides[option] = getattr(args, option)
    try:
        settings = load_settings(args.config, **overrides)
    except SettingsError as error:
        print(f"mailmark: {error}", file=sys.stderr)
        return 2
    configure_logging(
        # Admin commands print their result; only `serve` narrates what it does.
        settings.log_level if args.command == "serve" else logging.WARNING,
        settings.log_format,
    )
    # aiosmtpd narrates every connection at INFO, alembic every migration check: too chatty.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if args.command == "serve":
        return _run(_guarded(_serve(settings, args), args))
    if args.command in ("backup", "restore"):
        return _run(_guarded(_backup_or_restore(settings, args), args))
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


def _progress(text: str) -> None:
    print(f"mailmark: {text}", file=sys.stderr, flush=True)


async def _backup_or_restore(settings: Settings, args: argparse.Namespace) -> int:
    try:
        if args.command == "backup":
            if (missing := _missing_database(settings)) is not None:
                return _fail(args, f"no Mailmark database at {missing} to back up")
            made = await backup(settings, args.destination, _progress)
            data = made.as_json()
            text = (
                f"Backed up the {made.database} database (migration {made.revision}, "
                f"{made.database_bytes / 1e6:.1f} MB) and the {made.blobs} blobs it references "
                f"({made.blob_bytes / 1e6:.1f} MB) into {made.path}"
            )
            if not made.secrets_key:
                text += (
                    "\nThe secrets key (MAILMARK_SECRETS_KEY) is not in the backup: keep it "
                    "with it, the DKIM keys and webhook secrets need it."
                )
            if made.vanished:
                text += f"\n{len(made.vanished)} blobs were deleted with their messages meanwhile."
        else:
            done = await restore(settings, args.source, force=args.force, progress=_progress)
            data = done.as_json()
            migrated = (
                f", migrated from {done.backup_revision} to {done.revision}"
                if done.revision != done.backup_revision
                else ""
            )
            text = (
                f"Restored the {done.database} database{migrated} and {done.blobs} blobs "
                f"({done.blob_bytes / 1e6:.1f} MB, each checked against its SHA-256) from "
                f"{done.source}; secrets key: {done.secrets_key}"
            )
    except BackupError as error:
        return _fail(args, str(error))
    except MailmarkError as error:
        return _fail(args, error.message)
    except OSError as error:
        # A full or unwritable disk: say which file, no traceback (nothing half-done is left
        # under the backup's name).
        where = f" ({error.filename})" if error.filename else ""
        return _fail(args, f"{args.command} failed: {error.strerror or error}{where}")
    print(json.dumps(data, indent=2) if args.json else text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
