"""The pure parts of tracking: rewriting a message's links into redirects, and telling a
machine's open or click from a person's."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mailmark.core.tracking import MAX_TRACKED_LINKS, LinkSigner, machine_reason, rewrite_links


def redirect(index: int) -> str:
    return f"https://t.example/c/{index}?x=1&y=2"


@pytest.mark.parametrize(
    ("body", "expected", "links"),
    [
        (
            '<a href="https://a.example/?p=1&amp;q=2">x</a>',
            '<a href="https://t.example/c/0?x=1&amp;y=2">x</a>',
            ["https://a.example/?p=1&q=2"],
        ),
        (
            "<A HREF=http://a.example/b>x</A> <area shape=rect href='https://c.example'>",
            '<A HREF="https://t.example/c/0?x=1&amp;y=2">x</A> '
            '<area shape=rect href="https://t.example/c/1?x=1&amp;y=2">',
            ["http://a.example/b", "https://c.example"],
        ),
        # Not web links, or not links at all: left as they are.
        (
            '<a href="mailto:a@b.example">m</a><a href="#top">t</a><a href="tel:1">p</a>'
            '<a href="javascript:alert(1)">j</a><a href="https:nohost">n</a>'
            '<link href="https://css.example/a.css"><p>href="https://x.example"</p>',
            None,
            [],
        ),
        ('<a title="href=https://t" href="/relative">r</a>', None, []),
        # A control character no Location header could carry: the link stays as it is.
        ('<a href="https://a.example/x&#13;&#10;Set-Cookie:a=b">c</a>', None, []),
    ],
)
def test_links_become_redirects_by_index(body: str, expected: str | None, links: list[str]) -> None:
    rewritten, found = rewrite_links(body, redirect)

    assert rewritten == (body if expected is None else expected)
    assert found == links


def test_a_message_has_at_most_so_many_tracked_links() -> None:
    body = "".join(f'<a href="https://a.example/{n}">{n}</a>' for n in range(MAX_TRACKED_LINKS + 5))

    rewritten, found = rewrite_links(body, redirect)

    assert len(found) == MAX_TRACKED_LINKS
    assert f'<a href="https://a.example/{MAX_TRACKED_LINKS}">' in rewritten
    assert 'href="https://a.example/0"' not in rewritten


@pytest.mark.parametrize(
    ("method", "agent", "client", "since", "reason"),
    [
        ("GET", "Mozilla/5.0", "203.0.113.9", None, "privacy proxy"),
        ("GET", None, "203.0.113.9", None, "privacy proxy"),
        ("HEAD", "Mozilla/5.0 (X11) Firefox/128.0", None, None, "head request"),
        ("GET", "Barracuda Sentinel (EE)", None, None, "scanner user agent"),
        ("GET", "python-requests/2.32", None, None, "scanner user agent"),
        ("GET", "Mozilla/5.0 (Macintosh) Safari/605", "17.58.1.2", None, "proxy network"),
        (
            "GET",
            "Mozilla/5.0 (Macintosh) Safari/605",
            "::1",
            timedelta(seconds=3),
            "seconds after delivery",
        ),
        ("GET", "Mozilla/5.0 (Macintosh) Safari/605", "203.0.113.9", timedelta(minutes=3), None),
        ("GET", "Mozilla/5.0 (Windows NT 10.0) Chrome/126", "not an ip", None, None),
    ],
)
def test_machine_hits_are_told_apart(
    method: str, agent: str | None, client: str | None, since: timedelta | None, reason: str | None
) -> None:
    assert machine_reason(method, agent, client, since) == reason


def test_signatures_are_per_purpose_and_tamper_evident() -> None:
    signer = LinkSigner(b"k" * 32, "https://mail.example/")
    token = "a" * 24
    pixel = signer.pixel_url(token)
    click = signer.click_url(token, 3, "t.acme.example")

    assert pixel.startswith("https://mail.example/t/o/")
    assert click.startswith("https://t.acme.example/t/c/")
    click_signature = click.rsplit("/", 1)[1]
    assert signer.verify("click tracking", token, click_signature, ".3")
    assert not signer.verify("click tracking", token, click_signature, ".4")
    assert not signer.verify("unsubscribe", token, click_signature, ".3")
    assert not signer.verify("click tracking", "A" * 24, click_signature, ".3")
    assert not signer.verify("click tracking", token, "\u00e9" * len(click_signature), ".3")
    assert not LinkSigner(b"x" * 32, "https://mail.example/").verify(
        "click tracking", token, click_signature, ".3"
    )
