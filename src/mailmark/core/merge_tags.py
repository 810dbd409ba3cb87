"""Merge tags: `{{firstName}}` in a campaign's subject or body, filled per recipient.

Pure: text and a mapping in, text out. A tag with no value becomes empty (never the raw tag, which
would show recipients the template); in HTML the value is escaped so it cannot add markup.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from html import escape

_TAG = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.-]{0,63})\s*\}\}")
MAX_VARIABLES = 100
MAX_VALUE = 1000


def render(template: str, variables: Mapping[str, str], *, html: bool = False) -> str:
    def value(match: re.Match[str]) -> str:
        found = variables.get(match[1], "")
        return escape(found) if html else found

    return _TAG.sub(value, template)


def has_tags(template: str) -> bool:
    return _TAG.search(template) is not None
