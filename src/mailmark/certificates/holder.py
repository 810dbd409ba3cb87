"""One `ssl.SSLContext` shared by every TLS listener, and its reload without a restart.

`load_cert_chain` on a live context changes what the *next* handshakes present: OpenSSL copies the
certificate and key into each connection when it is made, so sessions already open keep theirs
and stay up. A pair that fails to load is refused before the live context is touched (a key that
does not match would otherwise be half-applied: OpenSSL sets the chain, then rejects the key).
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import logging
import ssl
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mailmark.certificates.names import certificate_covers
from mailmark.core.background import BackgroundLoop
from mailmark.security import server_tls_context

log = logging.getLogger(__name__)

# A certificate chain or key file larger than this is not one (a chain of a few certificates is
# a few KiB); reading stops there rather than loading whatever the path points at.
MAX_PEM_BYTES = 1024 * 1024
# RFC 7301 ALPN protocol IDs the HTTPS listener agrees to (it speaks HTTP/1.1 only).
HTTPS_ALPN = ("http/1.1",)


class CertificateRefused(Exception):
    """A new certificate/key pair that cannot be used; the one in use stays."""


@dataclass(frozen=True)
class LoadedPair:
    """What a listener presents now, and where it was read from."""

    cert_path: Path
    key_path: Path
    leaf: x509.Certificate
    fingerprint: str  # SHA-256 of the chain and key bytes as read

    @property
    def not_after(self) -> datetime.datetime:
        return self.leaf.not_valid_after_utc


def read_pair(cert_path: Path, key_path: Path) -> tuple[bytes, bytes]:
    """The two files' bytes, bounded; OSError when one cannot be read."""
    return _read_bounded(cert_path), _read_bounded(key_path)


def pair_fingerprint(chain: bytes, key: bytes) -> str:
    return hashlib.sha256(len(chain).to_bytes(8, "big") + chain + key).hexdigest()


def _read_bounded(path: Path) -> bytes:
    with path.open("rb") as file:
        data = file.read(MAX_PEM_BYTES + 1)
    if len(data) > MAX_PEM_BYTES:
        raise CertificateRefused(f"{path} is larger than {MAX_PEM_BYTES // 1024} KiB")
    return data


def check_pair(chain: bytes, key: bytes, now: datetime.datetime | None = None) -> x509.Certificate:
    """The leaf certificate of `chain` when `key` is its private key (and it is valid at `now`,
    when given); CertificateRefused saying what is wrong otherwise."""
    try:
        certificates = x509.load_pem_x509_certificates(chain)
    except ValueError:
        raise CertificateRefused("the certificate file holds no PEM certificate") from None
    try:
        # RSA key validation (primality checks, ~0.1 s of CPU) is skipped: the key is the
        # server's own, and it only has to match the certificate, compared below.
        private_key = serialization.load_pem_private_key(
            key, password=None, unsafe_skip_rsa_key_validation=True
        )
    except (ValueError, TypeError):
        raise CertificateRefused("the key file holds no unencrypted PEM private key") from None
    leaf = certificates[0]
    if private_key.public_key() != leaf.public_key():
        raise CertificateRefused("the private key does not belong to the certificate")
    if now is not None and not leaf.not_valid_before_utc <= now < leaf.not_valid_after_utc:
        raise CertificateRefused(
            f"the certificate is valid from {leaf.not_valid_before_utc:%Y-%m-%d %H:%M} to "
            f"{leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC, not now"
        )
    return leaf


class CertificateHolder:
    """The server context of every TLS listener (SMTP 465/STARTTLS, IMAPS/STARTTLS,
    ManageSieve), and the HTTPS listener's, with the pair they present; `reload` swaps the pair
    in place in both.

    The HTTPS context agrees to ALPN `http/1.1`; the mail context agrees to no ALPN protocol, so
    that a browser's TLS connection redirected to a mail port never negotiates HTTP there (the
    ALPACA cross-protocol attack)."""

    def __init__(
        self,
        cert_path: Path,
        key_path: Path,
        *,
        scratch: Path | None = None,
        now: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC),
    ) -> None:
        """`scratch`: where the pair is written for OpenSSL to load it (a private directory is
        made there for each load); the system's temporary directory when None."""
        self._now = now
        self._scratch = scratch
        chain, key = read_pair(cert_path, key_path)
        # At start an expired certificate is still loaded (opportunistic TLS between servers goes
        # on; refusing to start would stop mail), with a warning; a reload refuses one.
        leaf = check_pair(chain, key)
        if not leaf.not_valid_before_utc <= now() < leaf.not_valid_after_utc:
            log.warning(
                "the TLS certificate %s is not valid now (valid until %s UTC): clients that "
                "check certificates will refuse it",
                cert_path,
                f"{leaf.not_valid_after_utc:%Y-%m-%d %H:%M}",
            )
        with _pair_files(chain, key, scratch) as (cert_file, key_file):
            self.context = server_tls_context(cert_file, key_file)
            self.https_context = server_tls_context(cert_file, key_file, alpn=HTTPS_ALPN)
        self.loaded = LoadedPair(cert_path, key_path, leaf, pair_fingerprint(chain, key))

    def covers(self, hostname: str) -> bool:
        """Whether the certificate presented now names `hostname`."""
        return certificate_covers(self.loaded.leaf, hostname)

    def reload(self, cert_path: Path | None = None, key_path: Path | None = None) -> LoadedPair:
        """Present the pair at these paths (by default the same paths, read again) on every new
        handshake. Raises CertificateRefused, and keeps the pair in use, when the new one is
        unreadable, mismatched or expired."""
        cert_path = cert_path or self.loaded.cert_path
        key_path = key_path or self.loaded.key_path
        try:
            chain, key = read_pair(cert_path, key_path)
        except OSError as error:
            raise CertificateRefused(f"cannot read it: {error.strerror or error}") from None
        leaf = check_pair(chain, key, self._now())
        # The bytes checked are the bytes loaded: a file replaced meanwhile cannot slip in.
        with _pair_files(chain, key, self._scratch) as (cert_file, key_file):
            try:
                ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert_file, key_file)
            except ssl.SSLError as error:
                raise CertificateRefused(f"OpenSSL refuses it: {error}") from None
            for context in (self.context, self.https_context):
                context.load_cert_chain(cert_file, key_file)
        self.loaded = LoadedPair(cert_path, key_path, leaf, pair_fingerprint(chain, key))
        log.info(
            "TLS certificate loaded from %s: %s, valid until %s",
            cert_path,
            ", ".join(_dns_names(leaf)) or leaf.subject.rfc4514_string(),
            f"{leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC",
        )
        return self.loaded


def _dns_names(leaf: x509.Certificate) -> list[str]:
    try:
        names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return list(names.value.get_values_for_type(x509.DNSName))


@contextlib.contextmanager
def _pair_files(chain: bytes, key: bytes, scratch: Path | None) -> Iterator[tuple[Path, Path]]:
    """The pair written to a private temporary directory, for OpenSSL, which loads from paths."""
    with tempfile.TemporaryDirectory(prefix=".tls-load-", dir=scratch) as directory:  # mode 0700
        cert_file, key_file = Path(directory) / "cert.pem", Path(directory) / "key.pem"
        cert_file.write_bytes(chain)
        key_file.write_bytes(key)
        yield cert_file, key_file


class CertificateFileWatcher(BackgroundLoop):
    """Reloads the holder when the configured files change (certbot renewing into
    /etc/letsencrypt/live/, a proxy writing its pair). The bytes are compared, not only the
    mtime: certbot swaps symlinks, and a copy may keep the old mtime."""

    name = "certificate-files"

    def __init__(
        self,
        holder: CertificateHolder,
        *,
        interval: float,
        pair: tuple[Path, Path] | None = None,
    ) -> None:
        """`pair`: the files to present once they exist, when they may not be the ones loaded
        now (an IMAP process started on the self-signed pair before the main process's ACME
        renewal wrote its first certificate); by default the files loaded."""
        super().__init__()
        self._holder = holder
        self._interval = interval
        self._pair = pair
        # The fingerprint of a pair already refused: logged once, not at every check.
        self._refused: str | None = None

    def run_once(self) -> bool:
        """Look at the files once; whether a new pair was loaded."""
        loaded = self._holder.loaded
        cert_path, key_path = self._pair or (loaded.cert_path, loaded.key_path)
        moving = (cert_path, key_path) != (loaded.cert_path, loaded.key_path)
        try:
            chain, key = read_pair(cert_path, key_path)
        except (OSError, CertificateRefused) as error:
            if moving and isinstance(error, FileNotFoundError):
                return False  # not written yet
            reason = error.strerror if isinstance(error, OSError) else str(error)
            if self._refused != f"unreadable: {reason}":
                self._refused = f"unreadable: {reason}"
                log.error(
                    "cannot read the TLS certificate %s or key %s (%s); still presenting the "
                    "certificate loaded before",
                    cert_path,
                    key_path,
                    reason,
                )
            return False
        fingerprint = pair_fingerprint(chain, key)
        if fingerprint in (loaded.fingerprint, self._refused):
            return False
        try:
            self._holder.reload(cert_path, key_path)
        except CertificateRefused as error:
            self._refused = fingerprint
            log.error(
                "refusing the new TLS certificate %s with key %s: %s; still presenting the one "
                "loaded before (valid until %s UTC)",
                cert_path,
                key_path,
                error,
                f"{loaded.not_after:%Y-%m-%d %H:%M}",
            )
            return False
        self._refused = None
        return True

    async def _run(self) -> None:
        while not self.stopping:
            await self._pause(self._interval)
            try:
                self.run_once()
            except Exception:
                log.exception("checking the TLS certificate files failed")
