"""The webhook worker: posts leased webhook deliveries over HTTPS with httpx."""
