"""A per-process cache of loaded models, keyed by model id and version, within a memory budget.

Each Gunicorn worker holds one :class:`ModelCache`. A lookup needs the
model's current version from Redis (read by the predict route with its token
check, see :mod:`mlservice.serving.hot_reads`); only when that differs
from the cached one are the bundle bytes fetched, verified, unpickled and
turned into a :class:`~mlservice.serving.predictor.Predictor` (an ONNX
Runtime session, or a batched scikit-learn pipeline). A retrain (new
version) or a delete (no version) is therefore seen by every worker, and a
model is never unpickled per request.

The cache holds at most ``[inference] model_cache_mb`` of models per
process and evicts the least recently used ones beyond that. A model's size
is estimated as its signed bundle's size (the pickled pipeline with its ONNX
graph), which is close to what unpickling it and opening its ONNX session
take. A model larger than the whole budget is still served: it is then the
only one kept.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import NamedTuple

import redis

from .. import telemetry
from ..config import InferenceSettings
from ..store import bundles, published
from .predictor import Predictor

log = logging.getLogger(__name__)


class ModelNotPublished(LookupError):
    """No model is published under that id (not trained yet, or deleted)."""


class _Entry(NamedTuple):
    version: int
    predictor: Predictor
    size: int


class ModelCache:
    """Loaded models of this process, by model id, with their version, least recently used first."""

    def __init__(self, store: redis.Redis, secret: str, settings: InferenceSettings) -> None:
        self._store = store
        self._secret = secret
        self._settings = settings
        self.budget = int(settings.model_cache_mb * 1024**2)
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self.size = 0  # estimated bytes held
        self._lock = threading.Lock()

    def get(self, model_id: str, version: int | None) -> tuple[int, Predictor]:
        """The predictor of ``version``, loaded only when it is not the cached one.

        ``version`` is the current one, as the caller just read it (or remembers
        reading, see :mod:`~mlservice.serving.hot_reads`).
        """
        if version is None:
            with self._lock:
                self._drop(model_id)
            raise ModelNotPublished(model_id)
        cached = self._entries.get(model_id)
        if cached is not None and cached.version >= version:
            self._touch(model_id)
            telemetry.cache_hit()
            return cached.version, cached.predictor
        with self._lock:  # one thread loads; the others wait and reuse its work
            cached = self._entries.get(model_id)
            if cached is not None and cached.version >= version:
                return cached.version, cached.predictor
            entry = self._load(model_id)
            self._drop(model_id)
            self._entries[model_id] = entry
            self.size += entry.size
            telemetry.cache_bytes(entry.size)
            self._evict(keep=model_id)
            return entry.version, entry.predictor

    def current_version(self, model_id: str) -> int | None:
        """The model's published version as Redis says now (``None``: not published)."""
        return published.current_version(self._store, model_id)

    def _load(self, model_id: str) -> _Entry:
        """Fetch, verify and unpickle the published bundle; :class:`ModelNotPublished` if gone."""
        started = time.perf_counter()
        fetched = published.fetch(self._store, model_id)
        if fetched is None:
            self._drop(model_id)
            raise ModelNotPublished(model_id)
        version, data = fetched
        predictor = Predictor(bundles.loads(data, self._secret), self._settings)
        telemetry.cache_load(time.perf_counter() - started)
        return _Entry(version, predictor, len(data))

    def _touch(self, model_id: str) -> None:
        """Mark a model as just used (without the lock: a lost race only misorders two hits)."""
        try:
            self._entries.move_to_end(model_id)
        except KeyError:  # evicted or dropped by another thread meanwhile
            pass

    def _drop(self, model_id: str) -> None:
        """Forget one model (with the lock held)."""
        entry = self._entries.pop(model_id, None)
        if entry is not None:
            self.size -= entry.size
            telemetry.cache_bytes(-entry.size)

    def _evict(self, keep: str) -> None:
        """Drop least recently used models until the budget holds (with the lock held)."""
        while self.size > self.budget and len(self._entries) > 1:
            # popitem, not iteration: hits move entries without the lock meanwhile.
            oldest, entry = self._entries.popitem(last=False)
            if oldest == keep:
                self._entries[keep] = entry  # back, as the most recently used
                continue
            self.size -= entry.size
            telemetry.cache_bytes(-entry.size)
            telemetry.cache_eviction()
            log.info(
                "model %s evicted from this worker's cache (budget %d MiB)",
                oldest,
                self.budget // 1024**2,
            )
        if self.size > self.budget:
            log.warning(
                "model %s alone (%.0f MiB) exceeds [inference] model_cache_mb (%d MiB)",
                keep,
                self.size / 1024**2,
                self.budget // 1024**2,
            )

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, model_id: str) -> bool:
        return model_id in self._entries
