"""The model pipeline's own steps for dates and free text, and the date parse serving shares.

A date column reaches the model as its raw values ("1971-01-01", "01/02/1971",
the integer 1971, a timestamp) and leaves :class:`DateFeatures` as four
numbers: year, month, day of week (Monday 0) and ordinal (days since
1970-01-01, fractional with the time of day). A value is parsed
(:func:`parse_dates`) as a year if it is an integer (or the text of one) of
one to four digits, else with the format the training values were written in
(guessed from them at fit), else as pandas reads a date of any format. A free
text column goes through :class:`TextColumn` (missing values become empty
text) into a TF-IDF vectorizer.

These classes live in a module of their own, with no import from the rest of
the package, because a pickled pipeline names them: a bundle opened elsewhere
needs this file and scikit-learn, pandas and numpy, nothing else. The service's
file is ``src/mlservice/table_features.py``; the client package carries the same
file as ``mlservice_client/table_features.py``, with which ``load_model`` opens a
bundle without the server (a unit test keeps the two identical: edit both).
"""

from __future__ import annotations

import re
import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

#: The features one date column becomes, in order (see the module's docstring).
DATE_FEATURES = ("year", "month", "day_of_week", "ordinal")
#: A year written alone: one to four digits (``1971``, ``1971.0`` from a float column).
_YEAR = re.compile(r"^\s*(\d{1,4})(?:\.0*)?\s*$")
_EPOCH = pd.Timestamp("1970-01-01")


class BadDate(ValueError):
    """A value that is neither missing nor a date; ``position`` is its row."""

    def __init__(self, value: Any, position: int) -> None:
        super().__init__(f"{value!r} is not a date (row {position})")
        self.value = value
        self.position = position


def guess_format(values: Any, sample: int = 200) -> str | None:
    """The strftime format most of the first ``sample`` dates written as text in ``values``
    follow (day or month first: whichever reads more of them), if pandas can tell
    (``None``: every value is parsed as pandas reads any date)."""
    texts = [
        value.strip()
        for value in values
        if isinstance(value, str) and value.strip() and not _YEAR.match(value)
    ][:sample]
    candidates: list[str] = []
    with warnings.catch_warnings():  # "day first?": the count below decides
        warnings.simplefilter("ignore")
        for text in texts[:20]:
            for dayfirst in (False, True):
                found = pd.tseries.api.guess_datetime_format(text, dayfirst=dayfirst)
                if found and found not in candidates:
                    candidates.append(found)
    if not candidates:
        return None
    column = pd.Series(texts, dtype=object)
    counts = [
        int(pd.to_datetime(column, format=candidate, errors="coerce").notna().sum())
        for candidate in candidates
    ]
    return candidates[counts.index(max(counts))]


def parse_dates(values: Any, date_format: str | None = None, coerce: bool = False) -> pd.Series:
    """``values`` as datetimes (missing: NaT); :class:`BadDate` names the first value that is
    neither missing nor a date (with ``coerce``, such a value is NaT instead). Time zones are
    converted to UTC, then dropped."""
    series = pd.Series(np.asarray(values, dtype=object), dtype=object).reset_index(drop=True)
    parsed = pd.Series(pd.NaT, index=series.index, dtype="datetime64[ns]")
    missing = series.isna()
    pending = ~missing
    years = series[pending].map(_year)
    known = years.notna()
    if known.any():
        parsed[known[known].index] = pd.to_datetime(
            {"year": years[known].astype("int64"), "month": 1, "day": 1}
        ).astype("datetime64[ns]")
        pending &= ~parsed.notna()
    for attempt in ([date_format] if date_format else []) + ["mixed"]:
        if not pending.any():
            break
        chunk = series[pending]
        text = chunk.map(lambda value: value.strip() if isinstance(value, str) else value)
        with warnings.catch_warnings():  # pandas' "day first?" notes: the order it took
            warnings.simplefilter("ignore")
            converted = pd.to_datetime(text, format=attempt, errors="coerce", utc=True)
        converted = converted.dt.tz_convert(None).astype("datetime64[ns]")
        good = converted.notna()
        parsed[good[good].index] = converted[good]
        pending &= parsed.isna()
    if pending.any() and not coerce:
        position = int(np.flatnonzero(pending.to_numpy())[0])
        raise BadDate(series.iloc[position], position)
    return parsed


def _year(value: Any) -> float | None:
    """A value that is a year on its own (1 to 9999), else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, np.integer)):
        return float(value) if 1 <= value <= 9999 else None
    if isinstance(value, (float, np.floating)):
        return float(value) if value.is_integer() and 1 <= value <= 9999 else None
    if isinstance(value, str):
        match = _YEAR.match(value)
        if match and 1 <= int(match.group(1)) <= 9999:
            return float(match.group(1))
    return None


def date_features(parsed: pd.Series) -> np.ndarray:
    """The :data:`DATE_FEATURES` of parsed dates, one row each (NaT: NaN in every feature)."""
    values = parsed.astype("datetime64[ns]")
    ordinal = (values - _EPOCH) / pd.Timedelta(days=1)
    columns = [values.dt.year, values.dt.month, values.dt.day_of_week, ordinal]
    return np.column_stack([np.asarray(column, dtype="float64") for column in columns])


class DateFeatures(TransformerMixin, BaseEstimator):
    """Date columns as year, month, day of week and ordinal (see the module's docstring).

    At fit, each column's text format is guessed from its first dated value, and
    kept in ``formats_``; at transform, a value that is not a date raises :class:`BadDate`.
    """

    def fit(self, x: Any, y: Any = None) -> DateFeatures:
        frame = pd.DataFrame(x)
        self.n_features_in_ = frame.shape[1]
        self.columns_ = [str(name) for name in frame.columns]
        self.formats_ = [guess_format(frame.iloc[:, index]) for index in range(frame.shape[1])]
        return self

    def transform(self, x: Any) -> np.ndarray:
        frame = pd.DataFrame(x)
        parts = [
            date_features(parse_dates(frame.iloc[:, index], self.formats_[index]))
            for index in range(frame.shape[1])
        ]
        return np.hstack(parts) if parts else np.empty((len(frame), 0))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        names = list(input_features) if input_features is not None else self.columns_
        return np.asarray(
            [f"{name}_{feature}" for name in names for feature in DATE_FEATURES], dtype=object
        )


class TextColumn(TransformerMixin, BaseEstimator):
    """One free-text column as the 1-D list of strings a TF-IDF vectorizer takes (missing:
    empty text)."""

    def fit(self, x: Any, y: Any = None) -> TextColumn:
        self.n_features_in_ = 1
        return self

    def transform(self, x: Any) -> np.ndarray:
        values = np.asarray(pd.DataFrame(x).iloc[:, 0], dtype=object)
        return np.asarray(["" if pd.isna(value) else str(value) for value in values], dtype=object)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray(list(input_features or ["text"]), dtype=object)
