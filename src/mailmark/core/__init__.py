"""The domain: accounts, plans, domains, mailboxes, folders, messages and delivery rules.

Imports only the standard library and its own ports (see ports.py).
"""
