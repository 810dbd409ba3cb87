"""MAILMARK_TLS_CERT/_KEY replaced on disk (certbot renewing): new connections get the new pair
without a restart, on the mail listeners and on HTTPS; a broken pair is refused, logged, and the
old one kept."""

from __future__ import annotations

import asyncio
import datetime
import shutil
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from mailmark.bootstrap import Listeners
from mailmark.certificates.holder import (
    CertificateFileWatcher,
    CertificateHolder,
    CertificateRefused,
    check_pair,
)
from mailmark.config import Settings
from mailmark.security import ensure_self_signed_certificate
from tests.support.tls import presented_certificate, trusting
from tests.support.world import HOSTNAME


def make_pair(directory: Path) -> tuple[Path, Path]:
    """A fresh self-signed pair (a new key and serial each time)."""
    return ensure_self_signed_certificate(directory, HOSTNAME)


def install(pair: tuple[Path, Path], cert: Path, key: Path) -> None:
    shutil.copyfile(pair[1], key)
    shutil.copyfile(pair[0], cert)


def der(path: Path) -> bytes:
    return x509.load_pem_x509_certificate(path.read_bytes()).public_bytes(
        serialization.Encoding.DER
    )


@pytest.fixture
def live(tmp_path: Path) -> tuple[Path, Path]:
    """Where the configured pair lives, holding pair A."""
    directory = tmp_path / "live"
    directory.mkdir()
    cert, key = directory / "fullchain.pem", directory / "privkey.pem"
    install(make_pair(tmp_path / "a"), cert, key)
    return cert, key


@pytest.fixture
def settings(settings: Settings, live: tuple[Path, Path]) -> Settings:
    return settings.model_copy(
        update={
            "tls_cert": live[0],
            "tls_key": live[1],
            "tls_reload_interval": datetime.timedelta(seconds=1),
            "https_port": 0,
        }
    )


async def test_a_replaced_pair_is_presented_to_new_connections_without_restart(
    listeners: Listeners, live: tuple[Path, Path], tmp_path: Path, settings: Settings
) -> None:
    cert, key = live
    first = der(cert)
    assert await presented_certificate(listeners.imaps_port) == first
    install(make_pair(tmp_path / "b"), cert, key)
    second = der(cert)
    assert second != first
    # The background check (every second here) finds it; no call from the test.
    for _ in range(200):
        if await presented_certificate(listeners.imaps_port) == second:
            break
        await asyncio.sleep(0.1)
    assert await presented_certificate(listeners.imaps_port) == second
    assert await presented_certificate(listeners.submission_port, starttls="smtp") == second
    assert listeners.https_port is not None
    assert await presented_certificate(listeners.https_port) == second
    # A real HTTPS client that trusts only the new certificate is served by the same listener.
    async with httpx.AsyncClient(verify=trusting(cert), trust_env=False, timeout=10) as client:
        health = await client.get(f"https://127.0.0.1:{listeners.https_port}/healthz")
    assert health.status_code == 200
    # The copies OpenSSL loaded from, in the data dir, are gone.
    assert not list(settings.data_dir.glob(".tls-load-*"))


def expired_pair(directory: Path) -> tuple[Path, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOSTNAME)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=10))
        .not_valid_after(now - datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    directory.mkdir()
    cert, key_path = directory / "cert.pem", directory / "key.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, key_path


def break_pair(breakage: str, cert: Path, key: Path, scratch: Path) -> None:
    if breakage == "garbage chain":
        cert.write_bytes(b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n")
    elif breakage == "key of another certificate":
        shutil.copyfile(make_pair(scratch / "other")[1], key)
    elif breakage == "empty key":
        key.write_bytes(b"")
    else:
        install(expired_pair(scratch / "expired"), cert, key)


async def test_a_broken_pair_is_refused_and_listeners_keep_the_old_one(
    listeners: Listeners, live: tuple[Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cert, key = live
    first = der(cert)
    watcher = listeners.certificate_files
    assert watcher is not None
    await watcher.stop()  # the test looks at the files itself, once
    # The case OpenSSL would half-apply: the chain loads, then the key is refused.
    break_pair("key of another certificate", cert, key, tmp_path)

    assert watcher.run_once() is False
    assert f"refusing the new TLS certificate {cert}" in caplog.text
    assert "does not belong to the certificate" in caplog.text
    assert await presented_certificate(listeners.imaps_port) == first
    assert await presented_certificate(listeners.imap_port, starttls="imap") == first
    assert await presented_certificate(listeners.mx_port, starttls="smtp") == first
    assert listeners.https_port is not None
    assert await presented_certificate(listeners.https_port) == first

    install(make_pair(tmp_path / "fixed"), cert, key)
    assert watcher.run_once() is True
    assert await presented_certificate(listeners.imaps_port) == der(cert)


@pytest.mark.parametrize(
    ("breakage", "reason"),
    [
        ("garbage chain", "holds no PEM certificate"),
        ("key of another certificate", "does not belong to the certificate"),
        ("empty key", "no unencrypted PEM private key"),
        ("expired", "not now"),
    ],
)
def test_each_kind_of_broken_pair_is_refused_once(
    live: tuple[Path, Path],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    breakage: str,
    reason: str,
) -> None:
    cert, key = live
    holder = CertificateHolder(cert, key)
    watcher = CertificateFileWatcher(holder, interval=60)
    loaded = holder.loaded
    break_pair(breakage, cert, key, tmp_path)

    assert watcher.run_once() is False
    assert reason in caplog.text
    assert holder.loaded == loaded
    caplog.clear()
    assert watcher.run_once() is False  # the same broken pair is reported once, not each time
    assert "refusing" not in caplog.text

    with pytest.raises(CertificateRefused, match=reason):
        holder.reload()
    assert holder.loaded == loaded


def test_check_pair_accepts_a_matching_valid_pair(tmp_path: Path) -> None:
    cert, key = make_pair(tmp_path / "ok")
    leaf = check_pair(cert.read_bytes(), key.read_bytes(), datetime.datetime.now(datetime.UTC))
    assert leaf.public_bytes(serialization.Encoding.DER) == der(cert)
    with pytest.raises(CertificateRefused, match="does not belong"):
        check_pair(
            cert.read_bytes(),
            make_pair(tmp_path / "other")[1].read_bytes(),
            datetime.datetime.now(datetime.UTC),
        )


def test_an_expired_configured_pair_is_loaded_at_start_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cert, key = expired_pair(tmp_path / "expired")
    holder = CertificateHolder(cert, key)
    assert holder.loaded.cert_path == cert
    assert "is not valid now" in caplog.text


def test_a_watcher_given_another_pair_moves_to_it_once_it_is_written(
    live: tuple[Path, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An IMAP process of `serve --imap-processes` that started on the self-signed pair before
    the main process's ACME renewal wrote its first certificate: it presents that one once it
    exists, and says nothing while it does not."""
    holder = CertificateHolder(*live)
    issued = tmp_path / "acme"
    issued.mkdir()
    cert, key = issued / "cert.pem", issued / "key.pem"
    watcher = CertificateFileWatcher(holder, interval=60, pair=(cert, key))

    assert watcher.run_once() is False
    assert holder.loaded.cert_path == live[0]
    assert "cannot read" not in caplog.text

    install(make_pair(tmp_path / "b"), cert, key)
    assert watcher.run_once() is True
    assert holder.loaded.cert_path == cert
    assert der(cert) == holder.loaded.leaf.public_bytes(serialization.Encoding.DER)
    assert watcher.run_once() is False  # the same pair again: nothing to load
