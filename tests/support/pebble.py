"""Pebble, the ACME test CA (Debian's package), on loopback ports.

Its validation authority resolves the names it validates through the test's FakeDns and fetches
HTTP-01 answers from `http_port` (where the test's HTTP listener is). Its own HTTPS uses a
certificate made here, from a small CA whose certificate is `ca_file`. Nonces are never refused
at random and validations never wait (PEBBLE_WFE_NONCEREJECT=0, PEBBLE_VA_NOSLEEP=1).

The `pebble` fixture is one Pebble per test module, fetching answers from `acme_http_port`: each
module's settings put the listener that answers HTTP-01 there.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mailmark.bootstrap import Listeners
from tests.fakedns import FakeDns
from tests.support.serve import free_port
from tests.support.world import DOMAIN, HOSTNAME

PEBBLE = shutil.which("pebble") or "/usr/bin/pebble"
START_TIMEOUT = 30.0
# The names a certificate for the acme.test world covers; Pebble resolves them to 127.0.0.1.
ACME_NAMES = [HOSTNAME, f"mta-sts.{DOMAIN}", f"autoconfig.{DOMAIN}"]


@dataclass
class Pebble:
    process: subprocess.Popen[bytes]
    directory_url: str
    management_url: str
    ca_file: Path  # what Pebble's own HTTPS is signed by
    log_file: Path

    def root_pem(self) -> bytes:
        """The root Pebble issues under (made anew at each start)."""
        response = httpx.get(f"{self.management_url}/roots/0", verify=str(self.ca_file))
        response.raise_for_status()
        return response.content

    def verifying_client(self) -> ssl.SSLContext:
        """A client that trusts Pebble's root only, and checks the host name."""
        context = ssl.create_default_context(cadata=self.root_pem().decode())
        context.check_hostname = True
        return context

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _https_pair(directory: Path) -> tuple[Path, Path, Path]:
    """A CA, and a certificate it signs for 127.0.0.1 and localhost: Pebble's HTTPS."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Mailmark test Pebble HTTPS CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def start_pebble(directory: Path, *, http_port: int, dns_server: str) -> Pebble:
    if not os.access(PEBBLE, os.X_OK):
        pytest.skip("pebble (Debian package pebble, the ACME test CA) is not installed")
    directory.mkdir(parents=True, exist_ok=True)
    ca_file, cert_file, key_file = _https_pair(directory)
    port, management_port = free_port(), free_port()
    config = directory / "pebble-config.json"
    config.write_text(
        json.dumps(
            {
                "pebble": {
                    "listenAddress": f"127.0.0.1:{port}",
                    "managementListenAddress": f"127.0.0.1:{management_port}",
                    "certificate": str(cert_file),
                    "privateKey": str(key_file),
                    "httpPort": http_port,
                    "tlsPort": free_port(),
                    "ocspResponderURL": "",
                    "externalAccountBindingRequired": False,
                }
            }
        )
    )
    log_file = directory / "pebble.log"
    environment = {
        **os.environ,
        "PEBBLE_VA_NOSLEEP": "1",
        "PEBBLE_WFE_NONCEREJECT": "0",
        "PEBBLE_AUTHZREUSE": "0",
    }
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            [PEBBLE, "-config", str(config), "-dnsserver", dns_server],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environment,
        )
    pebble = Pebble(
        process,
        f"https://127.0.0.1:{port}/dir",
        f"https://127.0.0.1:{management_port}",
        ca_file,
        log_file,
    )
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            if httpx.get(pebble.directory_url, verify=str(ca_file)).status_code == 200:
                return pebble
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            pebble.stop()
            raise RuntimeError(f"pebble did not start:\n{log_file.read_text()}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def acme_http_port() -> int:
    """Pebble is told at start where to fetch HTTP-01 answers, so the port is chosen first; each
    test's listener binds it in turn."""
    return free_port()


@pytest.fixture(scope="module")
def pebble(tmp_path_factory: pytest.TempPathFactory, acme_http_port: int) -> Iterator[Pebble]:
    """One Pebble for the module (it takes a second or two to start), resolving the world's
    names to 127.0.0.1 through its own FakeDns."""
    with FakeDns() as dns:
        for name in ACME_NAMES:
            dns.add(name, "A", "127.0.0.1")
        started = start_pebble(
            tmp_path_factory.mktemp("pebble"), http_port=acme_http_port, dns_server=dns.address
        )
        try:
            yield started
        finally:
            started.stop()


async def issued(listeners: Listeners) -> x509.Certificate:
    """The certificate in use once an order for the world's names has completed (the
    background renewal may have ordered it already)."""
    assert listeners.acme is not None
    await listeners.acme.run_once()
    return listeners.certificates.loaded.leaf
