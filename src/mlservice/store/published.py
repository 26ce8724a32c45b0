"""Published models in Redis: signed bundle bytes and a version number per model.

The Celery worker that trains a model publishes it here; every Gunicorn
worker reads it through :class:`mlservice.serving.cache.ModelCache`. Bytes and
version change together in MULTI/EXEC transactions, so a reader never sees
a new version with old bytes.
"""

from __future__ import annotations

import redis

from ..redis_client import key

DEFAULT_MODEL_ID = "default"


def _bundle_key(model_id: str) -> str:
    return key("model", model_id, "bundle")


def version_key(model_id: str) -> str:
    """The key of a model's published version (the hot path remembers it while unchanged)."""
    return key("model", model_id, "version")


def _counter_key(model_id: str) -> str:
    return key("model", model_id, "version-counter")


def _old_counter_key(model_id: str) -> str:
    """Where the counter was kept before (``generation``: a word accounts use for another thing)."""
    return key("model", model_id, "generation")


# The next version: past both the counter and one kept under the old key, which goes.
_NEXT_VERSION = """
local old = tonumber(redis.call('GET', KEYS[2]) or '0')
local version = redis.call('INCR', KEYS[1])
if version <= old then
  version = old + 1
  redis.call('SET', KEYS[1], version)
end
if old > 0 then redis.call('DEL', KEYS[2]) end
return version
"""


def publish(store: redis.Redis, model_id: str, data: bytes) -> int:
    """Store a model's signed bundle under a new version; return that version.

    The counter outlives :func:`unpublish`, so a model published again never
    reuses a version a worker may still have cached.
    """
    next_version = store.register_script(_NEXT_VERSION)
    version = int(next_version(keys=[_counter_key(model_id), _old_counter_key(model_id)]))
    pipe = store.pipeline(transaction=True)
    pipe.set(_bundle_key(model_id), data)
    pipe.set(version_key(model_id), version)
    pipe.execute()
    return version


def current_version(store: redis.Redis, model_id: str) -> int | None:
    """The published version, or ``None`` if the model is not (or no longer) published."""
    return parse_version(store.get(version_key(model_id)))


def queue_version(pipe: redis.client.Pipeline, model_id: str) -> None:
    """Add the version read to a pipeline; :func:`parse_version` reads its answer.

    The predict route sends it together with the token's user check: one round trip.
    """
    pipe.get(version_key(model_id))


def parse_version(raw: bytes | str | None) -> int | None:
    return int(raw) if raw is not None else None


def fetch(store: redis.Redis, model_id: str) -> tuple[int, bytes] | None:
    """Version and bytes read together, or ``None`` if not published."""
    pipe = store.pipeline(transaction=True)
    pipe.get(version_key(model_id))
    pipe.get(_bundle_key(model_id))
    version, data = pipe.execute()
    if version is None or data is None:
        return None
    return int(version), data


def unpublish(store: redis.Redis, model_id: str) -> None:
    """Remove a model; every worker's cache sees it on its next version check."""
    store.delete(version_key(model_id), _bundle_key(model_id))
