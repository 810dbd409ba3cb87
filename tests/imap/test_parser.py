"""The pure IMAP command parser: a table of commands, hostile input, and fuzzing."""

from __future__ import annotations

import contextlib
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailmark.core import search
from mailmark.imap import encoder, mutf7
from mailmark.imap.commands import (
    Append,
    AppendMessage,
    Authenticate,
    Compress,
    Copy,
    Enable,
    Expunge,
    Fetch,
    FetchAttribute,
    Id,
    ListCommand,
    Login,
    MailboxCommand,
    Quota,
    Search,
    Section,
    Select,
    SequenceRef,
    SequenceSet,
    Simple,
    Status,
    Store,
)
from mailmark.imap.parser import ParseError, parse_command, parse_tag


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"a1 NOOP", Simple("a1", "NOOP")),
        (b"A.2 capability", Simple("A.2", "CAPABILITY")),
        (b'a LOGIN "us er" "p\\"w\\\\d"', Login("a", "us er", 'p"w\\d')),
        (b"a LOGIN {4}\r\nuser {3+}\r\npwd", Login("a", "user", "pwd")),
        (b"a AUTHENTICATE PLAIN AGJvYgBwdw==", Authenticate("a", "PLAIN", "AGJvYgBwdw==")),
        (b"a AUTHENTICATE plain", Authenticate("a", "PLAIN", None)),
        (b"a ENABLE IMAP4rev2 condstore", Enable("a", ("IMAP4REV2", "CONDSTORE"))),
        (b'a ID ("name" "mutt" "version" NIL)', Id("a", (("name", "mutt"), ("version", None)))),
        (b"a ID NIL", Id("a", ())),
        (b"a SELECT inbox", Select("a", "INBOX", read_only=False)),
        (b'a EXAMINE "Sent" (CONDSTORE)', Select("a", "Sent", read_only=True, condstore=True)),
        (b"a STATUS Drafts (MESSAGES UIDNEXT)", Status("a", "Drafts", ("MESSAGES", "UIDNEXT"))),
        (b"a EXPUNGE", Expunge("a")),
        (b"a UID EXPUNGE 3:5", Expunge("a", SequenceSet(((3, 5),)))),
        (b"a COPY 1:* Trash", Copy("a", SequenceSet(((1, None),)), "Trash")),
        (
            b"a UID MOVE 4,6 Archive",
            Copy("a", SequenceSet(((4, 4), (6, 6))), "Archive", move=True, uid=True),
        ),
        (
            b"a STORE 2 -FLAGS.SILENT (\\seen $Junk)",
            Store("a", SequenceSet(((2, 2),)), "remove", True, ("\\Seen", "$Junk")),
        ),
        (
            b"a UID STORE 2 (UNCHANGEDSINCE 12) FLAGS \\Flagged",
            Store(
                "a",
                SequenceSet(((2, 2),)),
                "replace",
                False,
                ("\\Flagged",),
                uid=True,
                unchanged_since=12,
            ),
        ),
        (
            b'a APPEND Sent (\\Seen) " 3-Feb-2026 10:11:12 -0130" {3}\r\nabc',
            Append(
                "a",
                "Sent",
                (
                    AppendMessage(
                        ("\\Seen",),
                        datetime(
                            2026, 2, 3, 10, 11, 12, tzinfo=timezone(-timedelta(hours=1, minutes=30))
                        ),
                        b"abc",
                    ),
                ),
            ),
        ),
        (
            b"a APPEND INBOX ~{2}\r\n\x00b",
            Append("a", "INBOX", (AppendMessage((), None, b"\x00b"),)),
        ),
        # RFC 3502 MULTIAPPEND: each message with its own flags and date.
        (
            b'a APPEND INBOX (\\Seen) {1+}\r\nx " 3-Feb-2026 10:11:12 +0000" {2}\r\nyz {1}\r\nw',
            Append(
                "a",
                "INBOX",
                (
                    AppendMessage(("\\Seen",), None, b"x"),
                    AppendMessage((), datetime(2026, 2, 3, 10, 11, 12, tzinfo=UTC), b"yz"),
                    AppendMessage((), None, b"w"),
                ),
            ),
        ),
        # RFC 6855 §4: the UTF8 data item, alone and among plain messages.
        (
            b"a APPEND INBOX UTF8 (~{2}\r\n\xc3\xa9) (\\Seen) utf8 (~{1+}\r\nx) {1}\r\ny",
            Append(
                "a",
                "INBOX",
                (
                    AppendMessage((), None, "é".encode(), utf8=True),
                    AppendMessage(("\\Seen",), None, b"x", utf8=True),
                    AppendMessage((), None, b"y"),
                ),
            ),
        ),
        # RFC 9208 §4.
        (b"a GETQUOTAROOT inbox", MailboxCommand("a", "GETQUOTAROOT", "INBOX")),
        (b'a GETQUOTA ""', Quota("a", "GETQUOTA", "")),
        (
            b'a SETQUOTA "" (storage 512 MESSAGE 1000)',
            Quota("a", "SETQUOTA", "", (("STORAGE", 512), ("MESSAGE", 1000))),
        ),
        (b'a SETQUOTA "" ()', Quota("a", "SETQUOTA", "")),
        (b"a COMPRESS deflate", Compress("a", "DEFLATE")),
        (b'a LSUB "" *', ListCommand("a", "", ("*",), lsub=True)),
        (
            b'a LIST (SUBSCRIBED) "" ("INBOX" "Sent/%") RETURN (SPECIAL-USE CHILDREN)',
            ListCommand(
                "a",
                "",
                ("INBOX", "Sent/%"),
                select_subscribed=True,
                return_special_use=True,
                return_children=True,
                extended=True,
            ),
        ),
    ],
)
def test_commands(line: bytes, expected: object) -> None:
    assert parse_command(line) == expected


def test_fetch_items_macros_sections_and_partials() -> None:
    command = parse_command(
        b't UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From "To")]<0.100> BODY[1.2.MIME] '
        b"BODY[2.TEXT] BINARY.PEEK[1] RFC822.SIZE) (CHANGEDSINCE 7)"
    )
    assert isinstance(command, Fetch)
    assert command.uid and command.changed_since == 7
    assert command.sequence == SequenceSet(((1, None),))
    assert command.attributes == (
        FetchAttribute("UID"),
        FetchAttribute("FLAGS"),
        FetchAttribute("BODY", Section((), "HEADER.FIELDS", ("FROM", "TO")), (0, 100), peek=True),
        FetchAttribute("BODY", Section((1, 2), "MIME")),
        FetchAttribute("BODY", Section((2,), "TEXT")),
        FetchAttribute("BINARY", Section((1,)), peek=True),
        FetchAttribute("RFC822.SIZE"),
        FetchAttribute("MODSEQ"),
    )
    full = parse_command(b"t FETCH 1 FULL")
    assert isinstance(full, Fetch)
    assert [a.name for a in full.attributes] == [
        "FLAGS",
        "INTERNALDATE",
        "RFC822.SIZE",
        "ENVELOPE",
        "BODY",
    ]
    assert Section((1, 2), "HEADER.FIELDS", ("A", "B")).render() == "1.2.HEADER.FIELDS (A B)"


def test_search_keys() -> None:
    command = parse_command(
        b'a UID SEARCH RETURN (MIN COUNT) CHARSET utf-8 OR FROM bob (SEEN UNDELETED) NOT SUBJECT "x y" '
        b"1:3 UID 5,* SINCE 1-Feb-2026 LARGER 100 HEADER X-Tag {2}\r\nhi KEYWORD $Work MODSEQ 4"
    )
    assert isinstance(command, Search)
    assert command.uid and command.return_options == ("MIN", "COUNT") and command.charset == "UTF-8"
    assert command.criteria == search.And(
        (
            search.Or(
                search.From("bob"),
                search.And((search.Flag("\\Seen"), search.Flag("\\Deleted", False))),
            ),
            search.Not(search.Subject("x y")),
            SequenceRef((), SequenceSet(((1, 3),))),
            SequenceRef((), SequenceSet(((5, 5), (None, None))), uid=True),
            search.Since(date(2026, 2, 1)),
            search.Larger(100),
            search.Header("X-Tag", "hi"),
            search.Flag("$Work"),
            search.ModSeq(4),
        )
    )
    saved = parse_command(b"a SEARCH $")
    assert isinstance(saved, Search) and saved.criteria == SequenceRef((), SequenceSet(saved=True))


@pytest.mark.parametrize(
    ("text", "ranges"),
    [
        (b"1", ((1, 1),)),
        (b"*", ((None, None),)),
        (b"1:*", ((1, None),)),
        (b"2,4:7,9,12:*", ((2, 2), (4, 7), (9, 9), (12, None))),
        (b"7:3,*:5", ((7, 3), (None, 5))),
        (b"4294967295", ((4294967295, 4294967295),)),
        (
            b",".join(b"%d" % n for n in range(1, 10_000, 100)),
            tuple((n, n) for n in range(1, 10_000, 100)),
        ),
    ],
)
def test_sequence_sets(text: bytes, ranges: tuple[tuple[int | None, int | None], ...]) -> None:
    command = parse_command(b"a UID FETCH " + text + b" (UID)")
    assert isinstance(command, Fetch) and command.sequence == SequenceSet(ranges)


@pytest.mark.parametrize(
    ("line", "tag", "fragment"),
    [
        (b"", "*", "tag"),
        (b"a FETCH 1,0 FLAGS", "a", "non-zero"),
        (b"a FETCH 1:0 FLAGS", "a", "non-zero"),
        (b"a FETCH 4294967296 FLAGS", "a", "out of range"),
        (b"a FETCH 1,,2 FLAGS", "a", "number"),
        (b"a FETCH 1:2:3 FLAGS", "a", "space"),
        (b"a FETCH 1, FLAGS", "a", "number"),
        (b"a FETCH " + b"1," * 10_001 + b"1 FLAGS", "a", "too long"),
        (b"a", "a", "space"),
        (b"a FROB", "a", "unknown command"),
        (b"a LOGIN onlyuser", "a", "space"),
        (b'a LOGIN "open', "a", "unterminated"),
        (b"a FETCH 0 FLAGS", "a", "non-zero"),
        (b"a FETCH 1 (FLAGS", "a", ""),
        (b"a FETCH 1 BODY[HEADER.FIELDS ()]", "a", "empty"),
        (b"a FETCH 1 NOPE", "a", "unknown FETCH item"),
        (b"a SEARCH FLUBBER", "a", "unknown search key"),
        (b"a SEARCH SINCE 31-Feb-2026", "a", "date"),
        (b"a STORE 1 +FLAGS (\\Bogus)", "a", "system flag"),
        (b"a APPEND INBOX {10}\r\nabc", "a", "shorter"),
        (b"a APPEND INBOX UTF8 ({1}\r\nx)", "a", "literal8"),
        (b"a APPEND INBOX UTF8 (~{1}\r\nx", "a", "')'"),
        (b"a NOOP extra", "a", "end of the command"),
        (b"a FETCH 99999999999 FLAGS", "a", ""),
        (b"a SEARCH " + b"(" * 4000 + b"ALL" + b")" * 4000, "a", "nest"),
        (b"a SEARCH " + b"NOT " * 4000 + b"ALL", "a", "nest"),
        (b"a LIST (" * 4000, "a", ""),
        (b"a ID (" + b'"k" "v" ' * 31 + b")", "a", ""),
    ],
)
def test_malformed_commands_raise_parse_error(line: bytes, tag: str, fragment: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_command(line)
    assert caught.value.tag == tag
    assert fragment.lower() in caught.value.text.lower()


def test_parse_tag() -> None:
    assert parse_tag(b"x12 whatever") == "x12"
    assert parse_tag(b"+bad stuff") == "*"
    assert parse_tag(b"\xff\xfe") == "*"


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_random_bytes_only_raise_parse_error(data: bytes) -> None:
    with contextlib.suppress(ParseError):
        parse_command(data)


_TOKENS = st.sampled_from(
    [
        b"a",
        b" ",
        b"(",
        b")",
        b"[",
        b"]",
        b"<",
        b">",
        b".",
        b"*",
        b":",
        b",",
        b"1",
        b"42",
        b'"',
        b"\\",
        b"{3}\r\n",
        b"{2+}\r\n",
        b"~{1}\r\n",
        b"NIL",
        b"FETCH",
        b"UID",
        b"SEARCH",
        b"STORE",
        b"BODY",
        b"BODY.PEEK",
        b"HEADER.FIELDS",
        b"OR",
        b"NOT",
        b"FLAGS",
        b"+FLAGS",
        b"\\Seen",
        b"LIST",
        b"APPEND",
        b"RETURN",
        b"CHARSET",
        b"MODSEQ",
        b"CHANGEDSINCE",
        b"1-Feb-2026",
        b"\r\n",
        b"\x00",
        b"\xc3\xa9",
    ]
)


@settings(max_examples=800, deadline=None)
@given(st.lists(_TOKENS, max_size=40))
def test_fuzz_grammar_tokens_only_raise_parse_error(tokens: list[bytes]) -> None:
    try:
        parse_command(b"t " + b"".join(tokens))
    except ParseError as exc:
        assert exc.tag == "t"


@pytest.mark.parametrize(
    ("name", "encoded"),
    [
        ("INBOX", "INBOX"),
        ("Entwürfe", "Entw&APw-rfe"),
        ("a&b", "a&-b"),
        ("日本語", "&ZeVnLIqe-"),
        ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
    ],
)
def test_modified_utf7(name: str, encoded: str) -> None:
    assert mutf7.encode(name) == encoded
    assert mutf7.decode(encoded) == name


def test_modified_utf7_rejects_garbage() -> None:
    with pytest.raises(mutf7.MailboxNameError):
        mutf7.decode("a&Jjo")
    with pytest.raises(mutf7.MailboxNameError):
        mutf7.decode("a&@@@-")


def test_encoder_strings_and_sets() -> None:
    assert encoder.string("plain") == b'"plain"'
    assert encoder.string('q"b\\') == b'"q\\"b\\\\"'
    assert encoder.string("two\r\nlines") == b"{10}\r\ntwo\r\nlines"
    assert encoder.string("é") == b"{2}\r\n\xc3\xa9"
    assert encoder.sequence_set([1, 2, 3, 7, 9, 10]) == "1:3,7,9:10"
    assert encoder.sequence_set([5, 3, 4]) == "5,3:4"
    assert encoder.date_time(
        datetime(2026, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=-5)))
    ) == (b'" 3-Feb-2026 04:05:06 -0500"')
    assert encoder.date_time(datetime(2026, 12, 24, 23, 5, 6, tzinfo=UTC)) == (
        b'"24-Dec-2026 23:05:06 +0000"'
    )
    assert (
        encoder.tagged("a", "NO", "bad\r\nthing", "TRYCREATE") == b"a NO [TRYCREATE] bad thing\r\n"
    )


def test_select_qresync_parameters() -> None:
    from mailmark.imap.commands import QresyncParameters

    command = parse_command(
        b"a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541 (1,3 41,43)))"
    )
    assert command == Select(
        "a",
        "INBOX",
        read_only=False,
        qresync=QresyncParameters(
            67890007, 20050715194045000, SequenceSet(((41, 41), (43, 211), (214, 541)))
        ),
    )
    plain = parse_command(b"a EXAMINE x (CONDSTORE QRESYNC (1 2))")
    assert plain == Select(
        "a", "x", read_only=True, condstore=True, qresync=QresyncParameters(1, 2)
    )
    with pytest.raises(ParseError):
        parse_command(b"a SELECT INBOX (QRESYNC (0 1))")
    fetch = parse_command(b"a UID FETCH 1:* FLAGS (CHANGEDSINCE 5 VANISHED)")
    assert isinstance(fetch, Fetch) and fetch.vanished and fetch.changed_since == 5
    with pytest.raises(ParseError):
        parse_command(b"a FETCH 1:* FLAGS (CHANGEDSINCE 5 VANISHED)")
