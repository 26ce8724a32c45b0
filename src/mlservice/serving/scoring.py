"""Batch scoring: every row of a stored data set through a model, into a new data set.

``POST /resource/models/<id>/predict`` answers at most 100,000 records while a
client waits; a stored data set can hold millions of rows. Scoring it is a
Celery job that reads the file in chunks with Arrow, checks and predicts each
chunk with the very :class:`~.predictor.Predictor` and answer code the API
uses (so a row gets the same prediction either way), and writes the output
chunk by chunk: memory follows the chunk size, never the data set's size.
A chunk is also cut short where its rows would become more than ``[limits]
max_decoded_mb`` (long text, or one value repeated by a Parquet dictionary),
counted before its values are turned into Python strings.

The output file is written under a temporary name and renamed only when every
chunk is done, then registered as a data set like an uploaded one. A job that
fails (bad values, the model or the data set deleted meanwhile, a time limit)
leaves no file and no record; one delivered again starts over.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from msgspec import Meta

from ..bodies import HEX_ID, Body, decode, to_json
from ..errors import BadRequest, Invalid, JobFailed, NotFound
from ..security import Identity
from ..store import decoded_sizes
from ..store.bundles import ColumnType, SchemaColumn
from ..store.catalog import Catalog
from ..store.dataset_files import (
    CSV_FORMAT,
    FILENAMES,
    PARQUET_FORMAT,
    Datasets,
    read_columns,
    require_ready,
)
from ..store.records import ColumnProfile, DatasetRecord, ModelRecord
from . import inputs, outputs
from .cache import ModelCache, ModelNotPublished
from .predictor import Predictor

OUTPUT_FORMATS = (PARQUET_FORMAT, CSV_FORMAT)
MAX_NAME = 200
#: Profiled dtypes (``ColumnProfile.dtype``) a model's number column can be read from.
NUMBER_DTYPES = ("integer", "float", "empty")
#: ... and its text column, in a Parquet file (a CSV column is read as text whatever it holds).
TEXT_DTYPES = ("string", "empty")

#: Called after each chunk with (rows done, rows in all).
ScoringProgress = Callable[[int, int], None]


class ScoringFailed(JobFailed):
    """The job cannot finish (model or data set deleted meanwhile); the message says which."""


class ScoringRequest(Body):
    """A ``POST /resource/models/<id>/predictions`` body (the contract's ``ScoringRequest``)."""

    dataset_id: Annotated[str, Meta(pattern=HEX_ID)]
    format: Literal["parquet", "csv"] = "parquet"
    keep_columns: tuple[Annotated[str, Meta(min_length=1)], ...] = ()
    probabilities: bool = False
    name: Annotated[str, Meta(min_length=1, max_length=MAX_NAME)] | None = None
    #: The data set's columns the model does not take (its target, ids): ignored and named
    #: in the 202 answer's ``ignored_columns``, or refused (400 naming them).
    extra_columns: Literal["ignore", "refuse"] = "ignore"

    complaints = {
        "dataset_id": "must be a data set id (32 hexadecimal digits)",
        "format": f"must be one of {', '.join(OUTPUT_FORMATS)}",
        "keep_columns": "must be a list of column names",
        "probabilities": "must be true or false",
        "name": f"must be a string of 1 to {MAX_NAME} characters",
        "extra_columns": "must be ignore or refuse",
    }
    example = '{"dataset_id": "<id>", "format": "parquet"}'

    def as_json(self) -> dict[str, Any]:
        """The request as a Celery argument (JSON)."""
        return to_json(self)

    @classmethod
    def from_json(cls, fields: dict[str, Any]) -> ScoringRequest:
        """The request back from its Celery argument."""
        return msgspec.convert(fields, cls)


@dataclass(frozen=True)
class ScoringJob:
    """What one Celery task does: the request, its model, and the new data set's id and owner."""

    model_id: str
    output_id: str
    #: Who asked: the new data set is theirs (their account id and user name).
    owner: Identity
    request: ScoringRequest

    @property
    def owner_id(self) -> str:
        """The account id the new data set (and the task) belongs to."""
        return self.owner.require_account_id()

    def task_args(self) -> tuple[str, str, dict[str, str], dict[str, Any]]:
        """The job as the Celery task's arguments (JSON); :meth:`from_task_args` reads them."""
        owner = {"account_id": self.owner_id, "username": self.owner.username}
        return self.model_id, self.output_id, owner, self.request.as_json()

    @classmethod
    def from_task_args(
        cls, model_id: str, output_id: str, owner: dict[str, str], request: dict[str, Any]
    ) -> ScoringJob:
        """The job back from the Celery task's arguments."""
        identity = Identity(owner["username"], "user", account_id=owner["account_id"])
        return cls(model_id, output_id, identity, ScoringRequest.from_json(request))


def parse_scoring_request(body: Any) -> ScoringRequest:
    """The body as a :class:`ScoringRequest` (400 naming a field of the wrong shape)."""
    request = decode(body, ScoringRequest)
    if len(set(request.keep_columns)) != len(request.keep_columns):
        raise BadRequest("'keep_columns' names a column twice")
    return request


def check_request(
    request: ScoringRequest, dataset: DatasetRecord, schema: list[SchemaColumn]
) -> list[str]:
    """The data set must hold the kept columns and the model's inputs, of usable types (422);
    the columns the model does not take and the request does not keep, which are ignored
    (or, with ``extra_columns: refuse``, refused: 400 naming them).

    Checked against the data set's profile, so a hopeless job is refused at once
    instead of failing in a worker; a data set not profiled (yet) is a 409.
    """
    require_ready(dataset)
    columns = {column["name"]: column for column in dataset["columns"]}
    _check_kept_columns(request.keep_columns, dataset["id"], columns)
    _check_input_columns(schema, dataset, columns)
    used = {column["name"] for column in schema} | set(request.keep_columns)
    ignored = [name for name in columns if name not in used]
    if ignored and request.extra_columns == "refuse":
        raise BadRequest(
            f"data set {dataset['id']!r} has column(s) {', '.join(map(repr, ignored))} the "
            "model does not take (extra_columns: refuse); keep them with keep_columns, or "
            "leave out extra_columns to have them ignored"
        )
    return ignored


def _check_kept_columns(
    keep_columns: tuple[str, ...], dataset_id: str, columns: dict[str, ColumnProfile]
) -> None:
    """The kept columns are the data set's, and none would take an output column's name."""
    unknown = [name for name in keep_columns if name not in columns]
    if unknown:
        raise Invalid(
            f"keep_columns {', '.join(map(repr, unknown))} are not columns of data set "
            f"{dataset_id!r}; its columns: {', '.join(columns)}"
        )
    taken = [
        name
        for name in keep_columns
        if name == outputs.PREDICTION or name.startswith(outputs.PROBABILITY_PREFIX)
    ]
    if taken:
        raise Invalid(
            f"keep_columns {', '.join(map(repr, taken))} would clash with the output's "
            f"{outputs.PREDICTION!r} and {outputs.PROBABILITY_PREFIX}<class> columns; "
            "leave them out"
        )


def _check_input_columns(
    schema: list[SchemaColumn], dataset: DatasetRecord, columns: dict[str, ColumnProfile]
) -> None:
    """The model's input columns are all there, each of a type it can be read as."""
    missing = [column["name"] for column in schema if column["name"] not in columns]
    if missing:
        raise Invalid(
            f"data set {dataset['id']!r} lacks the model's input column(s) "
            f"{', '.join(map(repr, missing))}; the model expects "
            f"{', '.join(repr(column['name']) for column in schema)}"
        )
    for column in schema:
        dtype = columns[column["name"]]["dtype"]
        if column["type"] == ColumnType.NUMBER and dtype not in NUMBER_DTYPES:
            expected = "numbers"
        elif (
            column["type"] == ColumnType.STRING
            and dataset["format"] == PARQUET_FORMAT
            and dtype not in TEXT_DTYPES
        ):
            expected = "text"
        else:
            continue
        raise Invalid(
            f"column {column['name']!r} of data set {dataset['id']!r} is {dtype}; "
            f"the model expects {expected}"
        )


def rechunk(batches: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.Table]:
    """Tables of exactly ``rows`` rows (the last one: what is left), whatever the batches.

    Slices share the batches' memory: at most one chunk and one batch are held.
    """
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        if not batch.num_rows:
            continue
        pending.append(batch)
        count += batch.num_rows
        while count >= rows:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, rows)
            rest = table.slice(rows)
            pending = [part for part in rest.to_batches() if part.num_rows]
            count = rest.num_rows
    if count:
        yield pa.Table.from_batches(pending)


def within_bytes(
    chunks: Iterable[pa.Table], schema: list[SchemaColumn], limit: int
) -> Iterator[pa.Table]:
    """The chunks again, each cut where its rows would become more than ``limit`` bytes of
    model input (:func:`inputs.decoded_row_bytes`); a single row over it fails the job."""
    done = 0
    for chunk in chunks:
        sizes = inputs.decoded_row_bytes(chunk, schema)
        ends = np.cumsum(sizes)
        start, base = 0, 0
        while start < chunk.num_rows:
            stop = int(np.searchsorted(ends, base + limit, side="right"))
            if stop == start:
                raise Invalid(
                    f"row {done + start} becomes {decoded_sizes.in_mib(int(sizes[start]))} in "
                    f"memory, more than {decoded_sizes.in_mib(limit)} ([limits] max_decoded_mb)"
                )
            yield chunk.slice(start, stop - start)
            base, start = int(ends[stop - 1]), stop
        done += chunk.num_rows


class _Output:
    """The output file, written a chunk at a time (Parquet row groups, or CSV lines)."""

    def __init__(self, handle: Any, file_format: str) -> None:
        self._handle = handle
        self._format = file_format
        self._writer: pq.ParquetWriter | pacsv.CSVWriter | None = None
        self.schema: pa.Schema | None = None

    def write(self, table: pa.Table) -> None:
        """Append one chunk; the writer opens with the first, since only it tells the schema."""
        if self._writer is None:  # the first chunk fixes the schema; later ones are cast to it
            self.schema = table.schema
            self._writer = (
                pq.ParquetWriter(self._handle, table.schema)
                if self._format == PARQUET_FORMAT
                else pacsv.CSVWriter(self._handle, table.schema)
            )
        self._writer.write_table(table.cast(self.schema))

    def close(self) -> None:
        """Finish the file: a Parquet file is whole only once its footer is written here.

        Called when a chunk fails too, so the writer lets go of the file it buffers.
        """
        if self._writer is not None:
            self._writer.close()


def run_job(
    datasets: Datasets,
    models: Catalog[ModelRecord],
    cache: ModelCache,
    job: ScoringJob,
    chunk_rows: int,
    progress: ScoringProgress,
) -> dict[str, Any]:
    """Run a scoring job: its result names the new data set and what it was made from.

    A job delivered again after it finished (its acknowledgement was lost)
    answers the same result; one whose model or data set is gone fails
    (:class:`ScoringFailed`) before anything is written.
    """
    try:
        return job_result(job, datasets.catalog.get(job.output_id))
    except NotFound:
        pass
    try:
        source = datasets.catalog.get(job.request.dataset_id)
    except NotFound:
        raise ScoringFailed(
            f"data set {job.request.dataset_id!r} was deleted before it was scored"
        ) from None
    try:
        _, predictor = cache.get(job.model_id, cache.current_version(job.model_id))
    except ModelNotPublished:
        raise ScoringFailed(
            f"model {job.model_id!r} was deleted before it scored anything"
        ) from None
    progress(0, source["rows"])
    record = write_predictions(datasets, models, predictor, source, job, chunk_rows, progress)
    return job_result(job, record)


def job_result(job: ScoringJob, record: DatasetRecord) -> dict[str, Any]:
    """A job's result: the new data set, and what it was made from."""
    return {
        "dataset_id": record["id"],
        "model_id": job.model_id,
        "source_dataset_id": job.request.dataset_id,
        "format": record["format"],
        "rows": record["rows"],
        "columns": [column["name"] for column in record["columns"]],
    }


def remove_unfinished(datasets: Datasets, output_id: str) -> None:
    """A job stopped mid-write (its process killed): nothing may be left of its output."""
    try:
        datasets.catalog.get(output_id)
    except NotFound:
        datasets.artifacts.delete(datasets.KIND, output_id)


def write_predictions(
    datasets: Datasets,
    models: Catalog[ModelRecord],
    predictor: Predictor,
    source: DatasetRecord,
    job: ScoringJob,
    chunk_rows: int,
    progress: ScoringProgress,
) -> DatasetRecord:
    """Predict every row of ``source`` and record the output as the data set ``job.output_id``.

    Raises :class:`~mlservice.errors.Invalid` for values the model cannot take
    (the first bad chunk's message) and :class:`ScoringFailed` when the model or
    the data set is deleted meanwhile; either way no file is left.
    """
    bundle, request = predictor.bundle, job.request
    outputs.check_probabilities(bundle, request.probabilities)
    started = time.perf_counter()
    schema = bundle.schema
    wanted = list(request.keep_columns) + [
        column["name"] for column in schema if column["name"] not in request.keep_columns
    ]
    forced = inputs.arrow_types(schema)
    limits = datasets.limits
    batches = read_columns(datasets.path(source), source, wanted, forced, chunk_rows, limits)
    total, done = source["rows"], 0
    filename = FILENAMES[request.format]
    datasets.artifacts.delete(datasets.KIND, job.output_id)  # a run before this one's leftovers
    with datasets.artifacts.writing(datasets.KIND, job.output_id, filename) as (handle, path):
        output = _Output(handle, request.format)
        try:
            chunks = rechunk(batches, chunk_rows)
            for chunk in within_bytes(chunks, schema, limits.max_decoded_bytes):
                _check_present(datasets, models, job, source)
                columns = inputs.arrow_to_columns(chunk, schema, first_row=done)
                raw, proba = predictor.run(columns, probabilities=request.probabilities)
                kept = chunk.select(request.keep_columns)
                output.write(outputs.answer_table(bundle, raw, proba, kept))
                done += chunk.num_rows
                progress(done, max(total, done))
        finally:
            output.close()
        _check_present(datasets, models, job, source)
    size = path.stat().st_size
    name = request.name or f"predictions of model {job.model_id} on {source['name']}"
    return register_output(datasets, job, name, size, started)


def register_output(
    datasets: Datasets, job: ScoringJob, name: str, size: int, started: float
) -> DatasetRecord:
    """Profile the finished file and record it as a data set of the job's owner.

    The one place scoring uses the data set store's registration.
    """
    return datasets.register(job.output_id, job.request.format, job.owner, name, size, started)


def _check_present(
    datasets: Datasets, models: Catalog[ModelRecord], job: ScoringJob, source: DatasetRecord
) -> None:
    """Stop (:class:`ScoringFailed`) once the model or the data set has been deleted."""
    try:
        models.get(job.model_id)
    except NotFound:
        raise ScoringFailed(
            f"model {job.model_id!r} was deleted while it was scoring data set "
            f"{source['id']!r}; no data set was made"
        ) from None
    try:
        datasets.catalog.get(source["id"])
    except NotFound:
        raise ScoringFailed(
            f"data set {source['id']!r} was deleted while model {job.model_id!r} was "
            "scoring it; no data set was made"
        ) from None
