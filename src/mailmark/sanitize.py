"""HTML that people write, made harmless before it is stored or shown (nh3, the Ammonia
sanitiser): signatures (`Nh3Sanitizer`) and the HTML of received mail (`MailHtmlSanitizer`)."""

from __future__ import annotations

import re
from collections.abc import Callable

import nh3

from mailmark.core.webmail import CleanedHtml

# Links a signature may hold; javascript: and other schemes are dropped with the attribute.
URL_SCHEMES = {"https", "http", "mailto", "tel"}


class Nh3Sanitizer:
    """Keeps formatting, links and images; drops script, style, forms, event handlers and
    unknown URL schemes. Links get rel="noopener noreferrer"."""

    def clean(self, html: str) -> str:
        return nh3.clean(html, url_schemes=URL_SCHEMES)


# Mail is laid out with old presentational markup; everything else (script, style, form, input,
# iframe, object, embed, svg, math, meta, base, link, area) is dropped by not being listed.
MAIL_TAGS = (set(nh3.ALLOWED_TAGS) - {"area", "map"}) | {"font", "tfoot"}
_LAYOUT = {"align", "valign", "bgcolor", "width", "height", "border"}
MAIL_ATTRIBUTES: dict[str, set[str]] = {
    "*": {"style", "title", "dir", "lang"},
    "a": {"href", "name"},
    "img": {"src", "alt", "width", "height", "border", "align"},
    "font": {"color", "face", "size"},
    "table": _LAYOUT | {"cellpadding", "cellspacing", "summary"},
    "td": _LAYOUT | {"colspan", "rowspan", "nowrap"},
    "th": _LAYOUT | {"colspan", "rowspan", "nowrap", "scope"},
    "tr": _LAYOUT,
    "tbody": _LAYOUT,
    "thead": _LAYOUT,
    "tfoot": _LAYOUT,
    "col": _LAYOUT | {"span"},
    "colgroup": _LAYOUT | {"span"},
    "div": {"align"},
    "p": {"align"},
    "hr": {"align", "size", "width"},
    "ol": {"start", "type"},
    "ul": {"type"},
    "li": {"value"},
    "blockquote": {"cite"},
}
# CSS properties kept in style attributes: layout and typography. Nothing that loads anything
# (background, background-image, list-style-image, content, cursor, border-image) nor moves a
# box over the reader's page (position).
MAIL_STYLE_PROPERTIES = {
    "color",
    "background-color",
    "font",
    "font-family",
    "font-size",
    "font-style",
    "font-weight",
    "font-variant",
    "line-height",
    "letter-spacing",
    "word-spacing",
    "text-align",
    "text-decoration",
    "text-indent",
    "text-transform",
    "vertical-align",
    "white-space",
    "word-break",
    "direction",
    "margin",
    "margin-top",
    "margin-right",
    "margin-bottom",
    "margin-left",
    "padding",
    "padding-top",
    "padding-right",
    "padding-bottom",
    "padding-left",
    "border",
    "border-top",
    "border-right",
    "border-bottom",
    "border-left",
    "border-color",
    "border-style",
    "border-width",
    "border-radius",
    "border-collapse",
    "border-spacing",
    "width",
    "height",
    "max-width",
    "min-width",
    "max-height",
    "min-height",
    "display",
    "float",
    "clear",
    "overflow",
    "table-layout",
    "list-style-type",
}
MAIL_URL_SCHEMES = {"http", "https", "mailto", "tel", "cid", "data"}
_LINK_SCHEMES = ("http://", "https://", "mailto:", "tel:")
# Inline images a message may carry as data: URLs (no SVG: it can hold script).
_DATA_IMAGE = re.compile(
    r"^data:image/(png|gif|jpeg|webp);base64,[A-Za-z0-9+/=\s]*$", re.IGNORECASE
)
# CSS that loads or runs something, however it is escaped: the whole attribute goes.
_STYLE_DANGER = re.compile(r"url\s*\(|image-set|expression|@import|javascript:|\\", re.IGNORECASE)
# An image sized 0 or 1 pixel is a tracking beacon: dropped even when images are shown.
_PIXEL = re.compile(r'<img\b[^>]*\b(?:width|height)="[01](?:px)?"[^>]*>', re.IGNORECASE)

DOCUMENT_HEAD = (
    '<!DOCTYPE html><html><head><meta charset="utf-8">'
    '<meta name="referrer" content="no-referrer">'
    "<style>body{margin:0;padding:8px;font-family:system-ui,sans-serif;overflow-wrap:anywhere}"
    "img{max-width:100%;height:auto}</style></head><body>"
)
DOCUMENT_TAIL = "</body></html>"


class MailHtmlSanitizer:
    """An allow-list cleaner for the HTML of received mail, shown in a sandboxed iframe."""

    def clean(
        self,
        html: str,
        *,
        remote_image: Callable[[str], str | None],
        inline_image: Callable[[str], str | None],
    ) -> CleanedHtml:
        """`remote_image(url)` gives what an http(s) image becomes (None: removed);
        `inline_image(content_id)` the URL of a cid: image's part (None: removed)."""
        remote_seen = False

        def attribute(tag: str, name: str, value: str) -> str | None:
            nonlocal remote_seen
            lowered = value.strip().lower()
            if name == "style":
                return None if _STYLE_DANGER.search(value) else value
            if tag == "img" and name == "src":
                if lowered.startswith(("http://", "https://", "//")):
                    remote_seen = True
                    url = "https:" + value.strip() if lowered.startswith("//") else value.strip()
                    return remote_image(url)
                if lowered.startswith("cid:"):
                    return inline_image(value.strip()[4:])
                if _DATA_IMAGE.match(value.strip()):
                    return value
                return None
            if name == "href" and not lowered.startswith(_LINK_SCHEMES):
                return None  # data:, cid:, and relative links that would open our own pages
            return value

        cleaned = nh3.clean(
            html,
            tags=MAIL_TAGS,
            clean_content_tags={"script", "style", "title", "noscript", "template"},
            attributes=MAIL_ATTRIBUTES,
            attribute_filter=attribute,
            url_schemes=MAIL_URL_SCHEMES,
            filter_style_properties=MAIL_STYLE_PROPERTIES,
            set_tag_attribute_values={"a": {"target": "_blank"}},
            link_rel="noopener noreferrer",
            strip_comments=True,
        )
        cleaned = _PIXEL.sub("", cleaned)
        return CleanedHtml(DOCUMENT_HEAD + cleaned + DOCUMENT_TAIL, remote_seen)
