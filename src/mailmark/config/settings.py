"""Settings: defaults, then a `mailmark.toml` file, then `MAILMARK_*` environment variables.

This is the only module that reads the environment. Everything else receives a `Settings`.
The file is the first of: `--config FILE`, `$MAILMARK_CONFIG`, `./mailmark.toml`,
`/etc/mailmark/mailmark.toml`. Relative paths in it are relative to the file's own directory,
so the server and the admin commands find the same data wherever they are run from.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import socket
from datetime import timedelta
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

ENV_PREFIX = "MAILMARK_"
DEFAULT_CONFIG_FILE = "mailmark.toml"
CONFIG_ENV = f"{ENV_PREFIX}CONFIG"
# Where a config file is looked for when neither --config nor MAILMARK_CONFIG names one.
CONFIG_SEARCH_PATH = (Path(DEFAULT_CONFIG_FILE), Path("/etc/mailmark") / DEFAULT_CONFIG_FILE)
DATABASE_SCHEMES = ("sqlite+aiosqlite://", "postgresql+asyncpg://")
# Settings holding a file system path: relative ones in a config file start from its directory.
_PATH_SETTINGS = (
    "data_dir",
    "tls_cert",
    "tls_key",
    "relay_password_file",
    "relay_ca_file",
    "acme_ca_bundle",
    "s3_secret_key_file",
)

_S3_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_S3_PREFIX = re.compile(r"[A-Za-z0-9._/-]{0,512}")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*(\d+)\s*(ms|[smhdw])\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_SIZE = re.compile(r"^\s*(\d+)\s*([kmg]?)i?b?\s*$", re.IGNORECASE)


def parse_duration(text: str) -> timedelta:
    """`250ms`, `30s`, `5m`, `2h`, `5d`, `1w` → timedelta."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration like 30s, 5m, 2h or 5d")
    return timedelta(seconds=int(match[1]) * _DURATION_UNITS[match[2].lower()])


def parse_size(text: str) -> int:
    """`26214400`, `25M`, `25MiB`, `512k` → bytes."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a size like 25M, 512k or 1048576")
    return int(match[1]) * _SIZE_UNITS[match[2].lower()]


_LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")


class OidcProviderSettings(BaseModel):
    """One OpenID Connect provider people may sign in with (a `[[oidc_providers]]` table in
    mailmark.toml, or MAILMARK_OIDC_PROVIDERS as a JSON list of such objects)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The provider's part of the callback URL: /api/auth/oidc/<id>/callback.
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")
    # What the sign-in button says: "Sign in with <name>".
    name: str = Field(min_length=1, max_length=64)
    issuer: str = Field(max_length=2048)
    client_id: str = Field(min_length=1, max_length=512)
    client_secret: SecretStr
    scopes: list[str] = Field(default_factory=lambda: ["openid", "email", "profile"])
    # Skip Mailmark's own TOTP step for users signing in through this provider: only for a
    # provider that itself requires a second factor of every user (a company Keycloak, say).
    trust_mfa: bool = False
    # Each request to the provider (discovery, keys, token, userinfo) gives up after this long.
    timeout: timedelta = timedelta(seconds=10)

    @field_validator("issuer")
    @classmethod
    def _issuer(cls, value: str) -> str:
        # OpenID Connect Discovery §2: an https URL without query or fragment; plain http only
        # for a provider on this machine.
        scheme, _, rest = value.partition("://")
        host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
        host = host if host.startswith("[") else host.split(":", 1)[0]
        if "?" in value or "#" in value or not host:
            raise ValueError(f"{value!r} is not an issuer URL such as https://accounts.example.com")
        if scheme != "https" and not (scheme == "http" and host.lower() in _LOOPBACK_HOSTS):
            raise ValueError(f"{value!r} must be an https URL (http only on localhost)")
        return value

    @field_validator("scopes", mode="before")
    @classmethod
    def _scopes(cls, value: Any) -> Any:
        scopes = value.split() if isinstance(value, str) else value
        if isinstance(scopes, list) and "openid" not in scopes:
            raise ValueError("must include openid")
        return scopes

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, value: Any) -> Any:
        return parse_duration(value) if isinstance(value, str) else value


def _split_list(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Every Mailmark setting. Field names are the env names without the `MAILMARK_` prefix."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        validate_default=True,
        case_sensitive=False,
    )

    data_dir: Path = Path("./data")
    database_url: str = ""
    blob_url: str = ""
    # An S3 blob store (MAILMARK_BLOB_URL=s3://bucket/prefix): the server's URL (empty: AWS S3,
    # found from the region), its region, and the credentials; without an access key, the AWS
    # SDK's own chain is used (AWS_* variables, ~/.aws, an instance role). The secret key is the
    # setting or the first line of the file. Path-style addressing (http://host/bucket/key) is
    # what MinIO, SeaweedFS and most servers other than AWS's need. Each request, retries
    # included, is given up after `s3_timeout` (mail is then answered "try again later").
    s3_endpoint_url: str = ""
    s3_region: str = "us-east-1"
    s3_access_key: str = ""
    s3_secret_key: SecretStr | None = None
    s3_secret_key_file: Path | None = None
    s3_path_style: bool = False
    s3_timeout: timedelta = timedelta(seconds=30)
    hostname: str = Field(default_factory=socket.getfqdn)
    bind: str = "127.0.0.1"
    mx_port: int = Field(2525, ge=0, le=65535)
    submission_port: int = Field(5870, ge=0, le=65535)
    submissions_port: int = Field(4650, ge=0, le=65535)
    imap_port: int = Field(1430, ge=0, le=65535)
    imaps_port: int = Field(9930, ge=0, le=65535)
    # ManageSieve (RFC 5804): mail clients edit their mailbox's filters; 4190 is its own port.
    managesieve_port: int = Field(4190, ge=0, le=65535)
    http_port: int = Field(8025, ge=0, le=65535)
    # The web app over TLS (production: 443), with the certificate every TLS listener presents;
    # unset, none. While it runs, the plain `http_port` listener binds loopback only (for local
    # health checks and tools), and `http_redirect_port` (production: 80) is the public plain
    # HTTP: it answers ACME HTTP-01 challenges and /healthz, and sends everything else to https.
    https_port: int | None = Field(None, ge=0, le=65535)
    http_redirect_port: int | None = Field(None, ge=0, le=65535)
    public_url: str = ""
    dns_nameservers: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # The server's public addresses, for the SPF and PTR records it recommends.
    public_ips: Annotated[list[str], NoDecode] = Field(default_factory=list)
    mta_sts_mode: Literal["testing", "enforce", "none"] = "testing"
    remote_smtp_port: int = Field(25, ge=1, le=65535)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # How often the files above are looked at: a changed pair (certbot renewed it) is loaded for
    # the next TLS handshakes, without a restart; a broken one is refused and logged.
    tls_reload_interval: timedelta = timedelta(minutes=1)
    # Certificates from an ACME CA (RFC 8555) with HTTP-01 challenges, e.g.
    # https://acme-v02.api.letsencrypt.org/directory; unset, no CA is asked. The CA must reach
    # the HTTP listener on port 80 of every name. `acme_ca_bundle`: the CA certificates that
    # the ACME server's own HTTPS is checked against (a private or test CA), else the system's.
    acme_directory: str = ""
    acme_email: str = ""
    acme_ca_bundle: Path | None = None
    # Started as root, `serve` binds every listener, then runs as this user (and group: the
    # user's own when empty) for the rest of its life. Empty: it stays the user it started as.
    run_as_user: str = ""
    run_as_group: str = ""
    # A relay host (smarthost) every outbound message goes through, for networks where port 25
    # is blocked; empty: each recipient's MX. A domain may have its own relay or go direct
    # (`mailmark domain relay`). TLS is required (STARTTLS, or implicit TLS from the first
    # byte) and the relay's certificate is verified, against `relay_ca_file` when set (a
    # relay with a private CA), else the system's CAs. The port defaults to 587 (starttls)
    # or 465 (implicit). The password is the setting or the first line of the file.
    relay_host: str = ""
    relay_port: int | None = Field(None, ge=1, le=65535)
    relay_tls: Literal["starttls", "implicit"] = "starttls"
    relay_username: str = ""
    relay_password: SecretStr | None = None
    relay_password_file: Path | None = None
    relay_ca_file: Path | None = None
    # The key sealing DKIM private keys and webhook secrets in the database: 32 bytes of base64.
    # Unset, it is the file secrets.key in the data directory (made on first start). Nodes that
    # share one PostgreSQL database must share the key.
    secrets_key: SecretStr | None = None
    retry_schedule: Annotated[list[timedelta], NoDecode] = Field(
        default_factory=lambda: [
            parse_duration(step) for step in ("5m", "10m", "30m", "1h", "2h", "4h", "8h", "16h")
        ]
    )
    queue_lifetime: timedelta = timedelta(days=5)
    # How long an outbound worker holds the deliveries it leased; a crashed worker's are retried
    # once it has passed.
    delivery_lease: timedelta = timedelta(minutes=15)
    # RFC 3501 §5.4: an IMAP session silent this long is logged out (at least 30 minutes).
    imap_idle_timeout: timedelta = timedelta(minutes=30)
    # How often an open IMAP session looks for changes made by other nodes sharing the database
    # (changes made by this node wake it at once).
    imap_poll_interval: timedelta = timedelta(seconds=5)
    # Processor time each client address's IMAP commands may use, as a fraction of one core
    # averaged over time, in each process serving IMAP; an address that has used more than
    # `imap_cpu_burst` beyond it waits before its next command (core/cpu_ration.py). 0: no limit.
    # The loopback addresses are exempt.
    imap_cpu_share: float = Field(0.25, ge=0, le=64)
    imap_cpu_burst: timedelta = timedelta(seconds=1)
    # How long a webhook worker holds the deliveries it leased (each attempt takes at most 10 s).
    webhook_lease: timedelta = timedelta(minutes=2)
    # How often the background check looks for unverified domains whose next check is due.
    domain_recheck_interval: timedelta = timedelta(seconds=30)
    # How often `serve` does its housekeeping (pruning expunge tombstones, ...).
    maintenance_interval: timedelta = timedelta(minutes=10)
    # How often `serve` looks for campaign stages that are due (at once after a launch or resume).
    campaign_interval: timedelta = timedelta(seconds=30)
    # Recipients one campaign pass queues in one transaction: smaller batches hold the database
    # write lock for less time at once, larger ones commit less often.
    campaign_batch: int = Field(500, ge=1, le=10_000)
    # Expunge tombstones kept per folder for IMAP clients resynchronising (CONDSTORE/QRESYNC);
    # clients asking about older changes get the folder's current UIDs instead.
    tombstones_kept: int = Field(default=1000, ge=0)
    # Events (an email's timeline in the API, what webhooks are told) and finished webhook
    # deliveries are pruned after this many days; 0 keeps them for ever. Events a webhook is
    # still being told about stay until it is.
    events_kept_days: int = Field(default=90, ge=0)
    webhook_deliveries_kept_days: int = Field(default=30, ge=0)
    # Blobs nothing references are removed once they are this many hours old (a blob is
    # written before the transaction that references it commits).
    unreferenced_blob_grace_hours: int = Field(default=24, ge=1)
    # Networks webhooks may reach although they are internal (loopback, RFC 1918, ...), and the
    # only ones reachable over plain http. Empty by default; e.g. 127.0.0.1/32 for a test receiver.
    webhook_allow_private_networks: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Networks the webmail's image proxy may fetch from although they are internal; empty by
    # default (e.g. 127.0.0.1/32 for a test server).
    image_proxy_allow_private_networks: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_message_size: int = 25 * 1024 * 1024
    # SMTP DATA beyond this many bytes waits in a temporary file in the data directory, not in
    # memory; complete messages loaded for delivery share `smtp_data_memory` bytes at once.
    smtp_spool_threshold: int = Field(1024 * 1024, ge=0)
    smtp_data_memory: int = Field(256 * 1024 * 1024, ge=1)
    max_recipients: int = Field(100, ge=1, le=10000)
    max_connections_per_ip: int = Field(20, ge=1, le=100000)
    # Open connections each listener (MX, submission, IMAP, HTTP, …) takes at most.
    max_connections: int = Field(2000, ge=1, le=1000000)
    # File descriptors kept free near the process's limit: a listener holding its share of the
    # descriptors refuses new connections there, so that one flooded protocol leaves the others,
    # the database and the blob store descriptors to work with.
    descriptor_reserve: int = Field(128, ge=0)
    # An HTTP request's headers must arrive within this time of the connection (or of the
    # previous response on a kept-alive connection), which is also how long such a connection
    # may stay idle.
    http_header_timeout: timedelta = timedelta(seconds=30)
    # REST API: each key's token bucket refills at this many requests a second, holds this many.
    api_rate_limit: float = Field(100.0, gt=0)
    api_rate_burst: int = Field(200, ge=1)
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"
    # Who may create an account in the web app: "closed" (invitations only, the default of a
    # self-hosted server) or "open" (a hosted service: each sign-up is a new 7-day trial).
    signup: Literal["closed", "open"] = "closed"
    # A callback holding the event loop longer than this is logged as a WARNING.
    loop_lag_warning: timedelta = timedelta(milliseconds=250)
    # Worker processes that parse and decode large messages (IMAP FETCH sections, delivery's
    # metadata and index) away from the event loop; messages up to `cpu_offload_threshold`
    # bytes are handled in place. 0 workers: large messages go to a thread instead, where they
    # hold the event loop for most of their parse (docs/event-loop.md).
    cpu_workers: int = Field(default=2, ge=0, le=64)
    cpu_offload_threshold: int = Field(256 * 1024, ge=0)
    # How long a write waits for another writer's lock on the SQLite database before the request
    # is answered "busy, try again" (HTTP 503, IMAP NO [UNAVAILABLE], SMTP 451).
    sqlite_busy_timeout: timedelta = timedelta(seconds=15)
    # For test suites only: "test" hashes passwords with argon2id at its lowest cost, so that
    # creating accounts and logging in costs ~1 ms instead of ~0.1 s of CPU. Such hashes are cheap
    # to crack: never use it where real passwords are stored.
    password_hash_cost: Literal["recommended", "test"] = "recommended"
    # A successful password check is remembered this long (keyed by an HMAC of the credentials,
    # forgotten when the password changes), so clients that reconnect often skip the argon2
    # hash; 0s turns the cache off.
    login_cache_ttl: timedelta = timedelta(minutes=5)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # "text": one readable line per event; "json": one JSON object per line (timestamp, level,
    # logger, message and the event's own fields), for a log collector.
    log_format: Literal["text", "json"] = "text"
    # GET /metrics: with a token, only with `Authorization: Bearer <token>` (from anywhere);
    # without one, only from this machine (loopback) and not through a proxy.
    metrics_token: SecretStr | None = None
    # Recipient domains the delivery metrics name (e.g. gmail.com,outlook.com); every other
    # remote domain is counted as "remote", so the label's values stay bounded.
    metrics_destination_domains: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Spam filtering with rspamd (optional): its scanner (normal worker) URL, e.g.
    # http://127.0.0.1:11333, checks every inbound message at DATA time; its controller URL (e.g.
    # http://127.0.0.1:11334, with the controller password if it has one) learns from the messages
    # people move into and out of Junk. Unset, no message is scanned.
    rspamd_url: str = ""
    rspamd_controller_url: str = ""
    rspamd_password: SecretStr | None = None
    rspamd_timeout: timedelta = timedelta(seconds=15)
    # When rspamd cannot be asked: "accept" the message unscanned (logged), or "tempfail" (451).
    rspamd_unavailable: Literal["accept", "tempfail"] = "accept"
    # Scores at and above which a message is refused (550 5.7.1) or filed in Junk, beside rspamd's
    # own actions (reject; add header and rewrite subject file in Junk). Unset: its actions only.
    spam_reject_score: float | None = None
    spam_junk_score: float | None = None
    # Selling plans through Polar (core/billing.py, billing/polar.py). "off", the default: no
    # payment is asked and accounts keep the plan the operator gives them (a self-hoster's stay
    # `unlimited`). "polar" needs the access token, the webhook secret and the three product ids.
    polar_access_token: SecretStr | None = None
    polar_webhook_secret: SecretStr | None = None
    polar_server: Literal["production", "sandbox"] = "production"
    # Overrides polar_server's API address (a proxy, or a stand-in in tests).
    polar_base_url: str = ""
    polar_product_starter: str = ""
    polar_product_pro: str = ""
    polar_product_business: str = ""
    billing: Literal["off", "polar"] = "off"
    # Answer rspamd's "soft reject" and "greylist" actions with 451 (greylisting); off, those
    # messages are judged by their score.
    spam_greylisting: bool = False
    # DNS blocklists (e.g. zen.spamhaus.org) checked through the configured resolver for each
    # client's address at DATA time; a listed client is refused with 554 5.7.1.
    dnsbl_zones: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Sign-in through OpenID Connect providers, beside email and password; none by default.
    oidc_providers: list[OidcProviderSettings] = Field(default_factory=list)
    _config_file: Path | None = PrivateAttr(default=None)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Precedence, highest first: explicit arguments, environment, mailmark.toml, defaults.
        return (init_settings, env_settings, _ConfigFileSource(settings_cls))

    @field_validator("dns_nameservers", mode="before")
    @classmethod
    def _nameservers(cls, value: Any) -> Any:
        servers = _split_list(value)
        for server in servers if isinstance(servers, list) else []:
            _check_nameserver(str(server))
        return servers

    @field_validator("public_ips", mode="before")
    @classmethod
    def _public_ips(cls, value: Any) -> Any:
        addresses = _split_list(value)
        for address in addresses if isinstance(addresses, list) else []:
            try:
                ipaddress.ip_address(str(address))
            except ValueError:
                raise ValueError(f"{address!r} is not an IP address") from None
        return addresses

    @field_validator("https_port", "http_redirect_port", mode="before")
    @classmethod
    def _optional_port(cls, value: Any) -> Any:
        # Empty turns the listener off: how a systemd drop-in or a .env file unsets a port the
        # unit or the image sets.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator(
        "webhook_allow_private_networks", "image_proxy_allow_private_networks", mode="before"
    )
    @classmethod
    def _webhook_networks(cls, value: Any) -> Any:
        networks = _split_list(value)
        for network in networks if isinstance(networks, list) else []:
            try:
                ipaddress.ip_network(str(network))
            except ValueError:
                raise ValueError(f"{network!r} is not a network such as 127.0.0.1/32") from None
        return networks

    @field_validator("rspamd_url", "rspamd_controller_url")
    @classmethod
    def _rspamd_url(cls, value: str) -> str:
        if value and not re.fullmatch(r"https?://[^/?#\s]+/?", value):
            raise ValueError(f"{value!r} is not a URL such as http://127.0.0.1:11333")
        return value

    @field_validator("dnsbl_zones", mode="before")
    @classmethod
    def _dnsbl_zones(cls, value: Any) -> Any:
        zones = _split_list(value)
        for zone in zones if isinstance(zones, list) else []:
            if not re.fullmatch(r"[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?\.?", str(zone).lower()):
                raise ValueError(f"{zone!r} is not a DNS zone such as zen.spamhaus.org")
        return zones

    @field_validator("metrics_token")
    @classmethod
    def _metrics_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters (e.g. `openssl rand -hex 32`)")
        return value

    @field_validator("metrics_destination_domains", mode="before")
    @classmethod
    def _metrics_destination_domains(cls, value: Any) -> Any:
        domains = _split_list(value)
        if isinstance(domains, list):
            domains = [str(domain).strip().rstrip(".").lower() for domain in domains]
            for domain in domains:
                if not re.fullmatch(r"[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?", domain):
                    raise ValueError(f"{domain!r} is not a domain name such as gmail.com")
            if len(domains) > 100:
                raise ValueError("names at most 100 domains")
        return domains

    @field_validator("oidc_providers")
    @classmethod
    def _oidc_providers(cls, value: list[OidcProviderSettings]) -> list[OidcProviderSettings]:
        ids = [provider.id for provider in value]
        if duplicate := next((id_ for id_ in ids if ids.count(id_) > 1), None):
            raise ValueError(f"two providers have the id {duplicate!r}")
        return value

    @field_validator("retry_schedule", mode="before")
    @classmethod
    def _retry_schedule(cls, value: Any) -> Any:
        steps = _split_list(value)
        if isinstance(steps, list):
            steps = [parse_duration(s) if isinstance(s, str) else s for s in steps]
            if not steps:
                raise ValueError("needs at least one delay, e.g. 5m,10m,30m,1h")
        return steps

    @field_validator(
        "queue_lifetime",
        "delivery_lease",
        "imap_idle_timeout",
        "imap_poll_interval",
        "imap_cpu_burst",
        "webhook_lease",
        "domain_recheck_interval",
        "maintenance_interval",
        "campaign_interval",
        "http_header_timeout",
        "sqlite_busy_timeout",
        "loop_lag_warning",
        "login_cache_ttl",
        "rspamd_timeout",
        "tls_reload_interval",
        "s3_timeout",
        mode="before",
    )
    @classmethod
    def _queue_lifetime(cls, value: Any) -> Any:
        return parse_duration(value) if isinstance(value, str) else value

    @field_validator("webhook_lease")
    @classmethod
    def _webhook_lease(cls, value: timedelta) -> timedelta:
        # A worker's batch of attempts (10 s at most, run at once) must end well within its lease.
        if value < timedelta(seconds=15):
            raise ValueError("must be at least 15s")
        return value

    @field_validator("imap_poll_interval")
    @classmethod
    def _imap_poll_interval(cls, value: timedelta) -> timedelta:
        # Each look is a query per selected session: more often than once a second only costs.
        if value < timedelta(seconds=1):
            raise ValueError("must be at least 1s")
        return value

    @field_validator("max_message_size", mode="before")
    @classmethod
    def _max_message_size(cls, value: Any) -> Any:
        size = parse_size(value) if isinstance(value, str) else value
        if isinstance(size, int) and size < 1024:
            raise ValueError("must be at least 1k")
        return size

    @field_validator(
        "smtp_spool_threshold", "smtp_data_memory", "cpu_offload_threshold", mode="before"
    )
    @classmethod
    def _sizes(cls, value: Any) -> Any:
        return parse_size(value) if isinstance(value, str) else value

    @field_validator("sqlite_synchronous", "log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator(
        "mta_sts_mode",
        "password_hash_cost",
        "signup",
        "log_format",
        "billing",
        "polar_server",
        mode="before",
    )
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("billing")
    @classmethod
    def _billing(cls, value: str, info: ValidationInfo) -> str:
        if value == "polar":
            missing = [
                f"{ENV_PREFIX}{name.upper()}"
                for name in (
                    "polar_access_token",
                    "polar_webhook_secret",
                    "polar_product_starter",
                    "polar_product_pro",
                    "polar_product_business",
                )
                if not info.data.get(name)
            ]
            if missing:
                raise ValueError(f"billing through Polar needs {', '.join(missing)}")
        return value

    @field_validator("relay_host")
    @classmethod
    def _relay_host(cls, value: str) -> str:
        host = value.strip()
        bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        if any(c.isspace() or c in "/@" for c in host) or (":" in bare and bare.count(":") < 2):
            raise ValueError(
                f"{value!r} is not a host name: give the port as {ENV_PREFIX}RELAY_PORT, "
                "without a scheme"
            )
        return host

    @field_validator("hostname")
    @classmethod
    def _hostname(cls, value: str) -> str:
        name = value.strip().rstrip(".").lower()
        if not name or not re.fullmatch(r"[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?", name):
            raise ValueError(f"{value!r} is not a host name")
        return name

    # The two checks below are field validators, not part of `_derived`: an error raised in a model
    # validator has no field location, so the start-up message could not name the MAILMARK_* key.
    @field_validator("blob_url")
    @classmethod
    def _blob_url(cls, value: str) -> str:
        if value.startswith("s3://"):
            bucket, _, prefix = value.removeprefix("s3://").partition("/")
            # The bucket naming rules of AWS S3 (what MinIO and SeaweedFS accept too).
            if not _S3_BUCKET.fullmatch(bucket):
                raise ValueError(
                    f"{bucket!r} is not an S3 bucket name (3-63 characters: a-z, 0-9, '.' and "
                    "'-'), e.g. s3://mailmark/blobs"
                )
            if not _S3_PREFIX.fullmatch(prefix):
                raise ValueError(f"{prefix!r} is not a key prefix (letters, digits, . _ - /)")
            return value
        if value and not value.startswith("file://"):
            raise ValueError("must be file:///a/directory or s3://bucket/prefix")
        return value

    @field_validator("s3_endpoint_url")
    @classmethod
    def _s3_endpoint_url(cls, value: str) -> str:
        if value and not re.fullmatch(r"https?://[^/?#\s]+/?", value):
            raise ValueError(f"{value!r} is not a URL such as http://127.0.0.1:8333")
        return value.rstrip("/")

    @field_validator("s3_timeout")
    @classmethod
    def _s3_timeout(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be more than 0s")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if value and not value.startswith(DATABASE_SCHEMES):
            raise ValueError(
                "must start with sqlite+aiosqlite:/// (a file) or postgresql+asyncpg:// (a server), "
                "e.g. postgresql+asyncpg://mailmark@127.0.0.1/mailmark"
            )
        return value

    @field_validator("tls_reload_interval")
    @classmethod
    def _tls_reload_interval(cls, value: timedelta) -> timedelta:
        if value < timedelta(seconds=1):
            raise ValueError("must be at least 1s")
        return value

    @field_validator("acme_directory")
    @classmethod
    def _acme_directory(cls, value: str) -> str:
        # RFC 8555 §6.1: every ACME request goes over HTTPS.
        if value and not re.fullmatch(r"https://[^/?#\s]+(/[^\s]*)?", value):
            raise ValueError(f"{value!r} is not an https URL of an ACME directory")
        return value

    @field_validator("tls_key")
    @classmethod
    def _tls_pair(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        # tls_cert is declared (so validated) before tls_key; absent from data if it was invalid.
        if "tls_cert" in info.data and (info.data["tls_cert"] is None) != (value is None):
            raise ValueError(f"{ENV_PREFIX}TLS_CERT and {ENV_PREFIX}TLS_KEY must be set together")
        return value

    @model_validator(mode="after")
    def _certificate_source(self) -> Settings:
        if self.acme_directory and self.tls_cert is not None:
            raise ValueError(
                f"set {ENV_PREFIX}ACME_DIRECTORY or {ENV_PREFIX}TLS_CERT and _KEY, not both"
            )
        if self.acme_ca_bundle is not None and not self.acme_ca_bundle.is_file():
            raise ValueError(f"{ENV_PREFIX}ACME_CA_BUNDLE: no file {self.acme_ca_bundle}")
        return self

    @model_validator(mode="after")
    def _relay(self) -> Settings:
        if self.relay_password is not None and self.relay_password_file is not None:
            raise ValueError(
                f"set {ENV_PREFIX}RELAY_PASSWORD or {ENV_PREFIX}RELAY_PASSWORD_FILE, not both"
            )
        if self.relay_password_file is not None:
            try:
                lines = self.relay_password_file.read_text().splitlines()
            except (OSError, UnicodeDecodeError) as error:
                raise ValueError(
                    f"{ENV_PREFIX}RELAY_PASSWORD_FILE: cannot read {self.relay_password_file}: "
                    f"{error}"
                ) from None
            self.relay_password = SecretStr(lines[0] if lines else "")
        if self.relay_ca_file is not None and not self.relay_ca_file.is_file():
            raise ValueError(f"{ENV_PREFIX}RELAY_CA_FILE: no file {self.relay_ca_file}")
        password = self.relay_password.get_secret_value() if self.relay_password else ""
        if not self.relay_host and (self.relay_username or password):
            raise ValueError(
                f"{ENV_PREFIX}RELAY_USERNAME and _PASSWORD need {ENV_PREFIX}RELAY_HOST"
            )
        if bool(self.relay_username) != bool(password):
            raise ValueError(
                f"{ENV_PREFIX}RELAY_USERNAME and {ENV_PREFIX}RELAY_PASSWORD (or _PASSWORD_FILE) "
                "must be set together"
            )
        return self

    @model_validator(mode="after")
    def _s3(self) -> Settings:
        if self.s3_secret_key is not None and self.s3_secret_key_file is not None:
            raise ValueError(
                f"set {ENV_PREFIX}S3_SECRET_KEY or {ENV_PREFIX}S3_SECRET_KEY_FILE, not both"
            )
        if self.s3_secret_key_file is not None:
            try:
                lines = self.s3_secret_key_file.read_text().splitlines()
            except (OSError, UnicodeDecodeError) as error:
                raise ValueError(
                    f"{ENV_PREFIX}S3_SECRET_KEY_FILE: cannot read {self.s3_secret_key_file}: "
                    f"{error}"
                ) from None
            self.s3_secret_key = SecretStr(lines[0].strip() if lines else "")
        secret = self.s3_secret_key.get_secret_value() if self.s3_secret_key else ""
        if bool(self.s3_access_key) != bool(secret):
            raise ValueError(
                f"{ENV_PREFIX}S3_ACCESS_KEY and {ENV_PREFIX}S3_SECRET_KEY (or _SECRET_KEY_FILE) "
                "must be set together"
            )
        return self

    @model_validator(mode="after")
    def _https(self) -> Settings:
        if self.http_redirect_port is not None and self.https_port is None:
            raise ValueError(
                f"{ENV_PREFIX}HTTP_REDIRECT_PORT redirects to https: set {ENV_PREFIX}HTTPS_PORT too"
            )
        return self

    @model_validator(mode="after")
    def _derived(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{(self.data_dir / 'mailmark.db').resolve()}"
        if not self.blob_url:
            self.blob_url = f"file://{(self.data_dir / 'blobs').resolve()}"
        if not self.public_url:
            self.public_url = self._derived_public_url()
        return self

    def _derived_public_url(self) -> str:
        """https://<hostname> when the HTTPS listener is on (with its port unless 443), else
        http://<hostname>:<http port>."""
        if self.https_port is not None:
            port = "" if self.https_port == 443 else f":{self.https_port}"
            return f"https://{self.hostname}{port}"
        return f"http://{self.hostname}:{self.http_port}"

    @property
    def public_url_configured(self) -> bool:
        """Whether MAILMARK_PUBLIC_URL was set (rather than derived from the host name)."""
        return self.public_url != self._derived_public_url()

    @property
    def http_bind(self) -> str:
        """Where the plain HTTP listener (`http_port`) binds: MAILMARK_BIND, or loopback while
        the HTTPS listener serves the web app publicly (the plain port then only serves this
        machine: health checks, a local proxy, `mailmark doctor`)."""
        if self.https_port is None:
            return self.bind
        with contextlib.suppress(ValueError):
            if ipaddress.ip_address(self.bind).is_loopback:
                return self.bind
        return "127.0.0.1"

    @property
    def blob_path(self) -> Path:
        return Path(self.blob_url.removeprefix("file://"))

    @property
    def blob_bucket(self) -> tuple[str, str] | None:
        """(bucket, key prefix) of an s3:// blob store; None for file://."""
        if not self.blob_url.startswith("s3://"):
            return None
        bucket, _, prefix = self.blob_url.removeprefix("s3://").partition("/")
        return bucket, prefix.strip("/")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite database file, or None for a database server (or SQLite in memory)."""
        if not self.is_sqlite:
            return None
        path = self.database_url.partition(":///")[2].partition("?")[0]
        return Path(path) if path and path != ":memory:" else None

    @property
    def config_file(self) -> Path | None:
        """The config file these settings were read from, if any."""
        return self._config_file


class _ConfigFileSource(TomlConfigSettingsSource):
    """The TOML file's settings, with relative paths taken from the file's directory."""

    def _read_file(self, file_path: Path | Traversable) -> dict[str, Any]:
        values = super()._read_file(file_path)
        if isinstance(file_path, Path):
            for name in _PATH_SETTINGS:
                if isinstance(values.get(name), str) and not Path(values[name]).is_absolute():
                    values[name] = str(file_path.parent / values[name])
        return values


def _check_nameserver(server: str) -> None:
    """Accept `host`, `host:port`, `[v6]:port` and a bare IPv6 address."""
    if server.startswith("["):
        host, _, port = server[1:].partition("]")
        port = port.removeprefix(":")
    elif server.count(":") == 1:
        host, _, port = server.partition(":")
    else:
        host, port = server, ""
    if not host or (port and not (port.isascii() and port.isdigit() and 0 < int(port) < 65536)):
        raise ValueError(f"{server!r} is not host[:port]")


class SettingsError(Exception):
    """A setting is invalid; the message is one line naming the key and what is wrong."""


def find_config_file(
    config_file: Path | None = None, search: tuple[Path, ...] = CONFIG_SEARCH_PATH
) -> Path | None:
    """The file named by `config_file` or $MAILMARK_CONFIG (which must exist), else the first
    of `search` that exists, else None."""
    named = config_file or (Path(value) if (value := os.environ.get(CONFIG_ENV)) else None)
    if named is not None:
        if not named.is_file():
            source = "" if config_file else f" ({CONFIG_ENV})"
            raise SettingsError(f"config file {named}{source} does not exist")
        return named
    return next((path for path in search if path.is_file()), None)


def load_settings(
    config_file: Path | None = None,
    *,
    search: tuple[Path, ...] = CONFIG_SEARCH_PATH,
    **overrides: Any,
) -> Settings:
    """Build Settings from defaults, a TOML file (see `find_config_file`), env and overrides."""
    path = find_config_file(config_file, search)

    class _FileSettings(Settings):
        model_config = SettingsConfigDict(toml_file=path)

    try:
        settings = _FileSettings(**overrides)
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None
    except (ValueError, OSError) as exc:
        raise SettingsError(f"{path}: {exc}") from None
    settings._config_file = path
    return settings


def _describe(exc: ValidationError) -> str:
    error = exc.errors()[0]
    field = ".".join(str(part) for part in error["loc"]) or "settings"
    message = str(error["msg"]).removeprefix("Value error, ")
    key = f"{ENV_PREFIX}{field.upper()}" if error["loc"] else "settings"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"invalid setting {key}: {message}{more}"
