"""Litestar web application: /v1 REST API, dashboard, tracking and docs."""
