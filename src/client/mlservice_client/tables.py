"""Prediction input and output as files: CSV, JSON or Parquet in, CSV or JSON out.

The predict routes take JSON records whose values have the model's types
(numbers for ``number`` columns, strings for ``string`` ones, ``null`` for
missing), so this module turns a file or a DataFrame into such records,
batch by batch so a large file never sits in memory whole. CSV and JSON need
only the standard library; pandas and pyarrow are imported only for a
DataFrame or a Parquet file, with a message saying what to install.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from .errors import MLServiceError

Record = dict[str, Any]

#: Extensions the client reads, by format.
INPUT_FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}

#: Cells a CSV file writes for a missing value (as the service's profiling reads them).
MISSING = frozenset({"", "NA", "N/A", "NaN", "nan", "null", "NULL", "None"})


class InputError(MLServiceError):
    """A prediction input file or value the client cannot turn into records."""


def format_of(name: str, given: str | None = None) -> str:
    """The input format: ``given`` if any, else from the file name's extension."""
    if given:
        return given
    suffix = Path(name).suffix.lower()
    if suffix not in INPUT_FORMATS:
        raise InputError(
            f"cannot tell the format of {name!r} from its extension; "
            "use .csv, .json, .jsonl or .parquet, or say --format csv|json|jsonl|parquet"
        )
    return INPUT_FORMATS[suffix]


def need(module: str, what: str) -> Any:
    """Import an optional dependency, or say in one line how to install it."""
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        raise InputError(
            f"{what} needs {module.split('.')[0]}: pip install 'mlservice-client[pandas]'"
        ) from None


def is_dataframe(data: Any) -> bool:
    """Whether ``data`` is a pandas DataFrame (without importing pandas)."""
    return type(data).__module__.startswith("pandas") and hasattr(data, "to_json")


def frame_records(frame: Any) -> list[Record]:
    """A DataFrame's rows as JSON records (NaN → null, numpy numbers → JSON numbers)."""
    records: list[Record] = json.loads(frame.to_json(orient="records", date_format="iso"))
    return records


def clean(value: Any) -> Any:
    """A value as JSON can carry it: NaN and infinities become ``null``."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def cell(text: str, kind: str | None) -> Any:
    """A CSV cell as the model's column type wants it.

    ``kind`` is the column's ``type`` from the model's ``input_schema``
    (``number`` or ``string``); ``None`` when unknown (the default model), in
    which case a cell that reads as a number is sent as one.
    """
    if text in MISSING:
        return None
    if kind == "string":
        return text
    try:
        number = float(text)
    except ValueError:
        if kind == "number":
            raise InputError(f"{text!r} is not a number") from None
        return text
    if number.is_integer() and "." not in text and "e" not in text.lower():
        return int(number)
    return number


def csv_batches(
    stream: IO[str], kinds: dict[str, str] | None, batch_size: int
) -> Iterator[list[Record]]:
    """Records from a CSV text stream, ``batch_size`` at a time; the delimiter is sniffed."""
    head = stream.readline()
    delimiter = max(",;\t|", key=head.count) if any(d in head for d in ",;\t|") else ","
    reader = csv.reader(io.StringIO(head), delimiter=delimiter)
    names = next(reader, None)
    if not names:
        raise InputError("the CSV input is empty: it needs a header line and rows")
    rows = csv.reader(stream, delimiter=delimiter)
    batch: list[Record] = []
    for line, row in enumerate(rows, start=2):
        if not row:
            continue
        if len(row) != len(names):
            raise InputError(f"CSV line {line} has {len(row)} fields; the header has {len(names)}")
        try:
            batch.append(
                {n: cell(v, (kinds or {}).get(n)) for n, v in zip(names, row, strict=True)}
            )
        except InputError as exc:
            raise InputError(f"CSV line {line}: {exc.message}") from None
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def json_records(data: Any) -> list[Record]:
    """Records from parsed JSON: one object, a list of objects, or ``{"instances": [...]}``."""
    if isinstance(data, dict) and isinstance(data.get("instances"), list):
        data = data["instances"]
    elif isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise InputError('JSON input must be an object, a list of objects or {"instances": [...]}')
    return data


def chunked(records: Iterable[Record], batch_size: int) -> Iterator[list[Record]]:
    """``records`` in lists of at most ``batch_size``."""
    batch: list[Record] = []
    for record in records:
        batch.append(record)
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def jsonl_records(stream: IO[str]) -> Iterator[Record]:
    """Records from JSON Lines, one object per non-empty line."""
    for line_number, line in enumerate(stream, start=1):
        if line.strip():
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise InputError(f"JSON Lines line {line_number} is not JSON: {exc}") from None
            yield from json_records(record)


def parquet_batches(path: Path, batch_size: int) -> Iterator[list[Record]]:
    """Records from a Parquet file, one row group slice at a time (needs pyarrow)."""
    parquet = need("pyarrow.parquet", "reading Parquet")
    for batch in parquet.ParquetFile(path).iter_batches(batch_size=batch_size):
        yield [{k: clean(v) for k, v in row.items()} for row in batch.to_pylist()]


def file_batches(
    source: Path | IO[bytes],
    file_format: str,
    kinds: dict[str, str] | None,
    batch_size: int,
) -> Iterator[list[Record]]:
    """Records from a file (a path, or a binary stream such as stdin), in batches."""
    if file_format == "parquet":
        if not isinstance(source, (str, Path)):
            raise InputError("Parquet input must be a file, not standard input")
        yield from parquet_batches(Path(source), batch_size)
        return
    opened = (
        open(source, "rb")  # noqa: SIM115 - closed below
        if isinstance(source, (str, Path))
        else source
    )
    text = io.TextIOWrapper(opened, encoding="utf-8-sig", newline="")
    try:
        if file_format == "csv":
            yield from csv_batches(text, kinds, batch_size)
        elif file_format == "jsonl":
            yield from chunked(jsonl_records(text), batch_size)
        elif file_format == "json":
            try:
                parsed = json.load(text)
            except ValueError as exc:
                raise InputError(f"the JSON input is not valid JSON: {exc}") from None
            yield from chunked(json_records(parsed), batch_size)
        else:
            raise InputError(f"unknown input format {file_format!r}: use csv, json, jsonl, parquet")
    except UnicodeDecodeError:
        raise InputError("the input is not UTF-8 text") from None
    finally:
        text.detach()
        if isinstance(source, (str, Path)):
            opened.close()


#: Media types of prediction bodies the service reads as they are (no conversion to JSON).
NATIVE_TYPES = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}


def native_batches(source: Path | IO[bytes], file_format: str, batch_size: int) -> Iterator[bytes]:
    """A CSV or Parquet file as bodies of its own format, ``batch_size`` rows each.

    The service types the cells by the model's schema itself, so CSV rows go
    as they are (re-quoted, never re-typed); Parquet is cut into row batches
    with pyarrow.
    """
    if file_format == "parquet":
        if not isinstance(source, Path):
            raise InputError("Parquet input must be a file, not standard input")
        parquet = need("pyarrow.parquet", "reading Parquet")
        arrow = need("pyarrow", "reading Parquet")
        for batch in parquet.ParquetFile(source).iter_batches(batch_size=batch_size):
            sink = io.BytesIO()
            parquet.write_table(arrow.Table.from_batches([batch]), sink)
            yield sink.getvalue()
        return
    opened = open(source, "rb") if isinstance(source, Path) else source  # noqa: SIM115
    text = io.TextIOWrapper(opened, encoding="utf-8-sig", newline="")
    try:
        head = text.readline()
        delimiter = max(",;\t|", key=head.count) if any(d in head for d in ",;\t|") else ","
        names = next(csv.reader(io.StringIO(head), delimiter=delimiter), None)
        if not names:
            raise InputError("the CSV input is empty: it needs a header line and rows")
        rows = (row for row in csv.reader(text, delimiter=delimiter) if row)
        for batch in chunked_rows(rows, batch_size):
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(names)
            writer.writerows(batch)
            yield out.getvalue().encode()
    except UnicodeDecodeError:
        raise InputError("the input is not UTF-8 text") from None
    finally:
        text.detach()
        if isinstance(source, Path):
            opened.close()


def chunked_rows(rows: Iterable[list[str]], batch_size: int) -> Iterator[list[list[str]]]:
    """CSV rows in lists of at most ``batch_size``."""
    batch: list[list[str]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def probability_columns(answer: Mapping[str, Any]) -> list[str]:
    """The class labels of an answer's probabilities, in the service's order."""
    probabilities = answer.get("probabilities") or []
    return [str(label) for label in probabilities[0]] if probabilities else []


def write_csv(answers: Iterable[Mapping[str, Any]], out: IO[str]) -> int:
    """Predictions as CSV (``prediction``, then ``probability_<label>`` per class if asked, as
    the service's tabular answers name them); rows written."""
    writer = csv.writer(out, lineterminator="\n")
    labels: list[str] | None = None
    written = 0
    for answer in answers:
        if labels is None:
            labels = probability_columns(answer)
            writer.writerow(["prediction", *(f"probability_{label}" for label in labels)])
        probabilities = answer.get("probabilities") or [{}] * len(answer["predictions"])
        for prediction, row in zip(answer["predictions"], probabilities, strict=True):
            writer.writerow([prediction, *(row.get(label) for label in labels)])
            written += 1
    return written


def merge(answers: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Batch answers as one: the predictions (and probabilities) concatenated in order, and
    the ignored columns of any batch, each once."""
    merged: dict[str, Any] = {"predictions": []}
    for answer in answers:
        merged["predictions"].extend(answer["predictions"])
        if "probabilities" in answer:
            merged.setdefault("probabilities", []).extend(answer["probabilities"])
        for name in answer.get("ignored_columns", []):
            ignored = merged.setdefault("ignored_columns", [])
            if name not in ignored:
                ignored.append(name)
    return merged
