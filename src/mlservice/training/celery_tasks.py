"""Celery tasks. Each is a thin shell around functions that know nothing of Celery.

Task names are fixed strings: messages already queued in Redis name them, so
they outlive any move of this module.
"""

from __future__ import annotations

from typing import Any

from celery import Task as CeleryTask
from celery.utils.log import get_task_logger

from ..celery_app import SHORT_QUEUE, TRAINING_QUEUE, app
from ..context import worker_context
from ..errors import NotFound
from ..store import bundles, published
from ..store.model_lifecycle import callback_payload
from ..store.records import ModelRecord, ModelStatus
from . import callbacks, fitting, jobs, onnx_conversion
from .callbacks import CallbackError
from .fitting import Progress

log = get_task_logger(__name__)


def _reporter(task: CeleryTask) -> Progress:
    """Progress as task state, which GET /resource/task/status/<id> shows."""

    def progress(fraction: float, message: str) -> None:
        task.update_state(state="PROGRESS", meta={"progress": fraction, "status": message})

    return progress


@app.task(bind=True, name="mlservice.tasks.init_service", queue=TRAINING_QUEUE)
def init_service(self: CeleryTask) -> dict[str, Any]:
    """Train the service's default model and publish it to every API worker."""
    ctx = worker_context()
    fitted = fitting.train_default_model(ctx.settings.default_model, _reporter(self))
    bundle = fitted.bundle
    if ctx.settings.inference.compile_onnx:
        self.update_state(state="PROGRESS", meta={"progress": 0.97, "status": "compiling to ONNX"})
        bundle = onnx_conversion.compile_onnx(fitted)
    else:
        bundle.engine_reason = "not compiled: [inference] compile_onnx is false"
    version = published.publish(
        ctx.store, published.DEFAULT_MODEL_ID, bundles.dumps(bundle, ctx.secret)
    )
    return {
        "model_id": published.DEFAULT_MODEL_ID,
        "version": version,
        "estimator": bundle.estimator,
        "metrics": bundle.metrics,
        "engine": bundle.engine_info(),
    }


@app.task(bind=True, name="mlservice.tasks.train_model", queue=TRAINING_QUEUE)
def train_model(self: CeleryTask, model_id: str) -> dict[str, Any]:
    """Fit a requested model; whatever happens, record it and send the callback."""
    ctx = worker_context()
    record: ModelRecord = ctx.models.catalog.get(model_id)
    compile_onnx = ctx.settings.inference.compile_onnx and record.get("compile", True)
    try:
        dataset = ctx.datasets.catalog.get(record["dataset_id"])
        record, fitted = jobs.fit_model(
            ctx.models,
            model_id,
            dataset,
            ctx.datasets.path(dataset),
            _reporter(self),
            compile_onnx,
        )
    except NotFound:
        # The model (or its data set) was deleted meanwhile: leave nothing behind.
        ctx.models.discard(model_id)
        try:
            record = ctx.models.fail(model_id, "its data set was deleted before training")
        except NotFound:
            record["status"] = "deleted"
        raise
    except Exception as exc:
        record = ctx.models.fail(model_id, f"{type(exc).__name__}: {exc}")
        raise
    finally:
        if record.get("callback_url") and record["status"] in (
            ModelStatus.READY,
            ModelStatus.FAILED,
        ):
            send_callback.delay(model_id, record["callback_url"], callback_payload(record))
    if compile_onnx:
        # After the callback: the model already serves; compiling only makes it faster.
        self.update_state(state="PROGRESS", meta={"progress": 0.97, "status": "compiling to ONNX"})
        try:
            record = jobs.compile_model(ctx.models, model_id, fitted)
        except NotFound:  # deleted while compiling
            ctx.models.discard(model_id)
            return {"model_id": model_id, "status": "deleted"}
        except Exception as exc:  # the scikit-learn version goes on serving
            log.exception("compiling model %s failed", model_id)
            reason = f"compiling failed: {type(exc).__name__}: {exc}"
            record = ctx.models.catalog.update(
                model_id, engine={"name": bundles.Engine.SCIKIT_LEARN, "reason": reason}
            )
    return {
        "model_id": model_id,
        "status": record["status"],
        "metrics": record.get("metrics"),
        "engine": record.get("engine"),
    }


@app.task(
    bind=True,
    name="mlservice.tasks.send_callback",
    queue=SHORT_QUEUE,
    autoretry_for=(CallbackError,),
    retry_backoff=2,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=6,
)
def send_callback(self: CeleryTask, model_id: str, url: str, payload: dict[str, Any]) -> int | None:
    """POST the result, signed with the client's callback secret; retried with backoff.

    Never signed with the service secret: a receiver must not learn what signs tokens.
    """
    ctx = worker_context()
    secret = ctx.models.callback_secret(model_id)
    if secret is None:
        log.info("model %s was deleted: no callback", model_id)
        return None
    log.info("callback for model %s to %s (try %d)", model_id, url, self.request.retries + 1)
    return callbacks.deliver(url, payload, secret, ctx.settings.service.callback_allow_private)
