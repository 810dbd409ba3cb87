"""DNS lookups and record handling: resolver, SPF/DKIM/DMARC readers, record sets, verification."""
