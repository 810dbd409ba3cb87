"""The Sieve grammar, checks and interpreter (RFC 5228, 5232, 5230, 3894, 5173), as tables of
scripts and messages, plus the dashboard's simple rules written as Sieve and read back."""

from __future__ import annotations

from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailmark.core.errors import InvalidInput
from mailmark.core.sieve.compiler import compile_script
from mailmark.core.sieve.interpreter import (
    MAX_BODY_TEXT,
    Copy,
    SieveMessage,
    SieveRuntimeError,
    run,
)
from mailmark.core.sieve.simple_rules import SimpleRule, rules_to_sieve, sieve_to_rules
from mailmark.core.sieve.syntax import MAX_NESTING, MAX_SCRIPT_BYTES, SieveSyntaxError, parse

REQUIRE_ALL = (
    'require ["fileinto", "imap4flags", "copy", "vacation", "envelope", "body", "mailbox"];\n'
)

MESSAGE = (
    b"From: Ann Example <ann@Example.org>\r\n"
    b"To: sales@acme.test, Bob <bob@acme.test>\r\n"
    b"Subject: Invoice 42 is due\r\n"
    b"List-Id: <news.example.org>\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Please pay the invoice by Friday.\r\n"
)


def parsed(raw: bytes = MESSAGE) -> EmailMessage:
    message = BytesParser(policy=default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    return message


def outcome(script: str, raw: bytes = MESSAGE, mail_from: str = "bounce@example.org"):  # type: ignore[no-untyped-def]
    return run(
        compile_script(script), SieveMessage(parsed(raw), len(raw), mail_from, "sales@acme.test")
    )


def folders(script: str, **kwargs: object) -> list[str | None]:
    return [copy.folder for copy in outcome(script, **kwargs).copies]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("script", "line", "reason"),
    [
        ('fileinto "x";', 1, 'fileinto needs require "fileinto" at the top of the script'),
        ("if true { keep }", 1, "expected \";\" after keep, found '}'"),
        ('require "regex";', 1, 'the extension "regex" is not supported'),
        ('keep;\nrequire "fileinto";', 2, "require must come before every other command"),
        ('\n\nif header :is "subject" {\n}', 3, "header takes header names and keys to compare"),
        ('redirect "not an address";', 1, "redirect needs an email address"),
        ("\nif true {\n keep;\n", 2, 'opened here with "{" is never closed'),
        ('if header :contains "subject" "x" { frobnicate; }', 1, 'unknown command "frobnicate"'),
        ('if header :bogus "subject" "x" { keep; }', 1, "header has no :bogus argument"),
        ('if header :is :contains "a" "b" { keep; }', 1, "only one of :is, :contains may be"),
        ("else { keep; }", 1, "else without an if before it"),
        ('keep;\n"stray";', 2, "expected a command name"),
        ("if true { keep; }}", 1, 'a "}" closes no block'),
        ("/* never closed\nkeep;", 1, "never closed with */"),
        ('require "vacation";\nvacation :mime "x";', 2, "vacation :mime is not supported"),
        ("if size :over :under 1 { keep; }", 1, "size needs one of :over or :under"),
        ('require "fileinto";\nfileinto :copy "a";', 2, 'fileinto needs require "copy"'),
        ('if header :comparator "i;unicode-casemap" :is "a" "b" { keep; }', 1, "comparator"),
        ('if envelope :is "subject" "x" { keep; }', 1, 'envelope needs require "envelope"'),
        ("text:\nhello\n", 1, 'never ended by a line with "."'),
    ],
)
def test_a_script_that_cannot_run_is_refused_with_its_line(
    script: str, line: int, reason: str
) -> None:
    with pytest.raises(SieveSyntaxError) as refused:
        compile_script(script)
    assert refused.value.line == line
    assert reason in refused.value.reason


def test_bounds_on_size_and_nesting() -> None:
    with pytest.raises(SieveSyntaxError, match="larger than 64 KiB"):
        parse("#" * (MAX_SCRIPT_BYTES + 1))
    deep = "if true {" * (MAX_NESTING + 1) + "}" * (MAX_NESTING + 1)
    with pytest.raises(SieveSyntaxError, match="nested deeper"):
        parse(deep)
    tests = "not " * (MAX_NESTING + 1) + "true"
    with pytest.raises(SieveSyntaxError, match="nested deeper"):
        parse(f"if {tests} {{ keep; }}")
    parse("if true {" * MAX_NESTING + "}" * MAX_NESTING)


def test_strings_escapes_multiline_and_comments() -> None:
    script = compile_script(
        REQUIRE_ALL
        + '# a comment\n/* a bracketed\n comment */ vacation :subject "say \\"hi\\" \\\\ \\q" text:\r\n'
        + "Away until Monday.\n..not a terminator\n.\n;\n"
    )
    result = run(script, SieveMessage(parsed(), 10, "a@b.example", "sales@acme.test"))
    [reply] = result.replies
    assert reply.subject == 'say "hi" \\ q'
    assert reply.reason == "Away until Monday.\n.not a terminator\n"
    assert result.copies == (Copy(None, ()),)  # vacation keeps the implicit keep


@pytest.mark.parametrize(
    ("test", "expected"),
    [
        ('header :contains "subject" "invoice"', True),  # i;ascii-casemap by default
        ('header :comparator "i;octet" :contains "subject" "invoice"', False),
        ('header :is "subject" "invoice 42 is due"', True),
        ('header :matches "subject" "Invoice ?? is *"', True),
        ('header :matches "subject" "Invoice \\\\* is*"', False),
        ('header :contains ["x-missing", "subject"] ["nothing", "due"]', True),
        ('address :domain :is "from" "example.org"', True),
        ('address :localpart :is "to" "bob"', True),
        ('address :all :is "from" "Ann Example"', False),
        ('envelope :domain :is "from" "example.org"', True),
        ('envelope :localpart :is "to" "sales"', True),
        ('exists ["list-id", "subject"]', True),
        ('exists ["list-id", "x-spam"]', False),
        ("size :over 100", True),
        ("size :under 1K", True),
        ('body :contains "pay the invoice"', True),
        ('body :text :matches "*friday*"', True),
        ('not body :contains "pay"', False),
        ('allof(true, header :contains "subject" "42")', True),
        ('anyof(false, not exists "subject")', False),
    ],
)
def test_tests(test: str, expected: bool) -> None:
    kept = folders(REQUIRE_ALL + f'if {test} {{ fileinto "Hit"; }}')
    assert (kept == ["Hit"]) is expected


def test_imap4flags_follow_the_internal_variable() -> None:
    result = outcome(
        REQUIRE_ALL
        + 'addflag ["\\\\Seen", "$Work"];\n'
        + 'fileinto "Work";\n'
        + 'removeflag "$Work";\n'
        + 'addflag "\\\\Flagged";\n'
        + 'if hasflag :is "\\\\flagged" { fileinto :flags "urgent later" "Later"; }\n'
    )
    assert result.copies == (
        Copy("Work", ("\\Seen", "$Work")),
        Copy("Later", ("urgent", "later")),
    )


def test_implicit_keep_redirect_copy_and_discard() -> None:
    assert folders("keep;") == [None]
    assert folders(REQUIRE_ALL + 'fileinto :copy "Archive";') == ["Archive", None]
    assert folders(REQUIRE_ALL + 'fileinto "Archive";') == ["Archive"]
    assert folders("discard;") == []
    moved = outcome('redirect "a@else.example"; redirect "A@else.example";')
    assert moved.copies == () and moved.redirects == ("a@else.example",)
    copied = outcome(REQUIRE_ALL + 'redirect :copy "a@else.example";')
    assert copied.copies == (Copy(None, ()),) and copied.redirects == ("a@else.example",)
    assert folders(REQUIRE_ALL + 'discard; stop; fileinto "Never";') == []
    flagged = outcome(REQUIRE_ALL + 'setflag "\\\\Seen";')
    assert flagged.copies == (Copy(None, ("\\Seen",)),)


def test_run_time_bounds_are_errors() -> None:
    redirects = "".join(f'redirect :copy "r{n}@else.example";\n' for n in range(5))
    with pytest.raises(SieveRuntimeError, match="more than 4 times"):
        outcome(REQUIRE_ALL + redirects)
    with pytest.raises(SieveRuntimeError, match="vacation twice"):
        outcome(REQUIRE_ALL + 'vacation "a"; vacation "b";')
    with pytest.raises(SieveRuntimeError, match="actions"):
        outcome(REQUIRE_ALL + 'addflag "a";\n' * 65)


def test_vacation_arguments() -> None:
    [reply] = outcome(
        REQUIRE_ALL
        + 'vacation :days 0 :from "me@acme.test" :addresses ["alias@acme.test"] '
        + ':handle "h1" "Out of office";'
    ).replies
    assert (reply.days, reply.from_address, reply.addresses, reply.handle) == (
        1,
        "me@acme.test",
        ("alias@acme.test",),
        "h1",
    )


def test_the_body_test_reads_a_bounded_amount_of_text() -> None:
    raw = MESSAGE + b"x" * (MAX_BODY_TEXT + 10) + b"needle\r\n"
    assert folders(REQUIRE_ALL + 'if body :contains "needle" { fileinto "Hit"; }', raw=raw) == [
        None
    ]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list('if{}()[];,:" \n\\#*/text.01Kabc')), max_size=200))
def test_the_parser_only_ever_refuses_with_a_line(text: str) -> None:
    try:
        compile_script(text)
    except SieveSyntaxError as error:
        assert error.line >= 1


def test_simple_rules_round_trip_and_hand_edits_are_text_only() -> None:
    rules = [
        SimpleRule("from", "contains", 'boss "the" \\ man', "flag"),
        SimpleRule("header", "is", "news.example.org", "move", header="List-Id", target="News"),
        SimpleRule("subject", "matches", "*sale*", "forward", target="me@else.example"),
        SimpleRule("to", "is", "old@acme.test", "discard"),
        SimpleRule("subject", "contains", "receipt", "read"),
    ]
    script = rules_to_sieve(rules)
    compile_script(script)
    assert 'header :is "list-id" "news.example.org"' in script
    assert 'redirect :copy "me@else.example";' in script
    assert sieve_to_rules(script) == rules
    assert sieve_to_rules(script.replace("discard;", "keep;")) is None
    assert sieve_to_rules('require "fileinto";\nfileinto "x";\n') is None
    with pytest.raises(InvalidInput, match="Rule 1: give the address"):
        rules_to_sieve([SimpleRule("from", "is", "x", "forward", target="nowhere")])


def test_headers_are_unfolded_and_decoded() -> None:
    raw = (
        b"From: =?utf-8?q?J=C3=BCrgen?= <j@example.de>\r\n"
        b"Subject: =?utf-8?b?R3LDvMOfZQ==?= aus\r\n Berlin\r\n"
        b"\r\nHallo\r\n"
    )
    script = 'if header :is "subject" "Grüße aus Berlin" { discard; }'
    assert folders(script, raw=raw) == []
    assert folders('if header :contains "from" "Jürgen" { discard; }', raw=raw) == []
