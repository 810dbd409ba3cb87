"""ManageSieve (RFC 5804): mail clients list, read, check, save and activate a mailbox's Sieve scripts."""
