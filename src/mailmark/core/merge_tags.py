"""Merge tags: `{{firstName}}` in a campaign's subject or body, filled per recipient.

Pure: text and a mapping in, text out. A tag with no value becomes its fallback
(`{{firstName|there}}`) or empty (never the raw tag, which would show recipients the template);
in HTML the value is escaped so it cannot add markup, and a value bound for a header field may not
hold a line break, which would add header fields of its own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from html import escape

from mailmark.core.errors import HeaderInjection

_TAG = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.-]{0,63})\s*(?:\|([^{}|\r\n]{0,200}))?\}\}")
MAX_VARIABLES = 100
MAX_VALUE = 1000


def render(template: str, variables: Mapping[str, str], *, html: bool = False) -> str:
    def value(match: re.Match[str]) -> str:
        found = variables.get(match[1], "") or (match[2] or "").strip()
        return escape(found) if html else found

    return _TAG.sub(value, template)


def render_header(template: str, variables: Mapping[str, str]) -> str:
    """`render` for a header field's value (a subject): HeaderInjection when a value filled in
    holds CR, LF or NUL (RFC 5322 §2.2: a field ends at CRLF)."""
    rendered = render(template, variables)
    if any(ch in rendered for ch in "\r\n\0"):
        raise HeaderInjection("A merge field's value holds a line break, which a subject cannot.")
    return rendered


def tag_names(template: str) -> list[str]:
    """The names of the tags in a template, each once, in order."""
    return list(dict.fromkeys(match[1] for match in _TAG.finditer(template)))


def has_tags(template: str) -> bool:
    return _TAG.search(template) is not None
