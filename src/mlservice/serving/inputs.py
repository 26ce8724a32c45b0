"""Turning a prediction request's body into model input, checked against the model's schema.

Accepted bodies: one record (an object), a list of records, or
``{"instances": [...]}``. Records are checked against the model's input
schema so a missing column or a value of the wrong type is reported by
name instead of failing deep inside scikit-learn.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import BadRequest, Invalid, TooLarge
from ..store.bundles import ColumnType, SchemaColumn

MAX_RECORDS = 100_000


def parse_records(body: Any) -> list[dict[str, Any]]:
    """The records of a request body, in any of the three accepted shapes."""
    if isinstance(body, dict) and "instances" in body:
        body = body["instances"]
    elif isinstance(body, dict):
        body = [body]
    if not isinstance(body, list):
        raise BadRequest(
            "body must be a JSON object (one record), a list of records, "
            'or {"instances": [records]}'
        )
    if not body:
        raise BadRequest("no records to predict: the list is empty")
    if len(body) > MAX_RECORDS:
        raise TooLarge(f"too many records ({len(body)}); send at most {MAX_RECORDS} per request")
    for index, record in enumerate(body):
        if not isinstance(record, dict):
            raise BadRequest(f"record {index} is a {type(record).__name__}, not a JSON object")
    return body


def _explain_columns(record: dict[str, Any], index: int, schema: list[SchemaColumn]) -> None:
    """Raise the error that names a record's missing or unknown columns."""
    expected = {column["name"] for column in schema}
    missing = [column["name"] for column in schema if column["name"] not in record]
    if missing:
        raise Invalid(
            f"record {index} lacks column(s) {', '.join(map(repr, missing))}; "
            "send null for a missing value"
        )
    unknown = [name for name in record if name not in expected]
    raise Invalid(
        f"record {index} has unknown column(s) {', '.join(map(repr, unknown))}; "
        f"the model expects {', '.join(repr(c['name']) for c in schema)}"
    )


def _numbers(name: str, values: list[Any]) -> np.ndarray:
    """One numeric column as float64, ``None`` as NaN; anything else is named and refused."""
    for index, value in enumerate(values):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise Invalid(f"column {name!r} expects a number; record {index} has {value!r}")
    try:
        array = np.array([np.nan if value is None else value for value in values], dtype=np.float64)
    except OverflowError:
        raise Invalid(f"column {name!r} has a number too large for a float") from None
    for position in np.flatnonzero(~np.isfinite(array)):
        if values[position] is not None:
            raise Invalid(f"column {name!r} has a non-finite number in record {position}")
    return array


def _texts(name: str, values: list[Any]) -> np.ndarray:
    """One text column as Python strings, ``None`` as NaN (what the imputer treats as missing)."""
    for index, value in enumerate(values):
        if value is not None and not isinstance(value, str):
            raise Invalid(f"column {name!r} expects a string; record {index} has {value!r}")
    return np.array([np.nan if value is None else value for value in values], dtype=object)


def records_to_columns(
    records: list[dict[str, Any]], schema: list[SchemaColumn]
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
        columns[name] = (
            _numbers(name, values) if column["type"] == ColumnType.NUMBER else _texts(name, values)
        )
    return columns


def arrow_to_columns(
    table: pa.Table | pa.RecordBatch, schema: list[SchemaColumn], first_row: int = 0
) -> dict[str, np.ndarray]:
    """Validate an Arrow table (or batch) against the input schema: one array per column.

    The same arrays :func:`records_to_columns` gives: float64 with NaN for a
    missing number, Python strings with NaN for a missing text. Extra columns
    are ignored (a stored data set also has its target and ids); a missing
    one, or a column of the wrong type, is named. ``first_row`` numbers the
    rows in messages when ``table`` is one chunk of a larger input.
    """
    present = set(table.schema.names)
    missing = [column["name"] for column in schema if column["name"] not in present]
    if missing:
        raise Invalid(
            f"the input lacks column(s) {', '.join(map(repr, missing))}; "
            f"the model expects {', '.join(repr(c['name']) for c in schema)}"
        )
    columns = {}
    for column in schema:
        name = column["name"]
        values = table.column(name)
        kind = values.type
        if column["type"] == ColumnType.NUMBER:
            if not (
                pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_null(kind)
            ):
                raise Invalid(f"column {name!r} expects numbers; the input has {kind}")
            array = pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False)
            bad = np.flatnonzero(np.isinf(array))
            if bad.size:
                raise Invalid(
                    f"column {name!r} has a non-finite number in row {first_row + int(bad[0])}"
                )
            columns[name] = array
        else:
            if not (
                pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind)
            ):
                raise Invalid(f"column {name!r} expects text; the input has {kind}")
            text = pc.cast(values, pa.string()).to_numpy(zero_copy_only=False)
            text[pc.is_null(values).to_numpy(zero_copy_only=False)] = np.nan
            columns[name] = text
    return columns


def columns_to_frame(columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """The DataFrame scikit-learn's ColumnTransformer selects columns from by name."""
    return pd.DataFrame(columns, copy=False)


def records_to_frame(records: list[dict[str, Any]], schema: list[SchemaColumn]) -> pd.DataFrame:
    """Validate records against the input schema and build the model's input frame."""
    return columns_to_frame(records_to_columns(records, schema))
