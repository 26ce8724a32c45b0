"""One trial of a search: cross-validate one configuration on the training split.

The rows are split as a training of the same request splits them
(:func:`prepare` does what :func:`.fitting.train` does, with its split seed),
so the best configuration, refitted as a model, is scored on the held-out
rows no trial has seen. A trial cross-validates the same preprocessing and
estimator pipeline (:func:`.pipeline.build_pipeline`) on the training split
with ``cv`` folds, shuffled from the search's ``random_state``; an estimator
that takes a seed gets the search's ``random_state`` unless the space searches
it, so the same request scores the same.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import get_scorer
from sklearn.model_selection import (
    BaseCrossValidator,
    KFold,
    StratifiedKFold,
    cross_validate,
    train_test_split,
)
from sklearn.preprocessing import LabelEncoder

from ..store.bundles import SchemaColumn, Task
from .allowed_estimators import estimator_class, make_estimator
from .pipeline import as_model_input, build_pipeline, plan_columns

#: The seed of the split into training and held-out rows: the one every training uses
#: (:func:`.fitting.train`'s default), so the refitted model's held-out rows are these.
SPLIT_SEED = 0
#: Warnings kept on a trial (each once, with a count).
MAX_WARNINGS = 5


@dataclass(frozen=True)
class SplitRows:
    """A data set ready for a search: its columns, and its training and held-out rows."""

    task: str
    schema: list[SchemaColumn]
    x_train: pd.DataFrame
    y_train: np.ndarray
    x_test: pd.DataFrame
    y_test: np.ndarray


@dataclass(frozen=True)
class TrialScores:
    """What cross-validating one configuration measured."""

    scores: list[float]
    mean: float
    std: float
    fit_seconds: float
    predict_ms_per_row: float
    warnings: list[str]


def prepare(
    frame: pd.DataFrame,
    target: str,
    features: Sequence[str] | None,
    task: str,
    test_size: float,
    roles: Mapping[str, str] | None = None,
) -> SplitRows:
    """The rows with a target, encoded and split as :func:`.fitting.train` splits them, the
    columns as the data set's profile ``roles`` say (ids and constants left out)."""
    features = list(features) if features else [c for c in frame.columns if c != target]
    frame = frame[frame[target].notna()]
    schema = plan_columns(frame, features, roles).schema
    x = as_model_input(frame, schema)
    if task == Task.CLASSIFICATION:
        y = LabelEncoder().fit_transform(frame[target].to_numpy())
        stratify = y if np.bincount(y).min() >= 2 else None
    else:
        y = pd.to_numeric(frame[target]).to_numpy(dtype="float64")
        stratify = None
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_size, random_state=SPLIT_SEED, stratify=stratify
    )
    return SplitRows(task, schema, x_train, y_train, x_test, y_test)


def seeded(estimator: str, params: Mapping[str, Any], random_state: int) -> dict[str, Any]:
    """``params`` with the estimator's seed set to ``random_state`` when it takes one and
    the space does not search it."""
    full = dict(params)
    if "random_state" not in full and "random_state" in estimator_class(estimator)().get_params():
        full["random_state"] = random_state
    return full


def folds(rows: SplitRows, count: int, random_state: int) -> BaseCrossValidator:
    """Shuffled folds from ``random_state``; stratified for classes that fill every fold."""
    if rows.task == Task.CLASSIFICATION and np.bincount(rows.y_train).min() >= count:
        return StratifiedKFold(n_splits=count, shuffle=True, random_state=random_state)
    return KFold(n_splits=count, shuffle=True, random_state=random_state)


def _noted(raised: Sequence[warnings.WarningMessage]) -> list[str]:
    """Warnings as short lines, each once with how many times, in order of first."""
    seen: dict[str, int] = {}
    for warning in raised:
        line = f"{warning.category.__name__}: {str(warning.message).strip()}"
        seen[line] = seen.get(line, 0) + 1
    noted = [line if times == 1 else f"{line} ({times} times)" for line, times in seen.items()]
    return noted[:MAX_WARNINGS]


def cross_validate_trial(
    rows: SplitRows,
    estimator: str,
    params: Mapping[str, Any],
    scoring: str,
    count: int,
    random_state: int,
) -> TrialScores:
    """Cross-validate one configuration on the training rows. A configuration that cannot
    be fitted raises scikit-learn's error (``error_score="raise"``): the trial fails."""
    pipeline = build_pipeline(rows.schema, make_estimator(estimator, params))
    with warnings.catch_warnings(record=True) as raised:
        warnings.simplefilter("always")
        found = cross_validate(
            pipeline,
            rows.x_train,
            rows.y_train,
            cv=folds(rows, count, random_state),
            scoring=scoring,
            error_score="raise",
        )
    scores = [float(value) for value in found["test_score"]]
    fold_rows = len(rows.x_train) / count
    return TrialScores(
        scores=scores,
        mean=float(np.mean(scores)),
        std=float(np.std(scores)),
        fit_seconds=round(float(np.mean(found["fit_time"])), 4),
        predict_ms_per_row=round(float(np.mean(found["score_time"])) / fold_rows * 1000, 4),
        warnings=_noted(raised),
    )


def held_out_score(pipeline: Any, rows: SplitRows, scoring: str) -> float:
    """A fitted pipeline's score on the held-out rows, by the search's scorer."""
    return float(get_scorer(scoring)(pipeline, rows.x_test, rows.y_test))
