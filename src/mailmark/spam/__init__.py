"""Spam filter adapters: rspamd over its HTTP protocol, and DNS blocklists."""
