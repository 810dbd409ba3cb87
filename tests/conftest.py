"""The suite's shared fixtures live in tests/support/; this registers them for every test."""

# In dependency order: a plugin imported by an earlier one would miss pytest's assert rewriting.
pytest_plugins = [
    "tests.support.database",
    "tests.support.world",
    "tests.support.serve",
    "tests.support.pebble",
    "tests.support.smtp_sink",
    "tests.support.rspamd",
    "tests.support.seaweedfs",
    "tests.support.webhook_receiver",
    "tests.support.oidc_provider",
    "tests.support.web",
    "tests.support.ui",
]
