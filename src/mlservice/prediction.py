"""Turning a prediction request into model input, and model output into JSON.

Accepted bodies: one record (an object), a list of records, or
``{"instances": [...]}``. Records are checked against the model's input
schema so a missing column or a value of the wrong type is reported by
name instead of failing deep inside scikit-learn.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from .bundles import ModelBundle
from .estimators import CLASSIFICATION

MAX_RECORDS = 100_000


class PredictionInputError(ValueError):
    """A request body that cannot be predicted on; ``status`` is 400 or 422."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


def parse_records(body: Any) -> list[dict[str, Any]]:
    """The records of a request body, in any of the three accepted shapes."""
    if isinstance(body, dict) and "instances" in body:
        body = body["instances"]
    elif isinstance(body, dict):
        body = [body]
    if not isinstance(body, list):
        raise PredictionInputError(
            "body must be a JSON object (one record), a list of records, "
            'or {"instances": [records]}', status=400)
    if not body:
        raise PredictionInputError("no records to predict: the list is empty", status=400)
    if len(body) > MAX_RECORDS:
        raise PredictionInputError(
            f"too many records ({len(body)}); send at most {MAX_RECORDS} per request", status=413)
    for index, record in enumerate(body):
        if not isinstance(record, dict):
            raise PredictionInputError(
                f"record {index} is a {type(record).__name__}, not a JSON object", status=400)
    return body


def _check_value(column: dict[str, Any], value: Any, index: int) -> Any:
    """A record's value for one column, or an error naming the column and record."""
    if value is None:
        return np.nan
    name = column["name"]
    if column["type"] == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise PredictionInputError(
                f"column {name!r} expects a number; record {index} has {value!r}")
        if not math.isfinite(value):
            raise PredictionInputError(f"column {name!r} has a non-finite number in record {index}")
        return float(value)
    if not isinstance(value, str):
        raise PredictionInputError(
            f"column {name!r} expects a string; record {index} has {value!r}")
    return value


def records_to_frame(records: list[dict[str, Any]], schema: list[dict[str, Any]]) -> pd.DataFrame:
    """Validate records against the input schema and build the model's input frame."""
    expected = {column["name"] for column in schema}
    for index, record in enumerate(records):
        missing = [column["name"] for column in schema if column["name"] not in record]
        if missing:
            raise PredictionInputError(
                f"record {index} lacks column(s) {', '.join(map(repr, missing))}; "
                "send null for a missing value")
        unknown = [name for name in record if name not in expected]
        if unknown:
            raise PredictionInputError(
                f"record {index} has unknown column(s) {', '.join(map(repr, unknown))}; "
                f"the model expects {', '.join(repr(c['name']) for c in schema)}")
    data = {
        column["name"]: pd.Series(
            [_check_value(column, record[column["name"]], index)
             for index, record in enumerate(records)],
            dtype="float64" if column["type"] == "number" else object,
        )
        for column in schema
    }
    return pd.DataFrame(data)


def _jsonable(values: np.ndarray) -> list[Any]:
    return [value.item() if isinstance(value, np.generic) else value for value in values]


def predict(bundle: ModelBundle, frame: pd.DataFrame, probabilities: bool = False
            ) -> dict[str, Any]:
    """Predictions in the original label space, and class probabilities when asked."""
    raw = bundle.pipeline.predict(frame)
    if bundle.task != CLASSIFICATION:
        return {"predictions": [float(value) for value in raw]}
    classes = np.asarray(bundle.classes, dtype=object)
    result: dict[str, Any] = {"predictions": _jsonable(classes[raw.astype(int)])}
    if probabilities:
        if not hasattr(bundle.pipeline, "predict_proba"):
            raise PredictionInputError(
                f"{bundle.estimator} does not give probabilities; ask without them", status=400)
        proba = bundle.pipeline.predict_proba(frame)
        labels = [str(label) for label in bundle.classes]
        result["probabilities"] = [dict(zip(labels, map(float, row))) for row in proba]
    return result
