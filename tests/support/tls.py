"""The TLS client side of tests: the servers under test present a self-signed certificate."""

from __future__ import annotations

import ssl


def client_tls() -> ssl.SSLContext:
    """Encrypt, do not verify. Built bare rather than with `ssl.create_default_context()`, which
    loads the system's CA bundle (~30 ms each time) only for verification to be switched off."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
