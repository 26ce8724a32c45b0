"""Where a model's monitoring state lives: Redis keys and the log's artifact kind.

Declared in the store so that deleting a model (:class:`~.model_store.ModelStore`)
removes its prediction log, buffered rows, drift samples and gauges with it,
without the store importing the monitoring package that writes them.
"""

from __future__ import annotations

import redis

from ..redis_client import key
from .artifacts import ArtifactStore

#: The artifact kind of prediction log files: ``prediction-logs/<model id>/<file>.parquet``.
LOG_KIND = "prediction-logs"
#: Models with rows buffered in Redis, not yet flushed to files.
BUFFERED = key("monitoring", "buffered")
#: Models whose drift gauges are set, scored by when (``GET /metrics`` reads them).
DRIFT_MODELS = key("monitoring", "drift-models")


def buffer_key(model_id: str) -> str:
    """The model's logged requests not yet flushed (a list of Arrow IPC streams, oldest first)."""
    return key("monitoring", model_id, "buffer")


def sample_key(model_id: str) -> str:
    """The model's sampled requests while its log is off (capped list, oldest first)."""
    return key("monitoring", model_id, "sample")


def flush_lock_key(model_id: str) -> str:
    """Held by the one process flushing the model's buffer."""
    return key("monitoring", model_id, "flushing")


def drift_key(model_id: str) -> str:
    """The model's latest drift: a hash of feature -> PSI."""
    return key("monitoring", model_id, "drift")


def drift_plot_key(model_id: str) -> str:
    """Present (with a time to live) while the model's drift plot is recent enough."""
    return key("monitoring", model_id, "drift-plotted")


def forget(store: redis.Redis, artifacts: ArtifactStore, model_id: str) -> None:
    """Remove everything monitoring kept of a deleted model."""
    pipe = store.pipeline(transaction=False)
    pipe.delete(
        buffer_key(model_id), sample_key(model_id), drift_key(model_id), drift_plot_key(model_id)
    )
    pipe.srem(BUFFERED, model_id)
    pipe.zrem(DRIFT_MODELS, model_id)
    pipe.execute()
    artifacts.delete(LOG_KIND, model_id)
