"""An API worker's writer of the prediction log: the request hands over, a thread writes.

The request thread does no I/O for the log: :meth:`PredictionRecorder.record`
puts references to the request's input columns and the model's output on an
in-process queue and returns. One daemon thread per process (started on first
use, so after Gunicorn forks) turns them into Arrow tables and appends them to
Redis in one pipelined round trip per batch (:meth:`.PredictionLog.append`);
Celery flushes them into Parquet files. Why not write Parquet here: every
worker process would write its own small files and race over the bounds;
Redis gives one ordered buffer per model that survives a worker's death, and a
single flusher per model.

If the queue is full (``[monitoring] pending_max_requests``: Redis is away or
slower than the traffic), requests are dropped from the log, counted in
``mlservice_prediction_log_dropped_total``, never delaying an answer. With a
model's log off, one request in ``[monitoring] sample_every`` (per process) is
kept as a drift sample the same way.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from dataclasses import dataclass

import numpy as np

from .. import telemetry
from ..config import MonitoringSettings
from ..store.bundles import ModelBundle
from . import prediction_log
from .prediction_log import PredictionLog

log = logging.getLogger(__name__)

#: Requests the writer thread takes from its queue per round trip, at most.
BATCH = 256
#: Seconds the writer thread lets requests gather after the first, so that under load a
#: table and a round trip serve many requests (the thread holds the GIL while it builds).
GATHER_SECONDS = 0.1


@dataclass(frozen=True)
class _Pending:
    """One request handed over: everything its log rows are made of."""

    bundle: ModelBundle
    model_id: str
    version: int
    columns: dict[str, np.ndarray]
    raw: np.ndarray
    proba: np.ndarray | None
    request_id: str | None
    at: float
    logged: bool


class PredictionRecorder:
    """Hands requests to the writer thread; one per API process."""

    def __init__(self, log_store: PredictionLog, settings: MonitoringSettings) -> None:
        self.log = log_store
        self.settings = settings
        self._queue: queue.Queue[_Pending] = queue.Queue(settings.pending_max_requests)
        self._counter = itertools.count()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def record(
        self,
        bundle: ModelBundle,
        model_id: str,
        version: int,
        columns: dict[str, np.ndarray],
        raw: np.ndarray,
        proba: np.ndarray | None,
        request_id: str | None,
        logged: bool,
    ) -> None:
        """Keep a request in the model's log (``logged``), or as a drift sample if it is
        the one in ``sample_every``; returns at once."""
        if not logged:
            every = self.settings.sample_every
            if every == 0 or next(self._counter) % every:
                return
        item = _Pending(
            bundle, model_id, version, columns, raw, proba, request_id, time.time(), logged
        )
        self._ensure_thread()
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            telemetry.prediction_log_dropped(len(raw))

    def _ensure_thread(self) -> None:
        """Start the writer thread once per process (after the fork)."""
        if self._thread is not None and self._thread.is_alive():
            return
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="prediction-log-writer", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        """Write what is queued, a batch per round trip, forever."""
        while True:
            batch = [self._queue.get()]
            time.sleep(GATHER_SECONDS)
            while len(batch) < BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self.write(batch)
            for _ in batch:
                self._queue.task_done()

    def write(self, batch: list[_Pending]) -> None:
        """Append a batch to Redis, one Arrow table per model, version and kind of answer (so
        the per-table cost is paid once per batch, not per request); on failure its rows
        are dropped (counted, logged)."""
        try:
            groups: dict[tuple[str, int, bool, bool], list[_Pending]] = {}
            for item in batch:
                group = (item.model_id, item.version, item.logged, item.proba is not None)
                groups.setdefault(group, []).append(item)
            self.log.append([self._entry(items) for items in groups.values()])
        except Exception:
            log.exception("prediction log: %d requests could not be written", len(batch))
            telemetry.prediction_log_dropped(sum(len(item.raw) for item in batch))

    @staticmethod
    def _entry(items: list[_Pending]) -> tuple[str, bool, bytes]:
        """One buffered entry of requests of one model, version and kind of answer."""
        first = items[0]
        columns = {
            name: np.concatenate([item.columns[name] for item in items]) for name in first.columns
        }
        raw = np.concatenate([item.raw for item in items])
        proba = None
        if first.proba is not None:
            proba = np.concatenate([np.asarray(item.proba) for item in items])
        request_ids = [item.request_id for item in items for _ in range(len(item.raw))]
        times = np.concatenate([np.full(len(item.raw), int(item.at * 1000)) for item in items])
        table = prediction_log.request_table(
            first.bundle, first.model_id, first.version, columns, raw, proba, request_ids, times
        )
        return first.model_id, first.logged, prediction_log.encode(table)

    def drain(self, timeout: float = 5.0) -> None:
        """Wait until what is queued now is written (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
