"""IMAP4rev1/IMAP4rev2 server for desktop mail clients."""
