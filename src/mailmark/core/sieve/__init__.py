"""Sieve mail filtering (RFC 5228): grammar, checks, interpreter, scripts, and the delivery rule."""
