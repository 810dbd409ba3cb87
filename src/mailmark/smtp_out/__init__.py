"""Outbound queue and delivery workers (lease, DKIM-sign, resolve MX, deliver, classify)."""
