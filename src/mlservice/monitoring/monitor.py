"""A model's drift, from its prediction log (or drift sample) and its training profile.

``GET /resource/models/<id>/drift`` asks :meth:`Monitor.drift`: the newest rows
(the log's, when it is on, else the sample's), compared column by column
(:mod:`.drift`). Each answer also leaves the PSIs in Redis, for the gauges
``mlservice_feature_drift`` (:class:`mlservice.telemetry.FeatureDrift`) that
``GET /metrics`` reads; the periodic flush computes them again for the models it
flushed, so the gauges move with the traffic even when nobody asks.

The work is bounded (at most ``[monitoring] drift_max_window`` rows, in memory as
Arrow then pandas, a few milliseconds per thousand rows), so it runs where it is
asked: in the API for the route, in the worker for the flush.
"""

from __future__ import annotations

import time
from typing import Any, cast

import pyarrow as pa
import redis

from ..config import MonitoringSettings
from ..errors import Conflict, Invalid
from ..redis_client import text as as_text
from ..store import monitoring_keys as keys
from ..store.bundles import ModelBundle
from . import drift
from .drift import ColumnDrift, Thresholds
from .feature_profile import TrainingProfile
from .prediction_log import PredictionLog

#: The report's drift plot is drawn again at most this often per model.
DRIFT_PLOT_SECONDS = 60


class Monitor:
    """Drift of the models' recent inputs, and the gauges' values in Redis."""

    def __init__(
        self, store: redis.Redis, log_store: PredictionLog, settings: MonitoringSettings
    ) -> None:
        self.redis = store
        self.log = log_store
        self.settings = settings
        self.thresholds = Thresholds(
            psi=settings.drift_psi_threshold, missing=settings.drift_missing_threshold
        )

    def window(self, requested: int | None) -> int:
        """The rows to compare: as asked (422 past ``drift_max_window``) or the default."""
        if requested is None:
            return self.settings.drift_window
        if requested < 1 or requested > self.settings.drift_max_window:
            raise Invalid(
                f"window must be between 1 and {self.settings.drift_max_window} rows "
                "([monitoring] drift_max_window)"
            )
        return requested

    def drift(
        self, model_id: str, bundle: ModelBundle, logged: bool, window: int | None = None
    ) -> dict[str, Any]:
        """The drift answer of the model's newest ``window`` rows; 409 when the model has no
        training profile or no rows yet."""
        profile = cast(TrainingProfile | None, getattr(bundle, "training_profile", None))
        if not profile:
            raise Conflict(
                f"model {model_id!r} has no training profile (trained before drift was "
                "watched, or uploaded from a service that did not keep one): train it again"
            )
        rows = self.window(window)
        table = self.log.recent_rows(model_id, rows, logged)
        if table is None or table.num_rows == 0:
            source = "prediction log" if logged else "drift sample"
            hint = (
                ""
                if logged
                else (' (the log is off: PATCH {"log_predictions": true} to keep every request)')
            )
            raise Conflict(f"model {model_id!r} has no rows in its {source} yet{hint}")
        frame = _inputs(table, list(profile["columns"]))
        answer = drift.report(
            model_id, profile, frame, self.thresholds, "log" if logged else "sample"
        )
        self.keep_gauges(model_id, answer["columns"])
        return answer

    def keep_gauges(self, model_id: str, columns: list[ColumnDrift]) -> None:
        """Leave the columns' PSIs in Redis for the gauges."""
        values: dict[Any, Any] = {c["feature"]: c["psi"] for c in columns if c["psi"] is not None}
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(keys.drift_key(model_id))
        if values:
            pipe.hset(keys.drift_key(model_id), mapping=values)
        pipe.zadd(keys.DRIFT_MODELS, {model_id: time.time()})
        pipe.execute()

    def claim_plot(self, model_id: str, seconds: int = DRIFT_PLOT_SECONDS) -> bool:
        """Whether it is time to draw the model's drift plot again (once per ``seconds``)."""
        return bool(self.redis.set(keys.drift_plot_key(model_id), 1, nx=True, ex=seconds))

    def release_plot(self, model_id: str) -> None:
        """The drift plot could not be stored: the next flush may draw it."""
        self.redis.delete(keys.drift_plot_key(model_id))

    def gauges(self, limit: int) -> dict[str, dict[str, float]]:
        """{model id: {feature: PSI}} of the ``limit`` models whose drift was computed last."""
        newest = self.redis.zrevrange(keys.DRIFT_MODELS, 0, limit - 1)
        model_ids = [text for m in newest if (text := as_text(m))]
        pipe = self.redis.pipeline(transaction=False)
        for model_id in model_ids:
            pipe.hgetall(keys.drift_key(model_id))
        found = {}
        for model_id, values in zip(model_ids, pipe.execute(), strict=True):
            if values:
                found[model_id] = {k.decode(): float(v) for k, v in values.items()}
        return found


def _inputs(table: pa.Table, names: list[str]) -> Any:
    """The input columns of logged rows as a DataFrame (a column the rows lack: missing)."""
    present = [name for name in names if name in table.column_names]
    frame = table.select(present).to_pandas()
    for name in names:
        if name not in frame.columns:
            frame[name] = None
    return frame
