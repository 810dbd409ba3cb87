"""HTML that people write, made harmless before it is stored (nh3, the Ammonia sanitiser)."""

from __future__ import annotations

import nh3

# Links a signature may hold; javascript: and other schemes are dropped with the attribute.
URL_SCHEMES = {"https", "http", "mailto", "tel"}


class Nh3Sanitizer:
    """Keeps formatting, links and images; drops script, style, forms, event handlers and
    unknown URL schemes. Links get rel="noopener noreferrer"."""

    def clean(self, html: str) -> str:
        return nh3.clean(html, url_schemes=URL_SCHEMES)
