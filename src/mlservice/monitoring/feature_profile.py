"""The training profile: what a model's inputs looked like when it was trained.

Drift (:mod:`.drift`) compares recent inputs with it, so it is computed once,
from the training split, and kept in the model's bundle
(``ModelBundle.training_profile``): every API worker that serves the model has
it in memory, and a bundle downloaded and uploaded elsewhere keeps it.

Per number column: the training deciles (the interior edges, duplicates
dropped, so a column of few values gets fewer bins) and the share of
training values in each bin. Per date column the same, over the dates as days
since 1970 (:func:`date_numbers`), so a new date is not an unseen category.
Per text column: the share of each category. All: the share of missing
values. Shares are of the non-missing values.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

import numpy as np
import pandas as pd

from ..table_features import parse_dates

#: Quantiles whose values are the interior bin edges of a number column (deciles).
DECILES = tuple(np.linspace(0.1, 0.9, 9))
#: Most categories a text column's profile keeps (the most frequent); the rest count as
#: "other" in the profile and as unseen in drift.
MAX_CATEGORIES = 1000


class ColumnProfile(TypedDict):
    """One input column at training time."""

    type: str  # "number", "datetime" or "string" (a ColumnType)
    missing_rate: float
    #: number and date columns: the interior bin edges (training deciles) and each bin's share.
    edges: NotRequired[list[float]]
    shares: NotRequired[list[float]]
    #: string columns: each category's share.
    categories: NotRequired[dict[str, float]]


class TrainingProfile(TypedDict):
    """A model's training inputs, column by column."""

    rows: int
    columns: dict[str, ColumnProfile]
    #: A sample of training rows (column -> values, missing as None): the background the
    #: explanations' base value is the average model output over (:mod:`.explainers`).
    background: NotRequired[dict[str, list[Any]]]


#: Training rows kept as the explanations' background.
BACKGROUND_ROWS = 100


def background_sample(frame: pd.DataFrame, rows: int = BACKGROUND_ROWS) -> dict[str, list[Any]]:
    """Up to ``rows`` training rows drawn at random (seeded), as JSON-ready columns."""
    sample = frame.sample(n=min(rows, len(frame)), random_state=0) if len(frame) else frame
    return {
        name: [None if pd.isna(value) else value for value in sample[name].tolist()]
        for name in sample.columns
    }


def bin_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The share of ``values`` (no NaN) in each bin ``(-inf, e1], (e1, e2], ..., (ek, inf)``."""
    counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1)
    total = counts.sum()
    return counts / total if total else counts.astype(np.float64)


def date_numbers(values: pd.Series) -> np.ndarray:
    """Dates (text, years, timestamps) as days since 1970-01-01; what is not a date is NaN."""
    parsed = parse_dates(values, coerce=True)
    return np.asarray((parsed - pd.Timestamp(0)) / pd.Timedelta(days=1), dtype=np.float64)


def as_numbers(values: pd.Series, column_type: str) -> np.ndarray:
    """A number or date column's values as float64 (NaN: missing or not a number/date)."""
    if column_type == "datetime":
        return date_numbers(values)
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)


def number_profile(values: pd.Series, column_type: str = "number") -> ColumnProfile:
    """Deciles and bin shares of a number (or date) column."""
    numbers = as_numbers(values, column_type)
    present = numbers[~np.isnan(numbers)]
    missing = 1.0 - len(present) / len(numbers) if len(numbers) else 0.0
    if len(present) == 0:
        return {"type": column_type, "missing_rate": missing, "edges": [], "shares": []}
    edges = np.unique(np.quantile(present, DECILES))
    return {
        "type": column_type,
        "missing_rate": float(missing),
        "edges": [float(edge) for edge in edges],
        "shares": [float(share) for share in bin_shares(present, edges)],
    }


def category_profile(values: pd.Series) -> ColumnProfile:
    """Category shares of a text column (its most frequent :data:`MAX_CATEGORIES`)."""
    present = values.dropna().astype(str)
    missing = 1.0 - len(present) / len(values) if len(values) else 0.0
    shares = present.value_counts(normalize=True).head(MAX_CATEGORIES)
    return {
        "type": "string",
        "missing_rate": float(missing),
        "categories": {str(name): float(share) for name, share in shares.items()},
    }


def training_profile(frame: pd.DataFrame, schema: list[Any]) -> TrainingProfile:
    """The profile of the model-input rows ``frame`` (the training split), per schema column."""
    columns: dict[str, ColumnProfile] = {}
    for column in schema:
        values = frame[column["name"]]
        if column["type"] in ("number", "datetime"):
            columns[column["name"]] = number_profile(values, column["type"])
        else:
            columns[column["name"]] = category_profile(values)
    names = [column["name"] for column in schema]
    return {"rows": len(frame), "columns": columns, "background": background_sample(frame[names])}
