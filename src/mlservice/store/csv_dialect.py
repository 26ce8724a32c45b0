"""How a CSV file is written: which delimiter it uses, read from its header line.

Shared by data set uploads (:mod:`.dataset_files`) and CSV prediction bodies
(:mod:`mlservice.serving.formats`), so a file is read the same way whichever
route it takes.
"""

from __future__ import annotations

#: The CSV delimiters recognised, in order of preference on a tie.
DELIMITERS = (",", ";", "\t", "|")
DEFAULT_DELIMITER = ","


def detect_delimiter(head: bytes) -> str:
    """The delimiter of a CSV file from the start of its bytes: of ``,`` ``;`` tab ``|``,
    the one occurring most in the header line outside double quotes (``,`` if none does)."""
    counts = dict.fromkeys(DELIMITERS, 0)
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
    best = max(DELIMITERS, key=lambda delimiter: counts[delimiter])  # first on a tie
    return best if counts[best] else DEFAULT_DELIMITER
