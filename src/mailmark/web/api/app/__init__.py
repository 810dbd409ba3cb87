"""The web app's session-authenticated JSON API under /api."""
