"""Cryptographic building blocks the core needs through its ports: password hashing (argon2),
TOTP (RFC 6238, pyotp), DKIM key generation and the self-signed TLS certificate made on first
start."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import logging
import os
import ssl
from collections.abc import Sequence
from pathlib import Path

import pyotp
from argon2 import PasswordHasher as _Argon2
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.x509.oid import NameOID

log = logging.getLogger(__name__)


# OWASP Password Storage Cheat Sheet, argon2id: 19 MiB of memory, 2 iterations, 1 lane (a
# configuration of the same strength as its 46 MiB/1/1 or 12 MiB/3/1). About 20 ms of one core
# on the development machine, where the library's default (64 MiB, t=3, 4 lanes: RFC 9106's
# second recommendation) took 100 ms and all cores at once.
ARGON2_MEMORY_KIB = 19 * 1024
ARGON2_TIME_COST = 2
ARGON2_PARALLELISM = 1


class Argon2PasswordHasher:
    """argon2id (RFC 9106). Hashes made with other parameters still verify; `needs_rehash`
    says when one should be replaced."""

    def __init__(
        self,
        *,
        time_cost: int = ARGON2_TIME_COST,
        memory_cost_kib: int = ARGON2_MEMORY_KIB,
        parallelism: int = ARGON2_PARALLELISM,
    ) -> None:
        self._hasher = _Argon2(
            time_cost=time_cost, memory_cost=memory_cost_kib, parallelism=parallelism
        )

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except (InvalidHashError, ValueError):
            return False


class PyotpTotp:
    """Time-based one-time passwords as authenticator apps make them: SHA-1, 6 digits, 30 s
    steps (RFC 6238 §4), accepting one step either side for clock drift (§5.2)."""

    def new_secret(self) -> str:
        return pyotp.random_base32()

    def provisioning_uri(self, secret: str, account: str, issuer: str) -> str:
        return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=issuer)

    def matching_step(self, secret: str, code: str, at: datetime.datetime) -> int | None:
        totp = pyotp.TOTP(secret)
        for drift in (0, -1, 1):
            moment = at + datetime.timedelta(seconds=drift * totp.interval)
            if totp.verify(code, for_time=moment, valid_window=0):
                return int(totp.timecode(moment))
        return None


class DkimKeyFactory:
    """DKIM signing keys: 2048-bit RSA (RFC 6376) and Ed25519 (RFC 8463)."""

    def generate_rsa(self, bits: int = 2048) -> tuple[str, str]:
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        private_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ).decode("ascii")
        public_der = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return private_pem, base64.b64encode(public_der).decode("ascii")

    def generate_ed25519(self) -> tuple[str, str]:
        """RFC 8463 §4: the private key as base64 of its 32-byte seed (what dkimpy signs with) and
        the public key as base64 of its 32 raw bytes (the DNS record's p=)."""
        key = ed25519.Ed25519PrivateKey.generate()
        seed = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        public = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return base64.b64encode(seed).decode("ascii"), base64.b64encode(public).decode("ascii")


def ensure_self_signed_certificate(directory: Path, hostname: str) -> tuple[Path, Path]:
    """Create `cert.pem`/`key.pem` for `hostname` in `directory` unless a pair for that name, still
    valid, is already there (a new hostname or an expired certificate gets a new pair)."""
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    now = datetime.datetime.now(datetime.UTC)
    if cert_path.is_file() and key_path.is_file():
        if _self_signed_fits(cert_path, key_path, hostname, now):
            return cert_path, key_path
        log.info("new self-signed certificate for %s in %s", hostname, directory)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname[:64])])
    alt_names: list[x509.GeneralName] = [x509.DNSName(hostname)]
    if hostname != "localhost":
        alt_names.append(x509.DNSName("localhost"))
    alt_names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    # Each file is written beside its name and renamed over it: a reader sees a whole old file
    # or a whole new one (a crash between the two renames leaves a mismatched pair, which the
    # next start replaces).
    write_private(key_path, key_bytes)
    write_private(cert_path, certificate.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def _self_signed_fits(
    cert_path: Path, key_path: Path, hostname: str, now: datetime.datetime
) -> bool:
    """Whether the pair on disk names `hostname`, is valid now, and belongs together."""
    try:
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except (ValueError, TypeError, x509.ExtensionNotFound):
        return False
    return (
        hostname in names.value.get_values_for_type(x509.DNSName)
        and certificate.not_valid_before_utc <= now < certificate.not_valid_after_utc
        and key.public_key() == certificate.public_key()
    )


def write_private(path: Path, data: bytes) -> None:
    """Replace `path` with `data`, readable by this user only (0600): written beside it, flushed
    to disk, then renamed over it, so a reader sees the whole old file or the whole new one."""
    temporary = path.with_name(f".{path.name}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


def server_tls_context(cert: Path, key: Path, *, alpn: Sequence[str] = ()) -> ssl.SSLContext:
    """A server context presenting the pair; `alpn`: the application protocols it agrees to
    (RFC 7301), none by default."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    if alpn:
        context.set_alpn_protocols(list(alpn))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # TLS 1.2: forward-secret AEAD suites only. The CBC suites OpenSSL also offers are what
    # LUCKY13 attacks (testssl.sh flags them); TLS 1.3's suites are all AEAD and not set here.
    context.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20")
    context.load_cert_chain(cert, key)
    return context
