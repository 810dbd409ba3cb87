"""Reading contact CSV files: a header row, a column mapping, and one contact (or one row error)
per data row. Pure: it reads a binary file object and returns values or raises `InvalidInput`.

RFC 4180 is the format (quoted fields may hold commas and line breaks); a UTF-8 byte order mark
is accepted, as spreadsheet programs write one.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import BinaryIO

from mailmark.core.errors import InvalidInput

MAX_LINE = 64 * 1024  # bytes of one physical line
MAX_COLUMNS = 200
READ_CHUNK = 64 * 1024
EMAIL, FIRST_NAME, LAST_NAME, COMPANY, TAGS, STATUS = (
    "email",
    "first_name",
    "last_name",
    "company",
    "tags",
    "status",
)
STANDARD = (EMAIL, FIRST_NAME, LAST_NAME, COMPANY, TAGS, STATUS)
SKIP = ""  # a mapping to "" leaves the column out
FIELD_PREFIX = "field:"  # "field:plan" puts the column in the custom field "plan"
# Header spellings understood without a mapping.
_ALIASES = {
    "email": EMAIL,
    "e-mail": EMAIL,
    "email address": EMAIL,
    "emailaddress": EMAIL,
    "first name": FIRST_NAME,
    "firstname": FIRST_NAME,
    "first_name": FIRST_NAME,
    "last name": LAST_NAME,
    "lastname": LAST_NAME,
    "last_name": LAST_NAME,
    "company": COMPANY,
    "tags": TAGS,
    "status": STATUS,
    "suppressed": SKIP,  # written by an export; the suppression list decides it, not a file
}
_FIELD_KEY_CHARS = re.compile(r"[^a-z0-9_]+")


@dataclass(frozen=True)
class CsvRow:
    number: int  # 1 is the header; the first data row is 2, as a spreadsheet numbers it
    values: dict[str, str] = field(default_factory=dict)  # target → cell; "field:x" for custom


def field_key(header: str) -> str:
    """The custom field a column header becomes: lower case, letters, digits and underscores."""
    return _FIELD_KEY_CHARS.sub("_", header.strip().lower()).strip("_")[:64]


def guess_target(header: str) -> str | None:
    """What a column becomes when the mapping does not name it: a standard field for the usual
    spellings, else the custom field of its name; None when the header gives no such name."""
    guessed = _ALIASES.get(header.strip().lower())
    if guessed is not None:
        return guessed
    key = field_key(header)
    return FIELD_PREFIX + key if key else None


def resolve_mapping(headers: list[str], given: Mapping[str, str] | None) -> dict[int, str]:
    """Column index → target ("email", "first_name", …, "field:<key>"), columns mapped to ""
    left out. `given` maps header text to a target; unmapped headers are guessed."""
    given = dict(given or {})
    unknown = sorted(set(given) - set(headers))
    if unknown:
        raise InvalidInput(
            f"The mapping names {unknown[0]!r}, which is not a column of the header row.",
            field="mapping",
        )
    targets: dict[int, str] = {}
    for index, header in enumerate(headers):
        if header in given:
            target = given[header].strip()
            if target.startswith(FIELD_PREFIX):
                key = field_key(target[len(FIELD_PREFIX) :])
                if not key:
                    raise InvalidInput(
                        f"The custom field for column {header!r} needs a name.", field="mapping"
                    )
                target = FIELD_PREFIX + key
            elif target not in STANDARD and target != SKIP:
                raise InvalidInput(
                    f"Column {header!r} is mapped to {target!r}: map it to one of "
                    f"{', '.join(STANDARD)}, 'field:<name>' or '' to leave it out.",
                    field="mapping",
                )
        else:
            guessed = guess_target(header)
            if guessed is None:
                raise InvalidInput(
                    f"Column {index + 1} ({header!r}) has no name a custom field can take: "
                    "map it to a field or to '' to leave it out.",
                    field="mapping",
                )
            target = guessed
        if target == SKIP:
            continue
        if target in targets.values():
            raise InvalidInput(f"Two columns are mapped to {target!r}.", field="mapping")
        targets[index] = target
    if EMAIL not in targets.values():
        raise InvalidInput(
            "No column holds the email address: name one 'email' or map it.", field="mapping"
        )
    return targets


class CsvReader:
    """Rows of a contact CSV, read a line at a time from a binary file; `bytes_read` counts what
    was consumed so far, for progress."""

    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self.bytes_read = 0
        self._line_number = 0
        self._reader = csv.reader(self._lines(), strict=True)

    def _lines(self) -> Iterator[str]:
        while True:
            line = self._source.readline(MAX_LINE + 1)
            if not line:
                tail = self._decoder.decode(b"", final=True)
                if tail:
                    yield tail
                return
            self._line_number += 1
            self.bytes_read += len(line)
            if len(line) > MAX_LINE:
                raise InvalidInput(
                    f"Line {self._line_number} is longer than {MAX_LINE} bytes: is this a CSV file?"
                )
            try:
                yield self._decoder.decode(line)
            except UnicodeDecodeError:
                raise InvalidInput(
                    f"Line {self._line_number} is not UTF-8 text: save the file as "
                    "CSV UTF-8 and upload it again."
                ) from None

    def header(self) -> list[str]:
        row = self._next()
        if row is None:
            raise InvalidInput("The file is empty: the first row names the columns.")
        headers = [cell.strip() for cell in row]
        if not any(headers):
            raise InvalidInput("The first row is blank: it must name the columns.")
        return headers

    def _next(self) -> list[str] | None:
        try:
            row = next(self._reader)
        except StopIteration:
            return None
        except csv.Error as error:
            raise InvalidInput(f"Line {self._line_number} is not valid CSV: {error}.") from None
        if len(row) > MAX_COLUMNS:
            raise InvalidInput(f"Line {self._line_number} has more than {MAX_COLUMNS} columns.")
        return row

    def rows(self, targets: Mapping[int, str], width: int) -> Iterator[CsvRow | tuple[int, str]]:
        """Each data row mapped to targets, or (row number, reason) for a row of the wrong shape.
        Blank lines are passed over."""
        number = 1
        while (row := self._next()) is not None:
            number += 1
            if not any(cell.strip() for cell in row):
                continue
            if len(row) > width:
                yield number, f"This row has {len(row)} columns; the header has {width}."
                continue
            yield CsvRow(
                number,
                {
                    target: _unguarded(row[index])
                    for index, target in targets.items()
                    if index < len(row)
                },
            )


# A cell a spreadsheet program would run as a formula starts with one of these (OWASP "CSV
# injection"): contact names, companies and fields come from imports and strangers' mail.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")


def csv_line(cells: list[str]) -> str:
    """One CSV record (RFC 4180: CRLF line ends, quotes only where needed). A cell that a
    spreadsheet would read as a formula gets a leading apostrophe, which it shows as text;
    `_unguarded` takes it off again when such a file is imported."""
    out = _LineBuffer()
    csv.writer(out).writerow([_guarded(cell) for cell in cells])
    return out.text


def _guarded(cell: str) -> str:
    # A cell that already looks guarded is guarded again, so that the import gives it back whole.
    if (cell.startswith(_FORMULA_START) and not _NUMBER.fullmatch(cell)) or _looks_guarded(cell):
        return "'" + cell
    return cell


def _unguarded(cell: str) -> str:
    return cell[1:] if _looks_guarded(cell) else cell


def _looks_guarded(cell: str) -> bool:
    """Apostrophes, then what a spreadsheet would run: `_guarded` put the first one there."""
    rest = cell.lstrip("'")
    return rest != cell and rest.startswith(_FORMULA_START)


class _LineBuffer:
    text = ""

    def write(self, text: str) -> int:
        self.text += text
        return len(text)
