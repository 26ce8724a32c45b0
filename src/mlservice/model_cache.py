"""A per-process cache of deserialised models, keyed by model id and version.

Each Gunicorn worker holds one :class:`ModelCache`. A lookup asks Redis for
the model's current version (one small round trip); only when that differs
from the cached one are the bundle bytes fetched, verified and unpickled.
A retrain (new version) or a delete (no version) is therefore seen by every
worker on its next request, and a model is never unpickled per request.
"""

from __future__ import annotations

import threading

import redis

from . import bundles, model_store
from .bundles import ModelBundle


class ModelNotPublished(LookupError):
    """No model is published under that id (not trained yet, or deleted)."""


class ModelCache:
    """Deserialised bundles of this process, by model id, with their version."""

    def __init__(self, store: redis.Redis, secret: str) -> None:
        self._store = store
        self._secret = secret
        self._entries: dict[str, tuple[int, ModelBundle]] = {}
        self._lock = threading.Lock()

    def get(self, model_id: str) -> tuple[int, ModelBundle]:
        """The current version of a model and its bundle, loading it only when it changed."""
        version = model_store.current_version(self._store, model_id)
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
            fetched = model_store.fetch(self._store, model_id)
            if fetched is None:
                self._entries.pop(model_id, None)
                raise ModelNotPublished(model_id)
            loaded_version, data = fetched
            entry = (loaded_version, bundles.loads(data, self._secret))
            self._entries[model_id] = entry
            return entry

    def __len__(self) -> int:
        return len(self._entries)
