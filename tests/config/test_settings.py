"""Settings: defaults, mailmark.toml, MAILMARK_* environment, precedence, and one-line errors."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import pytest

from mailmark.config import SettingsError, load_settings, parse_duration, parse_size


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No MAILMARK_* from the developer's shell, and no ./mailmark.toml from the working directory."""
    for name in list(os.environ):
        if name.upper().startswith("MAILMARK_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def write_toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mailmark.toml"
    path.write_text(text)
    return path


def test_defaults(tmp_path: Path) -> None:
    settings = load_settings()

    assert settings.data_dir == Path("data")
    data = (tmp_path / "data").resolve()
    assert settings.database_url == f"sqlite+aiosqlite:///{data}/mailmark.db"
    assert settings.blob_url == f"file://{data}/blobs"
    assert settings.blob_path == data / "blobs"
    assert settings.is_sqlite
    assert settings.hostname  # the machine's FQDN, normalised
    assert settings.hostname == settings.hostname.lower().rstrip(".")
    assert settings.bind == "127.0.0.1"
    ports = (
        settings.mx_port,
        settings.submission_port,
        settings.submissions_port,
        settings.imap_port,
        settings.imaps_port,
        settings.http_port,
        settings.remote_smtp_port,
    )
    assert ports == (2525, 5870, 4650, 1430, 9930, 8025, 25)
    assert settings.public_url == f"http://{settings.hostname}:8025"
    assert settings.dns_nameservers == []
    assert (settings.tls_cert, settings.tls_key) == (None, None)
    assert settings.retry_schedule == [
        timedelta(minutes=m) for m in (5, 10, 30, 60, 120, 240, 480, 960)
    ]
    assert settings.queue_lifetime == timedelta(days=5)
    assert settings.max_message_size == 25 * 1024 * 1024
    assert settings.sqlite_synchronous == "FULL"  # power-loss safe by default


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = {
        "MAILMARK_DATA_DIR": str(tmp_path / "srv"),
        "MAILMARK_HOSTNAME": "Mail.Example.COM.",
        "MAILMARK_BIND": "0.0.0.0",
        "MAILMARK_MX_PORT": "25",
        "MAILMARK_HTTP_PORT": "443",
        "MAILMARK_DNS_NAMESERVERS": "127.0.0.1:5353, [::1]:53,192.0.2.53",
        "MAILMARK_REMOTE_SMTP_PORT": "2526",
        "MAILMARK_RETRY_SCHEDULE": "30s,5m,1h",
        "MAILMARK_QUEUE_LIFETIME": "2d",
        "MAILMARK_MAX_MESSAGE_SIZE": "10M",
        "MAILMARK_SQLITE_SYNCHRONOUS": "normal",
        "mailmark_log_level": "debug",  # names are not case-sensitive
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    settings = load_settings()

    assert settings.data_dir == tmp_path / "srv"
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / 'srv' / 'mailmark.db'}"
    assert settings.blob_path == tmp_path / "srv" / "blobs"
    assert settings.hostname == "mail.example.com"
    assert settings.public_url == "http://mail.example.com:443"
    assert (settings.bind, settings.mx_port, settings.http_port) == ("0.0.0.0", 25, 443)
    assert settings.dns_nameservers == ["127.0.0.1:5353", "[::1]:53", "192.0.2.53"]
    assert settings.remote_smtp_port == 2526
    assert settings.retry_schedule == [
        timedelta(seconds=30),
        timedelta(minutes=5),
        timedelta(hours=1),
    ]
    assert settings.queue_lifetime == timedelta(days=2)
    assert settings.max_message_size == 10 * 1024 * 1024
    assert (settings.sqlite_synchronous, settings.log_level) == ("NORMAL", "DEBUG")


def test_explicit_urls_are_kept(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MAILMARK_DATABASE_URL", "postgresql+asyncpg://mm@db.internal/mailmark")
    monkeypatch.setenv("MAILMARK_BLOB_URL", f"file://{tmp_path}/elsewhere")
    monkeypatch.setenv("MAILMARK_PUBLIC_URL", "https://mail.example.com")

    settings = load_settings()

    assert settings.database_url == "postgresql+asyncpg://mm@db.internal/mailmark"
    assert not settings.is_sqlite
    assert settings.blob_path == tmp_path / "elsewhere"
    assert settings.public_url == "https://mail.example.com"


def test_toml_file(tmp_path: Path) -> None:
    path = write_toml(
        tmp_path,
        'data_dir = "/var/lib/mailmark"\n'
        'hostname = "mx.example.net"\n'
        "imap_port = 143\n"
        'dns_nameservers = ["127.0.0.1:5300"]\n'
        'retry_schedule = ["1m", "1h"]\n'
        'queue_lifetime = "1w"\n'
        'max_message_size = "512k"\n'
        'tls_cert = "/etc/mailmark/cert.pem"\n'
        'tls_key = "/etc/mailmark/key.pem"\n',
    )

    settings = load_settings(config_file=path)

    assert settings.data_dir == Path("/var/lib/mailmark")
    assert settings.database_url == "sqlite+aiosqlite:////var/lib/mailmark/mailmark.db"
    assert settings.hostname == "mx.example.net"
    assert settings.imap_port == 143
    assert settings.dns_nameservers == ["127.0.0.1:5300"]
    assert settings.retry_schedule == [timedelta(minutes=1), timedelta(hours=1)]
    assert settings.queue_lifetime == timedelta(weeks=1)
    assert settings.max_message_size == 512 * 1024
    assert settings.tls_cert == Path("/etc/mailmark/cert.pem")


def test_mailmark_toml_in_the_working_directory_is_read_by_default(tmp_path: Path) -> None:
    write_toml(tmp_path, "mx_port = 2600\n")
    assert load_settings().mx_port == 2600


def test_environment_beats_toml_beats_defaults(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = write_toml(tmp_path, "mx_port = 2600\nimap_port = 1600\n")
    monkeypatch.setenv("MAILMARK_MX_PORT", "2700")

    settings = load_settings(config_file=path)

    assert settings.mx_port == 2700  # env over toml
    assert settings.imap_port == 1600  # toml over default
    assert settings.http_port == 8025  # default


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        (" 2H ", timedelta(hours=2)),
        ("5d", timedelta(days=5)),
        ("1w", timedelta(weeks=1)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "5", "m", "5 minutes", "1.5h", "-5m", "5y"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1048576", 1048576),
        ("512k", 512 * 1024),
        ("25M", 25 * 1024**2),
        ("25MiB", 25 * 1024**2),
        ("25 mb", 25 * 1024**2),
        ("2G", 2 * 1024**3),
    ],
)
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "lots", "1.5M", "-1", "10T"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="is not a size"):
        parse_size(text)


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("MAILMARK_MX_PORT", "smtp", "valid integer"),
        ("MAILMARK_IMAP_PORT", "70000", "less than or equal to 65535"),
        ("MAILMARK_REMOTE_SMTP_PORT", "0", "greater than or equal to 1"),
        ("MAILMARK_HOSTNAME", "not a host", "is not a host name"),
        ("MAILMARK_DNS_NAMESERVERS", "127.0.0.1:99999", "is not host[:port]"),
        ("MAILMARK_RETRY_SCHEDULE", "5m,soon", "'soon' is not a duration"),
        ("MAILMARK_RETRY_SCHEDULE", " , ", "needs at least one delay"),
        ("MAILMARK_QUEUE_LIFETIME", "forever", "is not a duration"),
        ("MAILMARK_WEBHOOK_LEASE", "10s", "at least 15s"),
        ("MAILMARK_IMAP_POLL_INTERVAL", "500ms", "must be at least 1s"),
        ("MAILMARK_IMAP_POLL_INTERVAL", "0.5s", "is not a duration"),
        ("MAILMARK_IMAP_POLL_INTERVAL", "0s", "at least 1s"),
        (
            "MAILMARK_WEBHOOK_ALLOW_PRIVATE_NETWORKS",
            "127.0.0.1/32,intranet",
            "'intranet' is not a network",
        ),
        ("MAILMARK_MAX_MESSAGE_SIZE", "huge", "is not a size"),
        ("MAILMARK_MAX_MESSAGE_SIZE", "100", "at least 1k"),
        ("MAILMARK_MAX_RECIPIENTS", "0", "greater than or equal to 1"),
        ("MAILMARK_SQLITE_SYNCHRONOUS", "OFF", "'FULL' or 'NORMAL'"),
        ("MAILMARK_LOG_LEVEL", "chatty", "'DEBUG', 'INFO', 'WARNING' or 'ERROR'"),
        ("MAILMARK_BLOB_URL", "s3://My_Bucket/mail", "is not an S3 bucket name"),
        ("MAILMARK_BLOB_URL", "gs://bucket/mail", "must be file:///a/directory or s3://"),
        ("MAILMARK_S3_ENDPOINT_URL", "127.0.0.1:8333", "is not a URL such as http://"),
        ("MAILMARK_S3_TIMEOUT", "soon", "is not a duration"),
        ("MAILMARK_DATABASE_URL", "postgresql://db/mail", "must start with sqlite+aiosqlite:///"),
        ("MAILMARK_DATABASE_URL", "/var/lib/mailmark/mailmark.db", "or postgresql+asyncpg://"),
        (
            "MAILMARK_TLS_KEY",
            "/etc/key.pem",
            "MAILMARK_TLS_CERT and MAILMARK_TLS_KEY must be set together",
        ),
        (
            "MAILMARK_TLS_CERT",
            "/etc/cert.pem",
            "MAILMARK_TLS_CERT and MAILMARK_TLS_KEY must be set together",
        ),
    ],
)
def test_bad_environment_value_names_the_key(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, reason: str
) -> None:
    monkeypatch.setenv(name, value)

    with pytest.raises(SettingsError) as caught:
        load_settings()

    message = str(caught.value)
    assert "\n" not in message
    expected_key = "MAILMARK_TLS_KEY" if name.startswith("MAILMARK_TLS") else name
    assert message.startswith(f"invalid setting {expected_key}: ")
    assert reason in message


def test_bad_toml_value_names_the_key(tmp_path: Path) -> None:
    path = write_toml(tmp_path, 'mx_port = "twenty-five"\n')
    with pytest.raises(SettingsError, match=r"^invalid setting MAILMARK_MX_PORT: .*valid integer"):
        load_settings(config_file=path)


def test_unknown_toml_key_is_refused(tmp_path: Path) -> None:
    path = write_toml(tmp_path, "mx_prot = 25\n")
    with pytest.raises(
        SettingsError, match=r"^invalid setting MAILMARK_MX_PROT: Extra inputs are not permitted"
    ):
        load_settings(config_file=path)


def test_several_bad_values_still_make_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILMARK_MX_PORT", "x")
    monkeypatch.setenv("MAILMARK_IMAP_PORT", "y")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "\n" not in str(caught.value)
    assert str(caught.value).endswith("(and 1 more)")


def test_unreadable_or_missing_config_file(tmp_path: Path) -> None:
    broken = write_toml(tmp_path, "mx_port = \n")
    with pytest.raises(SettingsError) as caught:
        load_settings(config_file=broken)
    assert str(caught.value).startswith(f"{broken}: ") and "\n" not in str(caught.value)

    missing = tmp_path / "nowhere.toml"
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(config_file=missing)


def test_webhook_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().webhook_allow_private_networks == []
    monkeypatch.setenv("MAILMARK_WEBHOOK_ALLOW_PRIVATE_NETWORKS", "127.0.0.1/32, ::1/128")
    monkeypatch.setenv("MAILMARK_WEBHOOK_LEASE", "5m")
    settings = load_settings()
    assert settings.webhook_allow_private_networks == ["127.0.0.1/32", "::1/128"]
    assert settings.webhook_lease == timedelta(minutes=5)


def test_imap_poll_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().imap_poll_interval == timedelta(seconds=5)
    monkeypatch.setenv("MAILMARK_IMAP_POLL_INTERVAL", "30s")
    assert load_settings().imap_poll_interval == timedelta(seconds=30)


def test_config_file_from_mailmark_config_with_paths_relative_to_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "server.toml").write_text(
        'data_dir = "../srv"\ntls_cert = "cert.pem"\ntls_key = "/keys/key.pem"\nmx_port = 2600\n'
    )
    # A ./mailmark.toml is not read when MAILMARK_CONFIG names a file.
    write_toml(tmp_path, "mx_port = 2700\n")
    monkeypatch.setenv("MAILMARK_CONFIG", str(etc / "server.toml"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    settings = load_settings()

    assert settings.config_file == etc / "server.toml"
    assert settings.mx_port == 2600
    # Relative to the file, not to the working directory: every command finds the same data.
    assert settings.data_dir.resolve() == tmp_path / "srv"
    assert settings.sqlite_path is not None
    assert settings.sqlite_path.resolve() == tmp_path / "srv" / "mailmark.db"
    assert settings.tls_cert == etc / "cert.pem"
    assert settings.tls_key == Path("/keys/key.pem")


def test_an_explicit_file_beats_mailmark_config(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    explicit = tmp_path / "explicit.toml"
    explicit.write_text("mx_port = 2600\n")
    monkeypatch.setenv("MAILMARK_CONFIG", str(tmp_path / "absent.toml"))
    assert load_settings(config_file=explicit).mx_port == 2600

    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert (
        str(caught.value)
        == f"config file {tmp_path / 'absent.toml'} (MAILMARK_CONFIG) does not exist"
    )


def test_the_search_path_is_read_in_order(tmp_path: Path) -> None:
    local, system = tmp_path / "local.toml", tmp_path / "system.toml"
    system.write_text('data_dir = "/var/lib/mailmark"\n')
    assert load_settings(search=(local, system)).data_dir == Path("/var/lib/mailmark")
    assert load_settings(search=(local, system)).config_file == system

    local.write_text("mx_port = 2600\n")
    settings = load_settings(search=(local, system))
    assert (settings.config_file, settings.mx_port, settings.data_dir) == (
        local,
        2600,
        Path("data"),
    )

    nothing = load_settings(search=(tmp_path / "none.toml",))
    assert nothing.config_file is None


def test_the_default_search_ends_in_etc(tmp_path: Path) -> None:
    from mailmark.config.settings import CONFIG_SEARCH_PATH

    assert (Path("mailmark.toml"), Path("/etc/mailmark/mailmark.toml")) == CONFIG_SEARCH_PATH
    write_toml(tmp_path, "mx_port = 2600\n")
    assert load_settings().config_file == Path("mailmark.toml")


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite+aiosqlite:////srv/mail/mailmark.db", Path("/srv/mail/mailmark.db")),
        ("sqlite+aiosqlite:///relative.db?timeout=5", Path("relative.db")),
        ("sqlite+aiosqlite:///:memory:", None),
        ("postgresql+asyncpg://mailmark@db/mailmark", None),
    ],
)
def test_sqlite_path(monkeypatch: pytest.MonkeyPatch, url: str, path: Path | None) -> None:
    monkeypatch.setenv("MAILMARK_DATABASE_URL", url)
    assert load_settings().sqlite_path == path


def test_oidc_providers_from_toml_tables(tmp_path: Path) -> None:
    assert load_settings().oidc_providers == []
    path = write_toml(
        tmp_path,
        """
[[oidc_providers]]
id = "google"
name = "Google"
issuer = "https://accounts.google.com"
client_id = "1234.apps.googleusercontent.com"
client_secret = "GOCSPX-secret"

[[oidc_providers]]
id = "keycloak"
name = "Company SSO"
issuer = "https://sso.example.com/realms/staff"
client_id = "mailmark"
client_secret = "kc-secret"
scopes = "openid email"
trust_mfa = true
timeout = "5s"
""",
    )
    google, keycloak = load_settings(path).oidc_providers
    assert (google.id, google.scopes, google.trust_mfa) == (
        "google",
        ["openid", "email", "profile"],
        False,
    )
    assert google.timeout == timedelta(seconds=10)
    # The secret stays out of reprs and logs.
    assert "GOCSPX" not in repr(google)
    assert google.client_secret.get_secret_value() == "GOCSPX-secret"
    assert (keycloak.scopes, keycloak.trust_mfa) == (["openid", "email"], True)
    assert keycloak.timeout == timedelta(seconds=5)


def test_oidc_providers_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "MAILMARK_OIDC_PROVIDERS",
        '[{"id": "local", "name": "Local", "issuer": "http://127.0.0.1:8080",'
        ' "client_id": "m", "client_secret": "s"}]',
    )
    [local] = load_settings().oidc_providers
    assert local.issuer == "http://127.0.0.1:8080"


@pytest.mark.parametrize(
    ("provider", "complaint"),
    [
        ({"issuer": "http://sso.example.com"}, "must be an https URL (http only on localhost)"),
        ({"issuer": "https://sso.example.com/?tenant=1"}, "is not an issuer URL"),
        ({"id": "Has Spaces"}, "should match pattern"),
        ({"scopes": ["email"]}, "must include openid"),
        ({"client_secret": None}, "client_secret"),
    ],
)
def test_bad_oidc_provider_is_refused_naming_the_key(
    monkeypatch: pytest.MonkeyPatch, provider: dict[str, object], complaint: str
) -> None:
    good = {
        "id": "sso",
        "name": "SSO",
        "issuer": "https://sso.example.com",
        "client_id": "m",
        "client_secret": "s",
    }
    monkeypatch.setenv("MAILMARK_OIDC_PROVIDERS", json.dumps([good | provider]))
    with pytest.raises(SettingsError, match="MAILMARK_OIDC_PROVIDERS") as raised:
        load_settings()
    assert complaint in str(raised.value) or complaint.upper() in str(raised.value)


def test_two_oidc_providers_with_one_id_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    provider = {
        "id": "sso",
        "name": "SSO",
        "issuer": "https://sso.example.com",
        "client_id": "m",
        "client_secret": "s",
    }
    monkeypatch.setenv("MAILMARK_OIDC_PROVIDERS", json.dumps([provider, provider]))
    with pytest.raises(SettingsError, match="two providers have the id 'sso'"):
        load_settings()


def test_relay_host_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert load_settings().relay_host == ""
    secret = tmp_path / "relay-password"
    secret.write_text("from the file\nignored\n")
    ca = tmp_path / "relay-ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    path = write_toml(
        tmp_path,
        'relay_host = "smtp.relay.test"\nrelay_tls = "implicit"\nrelay_username = "acme"\n'
        'relay_password_file = "relay-password"\nrelay_ca_file = "relay-ca.pem"\n',
    )
    settings = load_settings(config_file=path)
    assert (settings.relay_host, settings.relay_port, settings.relay_tls) == (
        "smtp.relay.test",
        None,
        "implicit",
    )
    assert settings.relay_password is not None
    assert settings.relay_password.get_secret_value() == "from the file"
    assert settings.relay_ca_file == ca
    assert "from the file" not in repr(settings)

    monkeypatch.setenv("MAILMARK_RELAY_PORT", "2587")
    assert load_settings(config_file=path).relay_port == 2587


@pytest.mark.parametrize(
    ("variables", "reason"),
    [
        ({"MAILMARK_RELAY_HOST": "smtp.relay.test:587"}, "give the port as MAILMARK_RELAY_PORT"),
        ({"MAILMARK_RELAY_HOST": "smtps://smtp.relay.test"}, "is not a host name"),
        (
            {"MAILMARK_RELAY_HOST": "r.test", "MAILMARK_RELAY_TLS": "none"},
            "'starttls' or 'implicit'",
        ),
        (
            {"MAILMARK_RELAY_USERNAME": "acme", "MAILMARK_RELAY_PASSWORD": "x"},
            "need MAILMARK_RELAY_HOST",
        ),
        (
            {"MAILMARK_RELAY_HOST": "r.test", "MAILMARK_RELAY_USERNAME": "acme"},
            "must be set together",
        ),
        (
            {
                "MAILMARK_RELAY_HOST": "r.test",
                "MAILMARK_RELAY_PASSWORD": "x",
                "MAILMARK_RELAY_PASSWORD_FILE": "/etc/hostname",
            },
            "not both",
        ),
        (
            {"MAILMARK_RELAY_HOST": "r.test", "MAILMARK_RELAY_PASSWORD_FILE": "/nonexistent/pw"},
            "MAILMARK_RELAY_PASSWORD_FILE: cannot read /nonexistent/pw",
        ),
        (
            {"MAILMARK_RELAY_HOST": "r.test", "MAILMARK_RELAY_CA_FILE": "/nonexistent/ca.pem"},
            "MAILMARK_RELAY_CA_FILE: no file /nonexistent/ca.pem",
        ),
    ],
)
def test_bad_relay_settings_name_what_to_fix(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], reason: str
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert reason in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("variables", "public_url", "http_bind"),
    [
        ({}, "http://mx.example.com:8025", "0.0.0.0"),
        (
            {"MAILMARK_HTTPS_PORT": "443", "MAILMARK_HTTP_REDIRECT_PORT": "80"},
            "https://mx.example.com",
            "127.0.0.1",
        ),
        ({"MAILMARK_HTTPS_PORT": "8443"}, "https://mx.example.com:8443", "127.0.0.1"),
        (
            {"MAILMARK_HTTPS_PORT": "443", "MAILMARK_PUBLIC_URL": "https://mail.example.com"},
            "https://mail.example.com",
            "127.0.0.1",
        ),
        ({"MAILMARK_HTTPS_PORT": "443", "MAILMARK_BIND": "::1"}, "https://mx.example.com", "::1"),
    ],
)
def test_https_settings(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], public_url: str, http_bind: str
) -> None:
    """With HTTPS on, links default to https:// (no port on 443), and the plain HTTP port serves
    this machine only."""
    monkeypatch.setenv("MAILMARK_HOSTNAME", "mx.example.com")
    monkeypatch.setenv("MAILMARK_BIND", "0.0.0.0")
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.public_url == public_url
    assert settings.public_url_configured == ("MAILMARK_PUBLIC_URL" in variables)
    assert settings.http_bind == http_bind


def test_https_is_off_by_default_and_the_redirect_needs_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = load_settings()
    assert (settings.https_port, settings.http_redirect_port) == (None, None)
    monkeypatch.setenv("MAILMARK_HTTP_REDIRECT_PORT", "80")
    with pytest.raises(SettingsError, match="MAILMARK_HTTP_REDIRECT_PORT redirects to https"):
        load_settings()
    # Empty turns it off again (a systemd drop-in over the unit's value).
    monkeypatch.setenv("MAILMARK_HTTPS_PORT", "")
    monkeypatch.setenv("MAILMARK_HTTP_REDIRECT_PORT", "")
    assert load_settings().https_port is None
