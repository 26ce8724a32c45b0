"""The prediction log: each logged request's inputs and answers, kept as Parquet files.

Rows reach it in two steps, both off the request path:

1. An API worker's writer thread (:mod:`.recorder`) turns a request's inputs
   and answers into one Arrow table (:func:`request_table`) and appends it, as
   an Arrow IPC stream, to the model's buffer list in Redis.
2. ``celery beat`` sends a flush every ``[monitoring] flush_seconds``: a worker
   takes each buffered model's entries (:meth:`PredictionLog.flush`), writes
   them as one Parquet file ``prediction-logs/<model>/<first>-<last>-<rows>.parquet``
   and trims them from the list, then drops the oldest files past ``[monitoring]
   log_max_rows`` and ``log_max_days``.

A flush holds a per-model lock in Redis (expiring), writes the file under a name
made of its rows' own times and count, and trims only after the file is in
place: a flush cut short is done again by the next one and writes the same
file again, so nothing is lost and nothing doubled.

With the log off, one request in ``[monitoring] sample_every`` is kept in a
capped sample list instead, so drift has recent inputs to look at.
Reading (:meth:`PredictionLog.recent_rows`) takes the newest rows from the
buffer and the files, newest first.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import redis

from ..config import MonitoringSettings
from ..redis_client import text as as_text
from ..serving import outputs
from ..store import monitoring_keys as keys
from ..store.artifacts import ArtifactStore
from ..store.bundles import ModelBundle

log = logging.getLogger(__name__)

#: The log's own columns, after the inputs and the answer's.
MODEL_ID = "model_id"
MODEL_VERSION = "model_version"
PREDICTED_AT = "predicted_at"
REQUEST_ID = "request_id"
META_COLUMNS = (MODEL_ID, MODEL_VERSION, PREDICTED_AT, REQUEST_ID)
#: Buffered requests one flush writes into one file, at most.
FLUSH_CHUNK = 5000
#: Seconds a flush's lock lasts (a flush that dies lets the next one in after this).
LOCK_SECONDS = 120
#: Deletes the model from the buffered set only if its buffer is empty, atomically.
_FORGET_IF_EMPTY = """
if redis.call('LLEN', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[1]) end
return 0
"""
#: Releases a lock only if it is still ours.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"""


def request_table(
    bundle: ModelBundle,
    model_id: str,
    version: int,
    columns: dict[str, np.ndarray],
    raw: np.ndarray,
    proba: np.ndarray | None,
    request_ids: list[str | None],
    times_ms: np.ndarray,
) -> pa.Table:
    """Requests' rows: their input columns, the answer's columns, then the log's own
    (``request_ids`` and ``times_ms``: one per row)."""
    inputs = pa.table(
        {name: pa.array(values, from_pandas=True) for name, values in columns.items()}
    )
    table = outputs.answer_table(bundle, raw, proba, kept=inputs)
    rows = table.num_rows
    meta = {
        MODEL_ID: pa.array([model_id] * rows, type=pa.string()),
        MODEL_VERSION: pa.array(np.full(rows, version, dtype=np.int64)),
        PREDICTED_AT: pa.array(times_ms.astype(np.int64)).cast(pa.timestamp("ms", tz="UTC")),
        REQUEST_ID: pa.array(request_ids, type=pa.string()),
    }
    for name, values in meta.items():
        if name not in table.column_names:
            table = table.append_column(name, values)
    return table


def encode(table: pa.Table) -> bytes:
    """A table as an Arrow IPC stream (what the buffer holds)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def decode(data: Any) -> pa.Table:
    """A buffered entry (bytes, as Redis answers) back as a table."""
    return pa.ipc.open_stream(pa.py_buffer(data)).read_all()


def concat(tables: list[pa.Table]) -> pa.Table:
    """Tables of one model as one (columns some lack, such as probabilities, are null)."""
    return pa.concat_tables(tables, promote_options="permissive")


def _times(table: pa.Table) -> tuple[int, int]:
    """The first and last prediction time of a table, in milliseconds."""
    stamps = table.column(PREDICTED_AT).cast(pa.int64()).to_numpy()
    return int(stamps.min()), int(stamps.max())


def file_name(table: pa.Table) -> str:
    """``<first ms>-<last ms>-<rows>.parquet``: sorted by name is sorted by time, and the
    same rows flushed twice make the same name."""
    first, last = _times(table)
    return f"{first:015d}-{last:015d}-{table.num_rows}.parquet"


def parse_file_name(path: Path) -> tuple[int, int, int]:
    """(first ms, last ms, rows) of a log file."""
    first, last, rows = path.stem.split("-")
    return int(first), int(last), int(rows)


class PredictionLog:
    """The models' logged rows: the Redis buffers and sample lists, and the Parquet files."""

    def __init__(
        self, store: redis.Redis, artifacts: ArtifactStore, settings: MonitoringSettings
    ) -> None:
        self.redis = store
        self.artifacts = artifacts
        self.settings = settings
        self._forget_if_empty = store.register_script(_FORGET_IF_EMPTY)
        self._release = store.register_script(_RELEASE)

    # --- writing (the API's writer thread)

    def append(self, entries: list[tuple[str, bool, bytes]]) -> None:
        """Append requests ``(model id, logged, Arrow IPC bytes)`` to their buffers (logged)
        or sample lists (not), each list capped, in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for model_id, logged, data in entries:
            if logged:
                pipe.rpush(keys.buffer_key(model_id), data)
                pipe.ltrim(keys.buffer_key(model_id), -self.settings.buffer_max_requests, -1)
                pipe.sadd(keys.BUFFERED, model_id)
            else:
                pipe.rpush(keys.sample_key(model_id), data)
                pipe.ltrim(keys.sample_key(model_id), -self.settings.sample_max_requests, -1)
        pipe.execute()

    # --- flushing (a Celery worker)

    def buffered_models(self) -> list[str]:
        """Models with rows in their buffer."""
        return sorted(text for m in self.redis.smembers(keys.BUFFERED) if (text := as_text(m)))

    def flush_all(self) -> dict[str, int]:
        """Flush every buffered model; rows written per model."""
        return {model_id: self.flush(model_id) for model_id in self.buffered_models()}

    def _lock(self, model_id: str, wait: bool) -> str | None:
        """Take the model's flush lock (waiting for it up to its expiry if ``wait``); its
        token, or None if another process holds it."""
        lock, token = keys.flush_lock_key(model_id), secrets.token_hex(8)
        deadline = time.monotonic() + LOCK_SECONDS
        while not self.redis.set(lock, token, nx=True, ex=LOCK_SECONDS):
            if not wait or time.monotonic() > deadline:
                return None
            time.sleep(0.05)
        return token

    def flush(self, model_id: str, wait: bool = False) -> int:
        """Write the model's buffered requests into Parquet files, then apply the bounds;
        the rows written (0 if another process is flushing it and not ``wait``)."""
        token = self._lock(model_id, wait)
        if token is None:
            return 0
        written = 0
        lock = keys.flush_lock_key(model_id)
        try:
            buffer = keys.buffer_key(model_id)
            # Bounded: what arrives while flushing waits for the next flush.
            for _ in range(self.settings.buffer_max_requests // FLUSH_CHUNK + 1):
                entries = self.redis.lrange(buffer, 0, FLUSH_CHUNK - 1)
                if not entries:
                    break
                table = concat([decode(entry) for entry in entries])
                name = file_name(table)
                with self.artifacts.writing(keys.LOG_KIND, model_id, name) as (handle, _):
                    pq.write_table(table, handle)
                self.redis.ltrim(buffer, len(entries), -1)
                written += table.num_rows
            self._forget_if_empty(keys=[buffer, keys.BUFFERED], args=[model_id])
        finally:
            self._release(keys=[lock], args=[token])
        self.apply_bounds(model_id)
        return written

    def files(self, model_id: str) -> list[Path]:
        """The model's log files, oldest first."""
        directory = self.artifacts.path(keys.LOG_KIND, model_id, "x").parent
        if not directory.is_dir():
            return []
        return sorted(p for p in directory.glob("*.parquet") if not p.name.startswith("."))

    def apply_bounds(self, model_id: str, now: float | None = None) -> list[Path]:
        """Drop the oldest files past ``log_max_days`` and ``log_max_rows``; those dropped."""
        now = time.time() if now is None else now
        cutoff_ms = (now - self.settings.log_max_days * 86400) * 1000
        files = self.files(model_id)
        kept_rows, dropped = 0, []
        for path in reversed(files):  # newest first
            _, last, rows = parse_file_name(path)
            if last < cutoff_ms or kept_rows + rows > self.settings.log_max_rows:
                dropped.append(path)
            else:
                kept_rows += rows
        for path in dropped:
            path.unlink(missing_ok=True)
        return dropped

    # --- reading (drift, export)

    def _newest_tables(self, model_id: str, logged: bool) -> Iterator[pa.Table]:
        """The model's logged (or sampled) tables, newest first."""
        key = keys.buffer_key(model_id) if logged else keys.sample_key(model_id)
        for entry in reversed(self.redis.lrange(key, 0, -1)):
            yield decode(entry)
        if logged:
            for path in reversed(self.files(model_id)):
                try:
                    yield pq.read_table(path)
                except FileNotFoundError:  # dropped by the bounds meanwhile
                    continue

    def recent_rows(self, model_id: str, rows: int, logged: bool) -> pa.Table | None:
        """The newest ``rows`` rows (fewer if there are fewer), oldest first; None if none."""
        taken: list[pa.Table] = []
        count = 0
        for table in self._newest_tables(model_id, logged):
            need = rows - count
            taken.append(table.slice(max(0, table.num_rows - need)))
            count += min(need, table.num_rows)
            if count >= rows:
                break
        if not taken:
            return None
        return concat(list(reversed(taken)))

    def has_rows(self, model_id: str) -> bool:
        """Whether the model's log holds any row (buffered or in a file)."""
        return bool(self.redis.llen(keys.buffer_key(model_id))) or bool(self.files(model_id))

    def rows_logged(self, model_id: str) -> int:
        """Rows in the model's files (flushed)."""
        return sum(parse_file_name(path)[2] for path in self.files(model_id))

    def export(self, model_id: str, target: Any) -> int:
        """Flush, then write every logged row into one Parquet file (``target``: an open
        binary file); the rows written."""
        self.flush(model_id, wait=True)
        files = self.files(model_id)
        if not files:
            return 0
        schema = pa.unify_schemas(
            [pq.read_schema(path) for path in files], promote_options="permissive"
        )
        rows = 0
        with pq.ParquetWriter(target, schema) as writer:
            for path in files:
                table = pq.read_table(path)
                table = concat([table, schema.empty_table()]).select(schema.names).cast(schema)
                writer.write_table(table)
                rows += table.num_rows
        return rows
