"""Turning a prediction request's body into model input, checked against the model's schema.

Model input is one numpy array per schema column (float64 for numbers, Python
strings for text, NaN for a missing value). It comes from JSON in one of its
accepted shapes (:func:`json_to_columns`) or from an Arrow table
(:func:`arrow_to_columns`: CSV, Parquet and Arrow bodies, stored data sets).
Everything is checked against the model's input schema so a missing column or
a value of the wrong type is reported by name instead of failing deep inside
scikit-learn. Columns the model does not take (a test file's id or target)
are ignored and named in :class:`ExtraColumns` (the answer's
``X-Ignored-Columns``), or refused when the request says ``?extra_columns=refuse``.

JSON shapes: one record (an object), a list of records, ``{"instances": ...}``,
MLflow's scoring payloads (``dataframe_split``, ``dataframe_records``,
``instances``, ``inputs``) and ``{"columns": {name: [values]}}``. The columnar
shapes go to arrays column by column, never through per-record dicts: that is
what makes a large JSON batch cheap.
"""

from __future__ import annotations

import functools
import math
import operator
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import BadRequest, Invalid, TooLarge
from ..store import decoded_sizes
from ..store.bundles import ColumnType, SchemaColumn
from ..table_features import BadDate, parse_dates

MAX_RECORDS = 100_000

#: The keys that make a JSON object a wrapper around the records, not a record itself.
WRAPPERS = frozenset({"instances", "inputs", "dataframe_split", "dataframe_records", "columns"})
#: What the accepted JSON shapes are, for the messages that refuse another one.
SHAPES = (
    'a JSON object (one record), a list of records, {"instances": [records]}, '
    '{"dataframe_split": {"columns": [...], "data": [[...]]}}, {"dataframe_records": [records]}, '
    '{"inputs": ...} or {"columns": {"<column>": [values]}}'
)
_NONE = type(None)
_NUMBER_TYPES = frozenset({int, float, _NONE})
_TEXT_TYPES = frozenset({str, _NONE})
_DATE_TYPES = frozenset({str, int, float, _NONE})


@dataclass
class ExtraColumns:
    """What becomes of a request's columns the model does not take: ``refuse`` (400 naming
    them), or ignored and listed in ``ignored`` (the answer names them)."""

    refuse: bool = False
    ignored: list[str] = field(default_factory=list)

    def found(self, names: Iterable[str], schema: list[SchemaColumn]) -> None:
        """``names`` (not the model's) are refused or kept in ``ignored``, each once."""
        names = [name for name in names if name not in self.ignored]
        if not names:
            return
        if self.refuse:
            raise BadRequest(
                f"the input has column(s) {', '.join(map(repr, names))} the model does not take "
                f"(?extra_columns=refuse); the model expects "
                f"{', '.join(repr(c['name']) for c in schema)}; send only those, or leave out "
                "extra_columns to have the others ignored"
            )
        self.ignored.extend(dict.fromkeys(names))


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
    check_count(len(body))
    for index, record in enumerate(body):
        if not isinstance(record, dict):
            raise BadRequest(f"record {index} is a {type(record).__name__}, not a JSON object")
    return body


#: What a typed decoder decodes a body to: one record, or a list of them.
_Records = Any


def typed_records_to_columns(
    raw: bytes, schema: list[SchemaColumn]
) -> dict[str, np.ndarray] | None:
    """Model input straight from a JSON body that is one record or a list of records, decoded
    by msgspec into the model's own record type; ``None`` for any other body.

    The common bodies, decoded and checked in one pass in C: no dict per record,
    no second walk over them for their keys and types, and the nesting bounded
    by the type. Whatever this reading refuses (another shape, a missing or
    unknown column, a value of the wrong type, ``NaN``, no record or too many)
    is read again by :func:`json_to_columns`, whose refusals name the problem,
    so answers and errors are the same either way.
    """
    key = tuple((column["name"], column["type"]) for column in schema)
    decoder = _records_decoder(key)
    if decoder is None:
        return None
    try:
        body = decoder.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return _typed_split_to_columns(raw, schema, key)
    if not isinstance(body, list):
        return _one_typed_record(msgspec.structs.astuple(body), schema)
    if not 0 < len(body) <= MAX_RECORDS:
        return None
    return _typed_columns(
        schema,
        (list(map(operator.attrgetter(f"c{index}"), body)) for index in range(len(schema))),
    )


def _typed_split_to_columns(
    raw: bytes, schema: list[SchemaColumn], key: tuple[tuple[str, str], ...]
) -> dict[str, np.ndarray] | None:
    """MLflow's ``dataframe_split`` whose columns are the model's, in the model's order, each
    row decoded as a typed tuple; ``None`` for anything else (read by the worded path)."""
    try:
        split = _split_decoder(key).decode(raw).dataframe_split
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    if split.columns != [name for name, _ in key] or not 0 < len(split.data) <= MAX_RECORDS:
        return None
    return _typed_columns(schema, zip(*split.data, strict=True))


def _typed_columns(
    schema: list[SchemaColumn], values: Iterable[Sequence[Any]]
) -> dict[str, np.ndarray]:
    """Each column's typed values (numbers already floats or ``None``) as its array."""
    columns = {}
    for column, column_values in zip(schema, values, strict=True):
        if column["type"] == ColumnType.NUMBER:
            columns[column["name"]] = np.array(column_values, dtype=np.float64)  # None → NaN
        else:
            text = np.empty(len(column_values), dtype=object)
            text[:] = column_values
            if None in column_values:
                text[pd.isna(text)] = np.nan
            columns[column["name"]] = text
    return columns


def _one_typed_record(values: tuple[Any, ...], schema: list[SchemaColumn]) -> dict[str, np.ndarray]:
    """The arrays of one typed record (numbers already floats or ``None``), value by value."""
    columns = {}
    for column, value in zip(schema, values, strict=True):
        if column["type"] == ColumnType.NUMBER:
            columns[column["name"]] = np.array([np.nan if value is None else value])
        else:
            text = np.empty(1, dtype=object)
            text[0] = np.nan if value is None else value
            columns[column["name"]] = text
    return columns


@functools.lru_cache(maxsize=64)
def _records_decoder(columns: tuple[tuple[str, str], ...]) -> msgspec.json.Decoder[_Records] | None:
    """The decoder of one record or a list of records of a model's columns (name, type);
    ``None`` when a column is named like a wrapper key (such a body is read as a wrapper),
    or is a date column (dates are checked, and may be years, on the worded path), or has
    a name msgspec cannot rename to (a ``"``, a ``\\`` or a control character in it)."""
    if WRAPPERS.intersection(name for name, _ in columns):
        return None
    if any(kind == ColumnType.DATETIME for _, kind in columns):
        return None
    fields = [
        (f"c{index}", float | None if kind == ColumnType.NUMBER else str | None)
        for index, (_, kind) in enumerate(columns)
    ]
    try:
        record = msgspec.defstruct(
            "Record",
            fields,
            rename={f"c{index}": name for index, (name, _) in enumerate(columns)},
            forbid_unknown_fields=True,
            gc=False,  # scalars only: no cycles, and 100,000 records would wake the collector
        )
    except ValueError:  # such a column name: its bodies are read on the worded path
        return None
    return msgspec.json.Decoder(record | list[record])  # type: ignore[valid-type]


@functools.lru_cache(maxsize=64)
def _split_decoder(columns: tuple[tuple[str, str], ...]) -> msgspec.json.Decoder[Any]:
    """The decoder of ``{"dataframe_split": {"columns": [...], "data": [rows], "index"?}}``
    whose rows are tuples of the model's column types, in the model's order."""
    row = tuple.__class_getitem__(
        tuple(float | None if kind == ColumnType.NUMBER else str | None for _, kind in columns)
    )
    split = msgspec.defstruct(
        "Split",
        [("columns", list[str]), ("data", list[row]), ("index", Any, None)],  # type: ignore[valid-type]
        forbid_unknown_fields=True,
    )
    body = msgspec.defstruct("SplitBody", [("dataframe_split", split)], forbid_unknown_fields=True)
    return msgspec.json.Decoder(body)


def check_count(rows: int, empty: str = "the list is empty") -> None:
    """Refuse (400) an input with no rows and (413) one with more than :data:`MAX_RECORDS`."""
    if rows == 0:
        raise BadRequest(f"no records to predict: {empty}")
    if rows > MAX_RECORDS:
        raise TooLarge(f"too many records ({rows}); send at most {MAX_RECORDS} per request")


def json_to_columns(
    body: Any, schema: list[SchemaColumn], extras: ExtraColumns | None = None
) -> dict[str, np.ndarray]:
    """Model input from a decoded JSON body in any accepted shape (see the module's docstring).

    A single record (an object with none of the :data:`WRAPPERS` keys) is the
    common case and goes first, with no more work than a set intersection.
    """
    if isinstance(body, dict):
        keys = WRAPPERS.intersection(body)
        if not keys:
            return records_to_columns([body], schema, extras)
        key = next(iter(keys))
        if len(body) > 1:
            others = ", ".join(repr(name) for name in body if name != key)
            raise BadRequest(
                f"a body with {key!r} may have no other key, not {others} "
                f"(MLflow's 'params' are not supported; ask for probabilities with "
                f"?probabilities=true). A record with a column named {key!r} goes in a list: "
                "[record]"
            )
        return _wrapped_columns(key, body[key], schema, extras)
    if isinstance(body, list):
        return records_to_columns(parse_records(body), schema, extras)
    raise BadRequest(f"body must be {SHAPES}")


def _wrapped_columns(
    key: str, value: Any, schema: list[SchemaColumn], extras: ExtraColumns | None
) -> dict[str, np.ndarray]:
    """The columns of one wrapper: ``{key: value}``."""
    if key == "dataframe_split":
        return split_to_columns(value, schema, extras)
    if key == "columns":
        if not isinstance(value, dict):
            raise BadRequest(
                '"columns" must map each column to its list of values: '
                '{"columns": {"<column>": [values]}}; for column names with rows of values send '
                '{"dataframe_split": {"columns": [names], "data": [[row], ...]}}'
            )
        return columnar_to_columns(value, schema, extras)
    if key in ("instances", "inputs") and isinstance(value, dict):
        return columnar_to_columns(value, schema, extras)
    if isinstance(value, list) and key in ("instances", "inputs") and value:
        if isinstance(value[0], list):
            return rows_to_columns(value, [column["name"] for column in schema], schema, key)
    if not isinstance(value, list):
        raise BadRequest(f"{key!r} must be a list of records, not a {type(value).__name__}")
    return records_to_columns(parse_records(value), schema, extras)


def split_to_columns(
    split: Any, schema: list[SchemaColumn], extras: ExtraColumns | None = None
) -> dict[str, np.ndarray]:
    """MLflow's (and pandas') ``split`` orient: ``{"columns": [...], "data": [[...]]}``.

    ``index``, if sent, is ignored: answers come in the order of ``data``.
    """
    if not isinstance(split, dict) or not isinstance(split.get("columns"), list):
        raise BadRequest(
            '"dataframe_split" must be {"columns": [names], "data": [[row], ...]} '
            '(with an optional "index")'
        )
    unknown = [key for key in split if key not in ("columns", "data", "index")]
    if unknown:
        raise BadRequest(
            f'"dataframe_split" has unknown key(s) {", ".join(map(repr, unknown))}; '
            'it takes "columns", "data" and "index"'
        )
    names = split["columns"]
    if not all(isinstance(name, str) for name in names):
        raise BadRequest('"dataframe_split" "columns" must be a list of column names (strings)')
    data = split.get("data")
    if not isinstance(data, list):
        raise BadRequest('"dataframe_split" needs "data": a list of rows, each a list of values')
    return rows_to_columns(data, names, schema, "dataframe_split", extras)


def rows_to_columns(
    rows: list[Any],
    names: list[str],
    schema: list[SchemaColumn],
    where: str,
    extras: ExtraColumns | None = None,
) -> dict[str, np.ndarray]:
    """Rows of values (lists, in the order of ``names``) as model input, transposed at once."""
    check_count(len(rows))
    width = len(names)
    for index, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != width:
            got = f"{len(row)} values" if isinstance(row, list) else f"a {type(row).__name__}"
            raise BadRequest(
                f"{where} row {index} has {got}; each row must be a list of {width} values, "
                f"one per column in the order {', '.join(map(repr, names))}"
            )
    check_columns(names, schema, extras)
    transposed = list(zip(*rows, strict=True))
    return _convert({name: transposed[i] for i, name in enumerate(names)}, schema)


def columnar_to_columns(
    columns: dict[str, Any], schema: list[SchemaColumn], extras: ExtraColumns | None = None
) -> dict[str, np.ndarray]:
    """``{column: [values]}`` as model input: each list straight to its array."""
    check_columns(list(columns), schema, extras)
    lengths = {}
    for name, values in columns.items():
        if not isinstance(values, list):
            raise BadRequest(
                f"column {name!r} must be a list of values, not a {type(values).__name__}"
            )
        lengths[name] = len(values)
    if len(set(lengths.values())) > 1:
        raise BadRequest(
            "every column must have as many values as the others: "
            + ", ".join(f"{name!r} has {count}" for name, count in lengths.items())
        )
    check_count(next(iter(lengths.values()), 0))
    return _convert(columns, schema)


def check_columns(
    names: Sequence[str], schema: list[SchemaColumn], extras: ExtraColumns | None = None
) -> None:
    """Refuse (422) input columns that repeat or lack the model's, naming them; columns the
    model does not take go to ``extras`` (ignored when it is ``None``)."""
    seen = set(names)
    if len(seen) < len(names):
        repeated = sorted(name for name, count in Counter(names).items() if count > 1)
        raise Invalid(f"the input has column(s) {', '.join(map(repr, repeated))} more than once")
    missing = [column["name"] for column in schema if column["name"] not in seen]
    if missing:
        raise Invalid(
            f"the input lacks column(s) {', '.join(map(repr, missing))}; send every column "
            "the model expects, a missing value as null (JSON) or an empty cell (CSV)"
        )
    expected = {column["name"] for column in schema}
    unknown = [name for name in names if name not in expected]
    if unknown and extras is not None:
        extras.found(unknown, schema)


def _convert(
    columns: dict[str, Sequence[Any]], schema: list[SchemaColumn]
) -> dict[str, np.ndarray]:
    """Each column's values as its array, in schema order (names already checked)."""
    return {column["name"]: _values(column, columns[column["name"]]) for column in schema}


def _values(column: SchemaColumn, values: Sequence[Any]) -> np.ndarray:
    """One column's JSON values as its array: numbers, text or dates by its type."""
    if column["type"] == ColumnType.NUMBER:
        return _numbers(column["name"], values)
    if column["type"] == ColumnType.DATETIME:
        return _dates(column["name"], values)
    return _texts(column["name"], values)


def _explain_columns(
    record: dict[str, Any], index: int, schema: list[SchemaColumn], extras: ExtraColumns | None
) -> None:
    """Raise the error that names a record's missing columns; its unknown ones go to
    ``extras`` (ignored when it is ``None``)."""
    expected = {column["name"] for column in schema}
    missing = [column["name"] for column in schema if column["name"] not in record]
    if missing:
        raise Invalid(
            f"record {index} lacks column(s) {', '.join(map(repr, missing))}; "
            "send null for a missing value"
        )
    if extras is not None:
        extras.found([name for name in record if name not in expected], schema)


def _numbers(name: str, values: Sequence[Any]) -> np.ndarray:
    """One numeric column as float64, ``None`` as NaN; anything else is named and refused.

    The types are checked in one pass in C (``set(map(type, ...))``); only a
    refused column is walked in Python, to name its first bad record.
    """
    if not _NUMBER_TYPES.issuperset(map(type, values)):
        for index, value in enumerate(values):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float))
            ):
                raise Invalid(f"column {name!r} expects a number; record {index} has {value!r}")
    try:
        array = np.array(values, dtype=np.float64)  # None → NaN
    except OverflowError:
        raise Invalid(f"column {name!r} has a number too large for a float") from None
    if not np.isfinite(array).all():
        for position in np.flatnonzero(~np.isfinite(array)):
            if values[int(position)] is not None:
                raise Invalid(f"column {name!r} has a non-finite number in record {position}")
    return array


def _texts(name: str, values: Sequence[Any]) -> np.ndarray:
    """One text column as Python strings, ``None`` as NaN (what the imputer treats as missing)."""
    kinds = set(map(type, values))
    if not _TEXT_TYPES.issuperset(kinds):
        for index, value in enumerate(values):
            if value is not None and not isinstance(value, str):
                raise Invalid(f"column {name!r} expects a string; record {index} has {value!r}")
    array = np.empty(len(values), dtype=object)
    array[:] = values
    if _NONE in kinds:
        array[pd.isna(array)] = np.nan
    return array


def _dates(name: str, values: Sequence[Any]) -> np.ndarray:
    """One date column's JSON values (text, or a year as an integer), ``None`` as NaN;
    whether each is a date is checked by :func:`check_dates`."""
    kinds = set(map(type, values))
    if not _DATE_TYPES.issuperset(kinds):
        for index, value in enumerate(values):
            if value is not None and not isinstance(value, (str, int, float)):
                raise Invalid(
                    f'column {name!r} expects a date (text such as "1971-01-31", or a year '
                    f"such as 1971); record {index} has {value!r}"
                )
    array = np.empty(len(values), dtype=object)
    array[:] = values
    if _NONE in kinds or float in kinds:
        array[pd.isna(array)] = np.nan
    return array


def check_dates(columns: dict[str, np.ndarray], schema: list[SchemaColumn]) -> None:
    """Refuse (422) a value of a date column that is not a date, naming it and its row:
    before the model runs, where the same parse (:func:`parse_dates`) would fail."""
    for column in schema:
        if column["type"] != ColumnType.DATETIME:
            continue
        try:
            parse_dates(columns[column["name"]], column.get("format"))
        except BadDate as bad:
            raise Invalid(
                f"column {column['name']!r} expects dates; row {bad.position} has {bad.value!r}, "
                'which is neither a date (e.g. "1971-01-31") nor a year (e.g. 1971)'
            ) from None


def records_to_columns(
    records: list[dict[str, Any]], schema: list[SchemaColumn], extras: ExtraColumns | None = None
) -> dict[str, np.ndarray]:
    """Validate records against the input schema: one array per column, in schema order."""
    expected = {column["name"] for column in schema}
    for index, record in enumerate(records):
        if record.keys() != expected:
            _explain_columns(record, index, schema, extras)
    if len(records) == 1:
        return _one_record(records[0], schema)
    columns = {}
    for column in schema:
        name = column["name"]
        columns[name] = _values(column, [record[name] for record in records])
    return columns


def _one_record(record: dict[str, Any], schema: list[SchemaColumn]) -> dict[str, np.ndarray]:
    """The arrays of a single record, value by value: the common request, kept cheap.

    The same arrays and refusals as :func:`_numbers` and :func:`_texts`
    (which word any refusal), without their numpy calls per column.
    """
    columns = {}
    for column in schema:
        name = column["name"]
        value = record[name]
        if column["type"] == ColumnType.NUMBER:
            if value is None:
                columns[name] = np.array([np.nan])
            elif type(value) is float and math.isfinite(value):
                columns[name] = np.array([value])
            else:
                columns[name] = _numbers(name, [value])
        elif column["type"] == ColumnType.DATETIME:
            columns[name] = _dates(name, [value])
        elif type(value) is str:
            array = np.empty(1, dtype=object)
            array[0] = value
            columns[name] = array
        else:
            columns[name] = _texts(name, [value])
    return columns


def arrow_to_columns(
    table: pa.Table | pa.RecordBatch, schema: list[SchemaColumn], first_row: int = 0
) -> dict[str, np.ndarray]:
    """Validate an Arrow table (or batch) against the input schema: one array per column.

    The same arrays :func:`records_to_columns` gives: float64 with NaN for a
    missing number, Python strings with NaN for a missing text. Extra columns
    are ignored (a stored data set also has its target and ids); a missing
    one, one the input has twice, or a column of the wrong type, is named.
    ``first_row`` numbers the rows in messages when ``table`` is one chunk of
    a larger input. Numbers may be any integer, float or decimal type (NaN
    means missing); text may be dictionary-encoded, which stays as cheap as
    its dictionary (see :func:`_arrow_texts`).
    """
    names = table.schema.names
    missing = [column["name"] for column in schema if column["name"] not in names]
    if missing:
        raise Invalid(
            f"the input lacks column(s) {', '.join(map(repr, missing))}; "
            f"the model expects {', '.join(repr(c['name']) for c in schema)}"
        )
    twice = [column["name"] for column in schema if names.count(column["name"]) > 1]
    if twice:
        raise Invalid(f"the input has column(s) {', '.join(map(repr, twice))} more than once")
    columns = {}
    for column in schema:
        name = column["name"]
        values = table.column(name)
        if column["type"] == ColumnType.NUMBER:
            columns[name] = _arrow_numbers(name, values, first_row)
        elif column["type"] == ColumnType.DATETIME and not _is_text_type(_plain(values.type)):
            columns[name] = _arrow_dates(name, values)
        else:
            columns[name] = _arrow_texts(name, values)
    return columns


def _plain(kind: pa.DataType) -> pa.DataType:
    """A dictionary type's value type; any other type as it is."""
    return kind.value_type if pa.types.is_dictionary(kind) else kind


def _arrow_dates(name: str, values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A date column given as Arrow dates, timestamps or integer years: Python values (null:
    NaN), parsed by the model's date step."""
    if not _is_date_type(_plain(values.type)):
        raise Invalid(f"column {name!r} expects dates; the input has {values.type}")
    array = np.asarray(values.to_pylist(), dtype=object)
    array[pd.isna(array)] = np.nan
    return array


def _is_date_type(kind: pa.DataType) -> bool:
    """Arrow types a date column may come as besides text: dates, timestamps, integer years."""
    return pa.types.is_temporal(kind) or pa.types.is_integer(kind) or pa.types.is_null(kind)


def row_bytes(schema: list[SchemaColumn]) -> int:
    """What one row costs the model whatever its values: 8 bytes per feature it encodes.

    A number is one feature; a text column is one per category seen in
    training (the one-hot encoder's output, which scikit-learn keeps dense).
    """
    width = sum(
        1 if column["type"] == ColumnType.NUMBER else max(1, len(column.get("categories", ())))
        for column in schema
    )
    return decoded_sizes.NUMBER_BYTES * width


def decoded_bytes(table: pa.Table | pa.RecordBatch, schema: list[SchemaColumn]) -> int:
    """What a table's rows become as model input (see :mod:`mlservice.store.decoded_sizes`):
    :func:`row_bytes` a row, plus each text value's bytes in every row that holds it."""
    return int(decoded_row_bytes(table, schema).sum())


def decoded_row_bytes(table: pa.Table | pa.RecordBatch, schema: list[SchemaColumn]) -> np.ndarray:
    """:func:`decoded_bytes` of each row, for splitting a table into bounded chunks."""
    text = [column["name"] for column in schema if column["type"] != ColumnType.NUMBER]
    return decoded_sizes.row_bytes(table, text, row_bytes(schema))


def check_arrow_types(arrow_schema: pa.Schema, schema: list[SchemaColumn]) -> None:
    """Refuse (422) an input column whose Arrow type the model cannot take, from the schema
    alone: before a row is read, so a "number" column holding long text is never decoded."""
    for column in schema:
        index = arrow_schema.get_field_index(column["name"])
        if index < 0:
            continue  # a missing column is named by check_columns
        kind = arrow_schema.field(index).type
        if pa.types.is_dictionary(kind):
            kind = kind.value_type
        if column["type"] == ColumnType.NUMBER and not _is_number_type(kind):
            raise Invalid(f"column {column['name']!r} expects numbers; the input has {kind}")
        if column["type"] == ColumnType.DATETIME:
            if not (_is_text_type(kind) or _is_date_type(kind)):
                raise Invalid(f"column {column['name']!r} expects dates; the input has {kind}")
        elif column["type"] != ColumnType.NUMBER and not _is_text_type(kind):
            raise Invalid(f"column {column['name']!r} expects text; the input has {kind}")


def _is_number_type(kind: pa.DataType) -> bool:
    """Arrow types a number column may come as (null: every value missing)."""
    return (
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_decimal(kind)
        or pa.types.is_null(kind)
    )


def _is_text_type(kind: pa.DataType) -> bool:
    """Arrow types a text column may come as (null: every value missing)."""
    return (
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_string_view(kind)
        or pa.types.is_null(kind)
    )


def _arrow_numbers(name: str, values: pa.Array | pa.ChunkedArray, first_row: int) -> np.ndarray:
    """One numeric Arrow column as float64 (null and NaN: NaN); infinities are refused."""
    kind = values.type
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
        values = values.cast(kind)
    if not _is_number_type(kind):
        raise Invalid(f"column {name!r} expects numbers; the input has {kind}")
    # safe=False: an integer beyond 2**53 rounds to the nearest float, as it does from JSON.
    array = pc.cast(values, pa.float64(), safe=False).to_numpy(zero_copy_only=False)
    bad = np.flatnonzero(np.isinf(array))
    if bad.size:
        raise Invalid(f"column {name!r} has a non-finite number in row {first_row + int(bad[0])}")
    return np.asarray(array, dtype=np.float64)


def _arrow_texts(name: str, values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """One text Arrow column as Python strings (null: NaN).

    Every column is read as a dictionary (one that is not is encoded first, in
    C): each distinct value becomes one Python string and each row a reference
    to it. A small Parquet file whose every row repeats one long string stays
    small in memory, and a category column of 100,000 rows costs a handful of
    strings instead of 100,000 (a third of an Arrow batch's reading before).
    """
    kind = values.type
    is_dictionary = pa.types.is_dictionary(kind)
    if is_dictionary:
        kind = kind.value_type
    if not _is_text_type(kind):
        raise Invalid(f"column {name!r} expects text; the input has {kind}")
    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    parts = [
        _dictionary_texts(name, chunk if is_dictionary else _dictionary(name, chunk))
        for chunk in chunks
    ]
    if len(parts) == 1:
        return parts[0]
    return np.concatenate(parts) if parts else np.empty(0, dtype=object)


def _dictionary(name: str, chunk: pa.Array) -> pa.DictionaryArray:
    """A text array dictionary-encoded; 400 for bytes that are not UTF-8."""
    try:
        return chunk.cast(pa.string()).dictionary_encode()
    except (pa.ArrowException, UnicodeDecodeError):
        raise BadRequest(f"column {name!r} has text that is not UTF-8") from None


def _dictionary_texts(name: str, chunk: pa.DictionaryArray) -> np.ndarray:
    """A dictionary-encoded text array as references to its dictionary's Python strings."""
    words = _python_strings(name, chunk.dictionary)
    if not len(words):
        return np.full(len(chunk), np.nan, dtype=object)
    words[pd.isna(words)] = np.nan  # a null in the dictionary itself
    indices = chunk.indices
    part = np.asarray(words[indices.fill_null(0).to_numpy(zero_copy_only=False)], dtype=object)
    if indices.null_count:
        part[indices.is_null().to_numpy(zero_copy_only=False)] = np.nan
    return part


def _python_strings(name: str, array: pa.Array) -> np.ndarray:
    """A text array as Python strings; 400 for bytes that are not UTF-8 (which Arrow and
    Parquet readers, unlike the CSV one, leave unchecked until here)."""
    try:
        return array.cast(pa.string()).to_numpy(zero_copy_only=False)
    except (pa.ArrowException, UnicodeDecodeError):
        raise BadRequest(f"column {name!r} has text that is not UTF-8") from None


def arrow_types(schema: list[SchemaColumn]) -> dict[str, pa.DataType]:
    """The Arrow type each input column is read as from CSV: numbers float64, text as text.

    Named for pyarrow's CSV reader (a CSV body, a stored data set), so a text
    column stays text whatever it looks like: ``007`` is not 7.
    """
    return {
        column["name"]: pa.float64() if column["type"] == ColumnType.NUMBER else pa.string()
        for column in schema
    }


def columns_to_frame(columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """The DataFrame scikit-learn's ColumnTransformer selects columns from by name."""
    return pd.DataFrame(columns, copy=False)
