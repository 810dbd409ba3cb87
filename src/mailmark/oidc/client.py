"""The OpenID Connect protocol toward providers, with httpx and PyJWT: discovery, the token
endpoint, the provider's keys and ID token validation (OpenID Connect Core §3.1.3.7).

Every request is bounded in time (the provider's `timeout`, for the whole exchange) and in size
(`MAX_RESPONSE_BYTES`), follows no redirect and ignores proxy variables. Discovery documents and
key sets are cached per process; an ID token signed with a key not yet seen refetches the key
set, at most once a minute (the provider rotated its keys).
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import httpx
import jwt

from mailmark.core.errors import InvalidIdToken, ProviderRefused, ProviderUnavailable
from mailmark.core.oidc import MAX_SUBJECT_LENGTH, OidcProvider, ProviderIdentity
from mailmark.core.ports import Clock

log = logging.getLogger(__name__)

# Discovery documents, key sets, token and userinfo answers are a few KiB.
MAX_RESPONSE_BYTES = 256 * 1024
DISCOVERY_LIFETIME = timedelta(hours=1)
KEYS_LIFETIME = timedelta(hours=1)
KEYS_REFETCH_INTERVAL = timedelta(minutes=1)
# Tolerated difference between the provider's clock and ours, for exp and iat.
CLOCK_LEEWAY = timedelta(minutes=1)
# Asymmetric algorithms only: never `none`, and no HMAC keyed with the client secret.
SIGNING_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)

# The algorithms each JWK key type can verify (RFC 7518 §3.1, RFC 8037).
_KEY_FAMILIES = {"RSA": ("RS", "PS"), "EC": ("ES",), "OKP": ("EdDSA",)}


@dataclass(frozen=True)
class ProviderMetadata:
    """What discovery found (OpenID Connect Discovery §3)."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    token_auth_methods: tuple[str, ...]
    signing_algorithms: tuple[str, ...]
    iss_parameter_supported: bool


class HttpOidcClient:
    """`core.oidc.OidcClient` over HTTPS. `verify` replaces, for tests, the trusted roots."""

    def __init__(self, clock: Clock, *, verify: ssl.SSLContext | bool = True) -> None:
        self._clock = clock
        self._verify = verify
        self._metadata: dict[str, tuple[ProviderMetadata, datetime]] = {}
        self._keys: dict[str, tuple[jwt.PyJWKSet, datetime]] = {}

    async def authorization_url(
        self,
        provider: OidcProvider,
        *,
        redirect_uri: str,
        state: str,
        nonce: str,
        code_challenge: str,
    ) -> str:
        metadata = await self._discover(provider)
        return _with_query(
            metadata.authorization_endpoint,
            {
                "response_type": "code",
                "client_id": provider.client_id,
                "redirect_uri": redirect_uri,
                "scope": " ".join(provider.scopes),
                "state": state,
                "nonce": nonce,
                "code_challenge": code_challenge,
                "code_challenge_method": "S256",
            },
        )

    async def identify(
        self,
        provider: OidcProvider,
        *,
        redirect_uri: str,
        code: str,
        code_verifier: str,
        nonce: str,
        issuer: str | None,
    ) -> ProviderIdentity:
        metadata = await self._discover(provider)
        # RFC 9207 §2.4: the authorization response names its issuer (mix-up defence).
        if issuer is not None and issuer != metadata.issuer:
            raise InvalidIdToken(f"The answer did not come from {provider.name}.")
        if issuer is None and metadata.iss_parameter_supported:
            raise InvalidIdToken(f"The answer from {provider.name} does not name its issuer.")
        tokens = await self._exchange(provider, metadata, redirect_uri, code, code_verifier)
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise InvalidIdToken(f"{provider.name} sent no ID token.")
        claims = await self._validate(provider, metadata, id_token, nonce)
        if "email" not in claims and metadata.userinfo_endpoint:
            access_token = tokens.get("access_token")
            if isinstance(access_token, str):
                claims = {
                    **await self._userinfo(provider, metadata, access_token, claims),
                    **claims,
                }
        email = claims.get("email")
        name = claims.get("name")
        return ProviderIdentity(
            subject=claims["sub"],
            email=email if isinstance(email, str) and len(email) <= 320 else None,
            # Some providers send the boolean as a string.
            email_verified=claims.get("email_verified") in (True, "true"),
            name=name[:100] if isinstance(name, str) else None,
        )

    # --- discovery -----------------------------------------------------------------------------

    async def _discover(self, provider: OidcProvider) -> ProviderMetadata:
        now = self._clock.now()
        cached = self._metadata.get(provider.issuer)
        if cached is not None and cached[1] > now:
            return cached[0]
        url = provider.issuer.rstrip("/") + "/.well-known/openid-configuration"
        document = await self._fetch_json(provider, "GET", url)
        metadata = _metadata(provider, document)
        self._metadata[provider.issuer] = (metadata, now + DISCOVERY_LIFETIME)
        return metadata

    # --- token endpoint ------------------------------------------------------------------------

    async def _exchange(
        self,
        provider: OidcProvider,
        metadata: ProviderMetadata,
        redirect_uri: str,
        code: str,
        code_verifier: str,
    ) -> dict[str, Any]:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        }
        headers = {}
        if "client_secret_basic" in metadata.token_auth_methods:
            # RFC 6749 §2.3.1: each part form-urlencoded before the Basic encoding.
            pair = f"{quote(provider.client_id, safe='')}:{quote(provider.client_secret, safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            form |= {"client_id": provider.client_id, "client_secret": provider.client_secret}
        answer = await self._fetch_json(
            provider, "POST", metadata.token_endpoint, data=form, headers=headers, errors_ok=True
        )
        if "error" in answer:
            # RFC 6749 §5.2: invalid_grant for a code used twice, expired, or a PKCE mismatch.
            reason = str(answer["error"])[:64]
            raise ProviderRefused(f"{provider.name} refused the sign-in ({reason}); start again.")
        return answer

    async def _userinfo(
        self,
        provider: OidcProvider,
        metadata: ProviderMetadata,
        access_token: str,
        claims: dict[str, Any],
    ) -> dict[str, Any]:
        assert metadata.userinfo_endpoint is not None
        info = await self._fetch_json(
            provider,
            "GET",
            metadata.userinfo_endpoint,
            headers={"Authorization": f"Bearer {access_token}"},
        )
        # OpenID Connect Core §5.3.4: claims about anyone else must not be used.
        if info.get("sub") != claims["sub"]:
            raise InvalidIdToken(f"{provider.name}'s user information is about someone else.")
        return {key: info[key] for key in ("email", "email_verified", "name") if key in info}

    # --- ID token ------------------------------------------------------------------------------

    async def _validate(
        self, provider: OidcProvider, metadata: ProviderMetadata, token: str, nonce: str
    ) -> dict[str, Any]:
        invalid = f"{provider.name}'s ID token"
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidIdToken(f"{invalid} is not a JWT.") from None
        algorithm = header.get("alg")
        if algorithm not in SIGNING_ALGORITHMS or algorithm not in metadata.signing_algorithms:
            raise InvalidIdToken(f"{invalid} is signed with {algorithm!r}, which is not accepted.")
        key = await self._key(provider, metadata, header.get("kid"), algorithm)
        try:
            # exp and iat are checked below against our own clock.
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[algorithm],
                audience=provider.client_id,
                issuer=metadata.issuer,
                options={
                    "require": ["iss", "sub", "aud", "exp", "iat"],
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.InvalidSignatureError:
            raise InvalidIdToken(f"{invalid} has a signature that does not verify.") from None
        except jwt.InvalidAudienceError:
            raise InvalidIdToken(f"{invalid} was issued to another client.") from None
        except jwt.InvalidIssuerError:
            raise InvalidIdToken(f"{invalid} names another issuer.") from None
        except jwt.PyJWTError as error:
            raise InvalidIdToken(f"{invalid} is invalid: {error}.") from None
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        # Core §3.1.3.7 items 4-5: a token for several audiences names the one it was given to.
        if len(audiences) > 1 and claims.get("azp") != provider.client_id:
            raise InvalidIdToken(f"{invalid} was issued to another client.")
        now = self._clock.now().timestamp()
        leeway = CLOCK_LEEWAY.total_seconds()
        expires, issued = claims["exp"], claims["iat"]
        if not isinstance(expires, int | float) or not isinstance(issued, int | float):
            raise InvalidIdToken(f"{invalid} has no valid exp or iat.")
        if expires + leeway <= now:
            raise InvalidIdToken(f"{invalid} has expired; start again.")
        if issued - leeway > now:
            raise InvalidIdToken(f"{invalid} is issued in the future; check the clocks.")
        token_nonce = claims.get("nonce")
        if not isinstance(token_nonce, str) or not hmac.compare_digest(token_nonce, nonce):
            raise InvalidIdToken(f"{invalid} belongs to another sign-in (its nonce differs).")
        subject = claims["sub"]
        # OpenID Connect Core §2: at most 255 ASCII characters (and none that cannot be stored).
        if (
            not isinstance(subject, str)
            or not 0 < len(subject) <= MAX_SUBJECT_LENGTH
            or not (subject.isascii() and subject.isprintable())
        ):
            raise InvalidIdToken(f"{invalid} has no valid subject.")
        return claims

    async def _key(
        self, provider: OidcProvider, metadata: ProviderMetadata, kid: Any, algorithm: str
    ) -> Any:
        now = self._clock.now()
        cached = self._keys.get(metadata.jwks_uri)
        keys = cached[0] if cached is not None and cached[1] > now else None
        key = _select_key(keys, kid, algorithm) if keys is not None else None
        fetched_at = cached[1] - KEYS_LIFETIME if cached is not None else None
        if key is None and (fetched_at is None or now - fetched_at >= KEYS_REFETCH_INTERVAL):
            document = await self._fetch_json(provider, "GET", metadata.jwks_uri)
            try:
                keys = jwt.PyJWKSet.from_dict(document)
            except jwt.PyJWTError as error:
                raise ProviderUnavailable(
                    f"{provider.name}'s signing keys are unusable: {error}."
                ) from None
            self._keys[metadata.jwks_uri] = (keys, now + KEYS_LIFETIME)
            key = _select_key(keys, kid, algorithm)
        if key is None:
            raise InvalidIdToken(f"{provider.name}'s ID token is signed with an unknown key.")
        return key

    # --- HTTP ----------------------------------------------------------------------------------

    async def _fetch_json(
        self,
        provider: OidcProvider,
        method: str,
        url: str,
        *,
        data: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        errors_ok: bool = False,
    ) -> dict[str, Any]:
        """A JSON object from the provider. `errors_ok`: a 4xx answer with a JSON body is
        returned too (the token endpoint's errors)."""
        unavailable = f"{provider.name} could not be reached"
        try:
            async with (
                asyncio.timeout(provider.timeout),
                httpx.AsyncClient(
                    verify=self._verify,
                    follow_redirects=False,
                    trust_env=False,
                    timeout=provider.timeout,
                ) as client,
                client.stream(
                    method,
                    url,
                    data=data,
                    headers={"Accept": "application/json", **(headers or {})},
                ) as response,
            ):
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_RESPONSE_BYTES:
                        raise ProviderUnavailable(
                            f"{provider.name} answered more than {MAX_RESPONSE_BYTES // 1024} KiB "
                            f"at {url}."
                        )
        except TimeoutError:
            log.info(
                "OIDC provider %s: no answer from %s in %ss", provider.id, url, provider.timeout
            )
            raise ProviderUnavailable(
                f"{unavailable}: no answer within {provider.timeout:g} seconds. Try again later."
            ) from None
        except (httpx.HTTPError, ssl.SSLError, OSError) as error:
            log.info("OIDC provider %s: %s %s failed: %r", provider.id, method, url, error)
            raise ProviderUnavailable(f"{unavailable} ({error}). Try again later.") from None
        status = response.status_code
        if status != 200 and not (errors_ok and 400 <= status < 500):
            raise ProviderUnavailable(f"{provider.name} answered HTTP {status} at {url}.")
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise ProviderUnavailable(
                f"{provider.name} answered something other than JSON at {url}."
            )
        return document


def _metadata(provider: OidcProvider, document: dict[str, Any]) -> ProviderMetadata:
    unusable = f"{provider.name}'s discovery document"
    # OpenID Connect Discovery §4.3: the issuer must be exactly the one configured.
    if document.get("issuer") != provider.issuer:
        raise ProviderUnavailable(
            f"{unusable} names the issuer {str(document.get('issuer'))[:200]!r}, not "
            f"{provider.issuer!r}; check the issuer setting."
        )
    endpoints = {}
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint"):
        value = document.get(name)
        if value is None and name == "userinfo_endpoint":
            continue
        if not isinstance(value, str) or not _same_security(value, provider.issuer):
            raise ProviderUnavailable(f"{unusable} has no usable {name}.")
        endpoints[name] = value
    methods = document.get("code_challenge_methods_supported")
    if isinstance(methods, list) and "S256" not in methods:
        raise ProviderUnavailable(f"{provider.name} does not support PKCE with S256.")
    auth_methods = document.get("token_endpoint_auth_methods_supported", ["client_secret_basic"])
    algorithms = document.get("id_token_signing_alg_values_supported", ["RS256"])
    return ProviderMetadata(
        issuer=provider.issuer,
        authorization_endpoint=endpoints["authorization_endpoint"],
        token_endpoint=endpoints["token_endpoint"],
        jwks_uri=endpoints["jwks_uri"],
        userinfo_endpoint=endpoints.get("userinfo_endpoint"),
        token_auth_methods=tuple(str(m) for m in auth_methods if isinstance(m, str)),
        signing_algorithms=tuple(str(a) for a in algorithms if isinstance(a, str)),
        iss_parameter_supported=document.get("authorization_response_iss_parameter_supported")
        is True,
    )


def _same_security(url: str, issuer: str) -> bool:
    """An endpoint is https, or plain http only for a plain-http (loopback) issuer."""
    scheme = urlsplit(url).scheme
    return bool(urlsplit(url).netloc) and (
        scheme == "https" or (scheme == "http" and urlsplit(issuer).scheme == "http")
    )


def _select_key(keys: jwt.PyJWKSet, kid: Any, algorithm: str) -> Any:
    """The signing key named by the token's `kid` (or the only one fitting its algorithm)."""
    fitting = [
        key
        for key in keys.keys
        if key.public_key_use in (None, "sig")
        and algorithm.startswith(_KEY_FAMILIES.get(str(key.key_type), ()))
        and (kid is None or key.key_id == kid)
    ]
    return fitting[0].key if len(fitting) == 1 else None


def _with_query(url: str, params: dict[str, str]) -> str:
    """`url` with `params` added to any query it already has."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))
