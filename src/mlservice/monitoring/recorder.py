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
            while len(batch) < BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self.write(batch)
            for _ in batch:
                self._queue.task_done()

    def write(self, batch: list[_Pending]) -> None:
        """Append a batch to Redis; on failure its rows are dropped (counted, logged)."""
        try:
            entries = [
                (
                    item.model_id,
                    item.logged,
                    prediction_log.encode(
                        prediction_log.request_table(
                            item.bundle,
                            item.model_id,
                            item.version,
                            item.columns,
                            item.raw,
                            item.proba,
                            item.request_id,
                            item.at,
                        )
                    ),
                )
                for item in batch
            ]
            self.log.append(entries)
        except Exception:
            log.exception("prediction log: %d requests could not be written", len(batch))
            telemetry.prediction_log_dropped(sum(len(item.raw) for item in batch))

    def drain(self, timeout: float = 5.0) -> None:
        """Wait until what is queued now is written (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
