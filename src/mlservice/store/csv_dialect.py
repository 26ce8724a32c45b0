"""How a CSV file is written: which delimiter it uses and how wide it is, read from its
header line; whether its numbers have decimal commas (``3,5``), read from its first lines;
and what is wrong with one pyarrow could not parse, in a user's words.

Shared by data set uploads (:mod:`.dataset_files`) and CSV prediction bodies
(:mod:`mlservice.serving.formats`), so a file is read the same way whichever
route it takes.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

#: The CSV delimiters recognised, in order of preference on a tie.
DELIMITERS = (",", ";", "\t", "|")
DEFAULT_DELIMITER = ","
#: The decimal marks recognised: a point (``3.5``) or a comma (``3,5``).
DECIMALS = (".", ",")
DEFAULT_DECIMAL = "."
#: How many lines after the header the decimal mark is looked for in.
DECIMAL_SCAN_LINES = 200
_COMMA_NUMBER = re.compile(r"^\s*[+-]?\d*,\d+\s*$")
_POINT_NUMBER = re.compile(r"^\s*[+-]?\d*\.\d+\s*$")


@dataclass(frozen=True)
class CsvDialect:
    """How a CSV data set is read: its delimiter, its decimal mark, and whether its first
    column is an unnamed index (written by pandas' ``DataFrame.to_csv()``) left out."""

    delimiter: str = DEFAULT_DELIMITER
    decimal: str = DEFAULT_DECIMAL
    skip_first: bool = False


def detect_decimal(head: bytes, delimiter: str) -> str:
    """``,`` when the first lines after the header have numbers written with a decimal comma
    and none with a decimal point (only where the delimiter is not a comma), else ``.``."""
    if delimiter == ",":
        return DEFAULT_DECIMAL
    text = head.decode("utf-8", errors="replace")
    lines = io.StringIO(text)
    lines.readline()  # the header
    commas = points = 0
    try:
        for index, row in enumerate(csv.reader(lines, delimiter=delimiter)):
            if index >= DECIMAL_SCAN_LINES:
                break
            for cell in row:
                commas += bool(_COMMA_NUMBER.match(cell))
                points += bool(_POINT_NUMBER.match(cell))
    except csv.Error:  # a cut line at the end of ``head``, or a broken quote: what was read
        pass
    return "," if commas and not points else DEFAULT_DECIMAL


def detect_delimiter(head: bytes) -> str:
    """The delimiter of a CSV file from the start of its bytes: of ``,`` ``;`` tab ``|``,
    the one occurring most in the header line outside double quotes (``,`` if none does)."""
    counts = _header_counts(head)
    best = max(DELIMITERS, key=lambda delimiter: counts[delimiter])  # first on a tie
    return best if counts[best] else DEFAULT_DELIMITER


def header_width(head: bytes, delimiter: str) -> int:
    """How many columns the header line names, from its delimiters outside double quotes.

    Counted on the bytes given, before any CSV parser sees the file: a header of
    100,000 names costs a parser seconds and a gigabyte, this a single pass. A
    header longer than ``head`` counts only the columns ``head`` holds.
    """
    return _header_counts(head)[delimiter] + 1


def _header_counts(head: bytes) -> dict[str, int]:
    """How often each delimiter occurs in the header line, outside double quotes."""
    counts = dict.fromkeys(DELIMITERS, 0)
    line = head.split(b"\n", 1)[0].split(b"\r", 1)[0] if b'"' not in head else None
    if line is not None:  # no quotes: counted in C
        return {delimiter: line.count(delimiter.encode()) for delimiter in DELIMITERS}
    quoted = False
    for byte in head:
        char = chr(byte)
        if char == '"':
            quoted = not quoted
        elif quoted:
            continue
        elif char in "\r\n":
            break
        elif char in counts:
            counts[char] += 1
    return counts


#: pyarrow's words for a row with more or fewer fields than the header.
_CSV_RAGGED = re.compile(r"(?:Row #(\d+): )?Expected (\d+) columns, got (\d+)")


def parse_problem(message: str, delimiter: str) -> str:
    """What is wrong with a CSV file pyarrow could not parse, and the fix, in a user's words."""
    ragged = _CSV_RAGGED.search(message)
    if ragged:
        line, expected, got = ragged.groups()
        row = f"row {int(line) - 2}" if line else "a row"  # rows from 0, after the header
        fields = "1 field" if got == "1" else f"{got} fields"
        return (
            f"{row} has {fields} where the header has {expected}; give every row one value "
            f"per column, and quote text that holds the delimiter {delimiter!r}"
        )
    if "UTF8" in message or "UTF-8" in message:
        return "it is not UTF-8 text; save it as UTF-8"
    if "straddling" in message or "block size" in message:
        return "a row or header is too long to read; keep each line under 1 MiB"
    return "it is not a CSV table (one header line, then one line per row)"
