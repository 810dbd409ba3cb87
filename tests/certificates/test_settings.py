"""The certificate settings refuse what cannot work, with a message naming the setting."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from mailmark.config import Settings


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"acme_directory": "http://acme.example/dir"}, "is not an https URL of an ACME directory"),
        ({"acme_directory": "letsencrypt"}, "is not an https URL of an ACME directory"),
        (
            {
                "acme_directory": "https://acme.example/dir",
                "tls_cert": "cert.pem",
                "tls_key": "key.pem",
            },
            "MAILMARK_ACME_DIRECTORY or MAILMARK_TLS_CERT and _KEY, not both",
        ),
        ({"acme_ca_bundle": "/nonexistent/ca.pem"}, "MAILMARK_ACME_CA_BUNDLE: no file"),
        ({"tls_reload_interval": "0s"}, "must be at least 1s"),
    ],
)
def test_certificate_settings_refuse_what_cannot_work(
    tmp_path: Path, values: dict[str, str], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        Settings(data_dir=tmp_path, hostname="mx.example.com", **values)


def test_acme_settings_are_read_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("")
    monkeypatch.setenv("MAILMARK_ACME_DIRECTORY", "https://127.0.0.1:14000/dir")
    monkeypatch.setenv("MAILMARK_ACME_EMAIL", "postmaster@example.com")
    monkeypatch.setenv("MAILMARK_ACME_CA_BUNDLE", str(bundle))
    settings = Settings(data_dir=tmp_path, hostname="mx.example.com")
    assert settings.acme_directory == "https://127.0.0.1:14000/dir"
    assert settings.acme_email == "postmaster@example.com"
    assert settings.acme_ca_bundle == bundle
