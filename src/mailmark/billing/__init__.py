"""Payment providers: the one module each that speaks a provider's API and webhooks."""
