"""Data sets: uploaded CSV or Parquet files, checked and profiled once stored.

The upload is streamed to the artifact store, then read back in Arrow record
batches to check it and build a profile (rows; per column its type, missing
and distinct counts, a sample of categories). Nothing is ever held whole in
memory, so multi-GB files work.

What a file becomes in memory is bounded before it is read, whatever it
weighs (``[limits]``): a CSV header's width (``max_columns``), each Parquet
column chunk's size once decompressed (``max_decoded_mb``), and text read as
the dictionary Parquet stored it, so one long value in many rows stays one
value; profiling counts and samples from the dictionary, never one string a
row. A whole file loaded for training is counted first (``max_training_mb``).

Profiling reads the whole file again, several times slower than the disk
writes it, so only small uploads (``[service] inline_profile_mb``) are
profiled before the answer: a bad one is refused and leaves nothing behind.
A larger one is recorded as ``profiling`` and profiled by a Celery worker
(:mod:`mlservice.tasks.profiling_tasks`), with the same function and the same messages; it
ends ``ready`` with its profile, or ``failed`` with the reason and its file
removed (the record stays, to tell the user why).
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any, cast

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ..config import LimitsSettings
from ..errors import (
    BadRequest,
    Conflict,
    Invalid,
    JobFailed,
    ServiceError,
    TooLarge,
    UnsupportedMedia,
)
from ..security import Identity
from . import column_roles, decoded_sizes
from .artifacts import ArtifactStore
from .catalog import Catalog
from .csv_dialect import (
    DECIMALS,
    DEFAULT_DECIMAL,
    DEFAULT_DELIMITER,
    DELIMITERS,
    CsvDialect,
    detect_decimal,
    detect_delimiter,
    header_width,
    parse_problem,
)
from .records import ColumnProfile, DatasetRecord, DatasetStatus

CSV_FORMAT = "csv"
PARQUET_FORMAT = "parquet"
FILENAMES = {CSV_FORMAT: "data.csv", PARQUET_FORMAT: "data.parquet"}
CONTENT_TYPES = {CSV_FORMAT: "text/csv", PARQUET_FORMAT: "application/vnd.apache.parquet"}
UPLOAD_MEDIA_TYPES = {
    "text/csv": CSV_FORMAT,
    "application/csv": CSV_FORMAT,
    "application/vnd.apache.parquet": PARQUET_FORMAT,
    "application/x-parquet": PARQUET_FORMAT,
}
#: Distinct values are counted exactly up to this many per column.
DISTINCT_LIMIT = 10_000
#: A distinct text value longer than this is kept as its start and a digest of the whole:
#: still told apart from the others, at a bounded cost (the sample shows the start).
DISTINCT_TEXT_CHARS = 200
CATEGORY_SAMPLE = 20
# Arrow reads ahead several blocks: small blocks keep an upload's memory flat.
CSV_BLOCK_SIZE = 1024 * 1024
#: Text cells a spreadsheet would run as a formula ("CSV injection") start with one of these.
FORMULA_START = "^[=+\\-@\t\r]"
#: ... and are sent with a leading apostrophe, which spreadsheets show as text.
FORMULA_ESCAPE = ("^([=+\\-@\t\r])", "'\\1")

#: How much of a CSV file is read to find its header line.
HEADER_SCAN_BYTES = 1024 * 1024
#: Parquet encodings of text read as stored or as a dictionary (not DELTA_BYTE_ARRAY, whose
#: values share prefixes: it cannot be read as a dictionary).
PARQUET_TEXT_ENCODINGS = frozenset(
    {"PLAIN", "PLAIN_DICTIONARY", "RLE_DICTIONARY", "DELTA_LENGTH_BYTE_ARRAY", "RLE", "BIT_PACKED"}
)

log = logging.getLogger(__name__)


class ProfilingFailed(JobFailed):
    """An upload profiled by a worker is not a readable table; the message is its ``error``."""


def profiling_outcome(record: DatasetRecord) -> dict[str, Any]:
    """A profiling task's result for a settled data set (a failure is the task's failure)."""
    if record.get("status") == DatasetStatus.FAILED:
        raise ProfilingFailed(record.get("error", "unknown error"))
    return {"dataset_id": record["id"], "status": record.get("status"), "rows": record.get("rows")}


def detect_format(media_type: str | None, filename: str | None) -> str:
    """CSV or Parquet from the declared media type, else from the file name."""
    if media_type in UPLOAD_MEDIA_TYPES:
        return UPLOAD_MEDIA_TYPES[media_type]
    suffix = Path(filename or "").suffix.lower()
    if suffix == ".csv":
        return CSV_FORMAT
    if suffix in (".parquet", ".pq"):
        return PARQUET_FORMAT
    raise UnsupportedMedia(
        f"unsupported media type {media_type or 'none'!r}: send text/csv or "
        "application/vnd.apache.parquet (or a .csv/.parquet file name)"
    )


class _ColumnProfile:
    """Running counts for one column over record batches.

    Text may come dictionary-encoded (Parquet): formulas are then matched
    and distinct values taken from the dictionary, and rows counted through
    their indices, so a value repeated in every row is looked at once.
    """

    def __init__(self, name: str, arrow_type: pa.DataType) -> None:
        self.name = name
        self.type = arrow_type
        self.missing = 0
        self.distinct: set[Any] = set()
        self.distinct_capped = False
        self.formula_cells = 0
        #: An integer column's smallest and largest values (an id's span).
        self.low: int | None = None
        self.high: int | None = None

    def add(self, column: pa.Array) -> None:
        self.missing += column.null_count
        if pa.types.is_dictionary(column.type):
            values = column.dictionary
            rows = column.indices
            used = pc.take(values, pc.unique(rows.drop_null()))
        else:
            values, rows, used = column, None, None
        if _is_text(self.type):
            formulas = pc.match_substring_regex(values, FORMULA_START)
            if rows is not None:
                formulas = pc.take(formulas, rows)
            self.formula_cells += pc.sum(formulas).as_py() or 0
        if pa.types.is_integer(self.type) and len(column) > column.null_count:
            bounds = pc.min_max(column).as_py()
            self.low = bounds["min"] if self.low is None else min(self.low, bounds["min"])
            self.high = bounds["max"] if self.high is None else max(self.high, bounds["max"])
        if self.distinct_capped:
            return
        candidates = used if used is not None else pc.unique(column.drop_null())
        self.distinct.update(_distinct_key(value) for value in candidates.to_pylist())
        if len(self.distinct) > DISTINCT_LIMIT:
            self.distinct_capped = True
            self.distinct = set(list(self.distinct)[:CATEGORY_SAMPLE])

    def describe(self, rows: int) -> ColumnProfile:
        """The column's profile, with its role (:mod:`.column_roles`) among ``rows`` rows."""
        numeric = pa.types.is_integer(self.type) or pa.types.is_floating(self.type)
        described: ColumnProfile = {
            "name": self.name,
            "dtype": _dtype_name(self.type),
            "missing": self.missing,
            "distinct": DISTINCT_LIMIT if self.distinct_capped else len(self.distinct),
            "distinct_is_lower_bound": self.distinct_capped,
        }
        if not numeric:
            described["categories_sample"] = sorted(map(str, self.distinct))[:CATEGORY_SAMPLE]
        span = None if self.low is None or self.high is None else self.high - self.low + 1
        role, evidence = column_roles.detect(
            described["dtype"],
            rows - self.missing,
            described["distinct"],
            sorted(self.distinct, key=str)[: column_roles.DATE_SAMPLE],
            span,
        )
        described["role"] = role.value
        described["role_evidence"] = evidence
        return described


def _distinct_key(value: Any) -> Any:
    """A value as the distinct count keeps it: long text as its start and a digest."""
    if isinstance(value, str) and len(value) > DISTINCT_TEXT_CHARS:
        digest = hashlib.blake2b(value.encode(), digest_size=8).hexdigest()
        return f"{value[:DISTINCT_TEXT_CHARS]}… ({len(value)} characters, {digest})"
    return value


def _is_text(arrow_type: pa.DataType) -> bool:
    return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)


def _value_type(arrow_type: pa.DataType) -> pa.DataType:
    """A column's type as profiled: a dictionary's value type (text read as a dictionary)."""
    return arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type


def _dtype_name(arrow_type: pa.DataType) -> str:
    if pa.types.is_integer(arrow_type):
        return "integer"
    if pa.types.is_floating(arrow_type):
        return "float"
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    if pa.types.is_null(arrow_type):
        return "empty"
    if pa.types.is_temporal(arrow_type):
        return "datetime"
    return "string"


def delimiter_of(record: DatasetRecord) -> str:
    """A CSV data set's delimiter (records from before it was detected mean ``,``)."""
    return record.get("delimiter") or DEFAULT_DELIMITER


def dialect_of(record: DatasetRecord) -> CsvDialect:
    """How a CSV data set is read: its delimiter, decimal mark and unnamed index (records
    from before they were detected: ``,``, ``.``, none)."""
    return CsvDialect(
        delimiter_of(record),
        record.get("decimal") or DEFAULT_DECIMAL,
        bool(record.get("index_column_dropped")),
    )


def given_dialect(delimiter: str | None, decimal: str | None) -> dict[str, str]:
    """An upload's ``?delimiter=`` and ``?decimal=`` checked (400 naming the allowed values);
    the record fields they set (none: detected)."""
    given: dict[str, str] = {}
    if delimiter:
        delimiter = "\t" if delimiter.lower() in ("tab", "\\t") else delimiter
        if delimiter not in DELIMITERS:
            raise BadRequest(
                f"query parameter 'delimiter' must be one of , ; | or tab, not {delimiter!r}"
            )
        given["delimiter"] = delimiter
    if decimal:
        if decimal not in DECIMALS:
            raise BadRequest(f"query parameter 'decimal' must be . or , not {decimal!r}")
        given["decimal"] = decimal
    if given.get("delimiter", "") == "," and given.get("decimal") == ",":
        raise BadRequest(
            "a CSV file cannot have both ',' as its delimiter and ',' as its decimal mark"
        )
    return given


def status_of(record: DatasetRecord) -> str:
    """A data set's :class:`DatasetStatus` (records from before it was kept are ready)."""
    return record.get("status", DatasetStatus.READY)


def require_ready(record: DatasetRecord) -> None:
    """:class:`Conflict` unless the data set is profiled: its profile and file are what
    training, scoring and downloads read."""
    status = status_of(record)
    if status == DatasetStatus.PROFILING:
        raise Conflict(
            f"data set {record['id']!r} is still being profiled; retry when its status is ready"
        )
    if status == DatasetStatus.FAILED:
        raise Conflict(f"data set {record['id']!r} failed: {record.get('error', 'unknown error')}")


def _parse_options(dialect: CsvDialect) -> pacsv.ParseOptions:
    return pacsv.ParseOptions(delimiter=dialect.delimiter)


def _convert_options(
    string_columns: list[str],
    column_types: Mapping[str, pa.DataType] | None = None,
    include_columns: list[str] | None = None,
    decimal: str = DEFAULT_DECIMAL,
) -> pacsv.ConvertOptions:
    """How a CSV file's cells become values: ``string_columns`` (mixed values at upload)
    as text, ``column_types`` as given, only ``include_columns`` if named (all if not),
    numbers with the ``decimal`` mark."""
    types = {name: pa.string() for name in string_columns} | dict(column_types or {})
    return pacsv.ConvertOptions(
        column_types=types,
        include_columns=include_columns or [],
        strings_can_be_null=True,
        decimal_point=decimal,
    )


def _csv_header(path: Path, dialect: CsvDialect) -> list[str]:
    """A CSV file's column names, as pyarrow reads them (an unnamed one is ``""``)."""
    return list(pacsv.open_csv(path, parse_options=_parse_options(dialect)).schema.names)


def _included(path: Path, dialect: CsvDialect, include_columns: list[str] | None) -> list[str]:
    """The CSV columns read: ``include_columns`` if named, else all but a dropped index."""
    if include_columns or not dialect.skip_first:
        return include_columns or []
    return _csv_header(path, dialect)[1:]


def _open_batches(
    path: Path,
    file_format: str,
    string_columns: list[str],
    dialect: CsvDialect,
    *,
    include_columns: list[str] | None = None,
    column_types: Mapping[str, pa.DataType] | None = None,
    batch_rows: int = 65_536,
    limits: LimitsSettings | None = None,
) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """The file's schema and a stream of its record batches: every column, or
    ``include_columns`` in that order; ``column_types`` forces CSV columns' types.

    A Parquet batch has at most ``batch_rows`` rows and the file's own types
    (its schema is the whole file's), text as dictionaries; each column chunk
    must unpack to at most ``[limits] max_decoded_mb`` (checked from the footer
    first). A CSV batch is one block.
    """
    limits = limits or LimitsSettings()
    if file_format == PARQUET_FORMAT:
        metadata = pq.ParquetFile(path)
        columns = include_columns or metadata.schema_arrow.names
        text = [field.name for field in metadata.schema_arrow if _is_text(field.type)]
        _check_parquet_chunks(metadata, columns, text, limits)
        parquet = pq.ParquetFile(path, read_dictionary=[name for name in text if name in columns])
        batches = parquet.iter_batches(batch_size=batch_rows, columns=include_columns)
        return parquet.schema_arrow, batches
    included = _included(path, dialect, include_columns)
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=CSV_BLOCK_SIZE, use_threads=False),
        parse_options=_parse_options(dialect),
        convert_options=_convert_options(string_columns, column_types, included, dialect.decimal),
    )
    return reader.schema, iter(reader)


def _check_parquet_chunks(
    parquet: pq.ParquetFile, columns: list[str], text: list[str], limits: LimitsSettings
) -> None:
    """Each column chunk read is at most ``[limits] max_decoded_mb`` once decompressed (413),
    and no text column is stored in an encoding that cannot be read as a dictionary (415)."""
    metadata = parquet.metadata
    names = {
        index: metadata.schema.column(index).path.split(".")[0]
        for index in range(metadata.num_columns)
    }
    for group_index in range(metadata.num_row_groups):
        group = metadata.row_group(group_index)
        for index, name in names.items():
            if name not in columns:
                continue
            chunk = group.column(index)
            if chunk.total_uncompressed_size > limits.max_decoded_bytes:
                raise TooLarge(
                    f"column {name!r} of the Parquet file unpacks to "
                    f"{decoded_sizes.in_mib(chunk.total_uncompressed_size)} in row group "
                    f"{group_index}, more than {limits.max_decoded_mb:g} MiB "
                    "([limits] max_decoded_mb): write the file with smaller row groups"
                )
            other = [code for code in chunk.encodings if code not in PARQUET_TEXT_ENCODINGS]
            if name in text and other:
                raise UnsupportedMedia(
                    f"column {name!r} of the Parquet file is stored as {', '.join(other)}, which "
                    "is not read here; write text columns with dictionary or plain encoding "
                    "(the default of pyarrow, pandas and Spark's Parquet v1 writer)"
                )


def read_columns(
    path: Path,
    record: DatasetRecord,
    columns: list[str],
    forced_types: Mapping[str, pa.DataType],
    batch_rows: int,
    limits: LimitsSettings | None = None,
) -> Iterator[pa.RecordBatch]:
    """Some columns of a stored data set, batch by batch (batch scoring reads any size so).

    CSV_FORMAT: a column of ``forced_types`` is read as that type (a model's text column
    as text, so "007" stays "007"), the others as at upload; a batch is one block.
    Parquet keeps its own types (text as dictionaries), in batches of at most
    ``batch_rows`` rows. The file is opened at the first batch asked for, as a
    generator does.
    """
    _, batches = _open_batches(
        path,
        record["format"],
        record.get("string_columns", []),
        dialect_of(record),
        include_columns=columns,
        column_types=forced_types,
        batch_rows=batch_rows,
        limits=limits,
    )
    yield from batches


def _profile_once(
    path: Path,
    file_format: str,
    string_columns: list[str],
    dialect: CsvDialect,
    limits: LimitsSettings,
) -> dict[str, Any]:
    schema, batches = _open_batches(path, file_format, string_columns, dialect, limits=limits)
    names = schema.names
    if not names:
        raise Invalid("the file has no columns")
    check_width(len(names), limits)
    _check_names(names, dialect.skip_first)
    for field in schema:
        kind = _value_type(field.type)
        if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
            raise Invalid(f"column {field.name!r} is not UTF-8 text")
    columns = [_ColumnProfile(field.name, _value_type(field.type)) for field in schema]
    formula_names = sum(1 for name in names if re.match(FORMULA_START, name))
    rows = 0
    for batch in batches:
        rows += batch.num_rows
        for profile, column in zip(columns, batch.columns, strict=True):
            profile.add(column)
    if rows == 0:
        raise Invalid("the file has a header but no rows")
    described: dict[str, Any] = {
        "rows": rows,
        "columns": [column.describe(rows) for column in columns],
        "string_columns": string_columns,
        "formula_cells": formula_names + sum(column.formula_cells for column in columns),
    }
    if file_format == CSV_FORMAT:
        described["delimiter"] = dialect.delimiter
        described["decimal"] = dialect.decimal
    if dialect.skip_first:
        described["index_column_dropped"] = True
        described["notes"] = [
            "the first column has no name: it is the row index pandas writes with "
            "DataFrame.to_csv(), and it is left out (write the file with index=False to leave "
            "it out yourself)"
        ]
    return described


def _check_names(names: list[str], index_dropped: bool) -> None:
    """Every column named, and once (422 naming the column that is not)."""
    offset = 2 if index_dropped else 1  # columns counted from 1, as a spreadsheet does
    for position, name in enumerate(names):
        if not name:
            raise Invalid(
                f"column {position + offset} of the header has no name; name every column "
                "(only a first column without a name, pandas' index, is left out)"
            )
    repeated = [name for name, count in Counter(names).items() if count > 1]
    if repeated:
        positions = [str(i + offset) for i, name in enumerate(names) if name == repeated[0]]
        raise Invalid(
            f"the header names column {repeated[0]!r} more than once (columns "
            f"{', '.join(positions)}); give every column its own name"
        )


def check_width(columns: int, limits: LimitsSettings) -> None:
    """Refuse (413) a data set of more than ``[limits] max_columns`` columns."""
    if columns > limits.max_columns:
        raise TooLarge(
            f"the file has {columns} columns or more, more than {limits.max_columns} "
            "([limits] max_columns): upload only the columns a model will use"
        )


def _conversion_column(message: str, path: Path, dialect: CsvDialect) -> str | None:
    """The column a CSV type-conversion error is about (types are inferred per block)."""
    if "conversion error" not in message or "In CSV column #" not in message:
        return None
    index = int(message.split("In CSV column #")[1].split(":")[0])
    header = _csv_header(path, dialect)
    return header[index] if index < len(header) else None


def profile_file(
    path: Path,
    file_format: str,
    limits: LimitsSettings | None = None,
    given: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Check a stored file and describe it; a :class:`~mlservice.errors.ServiceError` says
    what is wrong (400 empty, 413 over a ``[limits]`` key, 415 not the declared format, 422
    not a table), in the user's terms (pyarrow's own words go to the log).

    A CSV file's profile has its ``delimiter``, detected from the header line
    (whose width is checked before the file is parsed), and its ``decimal`` mark,
    detected from the first lines (:func:`~.csv_dialect.detect_decimal`), unless
    ``given`` (the upload's ``?delimiter=`` and ``?decimal=``); a first column
    without a name (pandas' index) is left out, with a note.
    """
    given = given or {}
    limits = limits or LimitsSettings()
    if path.stat().st_size == 0:
        raise BadRequest("the file is empty")
    with path.open("rb") as handle:
        head = handle.read(HEADER_SCAN_BYTES)
    if file_format == PARQUET_FORMAT and not head.startswith(b"PAR1"):
        raise UnsupportedMedia("the file is not Parquet (no PAR1 magic)")
    if file_format == CSV_FORMAT and (b"\x00" in head[:4096] or head.startswith(b"PAR1")):
        raise UnsupportedMedia("the file is not CSV text (binary content)")
    dialect = CsvDialect()
    if file_format == CSV_FORMAT:
        delimiter = given.get("delimiter") or detect_delimiter(head)
        check_width(header_width(head, delimiter), limits)
        decimal = given.get("decimal") or detect_decimal(head, delimiter)
        if decimal == delimiter:
            raise Invalid(
                f"the file's delimiter is {delimiter!r}, so its decimal mark cannot be too; "
                "give the delimiter with ?delimiter="
            )
        dialect = CsvDialect(delimiter, decimal, _unnamed_index(path, delimiter))
    string_columns: list[str] = []
    while True:
        try:
            return _profile_once(path, file_format, string_columns, dialect, limits)
        except (pa.ArrowInvalid, OSError) as exc:  # OSError: pyarrow's IOError for bad pages
            if isinstance(exc, FileNotFoundError):
                raise
            message = str(exc)
            column = (
                _conversion_column(message, path, dialect) if file_format == CSV_FORMAT else None
            )
            if column and column not in string_columns:
                string_columns.append(column)  # mixed values: read the column as text
                continue
            log.info("upload %s refused: %s", path.parent.name, message)
            raise Invalid(_explain(message, file_format, dialect.delimiter)) from None
        except UnicodeDecodeError:  # pyarrow decodes names (and Parquet text) only when read
            raise Invalid("the file has column names or text that are not UTF-8") from None


def _unnamed_index(path: Path, delimiter: str) -> bool:
    """Whether the CSV file's first column has no name and the others have: the row index
    pandas' ``DataFrame.to_csv()`` writes."""
    try:
        names = _csv_header(path, CsvDialect(delimiter))
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError):
        return False  # profiling says what is wrong with it
    return len(names) > 1 and names[0] == "" and all(names[1:])


def profiled(
    path: Path,
    file_format: str,
    limits: LimitsSettings | None = None,
    given: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The record fields of a stored file once profiled: status ``ready`` and its profile.

    What the request (small uploads) and the Celery task (large ones) both record;
    raises :func:`profile_file`'s errors.
    """
    profile = profile_file(path, file_format, limits, given)
    fields: dict[str, Any] = {
        "status": DatasetStatus.READY.value,
        "rows": profile["rows"],
        "columns": profile["columns"],
        "string_columns": profile["string_columns"],
        "formula_cells": profile["formula_cells"],
    }
    for key in ("delimiter", "decimal", "index_column_dropped", "notes"):
        if key in profile:
            fields[key] = profile[key]
    fields["sha256"] = content_sha256(path)
    return fields


def content_sha256(path: Path) -> str:
    """The file's sha256 (hex): what a model's lineage names its data by, whatever the data
    set is later called (or once it is deleted). Read in chunks: flat memory."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _explain(message: str, file_format: str, delimiter: str) -> str:
    """Arrow's error, in the user's terms: what is wrong and what to do."""
    if file_format == PARQUET_FORMAT:
        return (
            "the file cannot be read as Parquet (its footer or a page is damaged); upload the "
            "file as its writer made it"
        )
    problem = parse_problem(message, delimiter)
    if problem.startswith("row ") or problem.startswith("a row has"):
        return "ragged rows: " + problem
    if "UTF-8" in problem:
        return "the CSV is not UTF-8 text; save it as UTF-8"
    return "the file cannot be read as CSV: " + problem


def has_formula_cells(record: DatasetRecord) -> bool:
    """Whether a CSV data set has text cells a spreadsheet would run (unknown: assume so)."""
    return record["format"] == CSV_FORMAT and record.get("formula_cells", 1) > 0


def neutralised_csv(path: Path, record: DatasetRecord) -> Iterator[bytes]:
    """The CSV file again, batch by batch, each formula-like text cell prefixed with ``'``,
    header cells (the column names) too.

    Re-written by Arrow with the file's delimiter (so quoting and number
    formatting may differ from the upload); memory stays flat for any size.
    """
    dialect = dialect_of(record)
    delimiter = dialect.delimiter
    _, batches = _open_batches(path, CSV_FORMAT, record["string_columns"], dialect)
    pattern, replacement = FORMULA_ESCAPE
    header = True
    for batch in batches:
        columns = [
            pc.replace_substring_regex(column, pattern, replacement)
            if _is_text(column.type)
            else column
            for column in batch.columns
        ]
        names = [re.sub(pattern, replacement, name) for name in batch.schema.names]
        sink = io.BytesIO()
        pacsv.write_csv(
            pa.RecordBatch.from_arrays(columns, names=names),
            sink,
            write_options=pacsv.WriteOptions(include_header=header, delimiter=delimiter),
        )
        header = False
        yield sink.getvalue()


def load_frame(
    path: Path,
    file_format: str,
    string_columns: list[str],
    *,
    dialect: CsvDialect,
    limits: LimitsSettings | None = None,
) -> pd.DataFrame:
    """The whole data set as a DataFrame (in a Celery worker, for training).

    ``dialect`` is how the CSV file was read at upload (:func:`dialect_of`).
    A Parquet file is counted first (:func:`check_training_size`): its text may
    be stored once and fill every row. A CSV file holds every value it gives.
    """
    if file_format == PARQUET_FORMAT:
        check_training_size(path, limits or LimitsSettings())
        table = pq.read_table(path)
    else:
        included = _included(path, dialect, None)
        table = pacsv.read_csv(
            path,
            parse_options=_parse_options(dialect),
            convert_options=_convert_options(string_columns, None, included, dialect.decimal),
        )
    return table.to_pandas()


def check_training_size(path: Path, limits: LimitsSettings) -> None:
    """Refuse (413) a Parquet data set that becomes more than ``[limits] max_training_mb``
    once each row holds its own values: counted batch by batch, text kept as dictionaries."""
    schema, batches = _open_batches(path, PARQUET_FORMAT, [], CsvDialect(), limits=limits)
    text = [field.name for field in schema if _is_text(_value_type(field.type))]
    per_row = decoded_sizes.NUMBER_BYTES * len(schema.names)
    total = 0
    for batch in batches:
        total += decoded_sizes.decoded_bytes(batch, text, per_row)
        if total > limits.max_training_bytes:
            raise TooLarge(
                f"the data set becomes more than {decoded_sizes.in_mib(total)} in memory once "
                f"loaded, more than {limits.max_training_mb:g} MiB ([limits] max_training_mb): "
                "train on fewer rows or shorter text"
            )


class Datasets:
    """Data set files in the artifact store, and their metadata in the catalog."""

    KIND = "datasets"

    def __init__(
        self,
        catalog: Catalog[DatasetRecord],
        artifacts: ArtifactStore,
        limits: LimitsSettings | None = None,
    ) -> None:
        self.catalog = catalog
        self.artifacts = artifacts
        #: What reading a file may cost (``[limits]``): profiling, scoring, training.
        self.limits = limits or LimitsSettings()

    def upload(
        self,
        source: IO[bytes],
        file_format: str,
        owner: Identity,
        name: str | None,
        limit: int,
        inline_limit: int,
        given: Mapping[str, str] | None = None,
    ) -> DatasetRecord:
        """Stream ``source`` to the store and record it, profiled if at most ``inline_limit``
        bytes (else ``profiling``: see :meth:`store`); ``given``: the CSV dialect the upload
        named (:func:`given_dialect`)."""
        dataset_id = Catalog.new_id()
        started = time.perf_counter()
        with self.artifacts.writing(self.KIND, dataset_id, FILENAMES[file_format]) as (handle, _):
            size = self.artifacts.copy_stream(source, handle, limit)
        return self.store(dataset_id, file_format, owner, name, size, started, inline_limit, given)

    def adopt(
        self,
        temporary: IO[bytes],
        file_format: str,
        owner: Identity,
        name: str | None,
        inline_limit: int,
        given: Mapping[str, str] | None = None,
    ) -> DatasetRecord:
        """Record a multipart upload already spooled into the store's incoming directory
        (linked into place, not copied), like :meth:`upload`."""
        dataset_id = Catalog.new_id()
        started = time.perf_counter()
        path = self.artifacts.adopt(temporary, self.KIND, dataset_id, FILENAMES[file_format])
        size = path.stat().st_size
        return self.store(dataset_id, file_format, owner, name, size, started, inline_limit, given)

    def store(
        self,
        dataset_id: str,
        file_format: str,
        owner: Identity,
        name: str | None,
        size: int,
        started: float,
        inline_limit: int,
        given: Mapping[str, str] | None = None,
    ) -> DatasetRecord:
        """Record a file just stored: profiled now up to ``inline_limit`` bytes (:meth:`register`),
        else ``profiling`` with a new ``task_id`` for the caller to start
        (the task :mod:`mlservice.tasks.profiling_tasks`). A file that cannot be
        recorded is removed."""
        if size <= inline_limit:
            return self.register(dataset_id, file_format, owner, name, size, started, given)
        record = self._record(dataset_id, file_format, owner, name, size, started)
        record.update(cast(DatasetRecord, dict(given or {})))  # the worker profiles with them
        record["status"] = DatasetStatus.PROFILING.value
        record["task_id"] = Catalog.new_id()
        try:
            return self.catalog.create(record)
        except BaseException:  # Redis away: a file no record names would never be removed
            self.artifacts.delete(self.KIND, dataset_id)
            raise

    def register(
        self,
        dataset_id: str,
        file_format: str,
        owner: Identity,
        name: str | None,
        size: int,
        started: float,
        given: Mapping[str, str] | None = None,
    ) -> DatasetRecord:
        """Profile a file already in the store and record it ``ready``; remove it if it is bad
        or cannot be recorded.

        Profiles in the calling process, whatever the size (a worker registering its output).
        """
        path = self.artifacts.path(self.KIND, dataset_id, FILENAMES[file_format])
        try:
            fields = profiled(path, file_format, self.limits, given)
            record = self._record(dataset_id, file_format, owner, name, size, started)
            return self.catalog.create(cast(DatasetRecord, {**record, **fields}))
        except BaseException:  # a bad file, or Redis away: no file without its record
            self.artifacts.delete(self.KIND, dataset_id)
            raise

    def _record(
        self,
        dataset_id: str,
        file_format: str,
        owner: Identity,
        name: str | None,
        size: int,
        started: float,
    ) -> DatasetRecord:
        """The fields every data set record starts with, profiled now or later; the time
        taken is counted from ``started`` (the upload's first byte) to here."""
        return {
            "id": dataset_id,
            "name": name or dataset_id,
            "owner": owner.username,
            "owner_id": owner.require_account_id(),
            "format": file_format,
            "size_bytes": size,
            "upload_seconds": round(time.perf_counter() - started, 3),
        }

    def finish_profiling(self, dataset_id: str) -> DatasetRecord:
        """Profile a ``profiling`` data set and record the outcome: ``ready`` with its profile,
        or ``failed`` with the message an inline upload would have been refused with.

        Idempotent (a Celery task delivered again calls it again): a settled record
        is returned as it is. :class:`NotFound` once the data set is deleted.
        """
        record = self.catalog.get(dataset_id)
        if status_of(record) != DatasetStatus.PROFILING:
            if status_of(record) == DatasetStatus.FAILED:
                self.discard(dataset_id)  # a delivery that stopped before removing it
            return record
        started = time.perf_counter()
        try:
            given = {
                key: str(record.get(key)) for key in ("delimiter", "decimal") if record.get(key)
            }
            fields = profiled(self.path(record), record["format"], self.limits, given)
        except ServiceError as exc:
            return self.fail(dataset_id, exc.message)
        except FileNotFoundError:
            self.catalog.get(dataset_id)  # NotFound if it was deleted meanwhile
            return self.fail(dataset_id, "the uploaded file is missing from the artifact store")
        fields["profile_seconds"] = round(time.perf_counter() - started, 3)
        return self.catalog.update(dataset_id, **fields)

    def fail(self, dataset_id: str, error: str) -> DatasetRecord:
        """Record why a data set could not be profiled, then remove its file (kept: the record)."""
        record = self.catalog.update(dataset_id, status=DatasetStatus.FAILED.value, error=error)
        self.discard(dataset_id)
        return record

    def discard(self, dataset_id: str) -> None:
        """Remove a data set's file, if any (its record is gone, or failed)."""
        self.artifacts.delete(self.KIND, dataset_id)

    def path(self, record: DatasetRecord) -> Path:
        return self.artifacts.path(self.KIND, record["id"], FILENAMES[record["format"]])

    def delete(self, record: DatasetRecord) -> None:
        self.catalog.delete(record["id"])
        self.artifacts.delete(self.KIND, record["id"])


def public(record: DatasetRecord) -> dict[str, Any]:
    """A data set record as the API shows it, with its ``status``; once ready, ``delimiter``
    (``null`` for Parquet) with the profile, which a data set not ready has not."""
    shown: dict[str, Any] = {key: value for key, value in record.items() if key != "string_columns"}
    shown["status"] = status_of(record)
    if shown["status"] == DatasetStatus.READY:
        shown["delimiter"] = delimiter_of(record) if record["format"] == CSV_FORMAT else None
    return shown
