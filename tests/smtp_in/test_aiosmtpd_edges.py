"""The aiosmtpd names smtp_in overrides or calls beyond its documented API still exist, with the
signatures we rely on. aiosmtpd is pinned to a tested minor version (pyproject.toml); when an
upgrade renames one of these, this fails naming it instead of a session failing in production."""

from __future__ import annotations

import asyncio
import inspect

import pytest
from aiosmtpd.smtp import SMTP

# Methods of aiosmtpd.smtp.SMTP that MailmarkSMTP or the handlers override or call, with the
# parameter names (after self) their code assumes.
METHODS = {
    "_getaddr": ["arg"],  # overridden: the fast path parser, source routes
    "_create_envelope": [],  # overridden: MailmarkEnvelope
    "_set_post_data_state": [],  # called after our own DATA reader
    "_call_handler_hook": ["command", "args"],  # called with "DATA"
    "_cb_client_connected": ["reader", "writer"],  # sets _reader and _writer, which DATA reads
    "check_helo_needed": ["helo"],
    "check_auth_needed": ["caller_method"],
    "challenge_auth": ["challenge", "encode_to_b64", "log_client_response"],
    "push": ["status"],
    "connection_made": ["transport"],
    "connection_lost": ["error"],
    "smtp_HELO": ["hostname"],
    "smtp_EHLO": ["hostname"],
    "smtp_DATA": ["arg"],
}
# Class attributes MailmarkSMTP overrides or reads.
CLASS_ATTRIBUTES = ["line_length_limit", "local_part_limit"]
# Attributes an instance has once constructed (and, for the last two, once connected).
INSTANCE_ATTRIBUTES = [
    "_auth_require_tls",  # cleared for implicit TLS
    "data_size_limit",
    "session",
    "envelope",
    "transport",
    "_reader",
    "_writer",
]


@pytest.mark.parametrize("name", sorted(METHODS))
def test_each_method_we_rely_on_exists_with_its_parameters(name: str) -> None:
    method = getattr(SMTP, name, None)
    assert method is not None, f"aiosmtpd.smtp.SMTP.{name} no longer exists"
    parameters = list(inspect.signature(method).parameters)[1:]
    assert parameters == METHODS[name], (
        f"aiosmtpd.smtp.SMTP.{name} now takes {parameters}, not {METHODS[name]}"
    )


@pytest.mark.parametrize("name", CLASS_ATTRIBUTES)
def test_each_class_attribute_we_rely_on_exists(name: str) -> None:
    assert hasattr(SMTP, name), f"aiosmtpd.smtp.SMTP.{name} no longer exists"


async def test_each_instance_attribute_we_rely_on_exists() -> None:
    server = SMTP(object(), loop=asyncio.get_running_loop())
    reader = asyncio.StreamReader()
    server._cb_client_connected(reader, None)  # type: ignore[arg-type]
    for name in INSTANCE_ATTRIBUTES:
        assert hasattr(server, name), f"an aiosmtpd.smtp.SMTP instance has no {name}"
    assert server._reader is reader, "aiosmtpd's _cb_client_connected no longer sets _reader"
