"""Celery tasks. Each is a thin shell around functions that know nothing of Celery.

Task names are fixed strings: messages already queued in Redis name them, so
they outlive any move of this module.
"""

from __future__ import annotations

import time
from typing import Any

from celery import Task as CeleryTask
from celery.exceptions import Ignore, TimeLimitExceeded
from celery.signals import task_failure
from celery.utils.log import get_task_logger

from ..celery_app import SHORT_QUEUE, TRAINING_QUEUE, app
from ..context import ServiceContext, worker_context
from ..errors import NotFound
from ..store import bundles, published
from ..store.model_lifecycle import Models, callback_payload
from ..store.records import ModelRecord, ModelStatus
from . import callbacks, fitting, jobs, onnx_conversion, reports
from .callbacks import CallbackError
from .fitting import FittedModel, Progress
from .jobs import TrainingFailed

log = get_task_logger(__name__)

#: Callback retries wait up to RETRY_BACKOFF x 2^retries seconds, at most RETRY_BACKOFF_MAX.
RETRY_BACKOFF = 2
RETRY_BACKOFF_MAX = 300


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
    """Fit a requested model; whatever happens, record it and send the callback once.

    Delivered again when its worker dies, it resumes or skips what is done
    (see :mod:`.jobs`); a delivery while another run holds the model's lease
    is dropped (:class:`Ignore`).
    """
    ctx = worker_context()
    models = ctx.models
    try:
        record: ModelRecord = models.catalog.get(model_id)
    except NotFound:  # deleted: leftovers of a run cut short by the delete go too
        models.discard(model_id)
        return {"model_id": model_id, "status": "deleted"}
    if jobs.is_finished(models, record):  # delivered again after its work was done
        return _finished(ctx, record)
    run = jobs.begin(models, model_id)
    if run is None:
        log.info("model %s: another run is training it; this delivery is dropped", model_id)
        raise Ignore()
    with run:
        # Read again under the lease: a run that held it may have finished meanwhile.
        try:
            record = models.catalog.get(model_id)
        except NotFound:
            models.discard(model_id)
            run.finished = True
            return {"model_id": model_id, "status": "deleted"}
        if jobs.is_finished(models, record):
            run.finished = True
            return _finished(ctx, record)
        return _run(self, ctx, run, record)


def _run(
    task: CeleryTask, ctx: ServiceContext, run: jobs.Run, record: ModelRecord
) -> dict[str, Any]:
    """One run of a model's training, holding its lease: fit (unless done), then compile.

    A failure before the model is ``ready`` fails it; once it is ready it serves,
    whatever becomes of compiling.
    """
    models, model_id = ctx.models, record["id"]
    limit = ctx.settings.service.max_training_deliveries
    compile_onnx = ctx.settings.inference.compile_onnx and record.get("compile", True)
    fitted: FittedModel | None = None
    try:
        if record["status"] != ModelStatus.READY:
            if run.delivery > limit:
                raise TrainingFailed(jobs.too_many_deliveries(run.delivery - 1, limit))
            dataset = ctx.datasets.catalog.get(record["dataset_id"])
            record, fitted, target = jobs.fit_model(
                models,
                model_id,
                dataset,
                ctx.datasets.path(dataset),
                _reporter(task),
                compile_onnx,
            )
            _call_back_once(ctx, record)
            jobs.render_report(models, model_id, fitted, target, _reporter(task))
            fitted = fitted if compile_onnx else None
        else:  # fitted and stored: its worker died while drawing or compiling
            reports.abandon_rendering(models, model_id)
            if run.delivery > limit:  # compiling keeps stopping its worker
                reason = "not compiled: " + jobs.too_many_deliveries(run.delivery - 1, limit)
                record = jobs.stop_compiling(models, model_id, reason)
            else:
                log.info("model %s: resuming its compile (delivery %d)", model_id, run.delivery)
                fitted = jobs.resume_compile(models, model_id)
        if fitted is not None:
            # After the callback: the model already serves; compiling only makes it faster.
            task.update_state(
                state="PROGRESS", meta={"progress": 0.97, "status": "compiling to ONNX"}
            )
            record = jobs.compile_model(models, model_id, fitted)
    except NotFound:
        if _status(models, model_id) is None:  # deleted meanwhile: leave nothing behind
            models.discard(model_id)
            run.finished = True
            return {"model_id": model_id, "status": "deleted"}
        record = models.fail(model_id, "its data set was deleted before training")
        run.finished = True
        _call_back_once(ctx, record)
        raise TrainingFailed(record["error"]) from None
    except Exception as exc:
        if _status(models, model_id) == ModelStatus.READY:
            raise  # it serves: the run ends unfinished and is resumed (compiling again)
        error = str(exc) if isinstance(exc, TrainingFailed) else f"{type(exc).__name__}: {exc}"
        record = models.fail(model_id, error)
        run.finished = True
        _call_back_once(ctx, record)
        raise
    run.finished = True
    return _result(record)


def _status(models: Models, model_id: str) -> str | None:
    """The model's status, ``None`` once it is deleted."""
    try:
        return models.catalog.get(model_id)["status"]
    except NotFound:
        return None


def _result(record: ModelRecord) -> dict[str, Any]:
    return {
        "model_id": record["id"],
        "status": record["status"],
        "metrics": record.get("metrics"),
        "engine": record.get("engine"),
    }


def _finished(ctx: ServiceContext, record: ModelRecord) -> dict[str, Any]:
    """A delivery of a finished model: the outcome again, and its callback if still unsent."""
    log.info("model %s is already %s: not trained again", record["id"], record["status"])
    _call_back_once(ctx, record)
    if record["status"] == ModelStatus.FAILED:
        raise TrainingFailed(record.get("error", "unknown error"))
    return _result(record)


def _call_back_once(ctx: ServiceContext, record: ModelRecord) -> None:
    """Queue the callback of the model's outcome, unless it was queued before."""
    url = record.get("callback_url")
    if not url or record["status"] not in (ModelStatus.READY, ModelStatus.FAILED):
        return
    payload = callback_payload(record)
    delivery_id = callbacks.delivery_id(payload)
    deadline = time.time() + jobs.CALLBACK_GRACE_SECONDS
    if ctx.models.claim_callback(record["id"], record["status"], delivery_id, deadline):
        send_callback.delay(record["id"], url, payload)


@task_failure.connect
def _over_time_limit(
    sender: CeleryTask | None = None,
    exception: BaseException | None = None,
    args: tuple[Any, ...] = (),
    **_: Any,
) -> None:
    """A hard time limit kills the run's process: settle the model now, not at a redelivery.

    Sent in the worker's main process, which killed the run (the message is acknowledged).
    """
    if getattr(sender, "name", None) != train_model.name:
        return
    if not isinstance(exception, TimeLimitExceeded) or not args:
        return
    ctx = worker_context()
    model_id = str(args[0])
    try:
        record = ctx.models.catalog.get(model_id)
    except NotFound:
        return
    if jobs.is_finished(ctx.models, record):
        return
    limit = ctx.settings.service.task_time_limit_seconds
    why = f"over [service] task_time_limit_seconds = {limit}"
    if record["status"] == ModelStatus.READY:  # killed while compiling: it serves as it is
        jobs.stop_compiling(ctx.models, model_id, f"compiling was stopped: {why}")
        return
    _call_back_once(ctx, ctx.models.fail(model_id, f"training was stopped: {why}"))


@app.task(name="mlservice.tasks.sweep_training", queue=SHORT_QUEUE, ignore_result=True)
def sweep_training() -> dict[str, list[str]]:
    """Resume the training runs whose worker died, and resend the callbacks lost with one.

    Sent by ``celery beat`` every ``SWEEP_SECONDS``; answers the models concerned.
    """
    ctx = worker_context()

    def resume(record: ModelRecord) -> None:
        # The same task id: the client's status URL follows the resumed run.
        train_model.apply_async((record["id"],), task_id=record.get("task_id"), add_to_parent=False)

    def resend(record: ModelRecord) -> None:
        payload = callback_payload(record)
        send_callback.apply_async(
            (record["id"], record.get("callback_url"), payload), add_to_parent=False
        )

    return {
        "resumed": jobs.sweep(ctx.models, resume, lambda record: _call_back_once(ctx, record)),
        "callbacks_resent": jobs.resend_lost_callbacks(ctx.models, resend),
    }


def cancel_training(record: ModelRecord) -> None:
    """Revoke a deleted model's training task: dropped if queued, its process killed if running.

    The task also checks at start that its model still exists (a worker that
    starts later never heard of the revoke).
    """
    task_id = record.get("task_id")
    if not task_id:
        return
    try:
        app.control.revoke(task_id, terminate=True, signal="SIGTERM")
    except Exception:  # broker away: the task still finds its model gone when it runs
        log.warning("could not revoke task %s of deleted model %s", task_id, record["id"])


@app.task(
    bind=True,
    name="mlservice.tasks.send_callback",
    queue=SHORT_QUEUE,
    autoretry_for=(CallbackError,),
    retry_backoff=RETRY_BACKOFF,
    retry_backoff_max=RETRY_BACKOFF_MAX,
    retry_jitter=True,
    max_retries=6,
)
def send_callback(self: CeleryTask, model_id: str, url: str, payload: dict[str, Any]) -> int | None:
    """POST the result, signed with the client's callback secret; retried with backoff.

    Never signed with the service secret: a receiver must not learn what signs tokens.
    The callback stays pending until delivered or given up; one lost with its
    worker is sent again by the sweep (:func:`.jobs.resend_lost_callbacks`), and
    an attempt at one already delivered does nothing.
    """
    ctx = worker_context()
    models, status = ctx.models, str(payload.get("status"))
    attempt = time.time() + callbacks.TIMEOUT_SECONDS + jobs.CALLBACK_GRACE_SECONDS
    if not models.callback_due(model_id, status, attempt):
        log.info("the %s callback of model %s was delivered already", status, model_id)
        return None
    secret = models.callback_secret(model_id)
    if secret is None:
        log.info("model %s was deleted: no callback", model_id)
        models.callback_settled(model_id, status)
        return None
    log.info("callback for model %s to %s (try %d)", model_id, url, self.request.retries + 1)
    try:
        answer = callbacks.deliver(
            url, payload, secret, ctx.settings.service.callback_allow_private
        )
    except CallbackError:
        if self.request.retries < (self.max_retries or 0):
            # autoretry waits at most this long (exponential backoff, capped, jittered below)
            wait = min(RETRY_BACKOFF_MAX, RETRY_BACKOFF * 2**self.request.retries)
            models.callback_due(model_id, status, time.time() + wait + jobs.CALLBACK_GRACE_SECONDS)
        else:
            models.callback_settled(model_id, status)  # given up
        raise
    except Exception:  # not a delivery failure: never retried, so not sent again either
        models.callback_settled(model_id, status)
        raise
    models.callback_settled(model_id, status)
    return answer
