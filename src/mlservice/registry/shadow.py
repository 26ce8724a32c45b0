"""Shadow versions: a copy of each request, answered off the answer path and compared.

An alias may name a shadow version (``"shadow": m``). Each request the alias
answers is then also given to version ``m`` by a small pool of threads of the
API worker (``[inference] shadow_threads``), *after* the answer is built: its
answer is compared with the one served and never returned. The pool's queue
is bounded (``[inference] shadow_queue``): when it is full the copy is
dropped (and counted), so shadowing can slow a busy worker but never make its
queue grow without end.

The counts live in Redis, one hash per shadow version
(``registry:shadow:<name>:<version>``): requests compared and agreeing (every
row agrees), rows compared and agreeing, copies failed (the shadow could not
answer: another input schema, an error) and dropped. Rows agree when a
classifier gives the same label, or a regressor values within a relative
1e-4 (as ONNX compilation is checked).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import redis

from .. import telemetry
from ..serving.cache import ModelCache
from ..serving.predictor import Predictor
from ..store.bundles import ModelBundle, Task
from .registry_records import ShadowCounts, shadow_key

log = logging.getLogger(__name__)

#: Regression answers agree within this relative difference.
RELATIVE_TOLERANCE = 1e-4

_FIELDS = ("requests", "requests_agreed", "rows", "rows_agreed", "failed", "dropped")


class InputsDiffer(Exception):
    """The shadow version takes other input columns than the version that answered."""


def counts(raw: dict[bytes, bytes]) -> ShadowCounts:
    """A version's shadow counts as the API shows them (from its hash)."""
    values = {name: int(raw.get(name.encode(), 0)) for name in _FIELDS}
    compared = values["requests"]
    return {
        "requests_compared": compared,
        "requests_agreed": values["requests_agreed"],
        "agreement_rate": values["requests_agreed"] / compared if compared else None,
        "rows_compared": values["rows"],
        "rows_agreed": values["rows_agreed"],
        "failed": values["failed"],
        "dropped": values["dropped"],
    }


def _input_columns(bundle: ModelBundle) -> list[tuple[str, str]]:
    return [(column["name"], column["type"]) for column in bundle.schema]


def agreeing_rows(
    served: ModelBundle, served_raw: np.ndarray, shadow: ModelBundle, shadow_raw: np.ndarray
) -> int:
    """How many rows the two answers agree on (labels equal, or values within tolerance)."""
    if served.task == Task.CLASSIFICATION or shadow.task == Task.CLASSIFICATION:
        if served.task != shadow.task:
            return 0
        ours = np.asarray(served.classes, dtype=object)[served_raw.astype(int)]
        theirs = np.asarray(shadow.classes, dtype=object)[shadow_raw.astype(int)]
        return int(np.sum(ours == theirs))
    ours = np.asarray(served_raw, dtype=np.float64)
    theirs = np.asarray(shadow_raw, dtype=np.float64)
    scale = np.maximum(np.abs(ours), np.abs(theirs))
    return int(np.sum(np.abs(ours - theirs) <= RELATIVE_TOLERANCE * scale))


def compare(
    served: ModelBundle, served_raw: np.ndarray, shadow: Predictor, columns: dict[str, np.ndarray]
) -> int:
    """Run the shadow on the request's columns; the rows it agrees on.

    :class:`InputsDiffer` when it takes other columns (the request was read for the
    served version's).
    """
    if _input_columns(served) != _input_columns(shadow.bundle):
        raise InputsDiffer()
    shadow_raw, _ = shadow.run(columns)
    return agreeing_rows(served, served_raw, shadow.bundle, shadow_raw)


class ShadowPool:
    """One API worker's shadow threads and their bounded queue (started on first use,
    after Gunicorn's fork)."""

    def __init__(self, redis_client: redis.Redis, cache: ModelCache, threads: int, queue: int):
        self._redis = redis_client
        self._cache = cache
        self._threads = threads
        self._slots = threading.BoundedSemaphore(threads + queue)
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        #: Copies dropped since the last write to Redis: (name, version) -> how many.
        self._dropped: Counter[tuple[str, int]] = Counter()

    def submit(
        self,
        name: str,
        version: int,
        model_id: str,
        published_version: int | None,
        served: ModelBundle,
        served_raw: np.ndarray,
        columns: dict[str, np.ndarray],
    ) -> bool:
        """Queue a copy for shadow ``version`` (its model and published version); False if
        the queue was full and it was dropped. Never waits."""
        if not self._slots.acquire(blocking=False):
            with self._lock:
                self._dropped[(name, version)] += 1
            telemetry.shadow_comparison(name, version, "dropped")
            return False
        try:
            self._pool().submit(
                self._run, name, version, model_id, published_version, served, served_raw, columns
            )
        except BaseException:
            self._slots.release()
            raise
        return True

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            with self._lock:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(self._threads, "mlservice-shadow")
        return self._executor

    def _run(
        self,
        name: str,
        version: int,
        model_id: str,
        published_version: int | None,
        served: ModelBundle,
        served_raw: np.ndarray,
        columns: dict[str, np.ndarray],
    ) -> None:
        """One copy: predict, compare, count (in a shadow thread)."""
        try:
            rows, agreed, failed = len(served_raw), 0, 0
            try:
                _, predictor = self._cache.get(model_id, published_version)
                agreed = compare(served, served_raw, predictor, columns)
                outcome = "agreed" if agreed == rows else "disagreed"
            except Exception as exc:
                if not isinstance(exc, InputsDiffer):
                    log.warning("shadow version %s of %s failed: %r", version, name, exc)
                rows, failed, outcome = 0, 1, "failed"
            telemetry.shadow_comparison(name, version, outcome)
            self._count(name, version, rows, agreed, failed)
        except Exception:  # Redis away: a count lost, never an answer
            log.exception("shadow counts of version %s of %s not recorded", version, name)
        finally:
            self._slots.release()

    def _count(self, name: str, version: int, rows: int, agreed: int, failed: int) -> None:
        """Add one comparison (and the copies dropped meanwhile) to the counts in Redis."""
        with self._lock:
            dropped, self._dropped = self._dropped, Counter()
        pipe = self._redis.pipeline(transaction=False)
        key = shadow_key(name, version)
        if failed:
            pipe.hincrby(key, "failed", failed)
        else:
            pipe.hincrby(key, "requests", 1)
            pipe.hincrby(key, "requests_agreed", int(agreed == rows))
            pipe.hincrby(key, "rows", rows)
            pipe.hincrby(key, "rows_agreed", agreed)
        for (other, number), count in dropped.items():
            pipe.hincrby(shadow_key(other, number), "dropped", count)
        pipe.execute()

    def close(self) -> None:
        """Finish the copies queued (a worker shutting down; tests)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
