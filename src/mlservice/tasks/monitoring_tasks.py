"""The prediction log's tasks: the periodic flush into Parquet files, and the export.

Shells around :mod:`mlservice.monitoring`. The flush (``celery beat``, every
``[monitoring] flush_seconds``) writes each buffered model's rows into a file,
applies the log's bounds and computes the model's drift again, so the
``mlservice_feature_drift`` gauges follow the traffic, and (once a minute at
most) draws the drift plot into the model's report. A flush that dies is
done again by the next one (see :mod:`mlservice.monitoring.prediction_log`).
The export runs on the training queue (it reads the whole log) and, delivered
again, finishes or answers the data set it already made. Explanations run here
because SHAP (and the matplotlib it loads) never enters an API worker; the
route waits for them briefly.
"""

from __future__ import annotations

import logging
from typing import Any

from ..celery_app import TaskName, app
from ..errors import ServiceError
from ..monitoring import explain_request, explainers, log_export
from ..security import Identity
from ..serving.cache import ModelNotPublished
from ..store.dataset_files import public
from ..training import reports
from .base import ServiceTask

log = logging.getLogger(__name__)


@app.task(base=ServiceTask, name=TaskName.FLUSH_PREDICTION_LOGS, ignore_result=True)
def flush_prediction_logs() -> dict[str, int]:
    """Flush every buffered model's rows; refresh the drift gauges of those flushed."""
    ctx = flush_prediction_logs.ctx
    written = ctx.prediction_log.flush_all()
    for model_id, rows in written.items():
        if rows:
            try:
                _, predictor = ctx.cache.get(model_id, ctx.cache.current_version(model_id))
                drift = ctx.monitor.drift(model_id, predictor.bundle, logged=True)
            except (ModelNotPublished, ServiceError) as exc:  # deleted, no profile
                log.info("model %s: no drift after its flush: %s", model_id, exc)
                continue
            if ctx.monitor.claim_plot(model_id):
                plot = reports.drift_plot(drift["columns"], drift["psi_threshold"], drift["rows"])
                if not reports.store_extra_plot(ctx.reports, model_id, plot):
                    ctx.monitor.release_plot(model_id)  # its report is still being drawn
    return written


@app.task(bind=True, base=ServiceTask, name=TaskName.EXPORT_PREDICTION_LOG)
def export_prediction_log(
    self: ServiceTask, model_id: str, output_id: str, owner: dict[str, str]
) -> dict[str, Any]:
    """Write the model's prediction log into the new data set ``output_id``; its record."""
    ctx = self.ctx
    identity = Identity(owner["username"], "user", account_id=owner["account_id"])
    record = log_export.export(ctx.prediction_log, ctx.datasets, model_id, output_id, identity)
    return {"model_id": model_id, "dataset_id": record["id"], "dataset": public(record)}


@app.task(bind=True, base=ServiceTask, name=TaskName.EXPLAIN)
def explain(
    self: ServiceTask, model_id: str, version: int, columns: dict[str, list[Any]]
) -> dict[str, Any]:
    """Explain the rows ``columns`` (model input, checked by the API) with the model's
    ``version`` (or a newer one, as the worker's cache has it)."""
    ctx = self.ctx
    served, predictor = ctx.cache.get(model_id, version)
    frame = explain_request.input_frame(columns, predictor.bundle.schema)
    answer = explainers.explain(predictor.bundle, frame)
    return {"model_id": model_id, "model_version": served, **answer}
