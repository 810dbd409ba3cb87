"""Certificates from an ACME CA (RFC 8555) with HTTP-01 challenges, renewed in the background.

The `acme` library (certbot's) speaks the protocol; it is blocking (requests), so an order runs in
a worker thread while the event loop goes on serving, among the rest, the challenge responses
the CA fetches from our HTTP listener.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

from acme import challenges, client, crypto_util, errors, messages
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from josepy.jwk import JWKRSA

from mailmark.certificates.holder import CertificateHolder, CertificateRefused, check_pair
from mailmark.core.background import BackgroundLoop
from mailmark.security import write_private

log = logging.getLogger(__name__)

# RFC 8555 §8.3: the token is base64url (§2: no padding), with at least 128 bits of entropy.
TOKEN = re.compile(r"[A-Za-z0-9_-]{22,256}")
# A key authorization is the token, a dot and the base64url SHA-256 of the account key (§8.1).
KEY_AUTHORIZATION = re.compile(r"[A-Za-z0-9_-]{22,256}\.[A-Za-z0-9_-]{43}")

# Renew when less than this remains, or a third of the lifetime for shorter-lived certificates
# (Let's Encrypt's 90-day certificates are renewed 30 days ahead, 6-day ones 2 days ahead).
RENEW_BEFORE = datetime.timedelta(days=30)
# How long one order may take, from the first request to the certificate.
ORDER_DEADLINE = datetime.timedelta(seconds=90)
# Each request to the CA gives up after this many seconds.
REQUEST_TIMEOUT = 30
# How often the renewer looks whether an order is due (a check reads one file and the domain list).
CHECK_INTERVAL = 3600.0
# After a failure: 1 minute, doubling up to 6 hours.
FIRST_RETRY = 60.0
LONGEST_RETRY = 6 * 3600.0


class ChallengeResponses:
    """The HTTP-01 answers pending, one file per token in a directory of the data dir, so that
    every HTTP process of the installation (`serve --http-workers`) can serve them."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    def put(self, token: str, key_authorization: str) -> None:
        if not TOKEN.fullmatch(token) or not KEY_AUTHORIZATION.fullmatch(key_authorization):
            raise ValueError("not an ACME token and key authorization")
        self._directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_private(self._directory / token, key_authorization.encode("ascii"))

    def remove(self, token: str) -> None:
        if TOKEN.fullmatch(token):
            (self._directory / token).unlink(missing_ok=True)

    def get(self, token: str) -> str | None:
        """The key authorization for `token`, or None: a token outside the base64url alphabet
        (a path, say) is never looked up."""
        if not TOKEN.fullmatch(token):
            return None
        try:
            answer = (self._directory / token).read_bytes()[:512].decode("ascii")
        except (OSError, UnicodeDecodeError):
            return None
        return answer if KEY_AUTHORIZATION.fullmatch(answer) else None


class AcmeIssuer:
    """Orders one certificate for a list of names (blocking: run it in a thread)."""

    def __init__(
        self,
        directory_url: str,
        *,
        account_key_path: Path,
        responses: ChallengeResponses,
        email: str | None = None,
        ca_bundle: Path | None = None,
    ) -> None:
        self.directory_url = directory_url
        self._account_key_path = account_key_path
        self._responses = responses
        self._email = email
        self._ca_bundle = ca_bundle

    def issue(self, names: list[str]) -> tuple[bytes, bytes]:
        """A new key and the certificate chain (PEM, leaf first) the CA issued for `names`."""
        acme = self._client()
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        order = acme.new_order(crypto_util.make_csr(key_pem, names))
        deadline = datetime.datetime.now() + ORDER_DEADLINE  # acme compares naive local times
        tokens = []
        try:
            for authorization in order.authorizations:
                if authorization.body.status == messages.STATUS_VALID:
                    continue  # validated for this account recently (RFC 8555 §7.1.4)
                challenge = _http01(authorization)
                response, validation = challenge.response_and_validation(acme.net.key)
                token = challenge.chall.encode("token")
                self._responses.put(token, validation)
                tokens.append(token)
                acme.answer_challenge(challenge, response)
            finished = acme.poll_and_finalize(order, deadline)
        finally:
            for token in tokens:
                self._responses.remove(token)
        return finished.fullchain_pem.encode("ascii"), key_pem

    def _client(self) -> client.ClientV2:
        network = client.ClientNetwork(
            JWKRSA(key=self._account_key()),
            user_agent="mailmark",
            timeout=REQUEST_TIMEOUT,
        )
        if self._ca_bundle is not None:
            # requests takes a CA bundle path where acme's annotation says bool.
            network.verify_ssl = str(self._ca_bundle)  # type: ignore[assignment]
        acme = client.ClientV2(client.ClientV2.get_directory(self.directory_url, network), network)
        registration = messages.NewRegistration.from_data(
            email=self._email, terms_of_service_agreed=True
        )
        try:
            acme.new_account(registration)
        except errors.ConflictError as existing:
            # RFC 8555 §7.3.1: this key already has an account; its URL is the Location.
            acme.net.account = messages.RegistrationResource(
                body=messages.Registration(), uri=existing.location
            )
        return acme

    def _account_key(self) -> rsa.RSAPrivateKey:
        """The account key kept in the data dir (0600), made on first use."""
        try:
            loaded = serialization.load_pem_private_key(
                self._account_key_path.read_bytes(), password=None
            )
        except FileNotFoundError:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self._account_key_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_private(
                self._account_key_path,
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                ),
            )
            log.info("new ACME account key in %s", self._account_key_path)
            return key
        if not isinstance(loaded, rsa.RSAPrivateKey):
            raise ValueError(f"{self._account_key_path} is not an RSA key")
        return loaded


def _http01(authorization: messages.AuthorizationResource) -> messages.ChallengeBody:
    for challenge in authorization.body.challenges:
        if isinstance(challenge.chall, challenges.HTTP01):
            return challenge
    name = authorization.body.identifier.value
    raise ValueError(f"the CA offers no http-01 challenge for {name}")


def renewal_reason(
    leaf: x509.Certificate | None, names: list[str], now: datetime.datetime
) -> str | None:
    """Why a new certificate is needed, or None while `leaf` still serves."""
    if leaf is None:
        return "there is no certificate from the CA yet"
    try:
        alt_names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        covered = set(alt_names.value.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        covered = set()
    if missing := [name for name in names if name not in covered]:
        return f"the certificate does not name {', '.join(missing)}"
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    if leaf.not_valid_after_utc - now < min(RENEW_BEFORE, lifetime / 3):
        return f"the certificate expires at {leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
    return None


def read_leaf(cert_path: Path) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError):
        return None


class AcmeRenewer(BackgroundLoop):
    """Keeps a certificate from the CA for the names of the moment: orders one when there is
    none, when it does not name every host, or when its end is near; writes the pair to the
    data dir and reloads the holder, so every TLS listener presents it on its next handshake."""

    name = "acme-renewal"

    def __init__(
        self,
        issuer: AcmeIssuer,
        holder: CertificateHolder,
        *,
        names: Callable[[], Awaitable[list[str]]],
        cert_path: Path,
        key_path: Path,
        interval: float,
        now: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(datetime.UTC),
    ) -> None:
        super().__init__()
        self._issuer = issuer
        self._holder = holder
        self._names = names
        self._cert_path = cert_path
        self._key_path = key_path
        self._interval = interval
        self._now = now
        self._lock = asyncio.Lock()
        self.failures = 0

    async def run_once(self, *, force: bool = False) -> bool:
        """Order a certificate if one is due (or `force`); whether a new one is now presented.
        Errors (the CA unreachable, a validation failed) are raised."""
        async with self._lock:
            names = await self._names()
            reason = renewal_reason(read_leaf(self._cert_path), names, self._now())
            if reason is None and not force:
                return False
            log.info(
                "ordering a certificate for %s from %s: %s",
                ", ".join(names),
                self._issuer.directory_url,
                reason or "renewal asked for",
            )
            chain, key = await asyncio.to_thread(self._issuer.issue, names)
            try:
                check_pair(chain, key, self._now())
            except CertificateRefused as error:
                raise ValueError(f"the CA's certificate is unusable: {error}") from None
            await asyncio.to_thread(self._write, chain, key)
            self._holder.reload(self._cert_path, self._key_path)
            return True

    def _write(self, chain: bytes, key: bytes) -> None:
        self._cert_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # The key first: until the chain is renamed in place, the old chain and the new key
        # disagree, and a start in between takes the self-signed pair (and orders again).
        write_private(self._key_path, key)
        write_private(self._cert_path, chain)

    async def _run(self) -> None:
        while not self.stopping:
            try:
                await self.run_once()
            except Exception as error:  # noqa: BLE001 - the CA, the network, a validation: retried
                self.failures += 1
                delay = min(FIRST_RETRY * 2 ** (self.failures - 1), LONGEST_RETRY)
                log.error(
                    "could not get a certificate from the ACME CA (attempt %d): %s; "
                    "trying again in %d s",
                    self.failures,
                    describe_failure(error),
                    delay,
                )
                await self._pause(delay)
                continue
            self.failures = 0
            await self._pause(self._interval)


def describe_failure(error: Exception) -> str:
    if isinstance(error, errors.ValidationError):
        problems = [
            f"{authorization.body.identifier.value}: {challenge.error}"
            for authorization in error.failed_authzrs
            for challenge in authorization.body.challenges
            if challenge.error is not None
        ]
        return "validation failed: " + "; ".join(problems)
    return f"{type(error).__name__}: {error}"
