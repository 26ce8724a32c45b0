"""Explanations: each row's prediction split into one contribution per input column.

Runs in a Celery worker only (:mod:`mlservice.tasks.monitoring_tasks`): SHAP
takes about 3 s and 100 MB to import and loads matplotlib, which an API worker
never does. Three methods, chosen by the model's estimator:

* ``tree`` (SHAP's ``TreeExplainer``, exact, path-dependent: no background
  data) for decision trees, forests and gradient boosting;
* ``linear`` (SHAP's ``LinearExplainer``, exact, with the training background
  as an independent masker) for linear models;
* ``permutation`` (SHAP's ``PermutationExplainer`` over the input columns,
  :data:`PERMUTATIONS` forward-and-backward permutations per row against at
  most :data:`AGNOSTIC_BACKGROUND` training rows) for any other model: an
  estimate, bounded in cost, whose contributions still add up exactly.

Tree and linear explainers work on the preprocessed features; a text column's
one-hot parts are summed back into one contribution, so every method answers
one number per input column. In each case ``base_value`` plus the
contributions equals ``output`` (to floating point), the model output that was
explained, which the answer names: the probability of the predicted class
(forests, trees, permutation on a classifier), its log-odds or decision
function (boosted trees, linear classifiers), or the predicted value
(regressors). Exact methods are checked: if the sum does not meet the model's
own output within :data:`TOLERANCE`, the permutation method is used instead.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

with warnings.catch_warnings():
    # shap 0.51 calls a colormap method matplotlib 3.11 says it will deprecate.
    warnings.simplefilter("ignore", PendingDeprecationWarning)
    import shap

from ..store.bundles import ModelBundle, Step, Task

log = logging.getLogger(__name__)

#: Forward-and-backward permutations per row of the model-agnostic method.
PERMUTATIONS = 3
#: Training rows the model-agnostic method masks with, at most.
AGNOSTIC_BACKGROUND = 25
#: How far an exact explainer's sum may be from the model's own output.
TOLERANCE = 1e-6
#: Linear estimators' modules and classes (they have ``coef_`` and ``intercept_``).
LINEAR_CLASSES = ("LinearSVC", "LinearDiscriminantAnalysis")


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def feature_owners(preprocess: Any) -> list[str]:
    """The input column behind each preprocessed feature (one-hot parts: their column)."""
    owners: list[str] = []
    for name, transformer, columns in preprocess.transformers_:
        if name == "remainder" or transformer == "drop":
            continue
        if name == Step.CATEGORICAL:
            encoder = transformer.named_steps[Step.ENCODE]
            for column, categories in zip(columns, encoder.categories_, strict=True):
                owners.extend([column] * len(categories))
        else:
            owners.extend(columns)
    return owners


def _by_column(values: np.ndarray, owners: list[str], columns: list[str]) -> np.ndarray:
    """Per-feature values (rows x features) summed per input column (rows x columns)."""
    index = {name: i for i, name in enumerate(columns)}
    summed = np.zeros((values.shape[0], len(columns)))
    for feature, owner in enumerate(owners):
        summed[:, index[owner]] += values[:, feature]
    return summed


def _pick(
    values: np.ndarray, base: np.ndarray, classes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-row values and base of the predicted class when the explainer has one output
    per class (values rows x features x classes)."""
    if values.ndim == 3:
        rows = np.arange(values.shape[0])
        return values[rows, :, classes], np.asarray(base)[rows, classes]
    return values, np.broadcast_to(np.asarray(base, dtype=np.float64), (values.shape[0],))


def _output_kind(
    bundle: ModelBundle, frame: pd.DataFrame, total: np.ndarray, classes: np.ndarray
) -> str | None:
    """What the sum equals: ``probability``, ``decision`` (log-odds, margin) or ``value``;
    None if it equals none of the model's own outputs within :data:`TOLERANCE`."""
    pipeline = bundle.pipeline
    if bundle.task != Task.CLASSIFICATION:
        return (
            "value" if np.allclose(total, pipeline.predict(frame), rtol=0, atol=TOLERANCE) else None
        )
    rows = np.arange(len(frame))
    if hasattr(pipeline, "predict_proba"):
        proba = pipeline.predict_proba(frame)[rows, classes]
        if np.allclose(total, proba, rtol=0, atol=TOLERANCE):
            return "probability"
    if hasattr(pipeline, "decision_function"):
        decision = np.asarray(pipeline.decision_function(frame))
        if decision.ndim == 2:
            decision = decision[rows, classes]
        if np.allclose(total, decision, rtol=0, atol=TOLERANCE):
            return "decision"
    return None


def _exact(
    bundle: ModelBundle, frame: pd.DataFrame, background: pd.DataFrame, classes: np.ndarray
) -> tuple[str, np.ndarray, np.ndarray, str] | None:
    """(method, contributions per input column, base values, output kind) from SHAP's tree
    or linear explainer, or None where neither applies (or its sum does not check out)."""
    preprocess = bundle.pipeline.named_steps[Step.PREPROCESS]
    estimator = bundle.pipeline.named_steps[Step.ESTIMATOR]
    features = np.asarray(preprocess.transform(frame), dtype=np.float64)
    owners = feature_owners(preprocess)
    if len(owners) != features.shape[1]:
        return None
    kind = type(estimator)
    try:
        if hasattr(estimator, "coef_") and (
            kind.__module__.startswith("sklearn.linear_model") or kind.__name__ in LINEAR_CLASSES
        ):
            masked = np.asarray(preprocess.transform(background), dtype=np.float64)
            explainer: Any = shap.LinearExplainer(estimator, shap.maskers.Independent(masked))
            method = "linear"
        else:
            explainer = shap.TreeExplainer(estimator)
            method = "tree"
        explanation = explainer(features)
    except Exception as exc:  # not a model these explainers know
        log.info("no exact explainer for %s: %s", kind.__name__, exc)
        return None
    values, base = _pick(np.asarray(explanation.values), explanation.base_values, classes)
    contributions = _by_column(values, owners, list(frame.columns))
    output = _output_kind(bundle, frame, base + contributions.sum(axis=1), classes)
    if output is None:
        log.warning(
            "%s explanation of %s does not add up: permutation instead", method, kind.__name__
        )
        return None
    return method, contributions, base, output


class _Codes:
    """Input rows as numbers for SHAP's maskers: text as codes into a vocabulary."""

    def __init__(self, frame: pd.DataFrame, background: pd.DataFrame) -> None:
        self.columns = list(frame.columns)
        self.vocabulary: dict[str, list[str]] = {}
        for name in self.columns:
            if not pd.api.types.is_numeric_dtype(frame[name]):
                seen = pd.concat([background[name], frame[name]]).dropna().astype(str)
                self.vocabulary[name] = sorted(set(seen))

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        out = np.empty((len(frame), len(self.columns)))
        for i, name in enumerate(self.columns):
            if name in self.vocabulary:
                index = {value: code for code, value in enumerate(self.vocabulary[name])}
                out[:, i] = [np.nan if pd.isna(v) else index[str(v)] for v in frame[name]]
            else:
                out[:, i] = pd.to_numeric(frame[name]).to_numpy(dtype=np.float64)
        return out

    def decode(self, codes: np.ndarray) -> pd.DataFrame:
        columns: dict[str, Any] = {}
        for i, name in enumerate(self.columns):
            if name in self.vocabulary:
                words = np.asarray(self.vocabulary[name] + [None], dtype=object)
                idx = np.where(np.isnan(codes[:, i]), -1, codes[:, i]).astype(int)
                columns[name] = words[idx]
            else:
                columns[name] = codes[:, i]
        return pd.DataFrame(columns)


def _permutation(
    bundle: ModelBundle, frame: pd.DataFrame, background: pd.DataFrame, classes: np.ndarray
) -> tuple[np.ndarray, np.ndarray, str]:
    """(contributions, base values, output kind) by permutation over the input columns."""
    codes = _Codes(frame, background)
    masker = shap.maskers.Independent(codes.encode(background), max_samples=AGNOSTIC_BACKGROUND)
    rows = codes.encode(frame)
    contributions = np.zeros(rows.shape)
    base = np.zeros(len(frame))
    pipeline = bundle.pipeline
    classifier = bundle.task == Task.CLASSIFICATION
    proba = classifier and hasattr(pipeline, "predict_proba")
    for cls in np.unique(classes) if classifier else [0]:
        chosen = np.flatnonzero(classes == cls) if classifier else np.arange(len(frame))
        model = _model_function(pipeline, codes, int(cls), classifier, proba)
        explainer = shap.PermutationExplainer(model, masker, seed=0)
        evals = PERMUTATIONS * (2 * rows.shape[1] + 1)
        explanation = explainer(rows[chosen], max_evals=evals, silent=True)
        contributions[chosen] = explanation.values
        base[chosen] = explanation.base_values
    output = "value" if not classifier else ("probability" if proba else "decision")
    return contributions, base, output


def _model_function(
    pipeline: Any, codes: _Codes, cls: int, classifier: bool, proba: bool
) -> Callable[[np.ndarray], np.ndarray]:
    """The model output explained, as a function of coded rows."""

    def run(rows: np.ndarray) -> np.ndarray:
        frame = codes.decode(rows)
        if not classifier:
            return np.asarray(pipeline.predict(frame), dtype=np.float64)
        if proba:
            return np.asarray(pipeline.predict_proba(frame))[:, cls]
        decision = np.asarray(pipeline.decision_function(frame), dtype=np.float64)
        return decision[:, cls] if decision.ndim == 2 else (decision if cls == 1 else -decision)

    return run


def explain(bundle: ModelBundle, frame: pd.DataFrame) -> dict[str, Any]:
    """The explanation of the model-input rows ``frame`` (columns in schema order)."""
    profile = bundle.training_profile or {}
    background = pd.DataFrame(profile.get("background") or {})
    if background.empty:
        background = frame
    background = background[list(frame.columns)]
    for column in bundle.schema:
        if column["type"] == "number":
            background[column["name"]] = pd.to_numeric(background[column["name"]]).astype(float)
    raw = np.asarray(bundle.pipeline.predict(frame))
    if bundle.task == Task.CLASSIFICATION:
        classes = raw.astype(int)
        labels = [_plain((bundle.classes or [])[i]) for i in classes]
    else:
        classes = np.zeros(len(frame), dtype=int)
        labels = [float(v) for v in raw]
    exact = _exact(bundle, frame, background, classes)
    if exact is not None:
        method, contributions, base, output = exact
    else:
        method = "permutation"
        contributions, base, output = _permutation(bundle, frame, background, classes)
    columns = list(frame.columns)
    answers = []
    for row, label in enumerate(labels):
        values = {name: float(contributions[row, i]) for i, name in enumerate(columns)}
        answers.append(
            {
                "prediction": label,
                "base_value": float(base[row]),
                "output": float(base[row] + contributions[row].sum()),
                "contributions": values,
            }
        )
    return {
        "method": method,
        "exact": method != "permutation",
        "output": output,
        "explained_class": "predicted" if bundle.task == Task.CLASSIFICATION else None,
        "rows": answers,
    }
