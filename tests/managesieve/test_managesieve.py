"""ManageSieve (RFC 5804) over a real socket, driven by sievelib's client as Roundcube's
managesieve plugin drives it: STARTTLS, AUTHENTICATE PLAIN only over TLS, scripts listed, saved
(refused when broken, with the line), read, checked, activated, renamed and deleted; the active
one is what delivery runs. Raw commands check the refusals and the literal bound."""

from __future__ import annotations

import asyncio
import base64
import socket
import ssl
from types import SimpleNamespace

import pytest
from sievelib import managesieve

from mailmark.bootstrap import Listeners
from mailmark.core.sieve.syntax import MAX_SCRIPT_BYTES
from tests.support.tls import client_tls
from tests.support.world import World

SALES = "sales@acme.test"
PASSWORD = "sales-pass-1"
SCRIPT = 'require "fileinto";\nif header :contains "subject" "invoice" {\n  fileinto "INBOX";\n}\n'


@pytest.fixture(autouse=True)
def trust_the_test_certificate(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server under test presents a self-signed certificate."""
    client_ssl = SimpleNamespace(
        create_default_context=client_tls, SSLError=ssl.SSLError, SSLSocket=ssl.SSLSocket
    )
    monkeypatch.setattr(managesieve, "ssllib", client_ssl)


def session(port: int) -> managesieve.Client:
    client = managesieve.Client("127.0.0.1", port)
    assert client.connect(SALES, PASSWORD, starttls=True, authmech="PLAIN"), client.errmsg
    return client


async def test_a_client_edits_the_scripts_delivery_runs(world: World, listeners: Listeners) -> None:
    port = listeners.managesieve.port

    def scenario() -> dict[str, object]:
        client = session(port)
        seen: dict[str, object] = {"sieve": client.get_sieve_capabilities()}
        seen["empty"] = client.listscripts()
        seen["broken"] = client.putscript("work", 'fileinto "x";\n')
        seen["broken_why"] = client.errmsg
        seen["saved"] = client.putscript("work", SCRIPT)
        seen["other"] = client.putscript("holiday", 'require "vacation";\nvacation "Away.";\n')
        seen["active"] = client.setactive("work")
        seen["listed"] = client.listscripts()
        seen["content"] = client.getscript("work")
        seen["checked"] = client.checkscript("keep;\n")
        seen["delete_active"] = client.deletescript("work")
        seen["renamed"] = client.renamescript("holiday", "away")
        seen["deleted"] = client.deletescript("away")
        seen["space"] = client.havespace("big", MAX_SCRIPT_BYTES + 1)
        seen["final"] = client.listscripts()
        client.logout()
        return seen

    seen = await asyncio.to_thread(scenario)
    assert "fileinto" in seen["sieve"] and "imap4flags" in seen["sieve"]  # type: ignore[operator]
    assert seen["empty"] == (None, [])
    assert seen["broken"] is False
    assert (
        seen["broken_why"] == b'line 1: fileinto needs require "fileinto" at the top of the script'
    )
    assert seen["saved"] is True and seen["other"] is True and seen["active"] is True
    assert seen["listed"] == ("work", ["holiday"])
    # sievelib leaves out the last line break of what it reads.
    assert seen["content"] == SCRIPT.removesuffix("\n")
    assert seen["checked"] is True
    assert seen["delete_active"] is False
    assert seen["renamed"] is True and seen["deleted"] is True
    assert seen["space"] is False
    assert seen["final"] == ("work", [])
    active = await world.services.sieve.get(SALES)
    assert active is not None and active.name == "work" and active.active


def raw_exchange(port: int, *commands: bytes, tls: bool = False) -> list[bytes]:
    """Each command's whole answer, up to its OK/NO/BYE line."""
    sock: socket.socket | ssl.SSLSocket = socket.create_connection(("127.0.0.1", port), timeout=20)
    reader = sock.makefile("rb")
    answers = []

    def answer() -> bytes:
        lines = b""
        while True:
            line = reader.readline()
            lines += line
            if not line or line.startswith((b"OK", b"NO", b"BYE")):
                return lines

    try:
        answers.append(answer())
        if tls:
            sock.sendall(b"STARTTLS\r\n")
            assert answer().startswith(b"OK")
            sock = client_tls().wrap_socket(sock, server_hostname="localhost")
            reader = sock.makefile("rb")
            answers.append(answer())
        for command in commands:
            sock.sendall(command)
            answers.append(answer())
    finally:
        sock.close()
    return answers


async def test_passwords_only_cross_an_encrypted_connection(
    world: World, listeners: Listeners
) -> None:
    plain = base64.b64encode(f"\0{SALES}\0{PASSWORD}".encode())
    greeting, refused, unauthenticated = await asyncio.to_thread(
        raw_exchange,
        listeners.managesieve.port,
        b'AUTHENTICATE "PLAIN" "' + plain + b'"\r\n',
        b"LISTSCRIPTS\r\n",
    )
    assert b'"SASL" ""' in greeting and b'"STARTTLS"' in greeting
    assert refused.startswith(b"NO (ENCRYPT-NEEDED)")
    assert unauthenticated.startswith(b"NO")
    wrong = base64.b64encode(f"\0{SALES}\0wrong-password".encode())
    _, after_tls, failed, logged_in = await asyncio.to_thread(
        raw_exchange,
        listeners.managesieve.port,
        b'AUTHENTICATE "PLAIN" "' + wrong + b'"\r\n',
        b'AUTHENTICATE "PLAIN" {' + str(len(plain)).encode() + b"+}\r\n" + plain + b"\r\n",
        tls=True,
    )
    assert b'"SASL" "PLAIN"' in after_tls and b"STARTTLS" not in after_tls
    assert failed.startswith(b'NO "Invalid credentials')
    assert logged_in.startswith(b"OK")


async def test_a_literal_over_the_bound_ends_the_session(
    world: World, listeners: Listeners
) -> None:
    plain = base64.b64encode(f"\0{SALES}\0{PASSWORD}".encode())
    *_, refused = await asyncio.to_thread(
        raw_exchange,
        listeners.managesieve.port,
        b'AUTHENTICATE "PLAIN" "' + plain + b'"\r\n',
        b'PUTSCRIPT "big" {' + str(MAX_SCRIPT_BYTES + 1).encode() + b"+}\r\n",
        tls=True,
    )
    assert refused.startswith(b"BYE (QUOTA/MAXSIZE)")


async def test_a_line_over_the_bound_ends_the_session(world: World, listeners: Listeners) -> None:
    _, refused = await asyncio.to_thread(
        raw_exchange, listeners.managesieve.port, b"NOOP " + b"x" * 20_000 + b"\r\n"
    )
    assert refused.startswith(b'BYE "A line is at most 8192 bytes"')
