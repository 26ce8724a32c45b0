"""Turning model output into the answer, and the scikit-learn reference.

The model's raw output (:meth:`.Predictor.run`: class indices or values, and
probabilities) becomes either the JSON answer, plain Python values
(:func:`answer`), or one table (:func:`answer_table`) that every tabular
answer is: a prediction's CSV, Parquet or Arrow answer and each chunk batch
scoring writes, so their columns are named and typed in one place.

The JSON answer is built with numpy's ``tolist`` rather than a Python loop per
row: for a 100,000-row batch that is the difference between one and tens of
milliseconds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from ..errors import BadRequest
from ..store.bundles import ModelBundle, Task

#: The tabular answer's column of predictions ...
PREDICTION = "prediction"
#: ... and the start of each class's probability column (``probability_<class>``).
PROBABILITY_PREFIX = "probability_"


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value JSON writes (a label may be ``np.int64``)."""
    return value.item() if isinstance(value, np.generic) else value


def check_probabilities(bundle: ModelBundle, probabilities: bool) -> None:
    """Refuse (400) a request for probabilities the model cannot give: a regressor's,
    or a classifier's without ``predict_proba`` (online predictions and scoring jobs alike)."""
    if not probabilities:
        return
    if bundle.task != Task.CLASSIFICATION:
        raise BadRequest(
            f"{bundle.estimator} is a regressor: it gives no probabilities; ask without them"
        )
    if not hasattr(bundle.pipeline, "predict_proba"):
        raise BadRequest(f"{bundle.estimator} does not give probabilities; ask without them")


def answer(bundle: ModelBundle, raw: np.ndarray, proba: np.ndarray | None) -> dict[str, Any]:
    """The JSON answer from raw model output (class indices or values, probabilities)."""
    if bundle.task != Task.CLASSIFICATION:
        return {"predictions": np.asarray(raw, dtype=np.float64).tolist()}
    # The few classes are made plain once; each prediction is then a reference to one.
    classes = np.empty(len(bundle.classes or []), dtype=object)
    classes[:] = [_plain(label) for label in bundle.classes or []]
    result: dict[str, Any] = {"predictions": classes[raw.astype(int)].tolist()}
    if proba is not None:
        labels = [str(label) for label in classes]
        rows = np.asarray(proba, dtype=np.float64).tolist()
        result["probabilities"] = [dict(zip(labels, row, strict=True)) for row in rows]
    return result


def prediction_type(bundle: ModelBundle) -> pa.DataType:
    """The Arrow type of the ``prediction`` column: the class labels' type, or float64."""
    if bundle.task != Task.CLASSIFICATION or not bundle.classes:
        return pa.float64()
    return pa.array(bundle.classes).type


def answer_table(
    bundle: ModelBundle,
    raw: np.ndarray,
    proba: np.ndarray | None,
    kept: pa.Table | None = None,
) -> pa.Table:
    """The tabular answer: ``kept``'s columns, ``prediction``, then ``probability_<class>``.

    Class indices become the class labels and each probability column is named
    by its label as the JSON answer names it; the prediction column always has
    :func:`prediction_type`, so chunks of one batch-scoring output agree.
    ``kept``: columns copied from the input beside the predictions (batch
    scoring's ``keep_columns``), as many rows as ``raw``.
    """
    kind = prediction_type(bundle)
    if bundle.task == Task.CLASSIFICATION and bundle.classes:
        labels = np.asarray(bundle.classes, dtype=object)[raw.astype(int)]
        predictions = pa.array(labels, type=kind)
    else:
        predictions = pa.array(np.asarray(raw, dtype=np.float64), type=kind)
    arrays = ([] if kept is None else list(kept.columns)) + [predictions]
    names = ([] if kept is None else kept.column_names) + [PREDICTION]
    if proba is not None:
        probabilities = np.asarray(proba, dtype=np.float64)
        for index, label in enumerate(bundle.classes or []):
            arrays.append(pa.array(probabilities[:, index], type=pa.float64()))
            names.append(f"{PROBABILITY_PREFIX}{_plain(label)}")
    return pa.Table.from_arrays(arrays, names=names)
