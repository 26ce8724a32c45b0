"""Turning model output into the JSON answer, and the scikit-learn reference prediction."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..errors import BadRequest
from ..store.bundles import ModelBundle, Task


def _jsonable(values: np.ndarray) -> list[Any]:
    return [value.item() if isinstance(value, np.generic) else value for value in values]


def check_probabilities(bundle: ModelBundle, probabilities: bool) -> None:
    """Refuse (400) a request for probabilities the estimator cannot give."""
    if (
        probabilities
        and bundle.task == Task.CLASSIFICATION
        and not hasattr(bundle.pipeline, "predict_proba")
    ):
        raise BadRequest(f"{bundle.estimator} does not give probabilities; ask without them")


def answer(bundle: ModelBundle, raw: np.ndarray, proba: np.ndarray | None) -> dict[str, Any]:
    """The JSON answer from raw model output (class indices or values, probabilities)."""
    if bundle.task != Task.CLASSIFICATION:
        return {"predictions": [float(value) for value in raw]}
    classes = np.asarray(bundle.classes or [], dtype=object)
    result: dict[str, Any] = {"predictions": _jsonable(classes[raw.astype(int)])}
    if proba is not None:
        labels = [str(label) for label in classes]
        result["probabilities"] = [dict(zip(labels, map(float, row), strict=True)) for row in proba]
    return result


def predict(
    bundle: ModelBundle, frame: pd.DataFrame, probabilities: bool = False
) -> dict[str, Any]:
    """scikit-learn's predictions, one call, nothing batched or compiled (the reference)."""
    check_probabilities(bundle, probabilities)
    proba = (
        bundle.pipeline.predict_proba(frame)
        if probabilities and bundle.task == Task.CLASSIFICATION
        else None
    )
    return answer(bundle, bundle.pipeline.predict(frame), proba)
