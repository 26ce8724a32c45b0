"""A per-process cache of loaded models, keyed by model id and version.

Each Gunicorn worker holds one :class:`ModelCache`. A lookup needs the
model's current version from Redis (one small round trip, which the predict
route pipelines with its token check); only when that differs from the
cached one are the bundle bytes fetched, verified, unpickled and turned into
a :class:`~mlservice.serving.predictor.Predictor` (an ONNX Runtime session, or a
batched scikit-learn pipeline). A retrain (new version) or a delete (no
version) is therefore seen by every worker on its next request, and a model
is never unpickled per request.
"""

from __future__ import annotations

import threading

import redis

from ..config import InferenceSettings
from ..store import bundles, published
from .predictor import Predictor


class ModelNotPublished(LookupError):
    """No model is published under that id (not trained yet, or deleted)."""


class ModelCache:
    """Loaded models of this process, by model id, with their version."""

    def __init__(self, store: redis.Redis, secret: str, settings: InferenceSettings) -> None:
        self._store = store
        self._secret = secret
        self._settings = settings
        self._entries: dict[str, tuple[int, Predictor]] = {}
        self._lock = threading.Lock()

    def get(self, model_id: str, version: int | None) -> tuple[int, Predictor]:
        """The predictor of ``version``, loaded only when it is not the cached one.

        ``version`` is the current one, as the caller just read it with
        :func:`~mlservice.store.published.queue_version`.
        """
        if version is None:
            self._entries.pop(model_id, None)
            raise ModelNotPublished(model_id)
        cached = self._entries.get(model_id)
        if cached is not None and cached[0] == version:
            return cached
        with self._lock:  # one thread loads; the others wait and reuse its work
            cached = self._entries.get(model_id)
            if cached is not None and cached[0] >= version:
                return cached
            fetched = published.fetch(self._store, model_id)
            if fetched is None:
                self._entries.pop(model_id, None)
                raise ModelNotPublished(model_id)
            loaded_version, data = fetched
            entry = (loaded_version, Predictor(bundles.loads(data, self._secret), self._settings))
            self._entries[model_id] = entry
            return entry

    def __len__(self) -> int:
        return len(self._entries)
