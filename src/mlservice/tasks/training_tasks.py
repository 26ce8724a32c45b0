"""Training tasks: the default model, a requested model, and the sweep of lost runs.

Shells around :class:`mlservice.training.jobs.Trainer`: the task gives it a
progress reporter, a way to send callbacks (the callback task, by name) and
the registry (``register_as``: a ready model becomes a version), and
turns its outcomes into Celery's (``Ignore`` for a delivery another live run
already handles).
"""

from __future__ import annotations

from typing import Any

from celery.exceptions import Ignore
from celery.utils.log import get_task_logger

from ..celery_app import TaskName, app
from ..context import ServiceContext
from ..errors import NotFound, ServiceError
from ..store.records import ModelRecord
from ..training.jobs import AlreadyRunning, Trainer, train_default_model
from .base import ServiceTask

log = get_task_logger(__name__)


def trainer(ctx: ServiceContext) -> Trainer:
    """The worker's trainer: its stores, its limits, and callbacks sent as tasks."""

    def send_callback(model_id: str, url: str, payload: dict[str, Any]) -> None:
        ctx.enqueue(TaskName.SEND_CALLBACK, (model_id, url, payload))

    def register(record: ModelRecord) -> None:
        """The model asked to be registered: its next version (the name created if
        missing). A refusal (the name is another account's now) is kept on the model,
        which serves all the same."""
        try:
            version = ctx.registry.register_trained(record)
        except NotFound:
            return  # deleted meanwhile
        except ServiceError as refused:
            log.warning("model %s not registered: %s", record["id"], refused.message)
            try:
                ctx.models.catalog.update(record["id"], register_error=refused.message)
            except NotFound:
                pass
            return
        log.info("model %s is version %d of %s", record["id"], version["version"], version["name"])

    return Trainer(
        models=ctx.models,
        reports=ctx.reports,
        datasets=ctx.datasets,
        max_deliveries=ctx.settings.service.max_training_deliveries,
        compile_onnx=ctx.settings.inference.compile_onnx,
        send_callback=send_callback,
        on_ready=register,
    )


@app.task(bind=True, base=ServiceTask, name=TaskName.INIT_SERVICE)
def init_service(self: ServiceTask) -> dict[str, Any]:
    """Train the service's default model and publish it to every API worker."""
    ctx = self.ctx
    return train_default_model(
        ctx.settings.default_model,
        ctx.settings.inference.compile_onnx,
        ctx.redis,
        ctx.secret,
        self.progress,
    )


def _training_stopped(task: ServiceTask, args: tuple[Any, ...]) -> None:
    """The run's process was killed at its hard time limit: settle the model now."""
    if args:
        limit = task.ctx.settings.service.task_time_limit_seconds
        trainer(task.ctx).stopped_by_time_limit(str(args[0]), limit)


@app.task(bind=True, base=ServiceTask, name=TaskName.TRAIN_MODEL, on_time_limit=_training_stopped)
def train_model(self: ServiceTask, model_id: str) -> dict[str, Any]:
    """Fit a requested model; whatever happens, record it and send the callback once.

    Delivered again when its worker dies, it resumes or skips what is done
    (see :mod:`mlservice.training.jobs`); a delivery while another run holds the
    model's lease is dropped (:class:`Ignore`).
    """
    try:
        return trainer(self.ctx).train(model_id, self.progress)
    except AlreadyRunning:
        log.info("model %s: another run is training it; this delivery is dropped", model_id)
        raise Ignore() from None


@app.task(base=ServiceTask, name=TaskName.SWEEP_TRAINING, ignore_result=True)
def sweep_training() -> dict[str, list[str]]:
    """Resume the training runs whose worker died, and resend the callbacks lost with one.

    Sent by ``celery beat`` every ``SWEEP_SECONDS``; answers the models concerned.
    """
    ctx = sweep_training.ctx
    work = trainer(ctx)

    def resume(record: ModelRecord) -> None:
        # The same task id: the client's status URL follows the resumed run; the same
        # request id: its log lines name the request that asked for the model.
        ctx.enqueue(
            TaskName.TRAIN_MODEL,
            (record["id"],),
            task_id=record.get("task_id"),
            request_id=ctx.models.runs.leases.request_id(record["id"]),
        )

    return {"resumed": work.sweep(resume), "callbacks_resent": work.resend_lost_callbacks()}
