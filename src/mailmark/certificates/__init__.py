"""The server's TLS certificate: one holder every TLS listener shares, reloaded in place when the
files change or when the ACME client (RFC 8555) renews it."""
