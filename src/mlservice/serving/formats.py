"""Prediction bodies and answers as bytes: JSON, CSV, Parquet and Arrow IPC streams.

A prediction may come from a web form's JSON, an MLflow client, a CSV export
or a data pipeline's Parquet or Arrow, and may want its answer in any of
them. This module turns a request body (bytes and its media type) into the
model's input columns (:func:`read_body`) and an answer into bytes
(:func:`write_answer`); the route only negotiates the media types. It knows
nothing of Flask, so a batch job or the CLI can call the same functions.

Every format ends in the same checked arrays (:mod:`.inputs`): JSON through
:func:`inputs.json_to_columns`, the others as an Arrow table through
:func:`inputs.arrow_to_columns`. A CSV body is read with the types the model
expects (a text column stays text, so ``007`` is not 7). The request body is
bounded by the route; what a Parquet or Arrow body unpacks to is bounded here.

Every answer starts as the model's raw output (:meth:`.Predictor.run`): JSON
is :func:`outputs.answer`, the tabular formats :func:`outputs.answer_table`,
the very table batch scoring writes.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from ..errors import BadRequest, Invalid, TooLarge, UnsupportedMedia
from ..store.bundles import ColumnType, ModelBundle, SchemaColumn
from ..store.csv_dialect import detect_delimiter
from . import inputs, outputs

JSON = "application/json"
CSV = "text/csv"
PARQUET = "application/vnd.apache.parquet"
PARQUET_OLD = "application/x-parquet"  # the name before IANA registered one; still common
ARROW_STREAM = "application/vnd.apache.arrow.stream"

#: The body media types a prediction accepts, JSON first.
READABLE = (JSON, CSV, PARQUET, PARQUET_OLD, ARROW_STREAM)
#: The answer media types, in order of preference when ``Accept`` allows several.
WRITABLE = (JSON, CSV, PARQUET, PARQUET_OLD, ARROW_STREAM)
#: What a Parquet or Arrow body may unpack to, in multiples of the body cap.
UNPACK_FACTOR = 8
#: The bytes of a CSV body read to find its delimiter from the header line.
HEADER_SCAN_BYTES = 64 * 1024

_NAMES = {
    JSON: "JSON",
    CSV: "CSV",
    PARQUET: "Parquet",
    PARQUET_OLD: "Parquet",
    ARROW_STREAM: "Arrow",
}


def format_name(media_type: str) -> str:
    """The format's short name for messages ("CSV"), or the media type itself."""
    return _NAMES.get(media_type, media_type)


def check_readable(media_type: str) -> None:
    """Refuse (415) a body media type no reader here understands, listing those that are."""
    if media_type not in READABLE:
        sent = f"'{media_type}'" if media_type else "no Content-Type"
        raise UnsupportedMedia(
            f"cannot read a prediction body sent as {sent}; send it with Content-Type "
            + ", ".join(READABLE)
        )


def read_body(
    data: bytes, media_type: str, schema: list[SchemaColumn], max_json_depth: int = 32
) -> dict[str, np.ndarray]:
    """The model's input columns from a request body of ``media_type``; 4xx naming the problem.

    ``data`` is the whole body (the caller bounds its size). JSON's nesting
    depth is bounded by ``max_json_depth``; a Parquet or Arrow body may unpack
    to at most :data:`UNPACK_FACTOR` times its own size plus one MiB.
    """
    check_readable(media_type)
    if not data:
        raise BadRequest(f"the request body is empty; send {format_name(media_type)}")
    if media_type == JSON:
        return inputs.json_to_columns(decode_json(data, max_json_depth), schema)
    unpack_limit = UNPACK_FACTOR * len(data) + 1024**2
    if media_type == CSV:
        table = read_csv(data, schema)
    elif media_type == ARROW_STREAM:
        table = read_arrow(data, schema, unpack_limit)
    else:
        table = read_parquet(data, schema, unpack_limit)
    return _table_columns(table, schema, format_name(media_type))


def _table_columns(table: pa.Table, schema: list[SchemaColumn], what: str) -> dict[str, np.ndarray]:
    """Checked model input from a whole table: no unknown column, 1 to MAX_RECORDS rows."""
    check_body_columns(table.schema, schema, what)
    inputs.check_count(table.num_rows, empty="the body has no rows")
    return inputs.arrow_to_columns(table, schema)


def column_names(arrow_schema: pa.Schema, what: str) -> list[str]:
    """The column names of a ``what`` (CSV, Parquet, Arrow) body; 400 if they are not UTF-8.

    Arrow keeps a name as the bytes the body holds and decodes it only when
    asked, so every name of a body is read here, where a name that is not
    text is refused instead of failing (500) wherever it is first compared.
    """
    try:
        return list(arrow_schema.names)
    except UnicodeDecodeError:
        raise names_not_text(what) from None


def names_not_text(what: str) -> BadRequest:
    """The refusal of a ``what`` body whose column names are not UTF-8 text."""
    return BadRequest(f"the column names of the {what} body are not UTF-8 text")


def check_body_columns(arrow_schema: pa.Schema, schema: list[SchemaColumn], what: str) -> None:
    """A body's columns against the model's (:func:`inputs.check_columns`), names read as text."""
    inputs.check_columns(column_names(arrow_schema, what), schema)


# --- JSON --------------------------------------------------------------------------------


def decode_json(raw: bytes, max_depth: int) -> Any:
    """A JSON body decoded; 400 naming the problem, 422 if it nests deeper than ``max_depth``.

    orjson decodes; whatever it refuses is decoded again by the standard
    library, which words the error (line and column) as the service always
    has, and still reads what orjson is stricter about (``NaN``, integers
    beyond 64 bits, lone surrogates), so those keep their own clear 422s.
    """
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = _decode_json_slowly(raw, max_depth)
    if _nesting_exceeds(body, raw, max_depth):
        raise too_deep(max_depth)
    return body


def _decode_json_slowly(raw: bytes, max_depth: int) -> Any:
    """The standard library's reading of a body orjson refused, with its error messages."""
    try:
        return json.loads(raw)
    except UnicodeDecodeError:
        raise BadRequest("the request body is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"the request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise too_deep(max_depth) from None


def too_deep(limit: int) -> Invalid:
    """The refusal of a body nested deeper than ``[limits] max_json_depth``."""
    return Invalid(
        f"the JSON body nests arrays and objects more than {limit} deep ([limits] max_json_depth)"
    )


def _nesting_exceeds(value: Any, raw: bytes, limit: int) -> bool:
    """Whether arrays and objects nest more than ``limit`` deep (iteratively: no recursion)."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False  # fewer containers than the limit: cannot nest deeper
    pending = [(value, 1)]
    while pending:
        node, depth = pending.pop()
        if depth > limit:
            return True
        if not isinstance(node, (dict, list)):
            continue
        children = node.values() if isinstance(node, dict) else node
        pending.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


# --- CSV ---------------------------------------------------------------------------------

#: pyarrow's words for a value a column's type cannot hold ("Row #3" counts the header as 1).
_CSV_CONVERSION = re.compile(
    r"In CSV column #(\d+): (?:Row #(\d+): )?CSV conversion error to (\w+): (.*)", re.S
)


def read_csv(data: bytes, schema: list[SchemaColumn]) -> pa.Table:
    """A CSV body as a table, each model column read as the model's type.

    Numbers as float64 and text as strings whatever they look like; an empty
    cell (or ``NA``, ``null``...: pyarrow's usual null spellings, as when a
    data set is read for training) is a missing value. The delimiter is
    found from the header line as for an uploaded data set (``,`` ``;`` tab ``|``).
    """
    delimiter = detect_delimiter(data[:HEADER_SCAN_BYTES])
    types = inputs.arrow_types(schema)
    try:
        return pacsv.read_csv(
            pa.BufferReader(data),
            read_options=pacsv.ReadOptions(use_threads=False, block_size=len(data) + 1),
            parse_options=pacsv.ParseOptions(delimiter=delimiter),
            convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=True),
        )
    except pa.ArrowException as exc:
        raise _csv_error(str(exc), data, delimiter) from None


def _csv_error(message: str, data: bytes, delimiter: str) -> BadRequest | Invalid:
    """The refusal of a CSV body pyarrow could not read, naming the column and row if it can."""
    conversion = _CSV_CONVERSION.match(message)
    if conversion is None:
        detail = message.strip().splitlines()[0] if message.strip() else "unreadable"
        return BadRequest(f"the CSV body cannot be read: {detail}")
    index, line, target, problem = conversion.groups()
    header = _csv_header(data, delimiter)
    name = header[int(index)] if int(index) < len(header) else f"#{int(index) + 1}"
    if target != "double":
        return BadRequest(f"column {name!r} of the CSV body is not UTF-8 text")
    value = problem.removeprefix("invalid value ").strip()
    where = f"row {int(line) - 2} has" if line else "it has"  # rows from 0, as records are
    return Invalid(f"column {name!r} expects a number; {where} {value}")


def _csv_header(data: bytes, delimiter: str) -> list[str]:
    """The column names of a CSV body (only on an error)."""
    try:
        reader = pacsv.open_csv(
            pa.BufferReader(data),
            read_options=pacsv.ReadOptions(use_threads=False, block_size=len(data) + 1),
            parse_options=pacsv.ParseOptions(delimiter=delimiter),
            convert_options=pacsv.ConvertOptions(check_utf8=False),
        )
    except pa.ArrowException:
        return []
    return column_names(reader.schema, "CSV")


# --- Parquet and Arrow -------------------------------------------------------------------


def read_parquet(data: bytes, schema: list[SchemaColumn], unpack_limit: int) -> pa.Table:
    """A Parquet body's model columns; what they unpack to is checked from the footer first.

    Text columns are read dictionary-encoded, so a column repeating one long
    string costs its dictionary, not one copy per row.
    """
    try:
        parquet = pq.ParquetFile(pa.BufferReader(data))
    except pa.ArrowException as exc:
        raise BadRequest(f"the body is not a Parquet file: {_first_line(exc)}") from None
    except UnicodeDecodeError:  # pyarrow reads the column paths as text at once
        raise names_not_text("Parquet") from None
    check_body_columns(parquet.schema_arrow, schema, "Parquet")
    inputs.check_count(parquet.metadata.num_rows, empty="the body has no rows")
    wanted = [column["name"] for column in schema]
    _check_unpacked(_parquet_unpacked_size(parquet, wanted), unpack_limit, "Parquet")
    text = [column["name"] for column in schema if column["type"] != ColumnType.NUMBER]
    try:  # opened again: read_dictionary may name only columns the file has
        encoded = pq.ParquetFile(pa.BufferReader(data), read_dictionary=text)
        return encoded.read(columns=wanted, use_threads=False)
    except pa.ArrowException as exc:
        raise BadRequest(f"the Parquet body cannot be read: {_first_line(exc)}") from None


def _parquet_unpacked_size(parquet: pq.ParquetFile, names: list[str]) -> int:
    """The uncompressed bytes of ``names``' column chunks, as the file's footer tells."""
    metadata = parquet.metadata
    positions = [
        index
        for index in range(metadata.num_columns)
        if metadata.schema.column(index).path.split(".")[0] in names
    ]
    return sum(
        metadata.row_group(group).column(index).total_uncompressed_size
        for group in range(metadata.num_row_groups)
        for index in positions
    )


def read_arrow(data: bytes, schema: list[SchemaColumn], unpack_limit: int) -> pa.Table:
    """An Arrow IPC stream body (or an Arrow IPC file) as a table, batch by batch, bounded."""
    try:
        if data.startswith(b"ARROW1"):
            file_reader = ipc.open_file(pa.BufferReader(data))
            check_body_columns(file_reader.schema, schema, "Arrow")
            batches = (file_reader.get_batch(i) for i in range(file_reader.num_record_batches))
            arrow_schema = file_reader.schema
        else:
            stream = ipc.open_stream(pa.BufferReader(data))
            check_body_columns(stream.schema, schema, "Arrow")
            batches = iter(stream)
            arrow_schema = stream.schema
        kept, rows, size = [], 0, 0
        for batch in batches:
            rows += batch.num_rows
            size += batch.nbytes
            if rows > inputs.MAX_RECORDS:
                inputs.check_count(rows)
            _check_unpacked(size, unpack_limit, "Arrow")
            kept.append(batch)
        return pa.Table.from_batches(kept, schema=arrow_schema)
    except pa.ArrowException as exc:
        raise BadRequest(f"the body is not an Arrow IPC stream: {_first_line(exc)}") from None


def _check_unpacked(size: int, limit: int, what: str) -> None:
    """Refuse (413) a compressed body that unpacks to more than ``limit`` bytes."""
    if size > limit:
        raise TooLarge(
            f"the {what} body unpacks to {size / 1024**2:.1f} MiB, more than "
            f"{limit / 1024**2:.1f} MiB ({UNPACK_FACTOR}x its size plus 1 MiB): "
            "send fewer rows per request"
        )


def _first_line(exc: Exception) -> str:
    """What pyarrow says went wrong, without the C++ source lines it may add below."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# --- Answers -----------------------------------------------------------------------------


def write_answer(
    bundle: ModelBundle, raw: np.ndarray, proba: np.ndarray | None, media_type: str
) -> tuple[bytes, str]:
    """The answer to the model's raw output (:meth:`.Predictor.run`) as bytes and Content-Type.

    JSON is :func:`outputs.answer`'s ``{"predictions": [...], "probabilities": [...]?}``;
    the tabular formats hold :func:`outputs.answer_table`: one row per prediction,
    ``prediction``, then ``probability_<class>`` per class when probabilities were asked.
    """
    if media_type == JSON:
        answer = outputs.answer(bundle, raw, proba)
        return orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY), JSON
    return write_table(outputs.answer_table(bundle, raw, proba), media_type)


def write_table(table: pa.Table, media_type: str) -> tuple[bytes, str]:
    """A table as CSV, Parquet or an Arrow IPC stream: bytes and Content-Type."""
    sink = pa.BufferOutputStream()
    if media_type == CSV:
        pacsv.write_csv(table, sink, pacsv.WriteOptions(quoting_style="needed"))
        return sink.getvalue().to_pybytes(), "text/csv; charset=utf-8"
    if media_type in (PARQUET, PARQUET_OLD):
        pq.write_table(table, sink)
        return sink.getvalue().to_pybytes(), media_type
    if media_type == ARROW_STREAM:
        with ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return sink.getvalue().to_pybytes(), ARROW_STREAM
    raise ValueError(f"no writer for {media_type!r}")  # the route offers only WRITABLE
