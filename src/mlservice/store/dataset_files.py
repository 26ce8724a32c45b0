"""Data sets: uploaded CSV or Parquet files, checked and profiled as they land.

The upload is streamed to the artifact store, then read back in Arrow record
batches to check it and build a profile (rows; per column its type, missing
and distinct counts, a sample of categories). Nothing is ever held whole in
memory, so multi-GB files work. A file that fails the checks is removed with
its metadata: a bad upload leaves nothing behind.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ..errors import BadRequest, Invalid, UnsupportedMedia
from ..security import Identity
from .artifacts import ArtifactStore
from .catalog import Catalog
from .records import ColumnProfile, DatasetRecord

CSV = "csv"
PARQUET = "parquet"
FILENAMES = {CSV: "data.csv", PARQUET: "data.parquet"}
CONTENT_TYPES = {CSV: "text/csv", PARQUET: "application/vnd.apache.parquet"}
MEDIA_TYPES = {
    "text/csv": CSV,
    "application/csv": CSV,
    "application/vnd.apache.parquet": PARQUET,
    "application/x-parquet": PARQUET,
}
#: Distinct values are counted exactly up to this many per column.
DISTINCT_LIMIT = 10_000
CATEGORY_SAMPLE = 20
# Arrow reads ahead several blocks: small blocks keep an upload's memory flat.
CSV_BLOCK_SIZE = 1024 * 1024
#: Text cells a spreadsheet would run as a formula ("CSV injection") start with one of these.
FORMULA_START = "^[=+\\-@\t\r]"
#: ... and are sent with a leading apostrophe, which spreadsheets show as text.
FORMULA_ESCAPE = ("^([=+\\-@\t\r])", "'\\1")

#: The CSV delimiters recognised, in order of preference on a tie.
DELIMITERS = (",", ";", "\t", "|")
DEFAULT_DELIMITER = ","
#: How much of a CSV file is read to find its header line.
HEADER_SCAN_BYTES = 1024 * 1024


def detect_format(media_type: str | None, filename: str | None) -> str:
    """CSV or Parquet from the declared media type, else from the file name."""
    if media_type in MEDIA_TYPES:
        return MEDIA_TYPES[media_type]
    suffix = Path(filename or "").suffix.lower()
    if suffix == ".csv":
        return CSV
    if suffix in (".parquet", ".pq"):
        return PARQUET
    raise UnsupportedMedia(
        f"unsupported media type {media_type or 'none'!r}: send text/csv or "
        "application/vnd.apache.parquet (or a .csv/.parquet file name)"
    )


class _ColumnProfile:
    """Running counts for one column over record batches."""

    def __init__(self, name: str, arrow_type: pa.DataType) -> None:
        self.name = name
        self.type = arrow_type
        self.missing = 0
        self.distinct: set[Any] = set()
        self.distinct_capped = False
        self.formula_cells = 0

    def add(self, column: pa.Array | pa.ChunkedArray) -> None:
        self.missing += column.null_count
        if _is_text(self.type):
            formulas = pc.sum(pc.match_substring_regex(column, FORMULA_START)).as_py()
            self.formula_cells += formulas or 0
        if self.distinct_capped:
            return
        self.distinct.update(pc.unique(column.drop_null()).to_pylist())
        if len(self.distinct) > DISTINCT_LIMIT:
            self.distinct_capped = True
            self.distinct = set(list(self.distinct)[:CATEGORY_SAMPLE])

    def describe(self) -> ColumnProfile:
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
        return described


def _is_text(arrow_type: pa.DataType) -> bool:
    return pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type)


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


def detect_delimiter(head: bytes) -> str:
    """The delimiter of a CSV file from the start of its bytes: of ``,`` ``;`` tab ``|``,
    the one occurring most in the header line outside double quotes (``,`` if none does)."""
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for byte in head:
        char = chr(byte)
        if char == '"':
            quoted = not quoted
        elif quoted:
            continue
        elif char in "\r\n":
            break
        elif char in counts:
            counts[char] += 1
    best = max(DELIMITERS, key=lambda delimiter: counts[delimiter])  # first on a tie
    return best if counts[best] else DEFAULT_DELIMITER


def sniff_delimiter(path: Path) -> str:
    """The delimiter of the CSV file at ``path`` (see :func:`detect_delimiter`)."""
    with path.open("rb") as handle:
        return detect_delimiter(handle.read(HEADER_SCAN_BYTES))


def delimiter_of(record: DatasetRecord) -> str:
    """A CSV data set's delimiter (records from before it was detected mean ``,``)."""
    return record.get("delimiter", DEFAULT_DELIMITER)


def _parse_options(delimiter: str) -> pacsv.ParseOptions:
    return pacsv.ParseOptions(delimiter=delimiter)


def _convert_options(string_columns: list[str]) -> pacsv.ConvertOptions:
    return pacsv.ConvertOptions(
        column_types={name: pa.string() for name in string_columns},
        strings_can_be_null=True,
    )


def _open_batches(
    path: Path, file_format: str, string_columns: list[str], delimiter: str
) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """The file's schema and a stream of its record batches (CSV types forced as asked)."""
    if file_format == PARQUET:
        parquet = pq.ParquetFile(path)
        return parquet.schema_arrow, parquet.iter_batches(batch_size=65_536)
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=CSV_BLOCK_SIZE, use_threads=False),
        parse_options=_parse_options(delimiter),
        convert_options=_convert_options(string_columns),
    )
    return reader.schema, iter(reader)


def _profile_once(
    path: Path, file_format: str, string_columns: list[str], delimiter: str
) -> dict[str, Any]:
    schema, batches = _open_batches(path, file_format, string_columns, delimiter)
    names = schema.names
    if not names:
        raise Invalid("the file has no columns")
    if len(set(names)) != len(names) or any(not name for name in names):
        raise Invalid("column names must be present and unique")
    for field in schema:
        if pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type):
            raise Invalid(f"column {field.name!r} is not UTF-8 text")
    columns = [_ColumnProfile(field.name, field.type) for field in schema]
    rows = 0
    for batch in batches:
        rows += batch.num_rows
        for profile, column in zip(columns, batch.columns, strict=True):
            profile.add(column)
    if rows == 0:
        raise Invalid("the file has a header but no rows")
    described: dict[str, Any] = {
        "rows": rows,
        "columns": [column.describe() for column in columns],
        "string_columns": string_columns,
        "formula_cells": sum(column.formula_cells for column in columns),
    }
    if file_format == CSV:
        described["delimiter"] = delimiter
    return described


def _conversion_column(message: str, path: Path, delimiter: str) -> str | None:
    """The column a CSV type-conversion error is about (types are inferred per block)."""
    if "conversion error" not in message or "In CSV column #" not in message:
        return None
    index = int(message.split("In CSV column #")[1].split(":")[0])
    header = pacsv.open_csv(path, parse_options=_parse_options(delimiter)).schema.names
    return header[index] if index < len(header) else None


def profile_file(path: Path, file_format: str) -> dict[str, Any]:
    """Check a stored file and describe it; a :class:`~mlservice.errors.ServiceError` says
    what is wrong (400 empty, 415 not the declared format, 422 not a table).

    A CSV file's profile has its ``delimiter``, detected from the header line.
    """
    if path.stat().st_size == 0:
        raise BadRequest("the file is empty")
    with path.open("rb") as handle:
        head = handle.read(4096)
    if file_format == PARQUET and not head.startswith(b"PAR1"):
        raise UnsupportedMedia("the file is not Parquet (no PAR1 magic)")
    if file_format == CSV and (b"\x00" in head or head.startswith(b"PAR1")):
        raise UnsupportedMedia("the file is not CSV text (binary content)")
    delimiter = sniff_delimiter(path) if file_format == CSV else DEFAULT_DELIMITER
    string_columns: list[str] = []
    while True:
        try:
            return _profile_once(path, file_format, string_columns, delimiter)
        except pa.ArrowInvalid as exc:
            message = str(exc)
            column = _conversion_column(message, path, delimiter) if file_format == CSV else None
            if column and column not in string_columns:
                string_columns.append(column)  # mixed values: read the column as text
                continue
            raise Invalid(_explain(message)) from None


def _explain(message: str) -> str:
    """Arrow's error, in the user's terms."""
    first = message.splitlines()[0]
    if "invalid UTF8" in message or "UTF8" in message:
        return "the CSV is not UTF-8 text: " + first
    if "Expected" in message and "columns" in message:
        return "ragged rows: " + first
    return "the file cannot be read as a table: " + first


def has_formula_cells(record: DatasetRecord) -> bool:
    """Whether a CSV data set has text cells a spreadsheet would run (unknown: assume so)."""
    return record["format"] == CSV and record.get("formula_cells", 1) > 0


def neutralised_csv(path: Path, record: DatasetRecord) -> Iterator[bytes]:
    """The CSV file again, batch by batch, each formula-like text cell prefixed with ``'``.

    Re-written by Arrow with the file's delimiter (so quoting and number
    formatting may differ from the upload); memory stays flat for any size.
    """
    delimiter = delimiter_of(record)
    _, batches = _open_batches(path, CSV, record["string_columns"], delimiter)
    pattern, replacement = FORMULA_ESCAPE
    header = True
    for batch in batches:
        columns = [
            pc.replace_substring_regex(column, pattern, replacement)
            if _is_text(column.type)
            else column
            for column in batch.columns
        ]
        sink = io.BytesIO()
        pacsv.write_csv(
            pa.RecordBatch.from_arrays(columns, names=batch.schema.names),
            sink,
            write_options=pacsv.WriteOptions(include_header=header, delimiter=delimiter),
        )
        header = False
        yield sink.getvalue()


def load_frame(
    path: Path, file_format: str, string_columns: list[str], *, delimiter: str
) -> pd.DataFrame:
    """The whole data set as a DataFrame (in a Celery worker, for training).

    ``delimiter`` is the CSV delimiter recorded at upload (:func:`delimiter_of`).
    """
    if file_format == PARQUET:
        table = pq.read_table(path)
    else:
        table = pacsv.read_csv(
            path,
            parse_options=_parse_options(delimiter),
            convert_options=_convert_options(string_columns),
        )
    return table.to_pandas()


class Datasets:
    """Data set files in the artifact store, and their metadata in the catalog."""

    KIND = "datasets"

    def __init__(self, catalog: Catalog[DatasetRecord], artifacts: ArtifactStore) -> None:
        self.catalog = catalog
        self.artifacts = artifacts

    def upload(
        self, source: IO[bytes], file_format: str, owner: Identity, name: str | None, limit: int
    ) -> DatasetRecord:
        """Stream ``source`` to the store, profile it and record it."""
        dataset_id = Catalog.new_id()
        started = time.perf_counter()
        with self.artifacts.writing(self.KIND, dataset_id, FILENAMES[file_format]) as (handle, _):
            size = self.artifacts.copy_stream(source, handle, limit)
        return self.register(dataset_id, file_format, owner, name, size, started)

    def adopt(
        self, temporary: IO[bytes], file_format: str, owner: Identity, name: str | None
    ) -> DatasetRecord:
        """Record a multipart upload already spooled into the store's incoming directory."""
        dataset_id = Catalog.new_id()
        started = time.perf_counter()
        path = self.artifacts.adopt(temporary, self.KIND, dataset_id, FILENAMES[file_format])
        return self.register(dataset_id, file_format, owner, name, path.stat().st_size, started)

    def register(
        self,
        dataset_id: str,
        file_format: str,
        owner: Identity,
        name: str | None,
        size: int,
        started: float,
    ) -> DatasetRecord:
        """Profile a file already in the store and record it; remove it if it is bad."""
        path = self.artifacts.path(self.KIND, dataset_id, FILENAMES[file_format])
        try:
            profile = profile_file(path, file_format)
        except BaseException:
            self.artifacts.delete(self.KIND, dataset_id)
            raise
        record: DatasetRecord = {
            "id": dataset_id,
            "name": name or dataset_id,
            "owner": owner.username,
            "format": file_format,
            "size_bytes": size,
            "rows": profile["rows"],
            "columns": profile["columns"],
            "string_columns": profile["string_columns"],
            "formula_cells": profile["formula_cells"],
            "upload_seconds": round(time.perf_counter() - started, 3),
        }
        if "delimiter" in profile:
            record["delimiter"] = profile["delimiter"]
        return self.catalog.create(record)

    def path(self, record: DatasetRecord) -> Path:
        return self.artifacts.path(self.KIND, record["id"], FILENAMES[record["format"]])

    def delete(self, record: DatasetRecord) -> None:
        self.catalog.delete(record["id"])
        self.artifacts.delete(self.KIND, record["id"])


def public(record: DatasetRecord) -> dict[str, Any]:
    """A data set record as the API shows it: ``delimiter`` is ``null`` for Parquet."""
    shown: dict[str, Any] = {key: value for key, value in record.items() if key != "string_columns"}
    shown["delimiter"] = delimiter_of(record) if record["format"] == CSV else None
    return shown
