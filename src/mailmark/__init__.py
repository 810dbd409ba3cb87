"""Mailmark: a self-hosted email platform for your own domains."""

__version__ = "0.1.0"
