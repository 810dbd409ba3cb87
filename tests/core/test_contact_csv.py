"""The contact CSV reader and column mapping: tables of inputs, and hypothesis for round trips."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailmark.core.contact_csv import (
    MAX_COLUMNS,
    MAX_LINE,
    CsvReader,
    CsvRow,
    csv_line,
    field_key,
    resolve_mapping,
)
from mailmark.core.errors import InvalidInput


def read(data: bytes, mapping: dict[str, str] | None = None) -> list[CsvRow | tuple[int, str]]:
    reader = CsvReader(io.BytesIO(data))
    headers = reader.header()
    return list(reader.rows(resolve_mapping(headers, mapping), len(headers)))


@pytest.mark.parametrize(
    ("headers", "given", "expected"),
    [
        (["Email"], None, {0: "email"}),
        (["E-mail", "First Name", "LASTNAME"], None, {0: "email", 1: "first_name", 2: "last_name"}),
        (["email", "Plan Type!"], None, {0: "email", 1: "field:plan_type"}),
        (["Mail", "x"], {"Mail": "email", "x": ""}, {0: "email"}),
        (["email", "Org"], {"Org": "company"}, {0: "email", 1: "company"}),
        (["email", "p"], {"p": "field:Plan"}, {0: "email", 1: "field:plan"}),
        (["email", "suppressed"], None, {0: "email"}),
    ],
)
def test_mapping(
    headers: list[str], given: dict[str, str] | None, expected: dict[int, str]
) -> None:
    assert resolve_mapping(headers, given) == expected


@pytest.mark.parametrize(
    ("headers", "given", "message"),
    [
        (["name"], None, "email"),
        (["email", "x"], {"y": "email"}, "not a column"),
        (["email", "x"], {"x": "nickname"}, "map it to one of"),
        (["email", "E-mail"], None, "Two columns"),
        (["email", "!!!"], None, "no name"),
        (["email", "x"], {"x": "field:"}, "needs a name"),
    ],
)
def test_bad_mappings(headers: list[str], given: dict[str, str] | None, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as refused:
        resolve_mapping(headers, given)
    assert refused.value.field == "mapping"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b" , \n", "blank"),
        (b"email\n\xff\xfe@example.com\n", "not UTF-8"),
        (b"email\n" + b"a" * (MAX_LINE + 1) + b"\n", "longer than"),
        (",".join(["c"] * (MAX_COLUMNS + 1)).encode() + b"\n", "columns"),
        (b'email\n"unterminated\n', "not valid CSV"),
    ],
)
def test_files_refused_as_a_whole(data: bytes, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        read(data)


def test_rows_are_numbered_as_a_spreadsheet_does() -> None:
    data = '\ufeffemail,name\n"a@x.test","two\nlines"\n\nb@x.test,B,extra\nc@x.test\n'.encode()

    rows = read(data, {"name": "first_name"})

    assert rows == [
        CsvRow(2, {"email": "a@x.test", "first_name": "two\nlines"}),
        (4, "This row has 3 columns; the header has 2."),
        CsvRow(5, {"email": "c@x.test"}),
    ]


def test_progress_counts_the_bytes_read() -> None:
    data = b"email\n" + b"".join(b"u%d@x.test\n" % n for n in range(100))
    reader = CsvReader(io.BytesIO(data))
    reader.header()
    list(reader.rows({0: "email"}, 1))
    assert reader.bytes_read == len(data)


@pytest.mark.parametrize(
    ("header", "key"), [("Plan", "plan"), (" Plan Type ", "plan_type"), ("!", "")]
)
def test_field_keys(header: str, key: str) -> None:
    assert field_key(header) == key


@given(
    st.lists(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=20), max_size=8)
)
def test_csv_line_reads_back(cells: list[str]) -> None:
    [back] = list(csv.reader(io.StringIO(csv_line(cells), newline=""))) or [[]]
    assert len(back) == len(cells)
    for written, cell in zip(back, cells, strict=True):
        # As it was, or marked as text when a spreadsheet would run it as a formula.
        assert written == cell or (written == "'" + cell and cell.lstrip("'")[:1] in "=+-@\t\r")
    # Read back by the importer, an exported row is what was written.
    header = csv_line([f"c{n}" for n in range(len(cells))])
    if cells and any(cell.strip() for cell in cells):
        reader = CsvReader(io.BytesIO((header + csv_line(cells)).encode()))
        headers = reader.header()
        [row] = list(reader.rows(dict(enumerate(headers)), len(headers)))
        assert isinstance(row, CsvRow)
        assert list(row.values.values()) == cells


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ('=HYPERLINK("http://evil.test")', '\'=HYPERLINK("http://evil.test")'),
        ("+1 555 0100 call me", "'+1 555 0100 call me"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("-5", "-5"),
        ("+12.5", "+12.5"),
        ("Ann", "Ann"),
        ("'quoted", "'quoted"),
        ("'=1+1", "''=1+1"),
    ],
)
def test_a_cell_a_spreadsheet_would_run_is_written_as_text(cell: str, written: str) -> None:
    assert next(csv.reader(io.StringIO(csv_line([cell]), newline=""))) == [written]


@pytest.mark.parametrize("cell", ["'=1+1", "''=x", "'-5", "'\tx", "'quoted", "''", "=x", "-5"])
def test_a_cell_with_apostrophes_imports_back_as_it_was(cell: str) -> None:
    reader = CsvReader(io.BytesIO((csv_line(["c", "d"]) + csv_line([cell, "x"])).encode()))
    assert reader.header() == ["c", "d"]
    [row] = list(reader.rows({0: "c"}, 2))
    assert isinstance(row, CsvRow)
    assert row.values == {"c": cell}
