"""What each column of a data set is for: the role its profile gives it, and the evidence.

A role says how a model uses a column by default (see ``docs/tables.md``):

* ``numeric``: integer or float values, imputed and scaled;
* ``categorical``: text or booleans with few distinct values, one-hot encoded
  (rare values grouped when there are many);
* ``datetime``: dates, which become year, month, day of week and ordinal;
* ``text``: free text (several words a value, most values different): TF-IDF;
* ``id``: unique or nearly so per row, left out of models;
* ``constant``: one value (or none), left out of models.

Thresholds (counted on the non-missing values; "distinct" is exact up to
10,000 distinct values):

* ``constant``: at most 1 distinct value;
* ``datetime``: a date or timestamp column, or text of which at least
  :data:`DATE_PARSE_RATE` of the distinct values examined (up to
  :data:`DATE_SAMPLE`; only the first :data:`DATE_PROBE` when those are not
  dates enough) parse as dates (a value needs a digit and must not be a plain
  number);
* ``text``: text with at least :data:`TEXT_MEAN_WORDS` words a value on average and a
  distinct ratio of at least :data:`TEXT_DISTINCT_RATIO`, in :data:`MIN_ROWS` rows or more;
* ``id``: text with a distinct ratio of at least :data:`ID_DISTINCT_RATIO`, or integers all
  different and dense (their span at most :data:`ID_SPAN_FACTOR` times the rows), in
  :data:`MIN_ROWS` rows or more;
* otherwise ``numeric`` (integers, floats) or ``categorical`` (text, booleans).

Integer years are numbers until a training request says ``"Year": "datetime"``.
The evidence (distinct ratio, date parse rate, words per value, examples and a
sentence) goes with the role, so a user can see why and decide otherwise.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from enum import StrEnum
from typing import Any, NotRequired, TypedDict

import pandas as pd


class Role(StrEnum):
    """A column's role in a data set's profile."""

    NUMERIC = "numeric"
    CATEGORICAL = "categorical"
    DATETIME = "datetime"
    TEXT = "text"
    ID = "id"
    CONSTANT = "constant"


#: The roles a training request may give a column (``"columns": {name: role}``).
OVERRIDES = ("numeric", "categorical", "datetime", "text", "ignore")
#: Roles a model leaves out by default.
LEFT_OUT = frozenset({Role.ID, Role.CONSTANT})

DATE_PARSE_RATE = 0.95
DATE_SAMPLE = 1000
DATE_PROBE = 20
TEXT_MEAN_WORDS = 4.0
TEXT_DISTINCT_RATIO = 0.5
ID_DISTINCT_RATIO = 0.6
ID_SPAN_FACTOR = 2.0
MIN_ROWS = 20
EXAMPLES = 5

_PLAIN_NUMBER = re.compile(r"^\s*[-+]?(\d+([.,]\d*)?|[.,]\d+)([eE][-+]?\d+)?\s*$")
_DIGIT = re.compile(r"\d")


class RoleEvidence(TypedDict):
    """Why a column has its role: the counts the thresholds were applied to."""

    distinct_ratio: float  # distinct values / non-missing values
    examples: list[str]
    reason: str
    parse_rate: NotRequired[float]  # text columns: share of distinct values that are dates
    mean_words: NotRequired[float]  # text columns: words a distinct value, on average


def detect(
    dtype: str,
    present: int,
    distinct: int,
    values: Sequence[Any],
    integer_span: int | None = None,
) -> tuple[Role, RoleEvidence]:
    """The role of a column of ``dtype`` (the profile's) with ``present`` non-missing values
    and ``distinct`` distinct ones, ``values`` some of them; ``integer_span`` is an integer
    column's max - min + 1."""
    ratio = round(distinct / present, 4) if present else 0.0
    examples = [str(value) for value in list(values)[:EXAMPLES]]
    evidence: RoleEvidence = {"distinct_ratio": ratio, "examples": examples, "reason": ""}
    counts = f"{distinct} distinct values in {present} non-missing rows"
    if distinct <= 1:
        return _said(Role.CONSTANT, evidence, f"it has {distinct} distinct value(s)")
    if dtype == "datetime":
        return _said(Role.DATETIME, evidence, "its values are dates or timestamps")
    if dtype == "integer":
        dense = integer_span is not None and integer_span <= ID_SPAN_FACTOR * present
        if present >= MIN_ROWS and distinct == present and dense:
            return _said(Role.ID, evidence, f"its integers are all different ({counts})")
        return _said(Role.NUMERIC, evidence, "its values are numbers")
    if dtype == "float":
        return _said(Role.NUMERIC, evidence, "its values are numbers")
    if dtype != "string":
        return _said(Role.CATEGORICAL, evidence, f"its values are {dtype}")
    texts = [str(value) for value in values]
    evidence["parse_rate"] = parse_rate(texts)
    evidence["mean_words"] = (
        round(sum(len(text.split()) for text in texts) / len(texts), 2) if texts else 0.0
    )
    if evidence["parse_rate"] >= DATE_PARSE_RATE:
        return _said(
            Role.DATETIME, evidence, f"{evidence['parse_rate']:.0%} of its values parse as dates"
        )
    if present >= MIN_ROWS:
        if evidence["mean_words"] >= TEXT_MEAN_WORDS and ratio >= TEXT_DISTINCT_RATIO:
            return _said(
                Role.TEXT,
                evidence,
                f"its values have {evidence['mean_words']} words on average ({counts})",
            )
        if ratio >= ID_DISTINCT_RATIO:
            return _said(Role.ID, evidence, f"it is unique or nearly so per row ({counts})")
    return _said(Role.CATEGORICAL, evidence, f"it is text with {counts}")


def _said(role: Role, evidence: RoleEvidence, reason: str) -> tuple[Role, RoleEvidence]:
    evidence["reason"] = reason
    return role, evidence


def parse_rate(texts: Sequence[str]) -> float:
    """The share of the values examined that parse as dates: each needs a digit, must not be
    a plain number, and must be read by pandas' parser. The first :data:`DATE_PROBE` values
    are examined first, and the rest (up to :data:`DATE_SAMPLE`) only if those are dates
    enough: a wide file of codes costs little."""
    sample = list(texts)[:DATE_SAMPLE]
    if not sample:
        return 0.0
    probe = _parsed_share(sample[:DATE_PROBE])
    if probe < DATE_PARSE_RATE or len(sample) <= DATE_PROBE:
        return probe
    return _parsed_share(sample)


def _parsed_share(sample: list[str]) -> float:
    """The share of ``sample`` that parses as dates (ISO 8601 first, fast; then any format)."""
    candidates = [text for text in sample if _DIGIT.search(text) and not _PLAIN_NUMBER.match(text)]
    if not candidates:
        return 0.0
    column = pd.Series(candidates, dtype=object).str.strip()
    with warnings.catch_warnings():  # pandas' "day first?" notes
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(column, format="ISO8601", errors="coerce", utc=True)
        rest = parsed.isna()
        if rest.any():
            parsed[rest] = pd.to_datetime(column[rest], format="mixed", errors="coerce", utc=True)
    return round(float(parsed.notna().sum()) / len(sample), 4)
