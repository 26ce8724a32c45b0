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
bounded by the route (``[limits] max_json_mb``); what it becomes is bounded
here (``[limits] max_decoded_mb``), from its metadata before it is decoded:
an Arrow stream's message headers (:mod:`.arrow_ipc`), a Parquet footer, a CSV
header line, then each text value's bytes in every row that holds it
(:mod:`mlservice.store.decoded_sizes`), before any of it becomes Python
strings for scikit-learn or ONNX Runtime, which copy text once per row.

Every answer starts as the model's raw output (:meth:`.Predictor.run`): JSON
is :func:`outputs.answer`, the tabular formats :func:`outputs.answer_table`,
the very table batch scoring writes.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from ..config import LimitsSettings
from ..errors import BadRequest, Invalid, TooLarge, UnsupportedMedia
from ..store import decoded_sizes
from ..store.bundles import ColumnType, ModelBundle, SchemaColumn
from ..store.csv_dialect import detect_decimal, detect_delimiter, header_width, parse_problem
from . import arrow_ipc, inputs, outputs

JSON = "application/json"
CSV = "text/csv"
PARQUET = "application/vnd.apache.parquet"
PARQUET_OLD = "application/x-parquet"  # the name before IANA registered one; still common
ARROW_STREAM = "application/vnd.apache.arrow.stream"

#: The body media types a prediction accepts, JSON first.
READABLE = (JSON, CSV, PARQUET, PARQUET_OLD, ARROW_STREAM)
#: The answer media types, in order of preference when ``Accept`` allows several.
WRITABLE = (JSON, CSV, PARQUET, PARQUET_OLD, ARROW_STREAM)
#: The most arrays and objects a JSON body may hold: a record (or a row) each, and room for
#: brackets inside text.
MAX_JSON_CONTAINERS = 4 * inputs.MAX_RECORDS + 16
#: The bytes of a CSV body read to find its delimiter and count its columns from the header.
HEADER_SCAN_BYTES = 1024 * 1024
#: The first bytes of an Arrow IPC file; its stream of messages starts 8 bytes in.
ARROW_FILE_MAGIC = b"ARROW1"
ARROW_FILE_STREAM_START = 8
#: Parquet encodings of text that pyarrow reads as a dictionary or as the bytes stored.
#: (DELTA_BYTE_ARRAY shares prefixes between values: it cannot be read as a dictionary.)
PARQUET_TEXT_ENCODINGS = frozenset(
    {"PLAIN", "PLAIN_DICTIONARY", "RLE_DICTIONARY", "DELTA_LENGTH_BYTE_ARRAY", "RLE", "BIT_PACKED"}
)

log = logging.getLogger(__name__)

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
    data: bytes,
    media_type: str,
    schema: list[SchemaColumn],
    limits: LimitsSettings | None = None,
    extras: inputs.ExtraColumns | None = None,
) -> dict[str, np.ndarray]:
    """The model's input columns from a request body of ``media_type``; 4xx naming the problem.

    Columns the model does not take go to ``extras`` (ignored, or refused: see
    :class:`inputs.ExtraColumns`); without it they are ignored unnamed.

    ``data`` is the whole body (the caller bounds its size). JSON's nesting
    depth is bounded by ``[limits] max_json_depth``; what any body becomes
    in memory by ``[limits] max_decoded_mb`` (a CSV body's columns by
    ``[limits] max_columns`` too), each checked before the body is decoded.
    """
    limits = limits or LimitsSettings()
    check_readable(media_type)
    if not data:
        raise BadRequest(f"the request body is empty; send {format_name(media_type)}")
    if media_type == JSON:
        containers = count_containers(data)
        columns = inputs.typed_records_to_columns(data, schema)  # the common bodies, at once
        if columns is None:
            body = decode_json(data, limits.max_json_depth, containers)
            columns = inputs.json_to_columns(body, schema, extras)
        rows = len(next(iter(columns.values()))) if columns else 0
        check_decoded(rows * inputs.row_bytes(schema), limits, "JSON")
        return columns
    if media_type == CSV:
        table = read_csv(data, schema, limits)
    elif media_type == ARROW_STREAM:
        table = read_arrow(data, schema, limits)
    else:
        table = read_parquet(data, schema, limits)
    return _table_columns(table, schema, format_name(media_type), limits, extras)


def _table_columns(
    table: pa.Table,
    schema: list[SchemaColumn],
    what: str,
    limits: LimitsSettings,
    extras: inputs.ExtraColumns | None = None,
) -> dict[str, np.ndarray]:
    """Checked model input from a whole table: every model column once (others to
    ``extras``), 1 to MAX_RECORDS rows, and no more than ``[limits] max_decoded_mb`` once
    each row holds its own text."""
    check_body_columns(table.schema, schema, what, extras)
    inputs.check_count(table.num_rows, empty="the body has no rows")
    check_decoded(inputs.decoded_bytes(table, schema), limits, what)
    return inputs.arrow_to_columns(table, schema)


def check_decoded(size: int, limits: LimitsSettings, what: str) -> None:
    """Refuse (413) a body whose rows become more than ``[limits] max_decoded_mb``."""
    if size > limits.max_decoded_bytes:
        raise TooLarge(
            f"the {what} body becomes {decoded_sizes.in_mib(size)} in memory once decoded, "
            f"more than {limits.max_decoded_mb:g} MiB ([limits] max_decoded_mb): "
            "send fewer rows, or shorter text, per request"
        )


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


def check_body_columns(
    arrow_schema: pa.Schema,
    schema: list[SchemaColumn],
    what: str,
    extras: inputs.ExtraColumns | None = None,
) -> None:
    """A body's columns against the model's (:func:`inputs.check_columns`), names read as text."""
    inputs.check_columns(column_names(arrow_schema, what), schema, extras)


# --- JSON --------------------------------------------------------------------------------


def count_containers(raw: bytes) -> int:
    """The arrays and objects a JSON body holds, at most (brackets in text count too);
    413 over :data:`MAX_JSON_CONTAINERS`: each costs 56 to 64 bytes once decoded, so a
    body of nothing but ``{},`` would become 30 times its size."""
    containers = raw.count(b"[") + raw.count(b"{")
    if containers > MAX_JSON_CONTAINERS:
        raise TooLarge(
            f"the JSON body holds more than {MAX_JSON_CONTAINERS} arrays and objects; send at "
            f"most {inputs.MAX_RECORDS} records per request"
        )
    return containers


def decode_json(raw: bytes, max_depth: int, containers: int | None = None) -> Any:
    """A JSON body decoded; 400 naming the problem, 422 if it nests deeper than ``max_depth``.

    orjson decodes; whatever it refuses is decoded again by the standard
    library, which words the error (line and column) as the service always
    has, and still reads what orjson is stricter about (``NaN``, integers
    beyond 64 bits, lone surrogates), so those keep their own clear 422s.

    Arrays and objects are counted first (:func:`count_containers`, unless the
    caller did: ``containers``).
    """
    if containers is None:
        containers = count_containers(raw)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = _decode_json_slowly(raw, max_depth)
    if containers > max_depth and _nesting_exceeds(body, max_depth):
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
    except ValueError:  # Python's limit on the digits of an integer read from text
        raise BadRequest(
            f"the JSON body has an integer of more than {sys.get_int_max_str_digits()} digits; "
            "send numbers that fit a float (at most about 1.8e308)"
        ) from None


def too_deep(limit: int) -> Invalid:
    """The refusal of a body nested deeper than ``[limits] max_json_depth``."""
    return Invalid(
        f"the JSON body nests arrays and objects more than {limit} deep ([limits] max_json_depth)"
    )


def _nesting_exceeds(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than ``limit`` deep (iteratively: no recursion;
    the caller skips it when the body has fewer containers than the limit)."""
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


def read_csv(data: bytes, schema: list[SchemaColumn], limits: LimitsSettings) -> pa.Table:
    """A CSV body as a table, each model column read as the model's type.

    Numbers as float64 and text as strings whatever they look like; an empty
    cell (or ``NA``, ``null``...: pyarrow's usual null spellings, as when a
    data set is read for training) is a missing value. The delimiter is
    found from the header line as for an uploaded data set (``,`` ``;`` tab ``|``),
    whose columns are counted before the body is parsed (``[limits] max_columns``),
    and the decimal mark (``3,5``) from the first lines, as for a data set.
    """
    head = data[:HEADER_SCAN_BYTES]
    delimiter = detect_delimiter(head)
    check_width(header_width(head, delimiter), limits, "the CSV body")
    decimal = detect_decimal(head, delimiter)
    types = inputs.arrow_types(schema)
    try:
        return pacsv.read_csv(
            pa.BufferReader(data),
            read_options=pacsv.ReadOptions(use_threads=False, block_size=len(data) + 1),
            parse_options=pacsv.ParseOptions(delimiter=delimiter),
            convert_options=pacsv.ConvertOptions(
                column_types=types, strings_can_be_null=True, decimal_point=decimal
            ),
        )
    except pa.ArrowException as exc:
        raise _csv_error(str(exc), data, delimiter) from None


def check_width(columns: int, limits: LimitsSettings, what: str) -> None:
    """Refuse (413) a CSV header naming more than ``[limits] max_columns`` columns."""
    if columns > limits.max_columns:
        raise TooLarge(
            f"{what} has {columns} columns or more, more than {limits.max_columns} "
            "([limits] max_columns): send only the columns the model uses"
        )


def _csv_error(message: str, data: bytes, delimiter: str) -> BadRequest | Invalid:
    """The refusal of a CSV body pyarrow could not read, naming the column and row if it can.

    Said in the client's terms; pyarrow's own words go to the log.
    """
    conversion = _CSV_CONVERSION.match(message)
    if conversion is None:
        log.info("CSV body refused: %s", message)
        return BadRequest(f"the CSV body cannot be read: {parse_problem(message, delimiter)}")
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


def read_parquet(data: bytes, schema: list[SchemaColumn], limits: LimitsSettings) -> pa.Table:
    """A Parquet body's model columns, bounded from the footer before a page is read.

    The footer gives each column's type, the rows, each column chunk's size
    once decompressed and its encodings: all checked first. Text columns are
    then read dictionary-encoded, so a column repeating one long string costs
    its dictionary, not one copy per row, until :func:`_table_columns`
    counts what the rows become.
    """
    try:
        parquet = pq.ParquetFile(pa.BufferReader(data))
    except pa.ArrowException as exc:
        log.info("Parquet body refused: %s", exc)
        raise BadRequest(
            "the body is not a Parquet file (its footer cannot be read); send a whole Parquet file"
        ) from None
    except UnicodeDecodeError:  # pyarrow reads the column paths as text at once
        raise names_not_text("Parquet") from None
    check_body_columns(parquet.schema_arrow, schema, "Parquet")
    inputs.check_arrow_types(parquet.schema_arrow, schema)
    metadata = parquet.metadata
    groups = [metadata.row_group(index) for index in range(metadata.num_row_groups)]
    rows = max(metadata.num_rows, sum(group.num_rows for group in groups))
    inputs.check_count(rows, empty="the body has no rows")
    check_decoded(rows * inputs.row_bytes(schema), limits, "Parquet")
    wanted = [column["name"] for column in schema]
    text = [column["name"] for column in schema if column["type"] != ColumnType.NUMBER]
    chunks = _column_chunks(metadata, groups, wanted)
    _check_text_encodings(chunks, text)
    unpacked = sum(chunk.total_uncompressed_size for _, chunk in chunks)
    check_unpacked(unpacked, limits, "Parquet")
    try:  # opened again: read_dictionary may name only columns the file has
        encoded = pq.ParquetFile(pa.BufferReader(data), read_dictionary=text)
        return encoded.read(columns=wanted, use_threads=False)
    except pa.ArrowException as exc:
        log.info("Parquet body refused: %s", exc)
        raise BadRequest(
            "the Parquet body cannot be read (a page is damaged or not what the footer says); "
            "send the file as its writer made it"
        ) from None


def _column_chunks(
    metadata: pq.FileMetaData, groups: list[pq.RowGroupMetaData], names: list[str]
) -> list[tuple[str, pq.ColumnChunkMetaData]]:
    """Each row group's chunk of the columns ``names``, with the column's name."""
    positions = {
        index: metadata.schema.column(index).path.split(".")[0]
        for index in range(metadata.num_columns)
    }
    wanted = {index: name for index, name in positions.items() if name in names}
    return [(name, group.column(index)) for group in groups for index, name in wanted.items()]


def _check_text_encodings(
    chunks: list[tuple[str, pq.ColumnChunkMetaData]], text: list[str]
) -> None:
    """Refuse (415) a text column stored in an encoding that cannot be read as a dictionary.

    DELTA_BYTE_ARRAY stores each value as a prefix of the one before plus a
    suffix: a few bytes a row on the wire, the whole value a row in memory.
    """
    for name, chunk in chunks:
        if name in text:
            other = [code for code in chunk.encodings if code not in PARQUET_TEXT_ENCODINGS]
            if other:
                raise UnsupportedMedia(
                    f"column {name!r} of the Parquet body is stored as {', '.join(other)}, which "
                    "is not read here; write text columns with dictionary or plain encoding "
                    "(the default of pyarrow, pandas and Spark's Parquet v1 writer)"
                )


def read_arrow(data: bytes, schema: list[SchemaColumn], limits: LimitsSettings) -> pa.Table:
    """An Arrow IPC stream body (or an Arrow IPC file) as a table, bounded before it is read.

    Every message header is read first (:func:`_check_arrow_messages`): the
    rows, and what each batch takes once decompressed, are known before a
    byte is decompressed. An Arrow file is read as the stream it holds (its
    messages in order, not its footer's list of them, which could name one
    batch many times).
    """
    stream = pa.py_buffer(data)
    if data.startswith(ARROW_FILE_MAGIC):
        stream = stream.slice(ARROW_FILE_STREAM_START)
    try:
        _check_arrow_messages(stream, schema, limits)
        reader = ipc.open_stream(pa.BufferReader(stream))
        batches = [_validated(batch) for batch in reader]
        return pa.Table.from_batches(batches, schema=reader.schema)
    except (pa.ArrowException, arrow_ipc.MalformedMessage) as exc:
        log.info("Arrow body refused: %s", exc)
        raise BadRequest(
            "the body is not an Arrow IPC stream or file (a message cannot be read); send the "
            "bytes an Arrow IPC stream writer made"
        ) from None


def _validated(batch: pa.RecordBatch) -> pa.RecordBatch:
    """A batch whose offsets, indices and text were checked in full, before any kernel runs
    over them (pyarrow's IPC reader checks only that the buffers are long enough)."""
    try:
        batch.validate(full=True)
    except pa.ArrowInvalid:
        for name, column in zip(column_names(batch.schema, "Arrow"), batch.columns, strict=True):
            try:
                column.validate(full=True)
            except pa.ArrowInvalid as exc:
                if "UTF8" in str(exc):
                    raise BadRequest(f"column {name!r} has text that is not UTF-8") from None
        raise
    return batch


#: The most messages an Arrow body may hold (each is read on its own).
MAX_ARROW_MESSAGES = 10_000


def _check_arrow_messages(
    stream: pa.Buffer, schema: list[SchemaColumn], limits: LimitsSettings
) -> None:
    """The body's schema, rows and decompressed sizes from its message headers alone.

    Refuses unknown columns and types (422), too many rows (413) and batches
    that decompress past ``[limits] max_decoded_mb`` (413).
    """
    messages = arrow_ipc.messages(stream)
    first = messages.read_next_message()
    if first is None or first.type != "schema":
        raise arrow_ipc.MalformedMessage("no schema message first")
    arrow_schema = ipc.read_schema(first)
    check_body_columns(arrow_schema, schema, "Arrow")
    inputs.check_arrow_types(arrow_schema, schema)
    rows = unpacked = count = 0
    for message in messages:
        count += 1
        if count > MAX_ARROW_MESSAGES:
            raise TooLarge(
                f"the Arrow body holds more than {MAX_ARROW_MESSAGES} messages; "
                "send its rows in fewer, larger record batches"
            )
        size = arrow_ipc.batch_size(message)
        if size is None:
            raise arrow_ipc.MalformedMessage(f"a {message.type} message after the schema")
        if size.longest_column > size.rows:
            raise arrow_ipc.MalformedMessage("a column longer than its batch")
        if not size.dictionary:
            rows += size.rows
            if rows > inputs.MAX_RECORDS:
                inputs.check_count(rows)
        unpacked += size.unpacked_bytes
        check_unpacked(unpacked, limits, "Arrow")
    check_decoded(rows * inputs.row_bytes(schema), limits, "Arrow")


def check_unpacked(size: int, limits: LimitsSettings, what: str) -> None:
    """Refuse (413) a body whose buffers decompress to more than ``[limits] max_decoded_mb``."""
    if size > limits.max_decoded_bytes:
        raise TooLarge(
            f"the {what} body unpacks to {decoded_sizes.in_mib(size)}, more than "
            f"{limits.max_decoded_mb:g} MiB ([limits] max_decoded_mb): "
            "send fewer rows per request"
        )


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
