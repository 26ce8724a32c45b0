"""Input drift: recent inputs against the training profile, column by column.

The statistic is the population stability index (PSI) over the training
profile's bins, ``sum((a - e) * ln(a / e))`` for the recent shares ``a`` and
the training shares ``e``: the symmetric Kullback-Leibler divergence, computed
with :func:`scipy.special.rel_entr`. Shares are clipped below at
:data:`MIN_SHARE`, so an empty bin counts as rare, not impossible.

* number columns: the ten bins between the training deciles;
* text columns: one bin per training category plus one for values never seen
  in training (whose share is reported as ``unseen_share``);
* both: the change in the share of missing values, beside the PSI (missing
  values are not in the bins).

A column is ``drifted`` when its PSI exceeds the PSI threshold (0.2 by
default: the usual reading is below 0.1 stable, 0.1 to 0.2 a moderate shift,
above 0.2 a significant one) or its missing rate moved by more than the
missing-rate threshold. Nothing here reads files or Redis: the rows come from
the prediction log (:mod:`.prediction_log`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypedDict

import numpy as np
import pandas as pd
from scipy.special import rel_entr

from .feature_profile import ColumnProfile, TrainingProfile, as_numbers, bin_shares

#: Shares are clipped to at least this before the PSI's logarithm.
MIN_SHARE = 1e-4


@dataclass(frozen=True)
class Thresholds:
    """When a column counts as drifted (``[monitoring] drift_psi_threshold`` and
    ``drift_missing_threshold``)."""

    psi: float = 0.2
    missing: float = 0.1


class ColumnDrift(TypedDict):
    """One column's drift, as ``GET /resource/models/<id>/drift`` shows it."""

    feature: str
    type: str
    psi: float | None  # None: no value present in the window
    missing_rate: float
    training_missing_rate: float
    missing_rate_change: float
    unseen: int  # text columns: values never seen in training (0 for numbers)
    unseen_share: float
    drifted: bool


def psi(actual: np.ndarray, expected: np.ndarray) -> float:
    """The population stability index of two share vectors over the same bins."""
    a = np.clip(np.asarray(actual, dtype=np.float64), MIN_SHARE, None)
    e = np.clip(np.asarray(expected, dtype=np.float64), MIN_SHARE, None)
    return float(np.sum(rel_entr(a, e) + rel_entr(e, a)))


def _number_drift(values: pd.Series, profile: ColumnProfile) -> tuple[float | None, int, int]:
    """(PSI, values present, unseen: 0) of a number or date column."""
    numbers = as_numbers(values, profile["type"])
    present = numbers[~np.isnan(numbers)]
    if len(present) == 0 or not profile.get("shares"):
        return None, len(present), 0
    actual = bin_shares(present, np.asarray(profile.get("edges", []), dtype=np.float64))
    return psi(actual, np.asarray(profile.get("shares", []))), len(present), 0


def _category_drift(values: pd.Series, profile: ColumnProfile) -> tuple[float | None, int, int]:
    """(PSI, values present, unseen values) of a text column."""
    present = values.dropna().astype(str)
    if len(present) == 0:
        return None, 0, 0
    known = profile.get("categories", {})
    counts = present.value_counts()
    seen = np.array([counts.get(name, 0) for name in known], dtype=np.float64)
    unseen = int(len(present) - seen.sum())
    expected = np.array(list(known.values()) + [max(0.0, 1.0 - sum(known.values()))])
    actual = np.append(seen, unseen) / len(present)
    return psi(actual, expected), len(present), unseen


def column_drift(
    name: str, values: pd.Series, profile: ColumnProfile, thresholds: Thresholds
) -> ColumnDrift:
    """One column's drift against its training profile."""
    if profile["type"] in ("number", "datetime"):
        value, present, unseen = _number_drift(values, profile)
    else:
        value, present, unseen = _category_drift(values, profile)
    missing = 1.0 - present / len(values) if len(values) else 0.0
    change = missing - profile["missing_rate"]
    drifted = (value is not None and value > thresholds.psi) or abs(change) > thresholds.missing
    return {
        "feature": name,
        "type": profile["type"],
        "psi": None if value is None else round(value, 6),
        "missing_rate": round(missing, 6),
        "training_missing_rate": round(profile["missing_rate"], 6),
        "missing_rate_change": round(change, 6),
        "unseen": unseen,
        "unseen_share": round(unseen / present, 6) if present else 0.0,
        "drifted": bool(drifted),
    }


def compare(
    profile: TrainingProfile, frame: pd.DataFrame, thresholds: Thresholds
) -> list[ColumnDrift]:
    """Every profiled column's drift in ``frame`` (columns it lacks count as all missing)."""
    found = []
    for name, column in profile["columns"].items():
        if name in frame.columns:
            values = frame[name]
        else:
            values = pd.Series([None] * len(frame), dtype=object)
        found.append(column_drift(name, values, column, thresholds))
    return found


def report(
    model_id: str,
    profile: TrainingProfile,
    frame: pd.DataFrame,
    thresholds: Thresholds,
    source: str,
) -> dict[str, Any]:
    """The drift answer: the window's size and source, the thresholds, each column."""
    columns = compare(profile, frame, thresholds)
    return {
        "model_id": model_id,
        "rows": len(frame),
        "source": source,
        "training_rows": profile["rows"],
        "psi_threshold": thresholds.psi,
        "missing_threshold": thresholds.missing,
        "columns": columns,
        "drifted": [column["feature"] for column in columns if column["drifted"]],
    }
