"""Turning a prediction request into model input, and model output into JSON.

Accepted bodies: one record (an object), a list of records, or
``{"instances": [...]}``. Records are checked against the model's input
schema so a missing column or a value of the wrong type is reported by
name instead of failing deep inside scikit-learn.
"""

from __future__ import annotations

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


def _explain_columns(record: dict[str, Any], index: int, schema: list[dict[str, Any]]) -> None:
    """Raise the error that names a record's missing or unknown columns."""
    expected = {column["name"] for column in schema}
    missing = [column["name"] for column in schema if column["name"] not in record]
    if missing:
        raise PredictionInputError(
            f"record {index} lacks column(s) {', '.join(map(repr, missing))}; "
            "send null for a missing value")
    unknown = [name for name in record if name not in expected]
    raise PredictionInputError(
        f"record {index} has unknown column(s) {', '.join(map(repr, unknown))}; "
        f"the model expects {', '.join(repr(c['name']) for c in schema)}")


def _numbers(name: str, values: list[Any]) -> np.ndarray:
    """One numeric column as float64, ``None`` as NaN; anything else is named and refused."""
    for index, value in enumerate(values):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise PredictionInputError(
                f"column {name!r} expects a number; record {index} has {value!r}")
    try:
        array = np.array([np.nan if value is None else value for value in values],
                         dtype=np.float64)
    except OverflowError:
        raise PredictionInputError(f"column {name!r} has a number too large for a float") \
            from None
    for index in np.flatnonzero(~np.isfinite(array)):
        if values[index] is not None:
            raise PredictionInputError(
                f"column {name!r} has a non-finite number in record {index}")
    return array


def _texts(name: str, values: list[Any]) -> np.ndarray:
    """One text column as Python strings, ``None`` as NaN (what the imputer treats as missing)."""
    for index, value in enumerate(values):
        if value is not None and not isinstance(value, str):
            raise PredictionInputError(
                f"column {name!r} expects a string; record {index} has {value!r}")
    return np.array([np.nan if value is None else value for value in values], dtype=object)


def records_to_columns(records: list[dict[str, Any]], schema: list[dict[str, Any]]
                       ) -> dict[str, np.ndarray]:
    """Validate records against the input schema: one array per column, in schema order."""
    expected = {column["name"] for column in schema}
    for index, record in enumerate(records):
        if record.keys() != expected:
            _explain_columns(record, index, schema)
    columns = {}
    for column in schema:
        name = column["name"]
        values = [record[name] for record in records]
        columns[name] = _numbers(name, values) if column["type"] == "number" \
            else _texts(name, values)
    return columns


def columns_to_frame(columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """The DataFrame scikit-learn's ColumnTransformer selects columns from by name."""
    return pd.DataFrame(columns, copy=False)


def records_to_frame(records: list[dict[str, Any]], schema: list[dict[str, Any]]) -> pd.DataFrame:
    """Validate records against the input schema and build the model's input frame."""
    return columns_to_frame(records_to_columns(records, schema))


def _jsonable(values: np.ndarray) -> list[Any]:
    return [value.item() if isinstance(value, np.generic) else value for value in values]


def check_probabilities(bundle: ModelBundle, probabilities: bool) -> None:
    """Refuse (400) a request for probabilities the estimator cannot give."""
    if probabilities and bundle.task == CLASSIFICATION \
            and not hasattr(bundle.pipeline, "predict_proba"):
        raise PredictionInputError(
            f"{bundle.estimator} does not give probabilities; ask without them", status=400)


def answer(bundle: ModelBundle, raw: np.ndarray, proba: np.ndarray | None) -> dict[str, Any]:
    """The JSON answer from raw model output (class indices or values, probabilities)."""
    if bundle.task != CLASSIFICATION:
        return {"predictions": [float(value) for value in raw]}
    classes = np.asarray(bundle.classes, dtype=object)
    result: dict[str, Any] = {"predictions": _jsonable(classes[raw.astype(int)])}
    if proba is not None:
        labels = [str(label) for label in bundle.classes]
        result["probabilities"] = [dict(zip(labels, map(float, row))) for row in proba]
    return result


def predict(bundle: ModelBundle, frame: pd.DataFrame, probabilities: bool = False
            ) -> dict[str, Any]:
    """scikit-learn's predictions, one call, nothing batched or compiled (the reference)."""
    check_probabilities(bundle, probabilities)
    proba = bundle.pipeline.predict_proba(frame) \
        if probabilities and bundle.task == CLASSIFICATION else None
    return answer(bundle, bundle.pipeline.predict(frame), proba)
